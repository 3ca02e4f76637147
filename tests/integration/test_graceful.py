"""SIGTERM drains: the relay, a projection worker and the API, in the middle of a stream.

Real PostgreSQL and a real Tansu broker. A worker stopped by SIGTERM exits 0 within a
bound, having stored exactly the offsets of what it applied (the views and the offsets
agree message by message); the relay has recorded exactly what the broker holds. Then
both restart and the views equal a rebuild. The API finishes every request in flight:
every write that got an answer is in the store, and no request was applied without
its answer reaching the client.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition

from bench.http import HttpError
from bench.pipeline import Connection
from domain.actor import Role
from infra.bootstrap import System
from infra.envelopes import envelope_from
from infra.kafka.clients import projection_group
from infra.kafka.state import BusState
from tests.conftest import POSTGRES_URL
from tests.integration.broker import free_port
from tests.integration.conftest import (
    PROJECTIONS,
    CliProcess,
    KafkaBed,
    Writers,
    applied_versions,
    assert_exactly_once,
    stop_all,
)
from tests.integration.test_kafka_faults import at_work, stream_reached, wait_until
from tests.integration.test_poison import issue

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

SEED = 20261201
COMMANDS = 1500
STOP_BOUND = 30.0
"""Seconds a SIGTERMed worker may take to drain (normally well under a few)."""


def topic_messages(bed: KafkaBed, epoch: str | None) -> dict[int, list[tuple[int, dict[str, str]]]]:
    """Every message (of one epoch, or all), by partition: (offset, headers), from the start."""
    reader = KafkaConsumer(bootstrap_servers=[bed.tansu.address], enable_auto_commit=False)
    found: dict[int, list[tuple[int, dict[str, str]]]] = defaultdict(list)
    try:
        partitions = [TopicPartition(bed.topic, p) for p in reader.partitions_for_topic(bed.topic)]
        reader.assign(partitions)
        reader.seek_to_beginning(*partitions)
        ends = reader.end_offsets(partitions)
        deadline = time.monotonic() + 60
        while any(reader.position(tp) < ends[tp] for tp in partitions):
            assert time.monotonic() < deadline, "the topic could not be read within 60 s"
            for tp, messages in reader.poll(timeout_ms=200).items():
                for message in messages:
                    headers = {key: bytes(value).decode() for key, value in message.headers}
                    if epoch is None or headers.get("epoch") == epoch:
                        found[tp.partition].append((message.offset, headers))
    finally:
        reader.close()
    return found


def assert_offsets_match_views(bed: KafkaBed, system: System, state: BusState) -> None:
    """Per group: what the views applied is exactly what lies below the stored offsets.

    Every message below an offset was applied or was a duplicate of an applied version,
    whatever its epoch (the relay may have started a new one and republished).
    """
    messages = topic_messages(bed, None)
    by_name = {p.name: p for p in system.projections}
    for name in PROJECTIONS:
        stored = state.partition_offsets(projection_group(name), bed.topic)
        expected: dict[str, int] = {}
        for partition, offset in stored.items():
            for message_offset, headers in messages.get(partition, []):
                # Below the offset, and of a type the projection takes (no other is recorded).
                if message_offset < offset.next_offset and by_name[name].takes(
                    headers["aggregate_type"]
                ):
                    key = headers["aggregate_id"]
                    version = int(headers["aggregate_version"])
                    expected[key] = max(expected.get(key, 0), version)
        applied = applied_versions(system, name)
        off = {
            key: (applied.get(key), expected.get(key))
            for key in applied.keys() | expected.keys()
            if applied.get(key) != expected.get(key)
        }
        assert not off, f"{name}: views and offsets disagree (applied, below offset): {off}"


def assert_relay_recorded_what_it_published(bed: KafkaBed, system: System, state: BusState) -> None:
    """The relay's position is the last message it published; each event once, in the topic."""
    relay = state.relay_state()
    published = [
        int(headers["notification_id"])
        for batch in topic_messages(bed, relay.epoch).values()
        for _, headers in batch
    ]
    stored = [
        n.id
        for n in system.app.recorder.select_notifications(
            start=1, limit=relay.position + 1, stop=relay.position
        )
    ]
    assert max(published) == relay.position, (max(published), relay.position)
    assert sorted(published) == stored, "the topic does not hold each stored event exactly once"


def test_sigterm_drains_worker_and_relay_mid_stream(bed: KafkaBed) -> None:
    system = bed.system()
    state = bed.bus_state(system)
    Writers.register_units(system)
    processes: dict[str, CliProcess] = {
        "relay": bed.cli("relay", "relay"),
        "project": bed.cli("project", "project"),
    }
    rng = random.Random(SEED)
    stops = [(rng.uniform(0.2, 0.35), "project"), (rng.uniform(0.5, 0.65), "relay")]
    faults_done = threading.Event()
    writers = Writers(
        system,
        bed.clock,
        seed=SEED,
        commands=COMMANDS,
        threads=3,
        keep_going=lambda: not faults_done.is_set(),
    )
    try:
        since = {name: time.time() for name in processes}
        for name in processes:
            wait_until(bed, at_work(bed, state, name, _utc(since[name])), f"{name} at work", 60)
        writers.start()
        for fraction, name in stops:
            wait_until(bed, stream_reached(writers, fraction), f"{fraction:.0%} of stream", 120)
            wait_until(bed, at_work(bed, state, name, _utc(since[name])), f"{name} at work", 60)
            assert writers.alive()
            head = system.app.head()
            code, took = processes[name].terminate(STOP_BOUND)
            log = processes[name].log.read_text()
            assert code == 0, f"{name} exited {code} after {took:.1f} s:\n{log[-3000:]}"
            assert took < STOP_BOUND
            assert "worker.stopped" in log
            assert system.app.head() > head, "the stream was not flowing at the stop"
            if name == "project":
                # Nobody else writes these views or offsets now: they must agree exactly.
                assert_offsets_match_views(bed, system, state)
            else:
                assert_relay_recorded_what_it_published(bed, system, state)
            args = ["relay"] if name == "relay" else ["project"]
            processes[name] = bed.cli(name, *args)
            since[name] = time.time()
        writers.extend(150)
        faults_done.set()
        writers.join(240)
        assert_exactly_once(bed, system)
        for name, process in processes.items():
            code, _ = process.terminate(STOP_BOUND)
            assert code == 0, f"{name}: {process.log_tail()}"
    finally:
        faults_done.set()
        stop_all(writers, *processes.values())


def _utc(epoch_seconds: float) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, UTC)


# -------------------------------------------------------------------------- the API
CLIENTS = 12
READ_WAIT = 3


async def _burst(
    port: int,
    token: str,
    tasks: list[str],
    after: int,
    outcomes: list[dict[str, Any]],
    sigterm: threading.Event,
) -> None:
    """Writers urge tasks until the server is gone; slow readers wait on ``?after=``."""
    headers = {"Authorization": f"Bearer {token}"}

    async def writer(index: int) -> None:
        connection = Connection("127.0.0.1", port, headers)
        for n in range(10_000):
            note = f"burst-{index}-{n}"
            outcome: dict[str, Any] = {"note": note, "kind": "write"}
            try:
                task = tasks[index]  # one task per client: no races between them
                answer = await connection.request("POST", f"/tasks/{task}/urge", {"note": note})
                outcome["status"] = answer.status
                if answer.status == 200:
                    outcome["position"] = json.loads(answer.body)["position"]
            except HttpError as error:
                outcome["error"] = str(error)
            outcomes.append(outcome)
            if "error" in outcome and sigterm.is_set():
                if "Connect" in outcome["error"] or "refused" in outcome["error"].lower():
                    break
                await asyncio.sleep(0.05)
        await connection.close()

    async def reader() -> None:
        # A read that waits READ_WAIT seconds (no workers run): in flight at the SIGTERM.
        connection = Connection("127.0.0.1", port, headers)
        while not sigterm.is_set():
            outcome: dict[str, Any] = {"kind": "slow_read", "started": time.monotonic()}
            try:
                answer = await connection.request("GET", f"/views/units/postal?after={after}")
                outcome["status"] = answer.status
            except HttpError as error:
                outcome["error"] = str(error)
            outcome["ended"] = time.monotonic()
            outcomes.append(outcome)
            if "error" in outcome:
                break
        await connection.close()

    await asyncio.gather(*(writer(i) for i in range(CLIENTS)), reader(), reader())


def test_sigterm_lets_the_api_finish_requests_in_flight(bed: KafkaBed) -> None:
    system = bed.system()
    Writers.register_units(system)
    tasks = [str(issue(system).aggregate.id) for _ in range(CLIENTS)]
    _, token = system.tokens.issue(role=Role.SECRETARIAT, unit=None, name="burst")
    port = free_port()
    env = {**bed.env(), "TIAOKUAI_READ_WAIT_SECONDS": str(READ_WAIT)}
    server = CliProcess(
        "serve",
        ["serve", "--store", POSTGRES_URL, "--bus", bed.tansu.url, "--port", str(port)],
        env,
        bed.work_dir / "serve.log",
    )
    bed.processes.append(server)
    server.start()
    outcomes: list[dict[str, Any]] = []
    sigterm = threading.Event()
    try:
        wait_until(bed, lambda: _accepts(port), "the API listening", 60)
        head = system.app.head()
        loop = threading.Thread(
            target=asyncio.run,
            args=(_burst(port, token, tasks, head, outcomes, sigterm),),
            daemon=True,
        )
        loop.start()
        wait_until(bed, lambda: sum("status" in o for o in outcomes) >= 60, "a burst", 60)
        # Let the slow reads get well into their wait, then stop the server under load.
        time.sleep(1.0)
        sigterm_at = time.monotonic()
        sigterm.set()
        code, took = server.terminate(STOP_BOUND)
        loop.join(60)
        assert not loop.is_alive(), "the clients did not finish"
        assert code == 0 and took < READ_WAIT + 10, (code, took, server.log_tail())
    finally:
        sigterm.set()
        stop_all(server)

    writes = [o for o in outcomes if o["kind"] == "write"]
    answered = {o["note"]: o for o in writes if o.get("status") == 200}
    errors = sorted({o["error"][:60] for o in writes if "error" in o})
    print(f"{len(answered)} writes answered, {len(writes) - len(answered)} not; errors: {errors}")
    assert len(answered) >= 60
    assert all(o.get("status") in (200, None) for o in writes), [
        o for o in writes if o.get("status") not in (200, None)
    ][:3]
    stored: dict[str, int] = {}
    for notification in system.app.recorder.select_notifications(start=head + 1, limit=100_000):
        envelope = envelope_from(notification, system.app.mapper)
        note = envelope.data.get("note", "")
        if envelope.type == "TaskUrged" and note.startswith("burst-"):
            assert note not in stored, f"{note} stored twice"
            stored[note] = envelope.position
    # Every answered write is stored where its answer said...
    assert {note: o["position"] for note, o in answered.items()} == {
        note: stored[note] for note in answered
    }
    # ...and nothing was applied without its answer reaching the client (no request cut).
    unanswered = sorted(set(stored) - set(answered))
    assert not unanswered, f"applied but never answered: {unanswered[:5]}"
    # The slow reads in flight at the SIGTERM were answered (503: no worker runs here).
    in_flight = [o for o in outcomes if o["kind"] == "slow_read" and o["started"] < sigterm_at]
    cut = [o for o in in_flight if o["ended"] > sigterm_at and "status" not in o]
    finished = [o for o in in_flight if o["ended"] > sigterm_at and o.get("status") == 503]
    assert not cut, cut
    assert finished, in_flight
    assert "server.stopped" in server.log.read_text()


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0
