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

import psycopg
import pytest
from kafka import KafkaConsumer, TopicPartition
from psycopg import sql

from infra.bootstrap import System
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
