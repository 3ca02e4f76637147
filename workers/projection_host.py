"""A worker process's projections: one consumer group each, one fetch of the topic for all.

Each projection still is its own consumer group: its own member, its own partitions
(shared with the other processes of the group), its own offsets stored with its views.
But the group's consumer only takes part in the group; its partitions stay paused, so it
never fetches. One group-less consumer fetches the partitions any hosted projection
holds, from the lowest offset any of them needs, and each message is decoded once:
kafka-python decodes records in pure Python, and seven consumers of one topic on one
machine spent more CPU decoding every message seven times than the projections did
applying them (``docs/performance.md``).

A poll's changes of every projection and all their offsets are committed in one
PostgreSQL transaction. When that fails on one projection's event (a poison event, a
gap in the topic), nothing was applied, and the projections are applied one by one, each
in its own transaction, as a lone ``ProjectionWorker`` does: a poison event stops only
its projection.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import structlog
from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.coordinator.base import MemberState
from kafka.errors import KafkaError

from infra.bootstrap import System
from infra.kafka import clients
from infra.view_store import STORE_ERRORS, KeptDocuments, PendingCommit, PostgresViewRecorder
from projections.base import Projection
from projections.envelope import EventEnvelope
from workers.projection_worker import (
    SMALL_BATCH,
    EpochWatch,
    PollReads,
    ProjectionWorker,
    RelayEpochChanged,
    _header,
    await_rejoin,
    close_consumer,
)

log = structlog.get_logger(__name__)

JOINED_POLL_SECONDS = 0.5
"""How often the consumer of a projection's group is polled while it is in the group."""


class Cursor:
    """What a hosted projection's worker sees as its consumer: where it is in each partition.

    ``ProjectionWorker`` seeks its consumer when partitions are assigned, when the topic
    is rebuilt and after a gap; here a seek moves the projection's own next offset, and
    the host moves the shared fetch back to it when it is behind what was fetched.
    """

    def __init__(self) -> None:
        self.owned: set[TopicPartition] = set()
        self.next: dict[int, int] = {}
        """Per partition, the offset of the next message this projection takes."""

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.next[tp.partition] = offset

    def seek_to_beginning(self, tp: TopicPartition) -> None:
        self.next[tp.partition] = 0  # the fetch resets a missing offset to the log's start

    def assignment(self) -> set[TopicPartition]:
        return set(self.owned)


def take(
    cursor: Cursor,
    epochs: dict[int, str],
    records: dict[TopicPartition, list[Any]],
    polled_from: dict[int, int],
) -> dict[TopicPartition, list[Any]]:
    """The messages of a poll one projection has not consumed yet; moves its cursor on.

    ``polled_from`` holds, per partition, the offset the shared fetch read from. A
    projection given a partition while the poll ran may need messages before that: it
    takes none of them, and the next poll starts where it is. A message before the
    cursor is taken only when it carries an epoch other than the projection's (the
    topic was rebuilt: ``ProjectionWorker`` decides what to do with it).
    """
    taken: dict[TopicPartition, list[Any]] = {}
    for tp, messages in records.items():
        if tp not in cursor.owned or not messages:
            continue
        start = cursor.next.get(tp.partition, 0)
        if polled_from[tp.partition] > start:
            continue
        epoch = epochs.get(tp.partition)
        if messages[0].offset >= start:
            mine = messages  # the same list: the host reads it once for all (PollReads)
        else:
            mine = [
                m for m in messages if m.offset >= start or _header(m, "epoch") not in (None, epoch)
            ]
        if mine:
            taken[tp] = mine
            # As a consumer's position moves on a poll; a seek while the worker accepts
            # them (the topic was rebuilt) sets it again.
            cursor.next[tp.partition] = max(start, mine[-1].offset + 1)
    return taken


class _Member:
    """One hosted projection: its worker (state, epochs, apply), its group, its position."""

    def __init__(self, system: System, projection: Projection, host: str | None) -> None:
        group = clients.projection_group(projection.name)
        self.worker = ProjectionWorker(system, projection, name=f"{group}.{host}" if host else None)
        self.cursor = Cursor()
        self.worker.consumer = self.cursor
        self.group: KafkaConsumer | None = None
        """The consumer that only takes part in the group; polled by its own thread."""
        self.thread: threading.Thread | None = None

    @property
    def name(self) -> str:
        return self.worker.projection.name

    @property
    def active(self) -> bool:
        return not self.worker._stop.is_set()


def _joined(group: KafkaConsumer) -> bool:
    """Whether the consumer's last join of its group completed."""
    coordinator = getattr(group, "_coordinator", None)
    return coordinator is None or coordinator.state == MemberState.STABLE


class _Membership(ConsumerRebalanceListener):  # type: ignore[misc]
    """A hosted projection's group callbacks: they move what the projection owns."""

    def __init__(self, host: ProjectionHost, member: _Member) -> None:
        self.host = host
        self.member = member

    def on_partitions_revoked(self, revoked: Any) -> None:
        # Under the host's lock: a batch being applied for these partitions finishes
        # (and commits) first, and none is applied for them after, as with a consumer of
        # its own.
        with self.host.lock:
            try:
                self.host.settle()
            except STORE_ERRORS as error:  # the main loop raises it, and reconnects
                self.host._broken = error
            self._revoked(revoked)

    def on_partitions_assigned(self, assigned: Any) -> None:
        with self.host.lock:
            try:
                self._assigned(assigned)
            except BaseException as error:
                # kafka-python logs a listener's error and keeps the assignment: the
                # partitions would be the group's but never fetched. Connect again.
                self.host._broken = error
                raise

    def _revoked(self, revoked: Any) -> None:
        log.info(
            "worker.partitions_revoked",
            projection=self.member.name,
            partitions=sorted(tp.partition for tp in revoked),
        )
        for tp in revoked:
            self.member.cursor.owned.discard(tp)
            self.member.cursor.next.pop(tp.partition, None)
        await_rejoin(self.member.group)

    def _assigned(self, assigned: Any) -> None:
        group = self.member.group
        assert group is not None
        partitions = sorted(assigned, key=lambda t: t.partition)
        if partitions:
            # The group's consumer never fetches; with positions set it asks nothing either.
            group.pause(*partitions)
            for tp in partitions:
                group.seek(tp, 0)
        self.member.worker.position_partitions(partitions)
        self.member.cursor.owned.update(partitions)


class ProjectionHost:
    """Runs several projections in one process over one shared fetch of the events topic."""

    def __init__(
        self, system: System, projections: Sequence[Projection], *, name: str | None = None
    ) -> None:
        """``name`` names the host in its projections' heartbeats (default: the thread)."""
        if not projections:
            raise ValueError("a projection host needs at least one projection")
        self.system = system
        self.settings = system.settings
        ordered = sorted(projections, key=lambda p: p.name)
        self.members = [_Member(system, p, name) for p in ordered]
        assert isinstance(system.view_recorder, PostgresViewRecorder)
        self.views: PostgresViewRecorder = system.view_recorder
        self.topic = self.settings.kafka_topic
        self.fetcher: KafkaConsumer | None = None
        self.fetch_at: dict[int, int] = {}
        """Per partition, where the shared fetch reads next (as far as the host moved it)."""
        self._stop = threading.Event()
        self.lock = threading.RLock()
        """Held while a batch is applied and while a group moves partitions."""
        self._connection = threading.Event()
        """Set when the group consumers of the current connection are to stop."""
        self._broken: BaseException | None = None
        self._pending: tuple[PendingCommit, list[tuple[_Member, list[EventEnvelope]]]] | None = None
        """The last poll's transaction, committing: settled before anything else applies."""
        self.kept = KeptDocuments(self.settings.worker_kept_documents)
        """View documents as the host's last transactions left them (see KeptDocuments)."""
        assert system.bus_state is not None
        self.epoch_watch = EpochWatch(system.bus_state)

    @property
    def workers(self) -> list[ProjectionWorker]:
        return [m.worker for m in self.members]

    def stop(self) -> None:
        self._stop.set()
        for member in self.members:
            member.worker.stop()

    # ---------------------------------------------------------------- run
    def run(self) -> None:
        """Consume until stopped or every projection failed; reconnects like a lone worker."""
        try:
            self._run()
        finally:
            self._disconnect()
            for member in self.members:
                member.worker._close_lock()
        for member in self.members:
            log.info(
                "worker.stopped",
                projection=member.name,
                applied=member.worker.applied,
                failed=member.worker.failure is not None,
            )

    def _active(self) -> list[_Member]:
        return [m for m in self.members if m.active]

    def _run(self) -> None:
        caught_up: set[str] = set()
        while not self._stop.is_set() and self._active():
            try:
                for member in self._active():
                    if member.name not in caught_up:
                        member.worker.catch_up_from_store()
                        caught_up.add(member.name)
                if not self._active():
                    return
                clients.ensure_topic(self.settings)
                self._connect()
                self._consume()
            except RelayEpochChanged as change:
                log.info("worker.rejoining", reason=str(change))
            except KafkaError as error:
                log.warning("worker.broker_unavailable", error=repr(error))
                self._stop.wait(1.0)
            except STORE_ERRORS as error:
                # The poll in flight committed with its offsets or not at all (its outcome
                # may be unknown); the next connection seeks to the offsets stored with
                # the views, so nothing is lost or doubled.
                log.warning("worker.store_unavailable", error=repr(error))
                for member in self.members:
                    member.worker._close_lock()
                self._stop.wait(1.0)
            finally:
                self._disconnect()

    def _connect(self) -> None:
        self.epoch_watch.start()
        self._connection = threading.Event()
        self._broken = None
        self.fetcher = clients.shared_fetcher(self.settings, f"tiaokuai.host.{id(self):x}")
        self.fetch_at = {}
        for member in self._active():
            member.cursor.owned.clear()
            member.cursor.next.clear()
            member.group = self._join(member)
            member.thread = threading.Thread(
                target=self._follow_group,
                args=(member, member.group, self._connection),
                name=member.worker.group,
                daemon=True,
            )
            member.thread.start()

    def _join(self, member: _Member) -> KafkaConsumer:
        """A new consumer in the projection's group, subscribed with its callbacks."""
        group = clients.group_consumer(self.settings, member.worker.group, member.worker.name)
        group.subscribe([self.topic], listener=_Membership(self, member))
        return group

    def _follow_group(self, member: _Member, group: KafkaConsumer, done: threading.Event) -> None:
        """Keep one projection in its group (joins, rebalances) until it or the host stops.

        kafka-python runs every client of a process on one network loop: a group's join
        completes only while its consumer is polled with some time to wait, so each
        group's consumer has a thread of its own, as a lone worker's has.
        """
        settings = self.settings
        stall = (settings.kafka_max_poll_interval_ms + settings.kafka_session_timeout_ms) / 1000
        unjoined_since = time.monotonic()
        try:
            while not done.is_set() and member.active:
                group.poll(timeout_ms=100)
                if _joined(group):
                    unjoined_since = time.monotonic()
                    # Heartbeats run on kafka-python's own loop; polls are for joins, and
                    # a member is told of a rebalance by its next heartbeat (each poll of
                    # a joined member costs CPU the projections would rather have).
                    done.wait(JOINED_POLL_SECONDS)
                elif time.monotonic() - unjoined_since > stall:
                    # Longer than any rebalance may wait for its members: kafka-python
                    # dropped the join (the topic's metadata changed under it, as when a
                    # fresh broker's topic is created). A new member joins afresh.
                    log.warning("worker.join_stalled", projection=member.name, seconds=stall)
                    close_consumer(group)
                    with self.lock:  # after the close: a join it finished may have assigned
                        member.cursor.owned.clear()
                    group = member.group = self._join(member)
                    unjoined_since = time.monotonic()
        except BaseException as error:  # the main loop reconnects on it
            self._broken = error
        finally:
            close_consumer(group)  # leaves the group to its other members
            with self.lock:
                member.cursor.owned.clear()

    def _disconnect(self) -> None:
        try:
            self.settle()
        except STORE_ERRORS as error:  # not committed: the next connection applies it again
            log.warning("worker.store_unavailable", error=repr(error))
        # Not needed for correctness (the writer stamps show any other writer's work):
        # a reconnect follows a failure or a stop, and starts from the store.
        self.kept.clear()
        self._connection.set()
        for member in self.members:
            if member.thread is not None:
                member.thread.join()
                member.thread = None
            member.group = None
            member.cursor.owned.clear()
        if self.fetcher is not None:
            close_consumer(self.fetcher)
            self.fetcher = None

    def _consume(self) -> None:
        linger = self.settings.worker_linger_ms / 1000
        while not self._stop.is_set():
            if self._broken is not None:
                raise self._broken
            active = self._active()
            if not active:
                return
            with self.lock:
                self._follow_positions()
            assert self.fetcher is not None
            if self.fetch_at:
                records = self.fetcher.poll(timeout_ms=100)
            else:
                records = {}
                self._stop.wait(0.1)
            if records:
                with self.lock:
                    self.process(records)
                if linger and sum(map(len, records.values())) < SMALL_BATCH:
                    with self.lock:
                        self.settle()
                    self._stop.wait(linger)
            else:
                with self.lock:
                    self.settle()
            with self.lock:
                for member in active:
                    member.worker.heartbeat()
            self.epoch_watch.check()

    def _follow_positions(self) -> None:
        """Fetch every partition a projection owns, from the lowest offset one needs."""
        assert self.fetcher is not None
        wanted: dict[int, int] = {}
        for member in self._active():
            for tp in member.cursor.owned:
                offset = member.cursor.next.get(tp.partition, 0)
                wanted[tp.partition] = min(wanted.get(tp.partition, offset), offset)
        if set(wanted) != set(self.fetch_at):
            self.fetcher.assign([TopicPartition(self.topic, p) for p in sorted(wanted)])
            self.fetch_at = {p: at for p, at in self.fetch_at.items() if p in wanted}
        for partition, offset in wanted.items():
            if self.fetch_at.get(partition) != offset:
                self.fetcher.seek(TopicPartition(self.topic, partition), offset)
                self.fetch_at[partition] = offset

    # ---------------------------------------------------------------- work
    def process(self, records: dict[TopicPartition, list[Any]]) -> int:
        """Apply one poll's messages to every hosted projection; return how many it applies.

        The transaction's COMMIT is sent, not waited for: ``settle`` (at the next poll,
        or when a poll brings nothing) waits for it, and only then are they counted as
        applied.
        """
        self.settle()
        polled_from: dict[int, int] = {}
        for tp, messages in records.items():
            if not messages:
                continue
            first = messages[0].offset
            fetched_from = self.fetch_at.get(tp.partition, first)
            if first < fetched_from:
                # The fetch started over (an offset beyond a rebuilt topic's end is reset
                # to its start): every projection on it starts over, as its own consumer's
                # position would have.
                for member in self._active():
                    if tp in member.cursor.owned:
                        member.cursor.next[tp.partition] = first
                fetched_from = first
            polled_from[tp.partition] = fetched_from
            self.fetch_at[tp.partition] = messages[-1].offset + 1
        reads = PollReads(records)
        prepared: list[tuple[_Member, list[EventEnvelope], list[tuple[Any, ...]]]] = []
        for member in self._active():
            taken = take(member.cursor, member.worker.epochs, records, polled_from)
            if not taken:
                continue
            batch = member.worker.prepare(taken, reads)
            if batch is not None:
                prepared.append((member, *batch))
        if not prepared:
            return 0
        try:
            pending = self.views.begin_consumed_together(
                [(envelopes, m.worker.projection) for m, envelopes, _ in prepared],
                offsets_statement=prepared[0][0].worker._offsets_statement,
                offsets=[row for _, _, offsets in prepared for row in offsets],
                locks=[m.worker._view_lock_key for m, _, _ in prepared],
                kept=self.kept if self.kept.limit else None,
            )
        except STORE_ERRORS:
            raise
        except Exception as error:
            # One projection's event failed: nothing was committed. Each projection on its
            # own now, so that only the failing one stops (or waits out a gap).
            log.info("worker.batch_split", error=repr(error))
            return sum(m.worker.commit(envelopes, offsets) for m, envelopes, offsets in prepared)
        # PostgreSQL writes and commits while the next poll is fetched; ``settle`` hears
        # the outcome before anything else is applied (a failure raises there, and the
        # host reconnects from the offsets stored with the views).
        self._pending = (pending, [(member, envelopes) for member, envelopes, _ in prepared])
        return sum(len(envelopes) for _, envelopes, _ in prepared)

    def settle(self) -> None:
        """Wait for the last poll's transaction; count what it applied. Raises if it failed."""
        if self._pending is None:
            return
        pending, applied = self._pending
        self._pending = None
        pending.settle()
        for member, envelopes in applied:
            member.worker.committed(envelopes)
