"""The shared task fold and the task list projection."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from domain.actor import Actor, Role
from domain.tasks import SupervisedTask
from projections.envelope import EventEnvelope
from projections.store import MemoryViewStore
from projections.tasks import (
    TASKS_VIEW,
    TaskListProjection,
    fold_task,
    get_task,
    list_tasks,
    tasks_due_for_overdue,
)
from tests.unit.envelopes import Events, from_domain, iso, run, t


def _task(store: MemoryViewStore, task_id: str) -> dict[str, Any]:
    doc = get_task(store, task_id)
    assert doc is not None
    return doc


def test_issue_creates_the_summary() -> None:
    ev = Events()
    ev.issue(
        "T1",
        at="2026-11-01T00:00",
        lead="postal",
        co_units=["commerce"],
        towns=["town-a"],
        deadline="2026-12-01T00:00",
        weight=2.0,
        title="Rider stations",
    )
    store = run(TaskListProjection(), ev.log)
    assert _task(store, "T1") == {
        "id": "T1",
        "title": "Rider stations",
        "industry": "express",
        "lead_unit": "postal",
        "co_units": ["commerce"],
        "towns": ["town-a"],
        "state": "issued",
        "deadline": "2026-12-01T00:00:00+00:00",
        "weight": 2.0,
        "overdue": False,
        "overdue_since": None,
        "issued_at": "2026-11-01T00:00:00+00:00",
        "verified_at": None,
        "on_time": None,
        "completion_reported_at": None,
        "signatures": {},
        "urge_count": 0,
        "pending_extension": None,
        "meeting_id": "m-1",
        "resolution_id": "R1",
        "version": 1,
        "updated_at": "2026-11-01T00:00:00+00:00",
    }


def test_lifecycle_sign_progress_complete_return_verify() -> None:
    ev = Events()
    proj = TaskListProjection()
    store = MemoryViewStore()
    ev.issue(
        "T1",
        at="2026-11-01T00:00",
        lead="postal",
        co_units=["commerce"],
        towns=["town-a"],
        deadline="2026-12-01T00:00",
    )
    run(proj, ev.log, store)

    def step(envelope: EventEnvelope) -> dict[str, Any]:
        run(proj, [envelope], store)
        return _task(store, "T1")

    doc = step(ev.sign("T1", "commerce", "2026-11-02T00:00"))
    assert doc["state"] == "issued"
    assert doc["signatures"] == {"commerce": iso("2026-11-02T00:00")}
    doc = step(ev.sign("T1", "town-a", "2026-11-02T01:00"))
    assert doc["state"] == "issued"
    assert set(doc["signatures"]) == {"commerce", "town-a"}
    doc = step(ev.sign("T1", "postal", "2026-11-03T00:00"))
    assert doc["state"] == "signed"
    doc = step(ev.progress("T1", "commerce", "2026-11-03T02:00"))
    assert doc["state"] == "signed"
    doc = step(ev.progress("T1", "postal", "2026-11-04T00:00"))
    assert doc["state"] == "in_progress"
    doc = step(ev.contribute("T1", "town-a", "2026-11-05T00:00"))
    assert doc["state"] == "in_progress"
    assert doc["version"] == 7
    assert doc["updated_at"] == iso("2026-11-05T00:00")
    doc = step(ev.complete("T1", "2026-11-10T00:00"))
    assert doc["state"] == "completion_reported"
    assert doc["completion_reported_at"] == iso("2026-11-10T00:00")
    doc = step(ev.return_("T1", "2026-11-11T00:00"))
    assert doc["state"] == "returned"
    assert doc["completion_reported_at"] is None
    doc = step(ev.urge("T1", "2026-11-12T00:00"))
    doc = step(ev.urge("T1", "2026-11-13T00:00"))
    assert doc["urge_count"] == 2
    assert doc["state"] == "returned"
    doc = step(ev.complete("T1", "2026-11-20T00:00"))
    doc = step(ev.verify("T1", "2026-11-21T00:00"))
    assert doc["state"] == "verified"
    assert doc["verified_at"] == iso("2026-11-21T00:00")
    assert doc["on_time"] is True
    assert doc["version"] == 13


def test_transfer_to_unsigned_unit_then_to_signed_co_unit() -> None:
    ev = Events()
    ev.issue(
        "T1",
        at="2026-11-01T00:00",
        lead="postal",
        co_units=["commerce", "market"],
        deadline="2026-12-01T00:00",
    )
    ev.sign("T1", "commerce", "2026-11-02T00:00")
    ev.sign("T1", "postal", "2026-11-02T01:00")
    ev.progress("T1", "postal", "2026-11-03T00:00")
    ev.transfer("T1", "transport", "2026-11-04T00:00")
    store = run(TaskListProjection(), ev.log)
    doc = _task(store, "T1")
    assert (doc["lead_unit"], doc["state"]) == ("transport", "issued")
    assert doc["co_units"] == ["commerce", "market"]

    ev.transfer("T1", "commerce", "2026-11-05T00:00")
    run(TaskListProjection(), ev.log[-1:], store)
    doc = _task(store, "T1")
    assert (doc["lead_unit"], doc["state"]) == ("commerce", "signed")
    assert doc["co_units"] == ["market"]
    # The old lead's signature stays on record, as in the aggregate.
    assert set(doc["signatures"]) == {"commerce", "postal"}


def test_co_units_and_towns_added_and_removed() -> None:
    ev = Events()
    ev.issue("T1", at="2026-11-01T00:00", lead="postal", deadline="2026-12-01T00:00")
    ev.add_co_unit("T1", "commerce", "2026-11-02T00:00")
    ev.add_co_unit("T1", "market", "2026-11-02T00:00")
    ev.add_town("T1", "town-a", "2026-11-02T00:00")
    ev.add_town("T1", "town-b", "2026-11-02T00:00")
    ev.remove_co_unit("T1", "commerce", "2026-11-03T00:00")
    ev.remove_town("T1", "town-a", "2026-11-03T00:00")
    doc = _task(run(TaskListProjection(), ev.log), "T1")
    assert doc["co_units"] == ["market"]
    assert doc["towns"] == ["town-b"]
    assert doc["version"] == 7


def test_extension_denied_overdue_then_granted() -> None:
    ev = Events()
    proj = TaskListProjection()
    store = MemoryViewStore()
    ev.issue("T1", at="2026-11-01T00:00", lead="postal", deadline="2026-12-01T00:00")
    ev.request_extension("T1", "E1", "2026-12-10T00:00", "2026-11-20T00:00")
    run(proj, ev.log, store)
    assert _task(store, "T1")["pending_extension"] == "E1"
    run(proj, [ev.deny("T1", "E1", "2026-11-21T00:00")], store)
    assert _task(store, "T1")["pending_extension"] is None
    run(proj, [ev.overdue("T1", "2026-12-01T00:05")], store)
    doc = _task(store, "T1")
    assert doc["overdue"] is True
    assert doc["overdue_since"] == iso("2026-12-01T00:00")
    run(proj, [ev.request_extension("T1", "E2", "2026-12-20T00:00", "2026-12-02T00:00")], store)
    assert _task(store, "T1")["pending_extension"] == "E2"
    run(proj, [ev.grant("T1", "E2", "2026-12-03T00:00")], store)
    doc = _task(store, "T1")
    assert doc["deadline"] == iso("2026-12-20T00:00")
    assert (doc["overdue"], doc["overdue_since"], doc["pending_extension"]) == (False, None, None)
    # Verified after the original deadline but before the extended one: on time.
    ev.complete("T1", "2026-12-15T00:00")
    ev.verify("T1", "2026-12-16T00:00")
    run(proj, ev.log[-2:], store)
    assert _task(store, "T1")["on_time"] is True


def test_fold_is_pure_and_ignores_strangers() -> None:
    ev = Events()
    issued = ev.issue("T1", at="2026-11-01T00:00", lead="postal", deadline="2026-12-01T00:00")
    doc = fold_task(None, issued)
    assert doc is not None
    snapshot = dict(doc)
    signed = ev.sign("T1", "postal", "2026-11-02T00:00")
    after = fold_task(doc, signed)
    assert doc == snapshot and doc["signatures"] == {}
    assert after is not None and after["state"] == "signed"
    stranger = ev.emit("SupervisedTask", "T1", "TaskRenamedByAliens", t("2026-11-03T00:00"))
    assert fold_task(after, stranger) is after
    # A task event for a task never issued: nothing to fold into.
    assert fold_task(None, ev.sign("T9", "postal", "2026-11-03T00:00")) is None


def test_fold_matches_the_domain_aggregate() -> None:
    """Drive the real aggregate, map its events as the infra does, fold, compare."""
    sec = Actor("sec-wang", Role.SECRETARIAT, "social-work")

    def liaison(unit: str) -> Actor:
        return Actor(f"liaison-{unit}", Role.LIAISON, unit)

    def at(day: int, hour: int = 0) -> datetime:
        return datetime(2026, 11, day, hour, tzinfo=UTC)

    task = SupervisedTask.issue(
        title="Rider stations",
        industry="express",
        lead_unit="postal",
        co_units=["commerce", "market"],
        towns=["town-a"],
        deadline=at(20),
        weight=3.0,
        meeting_id="m-1",
        resolution_id="R1",
        actor=sec,
        at=at(1),
    )
    task.sign_for(actor=liaison("commerce"), at=at(2))
    task.sign_for(actor=liaison("postal"), at=at(2, 1))
    task.report_progress(note="half", percent=50, actor=liaison("postal"), at=at(3))
    task.urge(note="faster", actor=sec, at=at(4))
    task.transfer_lead(new_lead="commerce", reason="better placed", actor=sec, at=at(5))
    task.add_town(unit="town-b", actor=sec, at=at(6))
    task.remove_co_unit(unit="market", reason="not needed", actor=sec, at=at(6, 1))
    task.add_co_unit(unit="transport", actor=sec, at=at(6, 2))
    request = task.request_extension(
        new_deadline=at(28), reason="rain", actor=liaison("commerce"), at=at(7)
    )
    task.deny_extension(request_id=request, reason="no", actor=sec, at=at(8))
    task.mark_overdue(actor=sec, at=at(20, 1))
    again = task.request_extension(
        new_deadline=at(29), reason="still raining", actor=liaison("commerce"), at=at(21)
    )
    task.grant_extension(request_id=again, note="fine", actor=sec, at=at(22))
    task.report_completion(note="done", actor=liaison("commerce"), at=at(23))
    task.return_for_rework(reason="photos missing", actor=sec, at=at(24))
    task.report_completion(note="done again", actor=liaison("commerce"), at=at(25))
    task.verify(note="ok", actor=sec, at=at(26))

    envelopes = from_domain(task.collect_events(), "SupervisedTask")
    doc = _task(run(TaskListProjection(), envelopes), str(task.id))
    assert doc["state"] == task.state.value
    assert doc["lead_unit"] == task.lead_unit == "commerce"
    assert doc["co_units"] == task.co_units == ["transport"]
    assert doc["towns"] == task.towns == ["town-a", "town-b"]
    assert doc["deadline"] == task.deadline.isoformat()
    assert doc["overdue"] is task.overdue is False
    assert doc["signatures"] == {u: s.isoformat() for u, s in task.signatures.items()}
    assert doc["urge_count"] == task.urge_count == 1
    assert doc["pending_extension"] is task.pending_extension is None
    assert task.verified_at is not None
    assert doc["verified_at"] == task.verified_at.isoformat()
    assert doc["on_time"] is True
    assert doc["version"] == task.version == 18


def _three_tasks() -> MemoryViewStore:
    ev = Events()
    ev.issue(
        "T1",
        at="2026-11-01T00:00",
        lead="postal",
        co_units=["commerce"],
        towns=["town-a"],
        deadline="2026-12-05T00:00",
        industry="express",
    )
    ev.issue(
        "T2",
        at="2026-11-01T00:00",
        lead="commerce",
        towns=["town-b"],
        deadline="2026-12-01T00:00",
        industry="food-delivery",
    )
    ev.issue(
        "T3",
        at="2026-11-01T00:00",
        lead="transport",
        co_units=["postal"],
        deadline="2026-12-01T00:00",
        industry="ride-hailing",
    )
    ev.overdue("T2", "2026-12-01T00:01")
    ev.sign("T3", "transport", "2026-11-02T00:00")
    return run(TaskListProjection(), ev.log)


def _ids(result: tuple[list[dict[str, Any]], int]) -> tuple[list[str], int]:
    return [doc["id"] for doc in result[0]], result[1]


def test_list_tasks_filters_order_and_paging() -> None:
    store = _three_tasks()
    # Ordered by deadline, then id: T2 and T3 share a deadline.
    assert _ids(list_tasks(store)) == (["T2", "T3", "T1"], 3)
    assert _ids(list_tasks(store, unit="postal")) == (["T3", "T1"], 2)
    assert _ids(list_tasks(store, unit="town-a")) == ([], 0)
    assert _ids(list_tasks(store, town="town-a")) == (["T1"], 1)
    assert _ids(list_tasks(store, involving="town-b")) == (["T2"], 1)
    assert _ids(list_tasks(store, involving="commerce")) == (["T2", "T1"], 2)
    assert _ids(list_tasks(store, industry="ride-hailing")) == (["T3"], 1)
    assert _ids(list_tasks(store, state="signed")) == (["T3"], 1)
    assert _ids(list_tasks(store, overdue=True)) == (["T2"], 1)
    assert _ids(list_tasks(store, overdue=False)) == (["T3", "T1"], 2)
    assert _ids(list_tasks(store, offset=1, limit=1)) == (["T3"], 3)
    assert _ids(list_tasks(store, offset=5)) == ([], 3)


def test_tasks_due_for_overdue() -> None:
    store = _three_tasks()
    assert tasks_due_for_overdue(store, t("2026-11-30T23:59")) == []
    # T2 is overdue already; T3 is not due at its deadline's very instant, only after it.
    assert tasks_due_for_overdue(store, t("2026-12-01T00:00")) == []
    assert tasks_due_for_overdue(store, t("2026-12-01T00:01")) == ["T3"]
    assert tasks_due_for_overdue(store, t("2026-12-06T00:00")) == ["T3", "T1"]


def test_only_the_tasks_view_is_written() -> None:
    store = _three_tasks()
    assert set(store.docs) == {TASKS_VIEW}
