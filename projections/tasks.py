"""Supervised tasks (督办任务) on the read side: the shared pure fold, and the task list.

``fold_task`` replays the state machine of ``domain.tasks.SupervisedTask`` on plain
documents. Every projection that needs task state keeps its own copy of the folded
task in its own namespace (via ``step_task``), so no projection reads another's
documents and each can be rebuilt on its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, ClassVar

from domain.tasks import Capacity, TaskState
from projections.base import Peek, Projection
from projections.envelope import EventEnvelope
from projections.store import Doc, ViewStore
from projections.timeutil import iso, normalize, parse_instant

TASK_AGGREGATE = "SupervisedTask"
"""The ``aggregate_type`` of task events."""

TASK_EVENTS = frozenset(
    {
        "TaskIssued",
        "TaskSignedFor",
        "TaskProgressReported",
        "TaskContributionReported",
        "TaskCompletionReported",
        "TaskExtensionRequested",
        "TaskExtensionGranted",
        "TaskExtensionDenied",
        "TaskVerified",
        "TaskReturned",
        "TaskUrged",
        "TaskLeadTransferred",
        "TaskCoUnitAdded",
        "TaskCoUnitRemoved",
        "TaskTownAdded",
        "TaskTownRemoved",
        "TaskBecameOverdue",
    }
)
"""Every event type of a supervised task; anything else leaves a task untouched."""

LEAD = Capacity.LEAD.value
CO_UNIT = Capacity.CO_UNIT.value
TOWN = Capacity.TOWN.value
VERIFIED = TaskState.VERIFIED.value


def is_task_event(event: EventEnvelope) -> bool:
    """Whether the event is one ``fold_task`` understands."""
    return event.aggregate_type == TASK_AGGREGATE and event.type in TASK_EVENTS


def _issued(event: EventEnvelope) -> Doc:
    data = event.data
    return {
        "id": event.aggregate_id,
        "title": data["title"],
        "industry": data["industry"],
        "lead_unit": data["lead_unit"],
        "co_units": list(data.get("co_units") or []),
        "towns": list(data.get("towns") or []),
        "state": TaskState.ISSUED.value,
        "deadline": normalize(data["deadline"]),
        "weight": float(data["weight"]),
        "overdue": False,
        "overdue_since": None,
        "issued_at": iso(event.at),
        "verified_at": None,
        "on_time": None,
        "completion_reported_at": None,
        "signatures": {},
        "urge_count": 0,
        "pending_extension": None,
        "meeting_id": data.get("meeting_id"),
        "resolution_id": data.get("resolution_id"),
        "version": event.version,
        "updated_at": iso(event.at),
    }


def _without(items: list[str], unit: str) -> list[str]:
    """``items`` less ``unit``: a new list, so the summary folded from keeps its own."""
    return [item for item in items if item != unit]


def _unsigned(signatures: dict[str, str], unit: str) -> dict[str, str]:
    """``signatures`` less ``unit``'s: a new dict."""
    return {u: at for u, at in signatures.items() if u != unit}


def fold_task(doc: Doc | None, event: EventEnvelope) -> Doc | None:
    """The task summary after ``event``; ``doc`` is the summary before (None if none yet).

    Pure: never mutates ``doc``. Events that are not task events, or that arrive for
    a task never issued, leave the document as it was.
    """
    if not is_task_event(event):
        return doc
    if event.type == "TaskIssued":
        return _issued(event)
    if doc is None:
        return None
    # A shallow copy: the branches below replace a list or dict they change rather than
    # change it in place, so ``doc`` stays as it was (a deep or per-key copy of every
    # summary was the largest single cost of applying a task event).
    task = dict(doc)
    data = event.data
    at = iso(event.at)
    kind = event.type
    if kind == "TaskSignedFor":
        unit = data["unit"]
        task["signatures"] = {**task["signatures"], unit: at}
        if unit == task["lead_unit"] and task["state"] == TaskState.ISSUED.value:
            task["state"] = TaskState.SIGNED.value
    elif kind == "TaskProgressReported":
        if data["unit"] == task["lead_unit"]:
            task["state"] = TaskState.IN_PROGRESS.value
    elif kind == "TaskCompletionReported":
        task["state"] = TaskState.COMPLETION_REPORTED.value
        task["completion_reported_at"] = at
    elif kind == "TaskExtensionRequested":
        task["pending_extension"] = data["request_id"]
    elif kind == "TaskExtensionGranted":
        task["deadline"] = normalize(data["new_deadline"])
        task["overdue"] = False
        task["overdue_since"] = None
        if task["pending_extension"] == data["request_id"]:
            task["pending_extension"] = None
    elif kind == "TaskExtensionDenied":
        if task["pending_extension"] == data["request_id"]:
            task["pending_extension"] = None
    elif kind == "TaskVerified":
        task["state"] = VERIFIED
        task["verified_at"] = at
        on_time = data.get("on_time")
        # The event records the domain's own verdict; fall back to the same rule.
        if on_time is None:
            on_time = parse_instant(at) <= parse_instant(task["deadline"])
        task["on_time"] = bool(on_time)
    elif kind == "TaskReturned":
        task["state"] = TaskState.RETURNED.value
        task["completion_reported_at"] = None
    elif kind == "TaskUrged":
        task["urge_count"] += 1
    elif kind == "TaskLeadTransferred":
        new_lead = data["new_lead"]
        task["lead_unit"] = new_lead
        task["co_units"] = _without(task["co_units"], new_lead)
        signed = new_lead in task["signatures"]
        task["state"] = TaskState.SIGNED.value if signed else TaskState.ISSUED.value
    elif kind == "TaskCoUnitAdded":
        if data["unit"] not in task["co_units"]:
            task["co_units"] = [*task["co_units"], data["unit"]]
    elif kind == "TaskCoUnitRemoved":
        task["co_units"] = _without(task["co_units"], data["unit"])
        task["signatures"] = _unsigned(task["signatures"], data["unit"])
    elif kind == "TaskTownAdded":
        if data["unit"] not in task["towns"]:
            task["towns"] = [*task["towns"], data["unit"]]
    elif kind == "TaskTownRemoved":
        task["towns"] = _without(task["towns"], data["unit"])
        task["signatures"] = _unsigned(task["signatures"], data["unit"])
    elif kind == "TaskBecameOverdue":
        task["overdue"] = True
        task["overdue_since"] = normalize(data.get("deadline")) or task["deadline"]
    task["version"] = event.version
    task["updated_at"] = at
    return task


def task_as_loaded(view: str, event: EventEnvelope, loaded: Peek) -> Doc | None:
    """For ``reads_next``: the task a batch's event starts from, as far as known beforehand.

    The task copy in ``view`` as the batch loaded it, or for ``TaskIssued`` the task the
    event creates; None for other events.
    """
    if not is_task_event(event):
        return None
    if event.type == "TaskIssued":
        return fold_task(None, event)
    return loaded(view, event.aggregate_id)


def task_reads(view: str, event: EventEnvelope) -> list[tuple[str, str]]:
    """What ``step_task`` reads for ``event``: the task's copy in ``view``, if a task event."""
    return [(view, event.aggregate_id)] if is_task_event(event) else []


def step_task(
    store: ViewStore, view: str, event: EventEnvelope
) -> tuple[Doc | None, Doc | None] | None:
    """Fold ``event`` into the task copy kept in ``view``; returns (before, after).

    Returns None when the event is not a task event (nothing was touched).
    """
    if not is_task_event(event):
        return None
    before = store.get(view, event.aggregate_id)
    after = fold_task(before, event)
    if after is not None and after != before:
        store.put(view, event.aggregate_id, after)
    return before, after


# ------------------------------------------------------------ pure readers of a task doc
def task_units(task: Doc) -> dict[str, str]:
    """Every unit of the task and its capacity: lead, co-units, towns."""
    units: dict[str, str] = {}
    for town in task["towns"]:
        units[town] = TOWN
    for co_unit in task["co_units"]:
        units[co_unit] = CO_UNIT
    units[task["lead_unit"]] = LEAD
    return units


def is_verified(task: Doc) -> bool:
    """验收销号 already."""
    return bool(task["state"] == VERIFIED)


def is_still_overdue(task: Doc) -> bool:
    """Overdue recorded and not verified."""
    return bool(task["overdue"]) and not is_verified(task)


def is_verified_on_time(task: Doc) -> bool:
    """Verified at or before the deadline in force at verification."""
    return is_verified(task) and bool(task.get("on_time"))


def deadline_of(task: Doc) -> datetime:
    """The task's current deadline as an aware datetime."""
    return parse_instant(task["deadline"])


def by_deadline(tasks: Iterable[Doc], key: str = "id") -> list[Doc]:
    """Documents ordered by deadline, then by ``key``."""
    return sorted(tasks, key=lambda t: (parse_instant(t["deadline"]), t[key]))


# ----------------------------------------------------------------------- task list
TASKS_VIEW = "tasks"


class TaskListProjection(Projection):
    """One summary document per supervised task, keyed by task id."""

    name: ClassVar[str] = "tasks"
    views: ClassVar[tuple[str, ...]] = (TASKS_VIEW,)
    aggregate_types: ClassVar[frozenset[str] | None] = frozenset({TASK_AGGREGATE})

    def reads(self, event: EventEnvelope) -> Iterable[tuple[str, str]]:
        return task_reads(TASKS_VIEW, event)

    def apply(self, event: EventEnvelope, store: ViewStore) -> None:
        step_task(store, TASKS_VIEW, event)


def get_task(store: ViewStore, task_id: str) -> Doc | None:
    """One task summary, or None."""
    return store.get(TASKS_VIEW, task_id)


def list_tasks(
    store: ViewStore,
    *,
    state: str | None = None,
    unit: str | None = None,
    town: str | None = None,
    industry: str | None = None,
    overdue: bool | None = None,
    involving: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[dict[str, Any]], int]:
    """Task summaries matching every filter given, by deadline then id; and the total.

    ``unit`` matches the lead or a co-unit, ``town`` a town of the task, ``involving``
    any of the three (a liaison sees only tasks involving its unit).
    """
    matches: list[Doc] = []
    for _, task in store.scan(TASKS_VIEW):
        if state is not None and task["state"] != state:
            continue
        if unit is not None and unit != task["lead_unit"] and unit not in task["co_units"]:
            continue
        if town is not None and town not in task["towns"]:
            continue
        if industry is not None and task["industry"] != industry:
            continue
        if overdue is not None and bool(task["overdue"]) != overdue:
            continue
        if involving is not None and involving not in task_units(task):
            continue
        matches.append(task)
    ordered = by_deadline(matches)
    start = max(0, offset)
    return ordered[start : start + max(0, limit)], len(ordered)


def tasks_due_for_overdue(store: ViewStore, now: datetime) -> list[str]:
    """Ids of tasks not verified, not yet overdue, whose deadline lies before now.

    The deadline watcher records ``TaskBecameOverdue`` for each of them.
    """
    due = [
        task
        for _, task in store.scan(TASKS_VIEW)
        if not is_verified(task) and not task["overdue"] and deadline_of(task) < now
    ]
    return [task["id"] for task in by_deadline(due)]
