"""The Kafka path working as designed: HTTP → store → relay → Kafka → workers → views.

Real PostgreSQL (a fresh schema per test) and a real Kafka-protocol broker (Tansu, in
memory, one per test, with a topic of its own). The API runs with the bus set, so it
runs no projections itself: everything a view shows came through the topic.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest

from domain.actor import Role
from infra.kafka.clients import projection_group as group_id
from infra.kafka.state import BusState
from projections.ledger import task_ledger
from tests.integration.api_client import Api
from tests.integration.conftest import (
    DEPARTMENTS,
    PROJECTIONS,
    SEC,
    TOWNS,
    KafkaBed,
    WorkerRunner,
    Writers,
    applied_versions,
    assert_counts_match_aggregates,
    assert_exactly_once,
    stop_all,
    wait_caught_up,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

AUDITOR = "auditor"
SECRETARIAT = "secretariat"


def wait_assigned(bed: KafkaBed, workers: list[WorkerRunner], timeout: float = 60.0) -> None:
    """Until every worker's consumer holds partitions (the group join takes seconds)."""
    deadline = time.monotonic() + timeout
    while not all(worker.assignment() for worker in workers):
        bed.check_alive()
        if time.monotonic() >= deadline:
            waiting = [w.name for w in workers if not w.assignment()]
            raise AssertionError(f"no partitions within {timeout:g} s for {waiting}")
        time.sleep(0.05)


def post(api: Api, who: str, path: str, body: dict[str, Any], status: int = 200) -> int:
    """POST as ``who``; returns the store position of the write (X-Tiaokuai-Position)."""
    response = api.client.post(path, json=body, headers=api.headers(who))
    assert response.status_code == status, (path, response.status_code, response.text)
    position = int(response.headers["X-Tiaokuai-Position"])
    assert response.json()["position"] == position
    return position


def counts(view: dict[str, Any], capacity: str) -> dict[str, int]:
    return {state: n for state, n in view["tasks"][capacity].items() if n}


def cell(matrix: dict[str, Any], unit: str, town: str) -> dict[str, int]:
    for found in matrix["cells"]:
        if (found["unit"], found["town"]) == (unit, town):
            return {k: v for k, v in found.items() if k not in ("unit", "town")}
    return {}


def test_http_commands_reach_every_view_through_kafka(bed: KafkaBed) -> None:
    """A command over HTTP is in the department, town and linkage views via the topic."""
    api_system = bed.system()  # the API's process: writes to PostgreSQL only
    workers_system = bed.system()  # the workers' process
    relay = bed.relay_thread(workers_system)
    workers = bed.worker_threads(workers_system, PROJECTIONS)
    try:
        api = Api(api_system)
        api.principal(SECRETARIAT, Role.SECRETARIAT)
        api.principal(AUDITOR, Role.AUDITOR)
        for unit in ("postal", "commerce", "town-chengguan"):
            api.principal(unit, Role.LIAISON, unit)
        wait_assigned(bed, workers)

        for slug in ("postal", "commerce"):
            post(api, SECRETARIAT, "/units", {"id": slug, "name": slug, "kind": "department"}, 201)
        post(
            api,
            SECRETARIAT,
            "/units",
            {"id": "town-chengguan", "name": "城关", "kind": "town"},
            201,
        )
        deadline = bed.clock.now() + timedelta(days=5)
        response = api.client.post(
            "/tasks",
            json={
                "title": "快递员权益保障：建立“小哥驿站”",
                "industry": "express",
                "lead_unit": "postal",
                "co_units": ["commerce"],
                "towns": ["town-chengguan"],
                "deadline": deadline.isoformat(),
                "weight": 2,
            },
            headers=api.headers(SECRETARIAT),
        )
        assert response.status_code == 201, response.text
        task_id = response.json()["id"]
        issued = int(response.headers["X-Tiaokuai-Position"])

        # Each view answers ?after= once its projection applied the write, via Kafka.
        postal = api.get(AUDITOR, f"/views/units/postal?after={issued}")
        assert counts(postal, "lead") == {"issued": 1}
        assert [t["id"] for t in postal["awaiting_signature"]] == [task_id]
        commerce = api.get(AUDITOR, f"/views/units/commerce?after={issued}")
        assert counts(commerce, "co-unit") == {"issued": 1}
        town = api.get(AUDITOR, f"/views/towns/town-chengguan?after={issued}")
        assert counts(town, "town") == {"issued": 1}
        assert [t["id"] for t in town["awaiting_signature"]] == [task_id]
        matrix = api.get(SECRETARIAT, f"/views/linkage?after={issued}")
        assert cell(matrix, "postal", "town-chengguan") == {
            "joint": 1,
            "open": 1,
            "overdue": 0,
            "verified_on_time": 0,
        }
        assert cell(matrix, "commerce", "town-chengguan")["joint"] == 1

        # The liaisons' steps and the secretariat's verification follow the same path.
        signed = post(api, "postal", f"/tasks/{task_id}/sign", {})
        postal = api.get("postal", f"/views/units/postal?after={signed}")
        assert counts(postal, "lead") == {"signed": 1}
        assert postal["awaiting_signature"] == []
        post(api, "town-chengguan", f"/tasks/{task_id}/sign", {})
        contributed = post(
            api, "town-chengguan", f"/tasks/{task_id}/contribution", {"note": "提供社区用房"}
        )
        post(api, "postal", f"/tasks/{task_id}/progress", {"note": "已选址", "percent": 50})
        town = api.get("town-chengguan", f"/views/towns/town-chengguan?after={contributed}")
        assert town["awaiting_signature"] == []
        post(api, "postal", f"/tasks/{task_id}/completion", {"note": "驿站已建成"})
        verified = post(api, SECRETARIAT, f"/tasks/{task_id}/verify", {"note": "验收通过"})
        postal = api.get(AUDITOR, f"/views/units/postal?after={verified}")
        assert counts(postal, "lead") == {"verified": 1}
        assert postal["on_time_rate"] == 1.0
        town = api.get(AUDITOR, f"/views/towns/town-chengguan?after={verified}")
        assert counts(town, "town") == {"verified": 1}
        matrix = api.get(SECRETARIAT, f"/views/linkage?after={verified}")
        assert cell(matrix, "postal", "town-chengguan") == {
            "joint": 1,
            "open": 0,
            "overdue": 0,
            "verified_on_time": 1,
        }

        # Idle: what Kafka built equals an in-process rebuild of the same store.
        assert_exactly_once(bed, api_system)
        relay_state = bed.bus_state(api_system).relay_state()
        assert relay_state.position == api_system.app.head()
    finally:
        stop_all(*workers, relay)


def test_two_workers_of_one_projection_share_partitions(bed: KafkaBed) -> None:
    """Two linkage workers in one group split the partitions; each event is applied once."""
    system = bed.system()
    main = bed.system()
    other = bed.system()  # the second linkage worker behaves as another process
    relay = bed.relay_thread(main)
    rest = bed.cli(
        "project-rest", "project", *projection_args(p for p in PROJECTIONS if p != "linkage")
    )
    first = bed.worker_thread(main, "linkage", name="linkage-a")
    second = bed.worker_thread(other, "linkage", name="linkage-b")
    state = bed.bus_state(system)
    writers: Writers | None = None
    try:
        Writers.register_units(system)
        shared = wait_for_heartbeats(bed, state, {"linkage-a", "linkage-b"}, split_between_two)
        assert shared["linkage-a"] and shared["linkage-b"], shared

        writers = Writers(system, bed.clock, seed=4, commands=500, threads=3).start()
        wait_until(bed, lambda: writers is not None and writers.done >= 250, "half the stream")
        # One of them leaves mid-stream: the other takes its partitions over and goes on
        # from the offsets stored with the views.
        second.stop()
        alone = wait_for_heartbeats(
            bed, state, {"linkage-a"}, lambda parts: len(parts["linkage-a"]) == 6
        )
        assert alone["linkage-a"] == list(range(6))
        writers.join(180)
        wait_caught_up(bed, system)
        assert first.worker.applied > 0 and second.worker.applied > 0
        assert_exactly_once(bed, system)
        assert_counts_match_aggregates(system, writers.task_ids)
        groups = {o.group_id for o in state.all_offsets()}
        assert group_id("linkage") in groups
    finally:
        stop_all(writers, first, second, rest, relay)


def test_a_host_takes_over_partitions_its_fetch_is_already_past(bed: KafkaBed) -> None:
    """A process hosting every projection over one fetch; another hosting two leaves.

    When the second host leaves mid-stream, the first gains the linkage and task list
    partitions while its fetch of those partitions is already further on for its other
    five projections, and maybe while a poll is under way: those two must go on from
    their own stored offsets, each event applied exactly once.
    """
    system = bed.system()
    main = bed.system()
    other = bed.system()
    relay = bed.relay_thread(main)
    first = bed.host_thread(main, PROJECTIONS, "host-a")
    second = bed.host_thread(other, ("linkage", "tasks"), "host-b")
    state = bed.bus_state(system)
    writers: Writers | None = None
    heartbeats = {f"{group_id(p)}.host-{h}" for p in ("linkage", "tasks") for h in "ab"}
    try:
        Writers.register_units(system)
        shared = wait_for_heartbeats(
            bed,
            state,
            heartbeats,
            lambda parts: all(
                split_between_two({h: parts[f"{group_id(p)}.{h}"] for h in ("host-a", "host-b")})
                for p in ("linkage", "tasks")
            ),
        )
        assert all(shared.values()), shared

        writers = Writers(system, bed.clock, seed=11, commands=600, threads=3).start()
        wait_until(bed, lambda: writers is not None and writers.done >= 300, "half the stream")
        second.stop()
        writers.join(180)
        wait_caught_up(bed, system)
        for worker in (*first.host.workers, *second.host.workers):
            assert worker.failure is None, worker.failure
            assert worker.applied > 0, worker.projection.name
        assert_exactly_once(bed, system)
        assert_counts_match_aggregates(system, writers.task_ids)
    finally:
        stop_all(writers, first, second, relay)


def test_a_late_projection_catches_up_then_follows_live(bed: KafkaBed) -> None:
    """A projection that never ran takes the history from the store and the topic."""
    late = "ledger"
    system = bed.system()
    relay = bed.cli("relay", "relay")
    early = bed.cli(
        "project-early", "project", *projection_args(p for p in PROJECTIONS if p != late)
    )
    state = bed.bus_state(system)
    late_worker: WorkerRunner | None = None
    writers: Writers | None = None
    try:
        Writers.register_units(system)
        before = Writers(system, bed.clock, seed=5, commands=300, threads=3).start()
        before.join(180)
        wait_caught_up(bed, system, [p for p in PROJECTIONS if p != late])
        assert applied_versions(system, late) == {}
        assert state.partition_offsets(group_id(late), bed.topic) == {}
        history_head = system.app.head()

        # The stream goes on while the late worker starts: what the store holds when it
        # starts it takes from the store, the rest from the topic.
        writers = Writers(system, bed.clock, seed=55, commands=200, threads=2).start()
        late_worker = bed.worker_thread(bed.system(), late)
        wait_assigned(bed, [late_worker])
        writers.join(180)
        wait_caught_up(bed, system)
        from_store = system.view_recorder.position(late)  # its tracking row: store catch-up
        assert from_store >= history_head
        # It read the topic from its beginning too (dropping what it had) and stored offsets.
        wait_until(
            bed, lambda: bool(state.partition_offsets(group_id(late), bed.topic)), "ledger offsets"
        )

        # Live: a task issued and urged now reaches the late projection through Kafka.
        issued = system.app.issue_task(
            title="迟到的任务",
            industry="express",
            lead_unit=DEPARTMENTS[0],
            co_units=[],
            towns=[TOWNS[0]],
            deadline=bed.clock.now() + timedelta(days=3),
            weight=1.0,
            meeting_id=None,
            resolution_id=None,
            actor=SEC,
        )
        task_id = issued.aggregate.id
        urged = system.app.urge_task(task_id=task_id, note="迟到的催办", actor=SEC)
        assert system.wait_for(urged.position, [late], timeout=30)
        # Through Kafka: the store catch-up ran once, at the start, and stopped before it.
        assert system.view_recorder.position(late) == from_store < urged.position
        ledger = task_ledger(system.views, str(task_id), now=bed.clock.now(), tz=system.tz)
        assert ledger is not None
        assert [u["note"] for u in ledger["urges"]] == ["迟到的催办"]
        # And the history it caught up on is there too: every task's urges, for one.
        for old_id in before.task_ids:
            old = task_ledger(system.views, str(old_id), now=bed.clock.now(), tz=system.tz)
            assert old is not None and len(old["urges"]) == system.app.task(old_id).urge_count

        assert_exactly_once(bed, system)
        assert_counts_match_aggregates(system, [*before.task_ids, *writers.task_ids, task_id])
    finally:
        stop_all(writers, late_worker, early, relay)


# ---------------------------------------------------------------------- helpers
def projection_args(names: Any) -> list[str]:
    args: list[str] = []
    for name in names:
        args += ["--projection", name]
    return args


def wait_until(bed: KafkaBed, condition: Any, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        bed.check_alive()
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not reached within {timeout:g} s")
        time.sleep(0.05)


def split_between_two(parts: dict[str, list[int]]) -> bool:
    """Both hold partitions, none twice, all six held."""
    first, second = parts.values()
    return bool(first and second) and sorted(first + second) == list(range(6))


def wait_for_heartbeats(
    bed: KafkaBed,
    state: BusState,
    names: set[str],
    condition: Any,
    timeout: float = 60.0,
) -> dict[str, list[int]]:
    """Poll the workers' heartbeats until their partitions satisfy ``condition``."""
    deadline = time.monotonic() + timeout
    seen: dict[str, list[int]] = {}
    while True:
        bed.check_alive()
        seen = {
            beat["name"]: list(beat["info"].get("partitions", []))
            for beat in state.heartbeats()
            if beat["name"] in names
        }
        if set(seen) == names and condition(seen):
            return seen
        if time.monotonic() >= deadline:
            raise AssertionError(f"heartbeats never showed the expected partitions: {seen}")
        time.sleep(0.1)
