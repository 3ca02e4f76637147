"""A projection worker: one Kafka consumer group per projection, views in PostgreSQL.

``tiaokuai worker project`` runs its projections' workers in a ``ProjectionHost``
(``workers/projection_host.py``), which feeds them all from one fetch; ``run`` here
consumes alone, with a consumer of its own (tests, probes).

Each poll's events are applied and the partitions' next offsets stored in one PostgreSQL
transaction; an event whose aggregate version the projection already applied is a
duplicate and changes nothing. A projection that has never consumed first catches up
from the store (so the topic's retention does not matter), then reads the topic from
its beginning, dropping what it already has, and follows live.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import psycopg
import structlog
from eventsourcing.postgres import PostgresDatastore
from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from infra.bootstrap import System
from infra.kafka import clients
from infra.kafka.state import BusState
from infra.projector import InProcessProjector, log_failure
from infra.view_store import STORE_ERRORS, EventFailed, PostgresViewRecorder, ProjectionGap
from projections.base import Projection
from projections.envelope import EventEnvelope

log = structlog.get_logger(__name__)

VIEW_LOCK_KEY = 0x76696577  # "view"
SMALL_BATCH = 100
"""A poll that brought fewer messages than this lingers (``worker_linger_ms``) before the next."""
GAP_GRACE_SECONDS = 60.0
"""How long a gap in the topic may last (the relay noticing a lost log) before it is fatal."""


EPOCH_CHECK_SECONDS = 2.0
"""How often a worker asks PostgreSQL whether the relay started a new epoch."""


class RelayEpochChanged(Exception):
    """The relay started a new epoch since the worker's consumers joined: join again."""


class EpochWatch:
    """Notices the relay's new epochs, so that a worker's consumers are made afresh.

    A new epoch means the topic was lost or made again, perhaps with another partition
    count. A group learns of changed partitions by a rejoin of its members, and Tansu
    answers a lone member that rejoins under its old member id with the assignment of
    the topic it had before (the same generation): the new partitions would never be
    fetched. New consumers join as new members, with the topic's metadata as it is now.
    """

    def __init__(self, state: BusState, every: float = EPOCH_CHECK_SECONDS) -> None:
        self.state = state
        self.every = every
        self.epoch = ""
        self.checked = 0.0

    def start(self) -> None:
        """Remember the relay's epoch as the consumers are made (the first, if none yet)."""
        # Not read-only: with no epoch yet, a relay that starts one a moment later would
        # look like the first, and the topic it made again would go unnoticed.
        self.epoch = self.state.relay_state().epoch
        self.checked = time.monotonic()

    def check(self) -> None:
        """Raise ``RelayEpochChanged`` if the relay's epoch moved on (now and then)."""
        now = time.monotonic()
        if now - self.checked < self.every:
            return
        self.checked = now
        epoch = self.state.relay_epoch()
        if epoch != self.epoch:
            raise RelayEpochChanged(f"the relay's epoch went from {self.epoch} to {epoch}")


def _header(message: Any, name: str) -> str | None:
    for key, value in message.headers or ():
        if key == name:
            return bytes(value).decode()
    return None


def _epoch(message: Any) -> str | None:
    return _header(message, "epoch")


_T = TypeVar("_T")


class PollReads:
    """A poll's messages as the workers read them: each epoch header and value once.

    A host of several projections hands every one of them the same message lists;
    each reading its own copy was 350,000 header scans and decode lookups per 50,000
    events for seven projections. Lists are recognised by identity: a list a worker
    filtered is read again, message by message, from a cache of the envelopes.
    """

    def __init__(self, records: dict[TopicPartition, list[Any]]) -> None:
        self.records = records
        self._epochs: dict[TopicPartition, list[str | None]] = {}
        self._lists: dict[TopicPartition, list[EventEnvelope]] = {}
        self._decoded: dict[tuple[int, int], EventEnvelope] = {}

    def epochs(self, tp: TopicPartition, messages: Sequence[Any]) -> list[str | None]:
        """The epoch header of each message."""
        return self._each(tp, messages, self._epochs, _epoch)

    def envelopes(self, tp: TopicPartition, messages: Sequence[Any]) -> list[EventEnvelope]:
        """The envelope of each message."""
        return self._each(tp, messages, self._lists, self._decode)

    def _each(
        self,
        tp: TopicPartition,
        messages: Sequence[Any],
        kept: dict[TopicPartition, list[_T]],
        read: Callable[[Any], _T],
    ) -> list[_T]:
        """``read`` of each message; of the polled list itself, kept for the next caller."""
        if messages is not self.records.get(tp):
            return [read(m) for m in messages]
        found = kept.get(tp)
        if found is None:
            found = kept[tp] = [read(m) for m in messages]
        return found

    def _decode(self, message: Any) -> EventEnvelope:
        key = (message.partition, message.offset)
        envelope = self._decoded.get(key)
        if envelope is None:
            envelope = self._decoded[key] = EventEnvelope.from_json(message.value)
        return envelope


def await_rejoin(consumer: Any) -> None:
    """Keep the join that a revocation begins awaited until it completes.

    Called as every (re)join begins. kafka-python 3.0 drops a join it started because
    the topic's metadata changed (partitions added, topic recreated, as on a broker that
    lost its log): as the group's leader it assigns, the metadata looks settled again,
    and the join in flight is never completed, leaving the consumer "rebalancing" with
    no partitions, for good. Asking for the rejoin explicitly keeps it awaited.
    """
    coordinator = getattr(consumer, "_coordinator", None)
    if coordinator is not None and hasattr(coordinator, "request_rejoin"):
        coordinator.request_rejoin()


JOIN_FINISH_SECONDS = 6.0
"""How long a consumer that is leaving its group may take to finish a join in flight."""


def _join_in_flight(consumer: Any) -> bool:
    coordinator = getattr(consumer, "_coordinator", None)
    task = getattr(coordinator, "_join_task", None)
    return task is not None and not task.is_done


def close_consumer(consumer: Any, finish_join_s: float = JOIN_FINISH_SECONDS) -> None:
    """Close a consumer without committing; a broken connection must not hide the cause.

    A group member in the middle of a join finishes it first (bounded): leaving while its
    JoinGroup is answered and its SyncGroup still to go out, Tansu 0.6 keeps the member
    that left as the group's leader, and every member that joins later waits for that
    leader's assignment for good (``worker.join_stalled``; docs/reliability.md). The
    records a poll brings here are dropped: the next consumer starts from the offsets
    stored with the views.
    """
    try:
        deadline = time.monotonic() + finish_join_s
        while _join_in_flight(consumer) and time.monotonic() < deadline:
            consumer.poll(timeout_ms=100)
    except Exception as error:
        log.debug("worker.join_unfinished", error=repr(error))
    try:
        consumer.close(autocommit=False)
    except Exception as error:
        log.debug("worker.close_failed", error=repr(error))


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, worker: ProjectionWorker) -> None:
        self.worker = worker

    def on_partitions_revoked(self, revoked: Any) -> None:
        log.info("worker.partitions_revoked", partitions=sorted(tp.partition for tp in revoked))
        await_rejoin(self.worker.consumer)

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.worker.position_partitions(list(assigned))


class ProjectionWorker:
    """Consumes the events topic for one projection."""

    def __init__(self, system: System, projection: Projection, *, name: str | None = None) -> None:
        settings = system.settings
        if settings.bus is None or settings.store is None:
            raise ValueError(
                "a projection worker needs --store postgresql://... and --bus kafka://"
            )
        datastore = system.app.factory.datastore  # type: ignore[attr-defined]
        assert isinstance(datastore, PostgresDatastore)
        assert isinstance(system.view_recorder, PostgresViewRecorder)
        self.system = system
        self.settings = settings
        self.projection = projection
        self.group = clients.projection_group(projection.name)
        self.name = name or f"{self.group}.{threading.get_native_id()}"
        self.views: PostgresViewRecorder = system.view_recorder
        assert system.bus_state is not None
        self.state: BusState = system.bus_state
        self.schema = datastore.schema
        self._lock_conn: psycopg.Connection[Any] | None = None
        self.topic = settings.kafka_topic
        self.epochs: dict[int, str] = {}
        self.rewound: set[int] = set()
        self.current_epoch: str | None = None
        self.stale_epochs: set[str] = set()
        self._gap_since: float | None = None
        self.consumer: KafkaConsumer | None = None
        self._stop = threading.Event()
        self._last_beat = -math.inf
        self.applied = 0
        self.failure: dict[str, Any] | None = None
        """The poison event that stopped this projection (position, type, aggregate, error)."""
        self._offsets_statement = self.state.store_offsets_statement()

    # ------------------------------------------------------------ view lock
    @property
    def _view_lock_key(self) -> tuple[int, str]:
        return (VIEW_LOCK_KEY, f"{self.schema}:{self.projection.name}")

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold this projection's view lock (PostgreSQL) while applying and committing.

        The workers of one group apply different partitions at the same time, and a
        projection's documents are shared across aggregates (a linkage cell or an
        assessment cell counts many tasks). Two concurrent read-modify-write
        transactions would lose one update (READ COMMITTED), and during a rebalance
        both could read the same applied version and apply an event twice. So the
        view transactions of one projection take turns: whoever holds the lock reads
        everything the previous holder committed.
        """
        if self._lock_conn is None or self._lock_conn.closed:
            assert self.settings.store is not None
            self._lock_conn = psycopg.connect(self.settings.store, autocommit=True)
        key = self._view_lock_key
        self._lock_conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", key)
        try:
            yield
        finally:
            self._lock_conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", key)

    def _close_lock(self) -> None:
        if self._lock_conn is not None:
            with contextlib.suppress(Exception):
                self._lock_conn.close()
            self._lock_conn = None

    # ----------------------------------------------------------- catch-up
    def catch_up_from_store(self) -> int:
        """A projection that never consumed takes the history from the store."""
        if self.state.partition_offsets(self.group, self.topic):
            return 0
        projector = InProcessProjector(
            recorder=self.system.app.recorder,
            mapper=self.system.app.envelope_mapper,
            views=self.views,
            projections=[self.projection],
        )
        with self.exclusive():  # another worker of the group may be applying too
            reached = projector.catch_up()
        if self.projection.name in projector.failures:
            self._failed(projector.failures[self.projection.name])
            return reached
        log.info("worker.caught_up_from_store", projection=self.projection.name, position=reached)
        return reached

    # ---------------------------------------------------------- partitions
    def position_partitions(self, assigned: list[TopicPartition]) -> None:
        """Seek each assigned partition to the offset stored with the views."""
        assert self.consumer is not None
        stored = self.state.partition_offsets(self.group, self.topic)
        epoch = self.current_epoch = self.state.relay_state().epoch
        for tp in assigned:
            offset = stored.get(tp.partition)
            self.rewound.discard(tp.partition)
            self.epochs[tp.partition] = epoch
            if offset is not None and offset.epoch == epoch:
                self.consumer.seek(tp, offset.next_offset)
            else:
                # Never consumed, or the topic was rebuilt since: read it from the start.
                self.consumer.seek_to_beginning(tp)
                self.rewound.add(tp.partition)
        log.info("worker.partitions_assigned", partitions=sorted(tp.partition for tp in assigned))

    def _is_current(self, epoch: str) -> bool:
        """Whether ``epoch`` is the relay's epoch now (asks PostgreSQL about a new one)."""
        if epoch == self.current_epoch:
            return True
        if epoch in self.stale_epochs:
            return False
        # An epoch not seen yet: the relay may have started it since we last looked.
        self.current_epoch = self.state.relay_state().epoch
        if epoch == self.current_epoch:
            return True
        self.stale_epochs.add(epoch)
        return False

    def _accept(
        self, tp: TopicPartition, messages: Sequence[Any], epochs: Sequence[str | None]
    ) -> Sequence[Any]:
        """The messages of this incarnation of the topic; rewinds on a new one.

        ``epochs`` holds each message's epoch header. When every message carries the
        partition's epoch and it is the relay's, as nearly always, ``messages`` itself.
        """
        assert self.consumer is not None
        first = epochs[0] if epochs else None
        if (
            first is not None
            and first == self.current_epoch
            and first == self.epochs.get(tp.partition)
            and epochs.count(first) == len(epochs)
        ):
            return messages
        accepted: list[Any] = []
        for message, epoch in zip(messages, epochs, strict=True):
            if epoch is not None and not self._is_current(epoch):
                # A message of an epoch the relay has left: it republished the whole store
                # under the current one, so nothing here is needed. And it may be harmful:
                # after a broker lost its log, the relay's last sends of the old epoch land
                # in the fresh topic with the events before them missing (a gap).
                continue
            if epoch is not None and epoch != self.epochs.get(tp.partition):
                if tp.partition in self.rewound:
                    self.epochs[tp.partition] = epoch
                else:
                    # The relay rebuilt the topic after we positioned: our offset means
                    # nothing there, so read this partition again from its beginning.
                    log.warning("worker.new_epoch", partition=tp.partition, epoch=epoch)
                    self.epochs[tp.partition] = epoch
                    self.rewound.add(tp.partition)
                    self.consumer.seek_to_beginning(tp)
                    return accepted
            accepted.append(message)
        return accepted

    # ---------------------------------------------------------------- work
    def process(self, records: dict[TopicPartition, list[Any]]) -> int:
        """Apply one poll's messages; return how many events were new."""
        prepared = self.prepare(records)
        return self.commit(*prepared) if prepared is not None else 0

    def prepare(
        self,
        records: dict[TopicPartition, list[Any]],
        reads: PollReads | None = None,
    ) -> tuple[list[EventEnvelope], list[tuple[Any, ...]]] | None:
        """The envelopes of one poll this projection takes, and the offsets to store.

        ``reads`` reads the messages (a host of several projections reads each message
        once for all of them). None when nothing is to be applied.
        """
        reads = reads or PollReads(records)
        envelopes: list[EventEnvelope] = []
        offsets: list[tuple[Any, ...]] = []
        for tp in sorted(records, key=lambda t: t.partition):
            polled = records[tp]
            messages = self._accept(tp, polled, reads.epochs(tp, polled))
            if not messages:
                continue
            batch = reads.envelopes(tp, messages)
            envelopes.extend(batch)
            offsets.append(
                (
                    self.group,
                    tp.topic,
                    tp.partition,
                    self.epochs[tp.partition],
                    messages[-1].offset + 1,
                    max(e.position for e in batch),
                )
            )
        return (envelopes, offsets) if offsets else None

    def commit(self, envelopes: list[EventEnvelope], offsets: list[tuple[Any, ...]]) -> int:
        """Apply prepared envelopes and store their offsets in one transaction.

        Returns how many events were applied; a poison event or a gap in the topic is
        handled here (nothing of the batch is applied) and returns 0.
        """
        try:
            # The view lock of exclusive(), taken inside the view transaction (no extra
            # connection or round trips): one view transaction at a time.
            self.views.apply_consumed(
                envelopes,
                self.projection,
                offsets_statement=self._offsets_statement,
                offsets=offsets,
                lock=self._view_lock_key,
            )
        except ProjectionGap as error:
            # The topic misses events the store has: the broker lost its log and the relay
            # has not started the new epoch yet (it checks the topic every few seconds).
            # Nothing was applied (one transaction); read again from the offsets stored
            # with the views once the relay had a moment. Only a gap that outlasts the
            # grace period is fatal.
            now = time.monotonic()
            self._gap_since = self._gap_since or now
            if now - self._gap_since > GAP_GRACE_SECONDS:
                log.error("projection.failed", projection=self.projection.name, error=repr(error))
                raise
            log.warning("worker.gap_in_topic", projection=self.projection.name, error=str(error))
            self._stop.wait(1.0)
            assert self.consumer is not None
            self.position_partitions(sorted(self.consumer.assignment(), key=lambda t: t.partition))
            return 0
        except EventFailed as failure:
            # A poison event: nothing of the batch was applied and no offset stored (one
            # transaction). This projection stops here, never skipping the event; the
            # worker's other projections go on.
            log_failure(failure)
            self._failed(failure.as_dict())
            return 0
        except STORE_ERRORS:
            raise  # the database went away: the run loop retries with fresh offsets
        except Exception as error:
            log.error(
                "projection.failed",
                projection=self.projection.name,
                positions=[envelopes[0].position, envelopes[-1].position],
                offsets=[(o[2], o[4] - 1) for o in offsets],
                error=repr(error),
            )
            raise
        return self.committed(envelopes)

    def committed(self, envelopes: Sequence[EventEnvelope]) -> int:
        """Note a batch committed (by ``commit`` or by a host's joint transaction)."""
        self._gap_since = None
        self.applied += len(envelopes)
        return len(envelopes)

    def _failed(self, failure: dict[str, Any]) -> None:
        """Stop this projection on a poison event and say so in its heartbeat (/health)."""
        self.failure = failure
        self._stop.set()
        try:
            self.heartbeat(force=True)
        except Exception as error:  # the failure is logged already; health may miss it
            log.warning("worker.heartbeat_failed", error=repr(error))

    def heartbeat(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and (
            self.consumer is None or now - self._last_beat < self.settings.heartbeat_seconds
        ):
            return
        assignment = (
            sorted(tp.partition for tp in (self.consumer.assignment() or ()))
            if self.consumer is not None and self.failure is None
            else []
        )
        info: dict[str, Any] = {"projection": self.projection.name, "partitions": assignment}
        if self.failure is not None:
            info["failed"] = self.failure
        self.state.heartbeat(self.name, "projection", info)
        self._last_beat = now

    def run(self) -> None:
        """Consume until stopped; reconnects when the broker or the database goes away."""
        try:
            self._run()
        finally:
            self._close_lock()
        log.info(
            "worker.stopped",
            projection=self.projection.name,
            applied=self.applied,
            failed=self.failure is not None,
        )

    def _run(self) -> None:
        caught_up = False
        while not self._stop.is_set():
            try:
                if not caught_up:
                    self.catch_up_from_store()
                    caught_up = True
                    continue
                # Whoever starts first creates the topic with the configured partitions
                # (a broker may otherwise auto-create it with its own default).
                clients.ensure_topic(self.settings)
                watch = EpochWatch(self.state)
                watch.start()
                self.consumer = clients.group_consumer(self.settings, self.group, self.name)
                self.consumer.subscribe([self.topic], listener=_Rebalance(self))
                linger = self.settings.worker_linger_ms / 1000
                while not self._stop.is_set():
                    records = self.consumer.poll(timeout_ms=100)
                    if records:
                        self.process(records)
                        if linger and sum(map(len, records.values())) < SMALL_BATCH:
                            self._stop.wait(linger)
                    self.heartbeat()
                    watch.check()
            except RelayEpochChanged as change:
                log.info("worker.rejoining", projection=self.projection.name, reason=str(change))
            except KafkaError as error:
                log.warning("worker.broker_unavailable", error=repr(error))
                self._stop.wait(1.0)
            except STORE_ERRORS as error:
                # Nothing of the batch in flight was committed; the next consumer seeks
                # to the offsets stored with the views, so nothing is lost or doubled.
                log.warning("worker.store_unavailable", error=repr(error))
                self._close_lock()
                self._stop.wait(1.0)
            finally:
                if self.consumer is not None:
                    close_consumer(self.consumer)
                    self.consumer = None

    def stop(self) -> None:
        self._stop.set()
