"""Properties every projection shares: ownership, determinism, tolerance, exact increments."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from domain.actor import Actor, Role
from domain.errors import DomainError
from domain.tasks import SupervisedTask
from projections.assessment import CELLS_VIEW as ASSESSMENT_CELLS
from projections.assessment import AssessmentProjection, bucket_of
from projections.base import Projection
from projections.envelope import EventEnvelope
from projections.linkage import LinkageProjection, linkage_matrix
from projections.registry import ALL_PROJECTIONS, build_projections
from projections.store import MemoryViewStore
from projections.tasks import TASKS_VIEW, TaskListProjection
from projections.timeutil import local_date
from projections.unit_views import ROWS_VIEW, UnitViewProjection
from tests.unit import (
    test_projection_coverage,
    test_projection_ledger,
    test_projection_unit_views,
)
from tests.unit.envelopes import Events, from_domain, run, t

SHANGHAI = ZoneInfo("Asia/Shanghai")
DEPARTMENTS = ["postal", "commerce", "market", "transport", "cyber"]
TOWNS = ["town-a", "town-b", "town-c"]
SEC = Actor("sec-wang", Role.SECRETARIAT, "social-work")


def _liaison(unit: str) -> Actor:
    return Actor(f"liaison-{unit}", Role.LIAISON, unit)


COMMANDS = {
    # name: weight, so that histories often reach completion and verification
    "sign": 4,
    "progress": 3,
    "contribute": 1,
    "complete": 4,
    "verify": 4,
    "return": 1,
    "urge": 1,
    "transfer": 1,
    "add_co_unit": 1,
    "remove_co_unit": 1,
    "add_town": 1,
    "remove_town": 1,
    "request": 1,
    "grant": 1,
    "deny": 1,
    "overdue": 2,
}


def _random_command(rng: random.Random, task: SupervisedTask, clock: datetime) -> None:
    """Run one random command on the aggregate; the aggregate may refuse it."""
    unsigned = [u for u in task.units if u not in task.signatures]
    unit = rng.choice(unsigned or task.units)
    other = rng.choice(DEPARTMENTS)
    town = rng.choice(TOWNS)
    name = rng.choices(list(COMMANDS), list(COMMANDS.values()))[0]
    lead = _liaison(task.lead_unit)
    pending = task.pending_extension or "E0"
    if name == "sign":
        task.sign_for(actor=_liaison(unit), at=clock)
    elif name == "progress":
        task.report_progress(note="n", percent=None, actor=_liaison(unit), at=clock)
    elif name == "contribute":
        task.report_contribution(note="n", actor=_liaison(unit), at=clock)
    elif name == "complete":
        task.report_completion(note="n", actor=lead, at=clock)
    elif name == "verify":
        task.verify(note="ok", actor=SEC, at=clock)
    elif name == "return":
        task.return_for_rework(reason="again", actor=SEC, at=clock)
    elif name == "urge":
        task.urge(note="go", actor=SEC, at=clock)
    elif name == "transfer":
        task.transfer_lead(new_lead=other, reason="move", actor=SEC, at=clock)
    elif name == "add_co_unit":
        task.add_co_unit(unit=other, actor=SEC, at=clock)
    elif name == "remove_co_unit":
        task.remove_co_unit(unit=other, reason="drop", actor=SEC, at=clock)
    elif name == "add_town":
        task.add_town(unit=town, actor=SEC, at=clock)
    elif name == "remove_town":
        task.remove_town(unit=town, reason="drop", actor=SEC, at=clock)
    elif name == "request":
        later = task.deadline + timedelta(days=rng.randint(1, 90))
        task.request_extension(new_deadline=later, reason="late", actor=lead, at=clock)
    elif name == "grant":
        task.grant_extension(request_id=pending, note="ok", actor=SEC, at=clock)
    elif name == "deny":
        task.deny_extension(request_id=pending, reason="no", actor=SEC, at=clock)
    else:
        task.mark_overdue(actor=SEC, at=clock)


def _random_run(
    seed: int, tasks: int = 8, steps: int = 160
) -> tuple[list[EventEnvelope], list[SupervisedTask]]:
    """Random but valid task histories, made by the real aggregate and interleaved."""
    rng = random.Random(seed)
    clock = datetime(2026, 10, 1, tzinfo=UTC)
    aggregates: list[SupervisedTask] = []
    log: list[EventEnvelope] = []

    def collect(task: SupervisedTask) -> None:
        log.extend(from_domain(task.collect_events(), "SupervisedTask", start=len(log) + 1))

    for _ in range(tasks):
        lead, *co_units = rng.sample(DEPARTMENTS, rng.randint(1, 3))
        task = SupervisedTask.issue(
            title=f"task {len(aggregates)}",
            industry=rng.choice(["express", "food-delivery"]),
            lead_unit=lead,
            co_units=co_units,
            towns=rng.sample(TOWNS, rng.randint(0, 2)),
            deadline=clock + timedelta(days=rng.randint(2, 120), hours=rng.randint(0, 23)),
            weight=rng.choice([0.5, 1.0, 1.5, 3.0]),
            meeting_id=None,
            resolution_id=None,
            actor=SEC,
            at=clock,
        )
        aggregates.append(task)
        collect(task)
    for _ in range(steps):
        clock += timedelta(hours=rng.randint(0, 72))
        task = rng.choice(aggregates)
        try:
            _random_command(rng, task, clock)
        except DomainError:
            continue
        collect(task)
    return log, aggregates


def _random_history(seed: int) -> list[EventEnvelope]:
    return _random_run(seed)[0]


def _fixed_history() -> list[EventEnvelope]:
    """The hand-written scenarios of the other tests, one after another, renumbered."""
    ledger = test_projection_ledger._transfer_scenario().log
    logs = [
        test_projection_unit_views._scenario().log,
        # The unit view scenario has its own express chain already.
        [e for e in ledger if e.aggregate_type != "ResponsibilityChain"],
        test_projection_coverage._scenario().log,
    ]
    ev = Events()
    ev.unit("postal", "Postal Administration")
    ev.rename_unit("postal", "Postal Bureau", "2026-02-01T00:00")
    merged = [*ev.log]
    for log in logs:
        merged.extend(log)
    return [
        EventEnvelope(
            i + 1, e.aggregate_id, e.aggregate_type, e.version, e.type, e.at, e.actor, e.data
        )
        for i, e in enumerate(merged)
    ]


def _apply_all(events: list[EventEnvelope]) -> MemoryViewStore:
    store = MemoryViewStore()
    projections = build_projections(SHANGHAI)
    for event in events:
        for projection in projections:
            projection.apply(event, store)
    return store


def test_names_unique_and_views_owned_and_prefixed() -> None:
    names = [cls.name for cls in ALL_PROJECTIONS]
    assert len(set(names)) == len(names) == 7
    views = [view for cls in ALL_PROJECTIONS for view in cls.views]
    assert len(set(views)) == len(views)
    for cls in ALL_PROJECTIONS:
        assert all(view.startswith(cls.name) for view in cls.views), cls.name


def test_build_projections_passes_the_time_zone() -> None:
    built = build_projections(ZoneInfo("UTC"))
    assert [type(p) for p in built] == list(ALL_PROJECTIONS)
    (assessment,) = [p for p in built if isinstance(p, AssessmentProjection)]
    assert assessment.tz == ZoneInfo("UTC")
    assert build_projections()[5].tz == SHANGHAI  # type: ignore[attr-defined]


def test_projections_write_only_their_own_views() -> None:
    events = _fixed_history() + _random_history(1)
    for projection in build_projections(SHANGHAI):
        store = run(projection, events)
        assert set(store.docs) <= set(projection.views), projection.name
        assert store.docs, projection.name


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_same_events_give_identical_documents(seed: int) -> None:
    events = _fixed_history() + [
        EventEnvelope(
            1000 + e.position,
            e.aggregate_id,
            e.aggregate_type,
            e.version,
            e.type,
            e.at,
            e.actor,
            e.data,
        )
        for e in _random_history(seed)
    ]
    first, second = _apply_all(events), _apply_all(events)
    assert first.docs == second.docs
    assert sum(len(docs) for docs in first.docs.values()) > 50


@pytest.mark.parametrize("cls", ALL_PROJECTIONS)
def test_unknown_event_types_are_ignored(cls: type[Projection]) -> None:
    projection = AssessmentProjection(SHANGHAI) if cls is AssessmentProjection else cls()
    events = _fixed_history()
    store = run(projection, events)
    before = {view: dict(docs) for view, docs in store.docs.items()}
    task_id = next(e.aggregate_id for e in events if e.type == "TaskIssued")
    ev = Events()
    strangers = [
        ev.emit("SupervisedTask", task_id, "TaskTeleported", t("2026-12-01T00:00"), {"x": 1}),
        ev.emit("Unit", "u-1", "UnitExploded", t("2026-12-01T00:00")),
        ev.emit("ResponsibilityChain", "c-1", "ChainMelted", t("2026-12-01T00:00")),
        ev.emit("IndustryPartyCommittee", "k-1", "CommitteeDissolved", t("2026-12-01T00:00")),
        ev.emit("Spaceship", "s-1", "Launched", t("2026-12-01T00:00"), {"unit": "postal"}),
    ]
    run(projection, strangers, store)
    assert store.docs == before
    assert run(projection, strangers).docs == {}


@pytest.mark.parametrize("seed", [4, 5, 6, 7])
def test_increments_equal_a_recount_from_the_final_tasks(seed: int) -> None:
    """Before/after differences leave exactly what a brute-force recount gives."""
    events = _random_history(seed)
    tasks = [doc for doc in run(TaskListProjection(), events).docs[TASKS_VIEW].values()]

    cells: dict[tuple[str, str], dict[str, int]] = {}
    for task in tasks:
        for unit in [task["lead_unit"], *task["co_units"]]:
            for town in task["towns"]:
                cell = cells.setdefault(
                    (unit, town), dict.fromkeys(("joint", "open", "overdue", "verified_on_time"), 0)
                )
                verified = task["state"] == "verified"
                cell["joint"] += 1
                cell["open"] += not verified
                cell["overdue"] += task["overdue"] and not verified
                cell["verified_on_time"] += verified and task["on_time"]
    expected = [{"unit": u, "town": w, **c} for (u, w), c in sorted(cells.items())]
    assert linkage_matrix(run(LinkageProjection(), events))["cells"] == expected

    board: dict[str, dict[str, Any]] = {}
    for task in tasks:
        key = f"{local_date(task['deadline'], SHANGHAI).year}/{task['lead_unit']}"
        entry = board.setdefault(key, {})
        bucket = entry.setdefault(bucket_of(task), [0, 0.0])
        bucket[0] += 1
        bucket[1] += task["weight"]
    stored = run(AssessmentProjection(SHANGHAI), events).docs[ASSESSMENT_CELLS]
    assert sorted(stored) == sorted(board)
    for key, entry in board.items():
        for name, (count, weight) in entry.items():
            assert stored[key][name]["count"] == count
            assert stored[key][name]["weight"] == pytest.approx(weight)

    rows = run(UnitViewProjection(), events).docs[ROWS_VIEW]
    expected_rows = {
        f"{unit}/{task['id']}"
        for task in tasks
        for unit in [task["lead_unit"], *task["co_units"], *task["towns"]]
    }
    assert set(rows) == expected_rows


@pytest.mark.parametrize("seed", [8, 9, 10])
def test_fold_agrees_with_random_domain_histories(seed: int) -> None:
    events, aggregates = _random_run(seed, tasks=10, steps=120)
    docs = run(TaskListProjection(), events).docs[TASKS_VIEW]
    assert len(events) > 40
    for task in aggregates:
        doc = docs[str(task.id)]
        assert doc["state"] == task.state.value
        assert doc["lead_unit"] == task.lead_unit
        assert doc["co_units"] == task.co_units
        assert doc["towns"] == task.towns
        assert doc["deadline"] == task.deadline.isoformat()
        assert doc["overdue"] == task.overdue
        since = task.overdue_since.isoformat() if task.overdue_since else None
        assert doc["overdue_since"] == since
        assert doc["signatures"] == {u: at.isoformat() for u, at in task.signatures.items()}
        assert doc["urge_count"] == task.urge_count
        assert doc["pending_extension"] == task.pending_extension
        reported = task.completion_reported_at
        assert doc["completion_reported_at"] == (reported.isoformat() if reported else None)
        assert doc["verified_at"] == (task.verified_at.isoformat() if task.verified_at else None)
        assert doc["version"] == task.version
    # The histories reach more than one state.
    assert len({doc["state"] for doc in docs.values()}) >= 2
