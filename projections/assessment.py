"""The assessment board (考核): per lead unit per year, tasks by outcome, weighted.

A task counts for its current lead unit in the local year (district time zone) of its
current deadline. Each task event subtracts the task's contribution before the event
and adds its contribution after, so a transfer or an extension into the next year
moves the task between cells.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from projections.base import Peek, Projection
from projections.envelope import EventEnvelope
from projections.store import Doc, ViewStore
from projections.tasks import (
    TASK_AGGREGATE,
    is_still_overdue,
    is_verified,
    is_verified_on_time,
    step_task,
    task_as_loaded,
    task_reads,
)
from projections.timeutil import DEFAULT_TZ, local_date

TASKS_VIEW = "assessment_tasks"
"""This projection's own folded copy of every task."""
CELLS_VIEW = "assessment_cells"
"""Per (year, lead unit), keyed ``year/unit``; cells with no task are deleted."""

BUCKETS = ("verified_on_time", "verified_late", "still_overdue", "open")
"""Outcomes: verified at or before the deadline / after it / overdue and not verified / neither."""

POINTS = {"verified_on_time": 1.0, "verified_late": 0.5, "still_overdue": -1.0, "open": 0.0}

SCORING_RULE = (
    "score = 1.0 × weight of tasks verified on time (at or before the deadline in force) "
    "+ 0.5 × weight of tasks verified late "
    "− 1.0 × weight of tasks still overdue (overdue and not verified); "
    "open tasks (neither verified nor overdue) score 0. "
    "A task counts for its current lead unit in the year of its current deadline, "
    "in the district time zone."
)
"""The scoring rule (评分规则), returned with every board."""

_PRECISION = 6  # weights are decimals; rounding keeps +/- differences from drifting


def bucket_of(task: Doc) -> str:
    """The outcome bucket of a task."""
    if is_verified(task):
        return "verified_on_time" if is_verified_on_time(task) else "verified_late"
    if is_still_overdue(task):
        return "still_overdue"
    return "open"


def score(cell: Doc) -> float:
    """The score of one (year, unit) cell under ``SCORING_RULE``."""
    total = sum(POINTS[name] * float(cell[name]["weight"]) for name in BUCKETS)
    return round(total, _PRECISION) + 0.0  # + 0.0 turns -0.0 into 0.0


class AssessmentProjection(Projection):
    """Counts and weight sums per bucket, per (year, lead unit)."""

    name: ClassVar[str] = "assessment"
    views: ClassVar[tuple[str, ...]] = (TASKS_VIEW, CELLS_VIEW)
    aggregate_types: ClassVar[frozenset[str] | None] = frozenset({TASK_AGGREGATE})

    def __init__(self, tz: ZoneInfo = DEFAULT_TZ) -> None:
        self.tz = tz

    def _contribution(self, task: Doc | None) -> tuple[str, str, float] | None:
        """(cell key, bucket, weight) of a task, or None."""
        if task is None:
            return None
        year = local_date(task["deadline"], self.tz).year
        return f"{year}/{task['lead_unit']}", bucket_of(task), float(task["weight"])

    def reads(self, event: EventEnvelope) -> Iterable[tuple[str, str]]:
        return task_reads(TASKS_VIEW, event)

    def reads_next(self, event: EventEnvelope, loaded: Peek) -> Iterable[tuple[str, str]]:
        # The cell of the task as it stood before the batch (of a new task, from its
        # event), and the one a transfer or an extension moves it to.
        task = task_as_loaded(TASKS_VIEW, event, loaded)
        found = self._contribution(task)
        if task is None or found is None:
            return ()
        keys = [found[0]]
        if event.type == "TaskLeadTransferred":
            year = local_date(task["deadline"], self.tz).year
            keys.append(f"{year}/{event.data['new_lead']}")
        elif event.type == "TaskExtensionGranted":
            year = local_date(event.data["new_deadline"], self.tz).year
            keys.append(f"{year}/{task['lead_unit']}")
        return [(CELLS_VIEW, key) for key in keys]

    def apply(self, event: EventEnvelope, store: ViewStore) -> None:
        step = step_task(store, TASKS_VIEW, event)
        if step is None:
            return
        old, new = self._contribution(step[0]), self._contribution(step[1])
        if old == new:
            return
        if old is not None:
            self._add(store, old, -1)
        if new is not None:
            self._add(store, new, +1)

    @staticmethod
    def _add(store: ViewStore, contribution: tuple[str, str, float], sign: int) -> None:
        key, bucket, weight = contribution
        cell = store.get(CELLS_VIEW, key)
        if cell is None:
            year, unit = key.split("/", 1)
            cell = {"year": int(year), "unit": unit}
            for name in BUCKETS:
                cell[name] = {"count": 0, "weight": 0.0}
        cell[bucket]["count"] += sign
        cell[bucket]["weight"] = round(cell[bucket]["weight"] + sign * weight, _PRECISION) + 0.0
        if any(cell[name]["count"] for name in BUCKETS):
            store.put(CELLS_VIEW, key, cell)
        else:
            store.delete(CELLS_VIEW, key)


def assessment_board(store: ViewStore, year: int) -> dict[str, Any]:
    """The board of one (local) year: every lead unit's buckets and score, best first."""
    units = []
    for _, cell in store.scan(CELLS_VIEW, f"{year}/"):
        entry: dict[str, Any] = {"unit": cell["unit"]}
        for name in BUCKETS:
            entry[name] = dict(cell[name])
        entry["score"] = score(cell)
        units.append(entry)
    units.sort(key=lambda entry: (-entry["score"], entry["unit"]))
    return {"year": year, "rule": SCORING_RULE, "units": units}
