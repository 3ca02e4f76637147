"""The Kafka path under faults: ``kill -9`` of the relay and a worker, a lost broker.

Real PostgreSQL and a real Tansu broker, one each per test. Writers call the
application services from several threads throughout; the faults strike while events
are flowing. At the end every view must equal a from-scratch rebuild of the store, and
every projection must have applied exactly the store's version of every aggregate.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import TopicDeletionDisabledError
from psycopg import sql

from infra.bootstrap import System
from infra.kafka import clients
from infra.kafka.clients import projection_group as group_id
from infra.kafka.state import BusState
from tests.conftest import POSTGRES_URL
from tests.integration.broker import Tansu
from tests.integration.conftest import (
    PROJECTIONS,
    CliProcess,
    KafkaBed,
    Writers,
    assert_counts_match_aggregates,
    assert_exactly_once,
    stop_all,
    wait_caught_up,
)
from workers.projection_worker import (
    EpochWatch,
    RelayEpochChanged,
    _join_in_flight,
    close_consumer,
)
from workers.relay import Relay

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

SEED = 20261102
COMMANDS = 2400


def wait_until(bed: KafkaBed, condition: Callable[[], bool], what: str, timeout: float) -> float:
    """Poll ``condition`` (failing at once if a worker died); seconds it took."""
    started = time.monotonic()
    while not condition():
        bed.check_alive()
        if time.monotonic() - started >= timeout:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        time.sleep(0.05)
    return time.monotonic() - started


def relay_worked_since(state: BusState, since: datetime) -> bool:
    """The relay wrote a heartbeat after ``since`` with something published."""
    for beat in state.heartbeats():
        if beat["name"] == "relay" and datetime.fromisoformat(beat["last_heartbeat"]) > since:
            return int(beat["info"].get("position", 0)) > 0
    return False


def groups_consuming_since(schema: str, since: datetime) -> int:
    """How many consumer groups committed offsets (with their views) after ``since``."""
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        row = conn.execute(
            sql.SQL(
                "SELECT count(DISTINCT group_id) FROM {0}.tiaokuai_consumer_offsets "
                "WHERE updated_at > %s"
            ).format(sql.Identifier(schema)),
            (since,),
        ).fetchone()
    return int(row[0]) if row else 0


def groups_in_epoch(state: BusState, epoch: str) -> Callable[[], bool]:
    def check() -> bool:
        groups = {o.group_id for o in state.all_offsets() if o.epoch == epoch}
        return {group_id(name) for name in PROJECTIONS} <= groups

    return check


def stream_reached(writers: Writers, fraction: float) -> Callable[[], bool]:
    return lambda: writers.done >= fraction * COMMANDS


def at_work(bed: KafkaBed, state: BusState, name: str, since: datetime) -> Callable[[], bool]:
    """The relay publishing; every projection of the worker process consuming the topic."""
    if name == "relay":
        return lambda: relay_worked_since(state, since)
    return lambda: groups_consuming_since(bed.schema, since) == len(PROJECTIONS)


def assert_topic_holds_store(bed: KafkaBed, system: System) -> str:
    """Every event of the store is in the topic as a message of the relay's epoch.

    Returns that epoch. Read from the topic's beginning, by a consumer of no group.
    """
    stored: set[tuple[str, int]] = set()
    position = 0
    while notifications := system.app.recorder.select_notifications(start=position + 1, limit=5000):
        stored |= {(str(n.originator_id), n.originator_version) for n in notifications}
        position = notifications[-1].id
    state = bed.bus_state(system)
    reader = KafkaConsumer(bootstrap_servers=[bed.tansu.address], enable_auto_commit=False)
    found: dict[str, set[tuple[str, int]]] = {}
    try:
        partitions = [TopicPartition(bed.topic, p) for p in reader.partitions_for_topic(bed.topic)]
        reader.assign(partitions)
        reader.seek_to_beginning(*partitions)
        deadline = time.monotonic() + 60
        while True:
            epoch = state.relay_state().epoch
            if stored <= found.get(epoch, set()):
                return epoch
            if time.monotonic() >= deadline:
                missing = stored - found.get(epoch, set())
                raise AssertionError(
                    f"{len(missing)} stored events are not in the topic under epoch {epoch}: "
                    f"{sorted(missing)[:3]}"
                )
            for messages in reader.poll(timeout_ms=200).values():
                for message in messages:
                    headers = {key: bytes(value).decode() for key, value in message.headers}
                    found.setdefault(headers["epoch"], set()).add(
                        (headers["aggregate_id"], int(headers["aggregate_version"]))
                    )
    finally:
        reader.close()


def test_kill_9_relay_and_worker_mid_stream(bed: KafkaBed) -> None:
    """SIGKILL the relay and the projection worker process while commands stream in.

    2,400+ commands from four writer threads; the relay and the worker (all seven
    projections in one ``tiaokuai worker project`` process) are each killed twice at
    seeded random points of the stream and restarted at once. Nothing may be lost and
    nothing applied twice.
    """
    rng = random.Random(SEED)
    system = bed.system()
    state = bed.bus_state(system)
    Writers.register_units(system)
    processes: dict[str, CliProcess] = {
        "relay": bed.cli("relay", "relay"),
        "project": bed.cli("project", "project"),
    }
    started_at = {name: datetime.now(UTC) for name in processes}
    kills = sorted(
        [
            (rng.uniform(0.10, 0.25), "relay"),
            (rng.uniform(0.30, 0.45), "project"),
            (rng.uniform(0.50, 0.65), "relay"),
            (rng.uniform(0.70, 0.85), "project"),
        ]
    )
    faults_done = threading.Event()
    writers = Writers(
        system,
        bed.clock,
        seed=SEED,
        commands=COMMANDS,
        threads=4,
        keep_going=lambda: not faults_done.is_set(),
    )
    killed: list[tuple[str, int, int, int]] = []
    try:
        # Both at work on the units before the stream starts (a first start of a worker
        # takes the history from the store; that path is not what this test is about).
        for name in processes:
            wait_until(bed, at_work(bed, state, name, started_at[name]), f"{name} started", 60)
        writers.start()
        for fraction, name in kills:
            wait_until(bed, stream_reached(writers, fraction), f"{fraction:.0%} of the stream", 120)
            assert not writers.errors, writers.errors[:3]
            # Strike only once the process is really at work: the relay publishing, the
            # worker committing views and offsets.
            wait_until(bed, at_work(bed, state, name, started_at[name]), f"{name} at work", 60)
            assert writers.alive(), "the stream ended before the kill"
            relay_position = state.relay_state().position
            processes[name].kill()
            killed.append((name, writers.done, system.app.head(), relay_position))
            processes[name] = bed.cli(name, *(["relay"] if name == "relay" else ["project"]))
            started_at[name] = datetime.now(UTC)
        writers.extend(200)  # and the stream flows on for a while after the last restart
        faults_done.set()
        writers.join(240)
        assert len(killed) == 4 and all(head > 0 for _, _, head, _ in killed), killed
        # Events were still flowing at every kill.
        assert all(done < writers.done for _, done, _, _ in killed), (killed, writers.done)

        took = wait_caught_up(bed, system)
        assert_exactly_once(bed, system)
        assert_counts_match_aggregates(system, writers.task_ids)
        print(f"kills (process, commands, head, relay position): {killed}; ")
        print(f"{writers.done} commands, head {system.app.head()}, caught up {took:.1f} s after")
        for name, process in processes.items():
            assert process.stop() == 0, f"{name} did not stop cleanly:\n{process.log_tail()}"
    finally:
        faults_done.set()
        stop_all(writers, *processes.values())


def test_broker_outage_commands_go_on_and_views_catch_up(bed: KafkaBed, tansu: Tansu) -> None:
    """The broker dies and comes back empty; writes never stop, the views catch up.

    While the broker is down every command still succeeds (the application writes only
    to PostgreSQL). The fresh broker on the same port knows nothing of the topic: the
    relay sees the lost log, starts a new epoch and republishes the store; the workers
    rewind to the new incarnation and drop what they applied already.
    """
    system = bed.system()
    state = bed.bus_state(system)
    relay = bed.cli("relay", "relay")
    workers = bed.cli("project", "project")
    back = threading.Event()
    writers: Writers | None = None
    try:
        Writers.register_units(system)
        warm_up = Writers(system, bed.clock, seed=3, commands=200, threads=3).start()
        warm_up.join(120)
        wait_caught_up(bed, system)
        epoch_before = state.relay_state().epoch

        writers = Writers(
            system,
            bed.clock,
            seed=33,
            commands=400,
            threads=3,
            keep_going=lambda: not back.is_set(),
        ).start()
        wait_until(bed, lambda: writers is not None and writers.done >= 100, "stream flowing", 60)
        epoch_at_outage = state.relay_state().epoch
        tansu.stop()
        head_at_outage = system.app.head()
        # Commands keep succeeding with no broker at all.
        wait_until(
            bed,
            lambda: system.app.head() >= head_at_outage + 150,
            "150 events written with the broker down",
            60,
        )
        assert not writers.errors, writers.errors[:3]
        assert not tansu.is_running()

        tansu.start()  # same port, empty: the topic and its log are gone
        back.set()
        writers.join(240)
        wait_caught_up(bed, system)
        assert_exactly_once(bed, system)
        # Republished: the fresh broker's topic holds every stored event, under a new epoch.
        epoch = assert_topic_holds_store(bed, system)
        assert epoch not in (epoch_before, epoch_at_outage)
        assert_counts_match_aggregates(system, [*warm_up.task_ids, *writers.task_ids])
        # The workers read the new incarnation: each group stores offsets of its epoch.
        wait_until(bed, groups_in_epoch(state, epoch), "every group reading the new epoch", 60)
        assert relay.stop() == 0, relay.log_tail()
        assert workers.stop() == 0, workers.log_tail()
    finally:
        back.set()
        stop_all(writers, workers, relay)


def topic_partitions(bed: KafkaBed) -> int:
    admin = KafkaAdminClient(bootstrap_servers=[bed.tansu.address])
    try:
        (described,) = admin.describe_topics([bed.topic])
        return len(described["partitions"])
    finally:
        admin.close()


def make_topic_with(bed: KafkaBed, partitions: int) -> None:
    """The topic as Tansu's auto-creation leaves it: the bed's name, too few partitions."""
    admin = KafkaAdminClient(bootstrap_servers=[bed.tansu.address])
    try:
        admin.delete_topics([bed.topic])
        admin.create_topics([NewTopic(bed.topic, num_partitions=partitions, replication_factor=1)])
    finally:
        admin.close()


def test_relay_recreates_a_topic_made_with_too_few_partitions(bed: KafkaBed) -> None:
    """A consumer's metadata request made the topic (Tansu: 4 partitions); the relay fixes it.

    Empty, or holding only an epoch the relay leaves, it is deleted and made again with
    the configured partitions before anything is published to it; then the whole store
    goes out under a new epoch.
    """
    system = bed.system()
    state = bed.bus_state(system)
    Writers.register_units(system)
    make_topic_with(bed, 4)
    epoch_before = state.relay_state().epoch
    relay = Relay(system)
    try:
        while relay.publish_batch():
            pass
    finally:
        relay._disconnect()
    assert topic_partitions(bed) == 6
    epoch = assert_topic_holds_store(bed, system)
    assert epoch != epoch_before


def test_relay_leaves_a_smaller_topic_that_holds_its_epoch(bed: KafkaBed) -> None:
    """A topic with fewer partitions than configured but holding what was published stays.

    Deleting it would lose messages of the current epoch (and change the key layout
    under the consumers); fewer partitions only limit how far the workers scale.
    """
    make_topic_with(bed, 4)
    first = bed.system()
    state = bed.bus_state(first)
    Writers.register_units(first)
    relay = Relay(first)
    try:
        relay.publish_batch()  # the topic is empty and too small: made again, with 6
    finally:
        relay._disconnect()
    make_topic_with(bed, 4)
    bed.settings = bed.make_settings(kafka_partitions=4)
    small = bed.system()
    relay = Relay(small)
    try:
        while relay.publish_batch():
            pass  # the topic was lost: a new epoch, published to its 4 partitions
    finally:
        relay._disconnect()
    epoch = state.relay_state().epoch
    bed.settings = bed.make_settings()
    later = bed.system()
    relay = Relay(later)
    try:
        relay.publish_batch()
    finally:
        relay._disconnect()
    assert topic_partitions(bed) == 4
    assert state.relay_state().epoch == epoch
    assert assert_topic_holds_store(bed, later) == epoch


def every_projection_holds(state: BusState, partitions: int) -> bool:
    """Each projection's group holds all of ``partitions`` partitions."""
    return partitions_by_projection(state) == {p: list(range(partitions)) for p in PROJECTIONS}


def partitions_by_projection(state: BusState) -> dict[str, list[int]]:
    """Each projection's partitions, from its members' latest heartbeats."""
    held: dict[str, list[int]] = {}
    for beat in state.heartbeats():
        if beat["kind"] == "projection":
            held.setdefault(beat["info"]["projection"], []).extend(beat["info"]["partitions"])
    return {name: sorted(parts) for name, parts in held.items()}


def test_workers_follow_the_topic_the_relay_made_again(bed: KafkaBed) -> None:
    """The groups joined a topic of 4 partitions; the relay makes it again with 6.

    The relay's new epoch makes every worker join afresh, a host of six projections and
    a lone worker of the seventh: rejoining under the old member ids, Tansu would hand
    each group its 4 old partitions again, and the events on the other two would never
    be applied.
    """
    make_topic_with(bed, 4)
    system = bed.system()
    state = bed.bus_state(system)
    rest = [arg for p in PROJECTIONS if p != "linkage" for arg in ("--projection", p)]
    workers = bed.cli("project", "project", *rest)
    lone = bed.worker_thread(bed.system(), "linkage", name="linkage-lone")
    relay = None
    try:
        wait_until(
            bed,
            lambda: every_projection_holds(state, 4),
            "every group holding the topic's 4 partitions",
            60,
        )
        Writers.register_units(system)
        writers = Writers(system, bed.clock, seed=5, commands=150, threads=2).start()
        writers.join(120)
        relay = bed.relay_thread(system)
        wait_caught_up(bed, system, timeout=60)
        assert topic_partitions(bed) == 6
        assert_exactly_once(bed, system)
        wait_until(
            bed,
            lambda: every_projection_holds(state, 6),
            "every group holding the 6 partitions",
            30,
        )
        assert workers.stop() == 0, workers.log_tail()
    finally:
        stop_all(workers, lone, relay)


def test_epoch_watch_tells_of_the_relays_new_epoch(bed: KafkaBed) -> None:
    """Started before the relay's first epoch, the watch still sees the next one."""
    state = bed.bus_state(bed.system())
    watch = EpochWatch(state, every=0.0)
    watch.start()  # no relay yet: the first epoch is made here
    watch.check()
    state.new_epoch()
    with pytest.raises(RelayEpochChanged):
        watch.check()
    watch.start()
    watch.check()
    seldom = EpochWatch(state, every=3600.0)
    seldom.start()
    state.new_epoch()
    seldom.check()  # asks PostgreSQL only now and then


def test_a_member_leaving_mid_join_does_not_wedge_its_group(bed: KafkaBed) -> None:
    """A consumer closed while its join is in flight finishes the join first.

    On Tansu, a member that leaves between its JoinGroup and its SyncGroup stays the
    group's leader: every later member then waits for that leader's assignment forever.
    """
    first = clients.group_consumer(bed.settings, "tiaokuai.test.mid-join", "first")
    first.subscribe([bed.topic])
    deadline = time.monotonic() + 10
    while not _join_in_flight(first):
        assert time.monotonic() < deadline, "the first member never began its join"
        first.poll(timeout_ms=50)
    close_consumer(first)
    second = clients.group_consumer(bed.settings, "tiaokuai.test.mid-join", "second")
    try:
        second.subscribe([bed.topic])
        deadline = time.monotonic() + 30
        while not second.assignment():
            assert time.monotonic() < deadline, "the next member was never assigned"
            second.poll(timeout_ms=100)
        assert sorted(tp.partition for tp in second.assignment()) == list(range(6))
    finally:
        close_consumer(second)


def test_relay_publishes_to_a_small_topic_it_may_not_delete(
    bed: KafkaBed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cluster that refuses to delete topics: the relay keeps the small one and publishes.

    Tansu deletes topics; a cluster with ``delete.topic.enable=false`` answers with a
    non-retriable error, which stands in for it here.
    """
    system = bed.system()
    Writers.register_units(system)
    make_topic_with(bed, 4)
    asked: list[str] = []

    def refuse(settings: Any, attempts: int = 5) -> None:
        asked.append(settings.kafka_topic)
        raise TopicDeletionDisabledError("delete.topic.enable is false")

    monkeypatch.setattr(clients, "recreate_topic", refuse)
    relay = Relay(system)
    try:
        while relay.publish_batch():
            pass
        relay._checked_at = None  # the next batch checks the topic again
        relay.publish_batch()
    finally:
        relay._disconnect()
    assert asked == [bed.topic]  # asked once, then the topic is kept as it is
    assert topic_partitions(bed) == 4
    assert_topic_holds_store(bed, system)


def test_relay_writes_its_position_when_idle_and_now_and_then(
    bed: KafkaBed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While events keep coming the position is written at most every so often; an idle
    round writes it at once, with the count of every message acknowledged since."""
    monkeypatch.setattr("workers.relay.RECORD_EVERY_SECONDS", 3600.0)
    system = bed.system()
    state = bed.bus_state(system)
    Writers.register_units(system)  # the units and a chain: several events
    first_head = system.app.head()
    relay = Relay(system)
    try:
        assert relay.publish_batch() == first_head  # the first write goes out at once
        assert state.relay_state().position == first_head
        more = Writers(system, bed.clock, seed=6, commands=30, threads=1).start()
        more.join(60)
        head = system.app.head()
        assert head > first_head
        while relay.publish_batch():
            pass  # the empty round at the end is the idle one
        row = state.relay_state()
        assert (row.position, row.published) == (head, head)
    finally:
        relay._disconnect()
