"""The relay: the store's notification log → Kafka, in order, keyed by aggregate id.

Its position (in PostgreSQL) advances only after the broker acknowledged every message
up to it, so a crash republishes (consumers drop the duplicates) and never skips. One
relay is active at a time (a PostgreSQL advisory lock); others wait as standbys.

If the broker lost the topic's log (a fresh broker, or fewer messages than were
acknowledged), the relay starts a new epoch and republishes the whole store: the store
is the source of truth and Kafka a replayable copy of it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence

import psycopg
import structlog
from eventsourcing.persistence import Notification
from eventsourcing.postgres import PostgresDatastore
from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError

from infra.bootstrap import System
from infra.envelopes import envelope_from
from infra.integrity import system_sealer
from infra.kafka import clients
from infra.kafka.state import BusState, RelayState
from infra.view_store import STORE_ERRORS
from projections.envelope import EventEnvelope

log = structlog.get_logger(__name__)

LOCK_KEY = 0x7469616F6B756169  # "tiaokuai"
TOPIC_CHECK_SECONDS = 5.0
LOCK_CHECK_SECONDS = 1.0
SEAL_CHECK_SECONDS = 1.0
"""How often the relay looks for events a plain recorder stored unsealed."""
RECORD_EVERY_SECONDS = 0.1
"""While events keep coming, how often the relay writes its position to PostgreSQL."""
SMALL_BATCH = 100
"""A batch smaller than this is followed by the idle wait, so a trickle goes out in rounds."""


def message_headers(envelope: EventEnvelope, epoch: str) -> list[tuple[str, bytes]]:
    """The headers consumers can route and filter on without decoding the value."""
    return [
        ("notification_id", str(envelope.position).encode()),
        ("event_type", envelope.type.encode()),
        ("aggregate_type", envelope.aggregate_type.encode()),
        ("aggregate_id", envelope.aggregate_id.encode()),
        ("aggregate_version", str(envelope.version).encode()),
        ("actor_unit", (envelope.actor.get("unit") or "").encode()),
        ("schema", b"1"),
        ("epoch", epoch.encode()),
    ]


class Relay:
    """Publishes every stored event once acknowledged; resumable, never skipping."""

    def __init__(self, system: System, *, name: str = "relay") -> None:
        if system.settings.bus is None or system.settings.store is None:
            raise ValueError("the relay needs --store postgresql://... and --bus kafka://...")
        datastore = system.app.factory.datastore  # type: ignore[attr-defined]
        assert isinstance(datastore, PostgresDatastore)
        self.system = system
        self.settings = system.settings
        self.name = name
        self.schema = datastore.schema
        assert system.bus_state is not None
        self.state: BusState = system.bus_state
        self._producer: KafkaProducer | None = None
        self._reader: KafkaConsumer | None = None
        self._checked_at: float | None = None
        self._state: RelayState | None = None
        """How far the broker acknowledged: the relay's row, read once (behind the leader
        lock this process is its only writer), then advanced in memory."""
        self._recorded: RelayState | None = None
        """The position as last written to PostgreSQL (``_state`` may be ahead of it)."""
        self._recorded_at = -math.inf  # the first write goes out at once, whatever the clock
        self._stop = threading.Event()
        self._last_beat = -math.inf
        self._keep_topic = False
        """Set when the broker refused to delete a topic with too few partitions."""

    # ------------------------------------------------------------- broker
    def _connect(self) -> None:
        if self._producer is None:
            self._producer = clients.producer(self.settings)
        if self._reader is None:
            self._reader = clients.offsets_reader(self.settings)

    def _disconnect(self) -> None:
        for client in (self._producer, self._reader):
            if client is not None:
                try:
                    client.close(timeout=1) if isinstance(client, KafkaProducer) else client.close()
                except Exception as error:  # closing a broken client must not mask the cause
                    log.debug("relay.close_failed", error=repr(error))
        self._producer = None
        self._reader = None
        self._checked_at = None

    def _check_topic(self, state: RelayState) -> RelayState:
        """Make sure the topic exists and still holds what was acknowledged."""
        assert self._reader is not None
        created = clients.ensure_topic(self.settings)
        ends = clients.end_offsets(self._reader, self.settings.kafka_topic)
        lost = created or sum(ends.values()) < state.published
        too_few = 0 < len(ends) < self.settings.kafka_partitions
        needed = not lost and any(ends.values())  # messages of the current epoch
        if not created and too_few and not needed and not self._keep_topic:
            # Someone else created the topic with fewer partitions, and nothing in it is
            # needed: Tansu creates a missing topic on any consumer's metadata request
            # (with 4 partitions, whatever the client asks), so after a fresh broker the
            # workers' own requests beat the relay to it. Tansu cannot add partitions.
            try:
                clients.recreate_topic(self.settings)
            except KafkaError as error:
                if error.retriable:
                    raise
                # Deletion refused (a cluster with delete.topic.enable=false, no ACL for
                # it): publish to the topic as it is, fewer partitions and all.
                log.warning("relay.topic_kept", partitions=len(ends), error=repr(error))
                self._keep_topic = True
            else:
                log.warning(
                    "relay.topic_recreated",
                    partitions=len(ends),
                    configured=self.settings.kafka_partitions,
                    messages=sum(ends.values()),
                )
                # The clients' metadata knows the old partitions: the producer would hash
                # keys onto them and split an aggregate's events between two layouts.
                self._disconnect()
                self._connect()
                lost = True
        if lost:
            log.warning(
                "relay.topic_lost",
                created=created,
                messages=sum(ends.values()),
                acknowledged=state.published,
            )
            state = self.state.new_epoch(self.name)
            self._state = self._recorded = state
        self._checked_at = time.monotonic()
        return state

    # -------------------------------------------------------------- work
    def publish_batch(self) -> int:
        """Publish the next batch after the relay's position; return how many."""
        try:
            return self._publish_batch()
        except BaseException:
            # Whether the last advance committed is unknown: read the row again next time
            # (at worst the batch is republished, and consumers drop the duplicates).
            self._state = self._recorded = None
            raise

    def _publish_batch(self) -> int:
        self._connect()
        if self._state is None:
            self._state = self._recorded = self.state.relay_state(self.name)
        state = self._state
        # Re-checked now and then: a broker that restarted empty may accept sends again
        # before anything fails, and only the offsets show that its log is gone.
        if self._checked_at is None or time.monotonic() - self._checked_at > TOPIC_CHECK_SECONDS:
            state = self._check_topic(state)
        notifications: Sequence[Notification] = self.system.app.recorder.select_notifications(
            start=state.position + 1, limit=self.settings.relay_batch
        )
        if not notifications:
            self.record_position(force=True)  # idle: PostgreSQL catches up at once
            return 0
        assert self._producer is not None
        futures = []
        for notification in notifications:
            envelope = envelope_from(notification, self.system.app.envelope_mapper)
            futures.append(
                self._producer.send(
                    self.settings.kafka_topic,
                    key=envelope.aggregate_id.encode(),
                    value=envelope.to_json(),
                    headers=message_headers(envelope, state.epoch),
                )
            )
        self._producer.flush(timeout=30)
        for future in futures:
            future.get(timeout=30)  # raises if the broker did not acknowledge
        last = notifications[-1].id
        self._state = RelayState(last, state.epoch, state.published + len(notifications))
        self.record_position()
        return len(notifications)

    def record_position(self, *, force: bool = False) -> None:
        """Write the acknowledged position to PostgreSQL: when idle, else now and then.

        A trickle of commands made this a transaction per event or two. What is not
        written yet is only acknowledged messages: a crash republishes them, and the
        consumers drop the duplicates. The update only ever moves the row forward in
        its own epoch, so a late write after another relay took the lead changes
        nothing that relay did.
        """
        state, recorded = self._state, self._recorded
        if state is None or recorded is None or state.position == recorded.position:
            return
        now = time.monotonic()
        if not force and now - self._recorded_at < RECORD_EVERY_SECONDS:
            return
        self.state.advance_relay(
            position=state.position,
            published=state.published - recorded.published,
            epoch=state.epoch,
            name=self.name,
        )
        self._recorded, self._recorded_at = state, now

    def heartbeat(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_beat >= self.settings.heartbeat_seconds:
            state = self._state or self.state.relay_state(self.name)
            self.state.heartbeat(
                self.name,
                "relay",
                {"position": state.position, "epoch": state.epoch, "head": self.system.app.head()},
            )
            self._last_beat = now

    def run(self) -> None:
        """Publish until stopped, holding the leader lock; survive broker and store outages."""
        try:
            while not self._stop.is_set():
                try:
                    self._lead()
                except STORE_ERRORS as error:
                    # The database went away (a restart): the leader lock went with its
                    # connection, so it is taken again before publishing resumes. The
                    # position only ever advanced after acknowledgements: nothing is lost.
                    log.warning("relay.store_unavailable", error=repr(error))
                    self._disconnect()
                    self._stop.wait(1.0)
        finally:
            self._disconnect()
        log.info("worker.stopped", worker=self.name, kind="relay")

    def _lead(self) -> None:
        assert self.settings.store is not None
        with psycopg.connect(self.settings.store, autocommit=True, connect_timeout=5) as lock_conn:
            while not self._stop.is_set():
                # Advisory locks are per database, not per schema: the schema is part of
                # the key, or the relays of two stores in one database (two deployments,
                # parallel test runs, the benchmark) would stand by for each other forever.
                row = lock_conn.execute(
                    "SELECT pg_try_advisory_lock(%s, hashtext(%s))",
                    (LOCK_KEY & 0x7FFFFFFF, f"{self.schema}:{self.system.app.name}:{self.name}"),
                ).fetchone()
                if row and row[0]:
                    break
                log.info("relay.standby")
                self._stop.wait(1.0)
            if self._stop.is_set():
                return
            # Another relay may have led while this one stood by or was cut off: the
            # row is read afresh under the lock, never carried over from a former lead.
            self._state = self._recorded = None
            log.info("relay.started", topic=self.settings.kafka_topic)
            backoff = 0.5
            lock_checked, sealed_at = time.monotonic(), 0.0
            while not self._stop.is_set():
                try:
                    if time.monotonic() - sealed_at > SEAL_CHECK_SECONDS:
                        # A safety net: events stored by a plain recorder get sealed here.
                        system_sealer(self.system).seal_pending()
                        sealed_at = time.monotonic()
                    published = self.publish_batch()
                    self.heartbeat()
                    backoff = 0.5
                    if published < min(SMALL_BATCH, self.settings.relay_batch):
                        # After a small batch the next select would find little or
                        # nothing: wait as when idle, and publish the trickle in rounds.
                        # A full batch never waits, however small the configured size.
                        self._stop.wait(self.settings.relay_idle_seconds)
                    if time.monotonic() - lock_checked > LOCK_CHECK_SECONDS:
                        # Still the leader? A lost lock connection ends the lead.
                        lock_conn.execute("SELECT 1")
                        lock_checked = time.monotonic()
                except KafkaError as error:
                    log.warning("relay.broker_unavailable", error=repr(error), retry_in=backoff)
                    self._disconnect()
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, 5.0)
                    try:
                        self.heartbeat(force=True)
                    except Exception as beat_error:  # the store may be down too
                        log.warning("relay.heartbeat_failed", error=repr(beat_error))
            # Stopping: what the broker acknowledged is not published again on restart.
            self.record_position(force=True)

    def stop(self) -> None:
        self._stop.set()
