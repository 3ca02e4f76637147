"""The linkage matrix (条块联动): department units × towns that share tasks.

A cell (unit, town) counts the tasks on which ``unit`` is the lead or a co-unit and
``town`` is a town. Each task event updates only that task's cells: the task's
contribution before the event is subtracted and its contribution after is added.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

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

TASKS_VIEW = "linkage_tasks"
"""This projection's own folded copy of every task."""
CELLS_VIEW = "linkage_cells"
"""Counts per (unit, town), keyed ``unit/town``; all-zero cells are deleted."""

COUNTS = ("joint", "open", "overdue", "verified_on_time")

Contribution = dict[tuple[str, str], dict[str, int]]


def contribution(task: Doc | None) -> Contribution:
    """What one task adds to each (department unit, town) cell."""
    if task is None:
        return {}
    counts = {
        "joint": 1,
        "open": int(not is_verified(task)),
        "overdue": int(is_still_overdue(task)),
        "verified_on_time": int(is_verified_on_time(task)),
    }
    departments = [task["lead_unit"], *task["co_units"]]
    return {(unit, town): dict(counts) for unit in departments for town in task["towns"]}


class LinkageProjection(Projection):
    """Cells of the 条块 matrix, maintained by before/after difference per task."""

    name: ClassVar[str] = "linkage"
    views: ClassVar[tuple[str, ...]] = (TASKS_VIEW, CELLS_VIEW)
    aggregate_types: ClassVar[frozenset[str] | None] = frozenset({TASK_AGGREGATE})

    def reads(self, event: EventEnvelope) -> Iterable[tuple[str, str]]:
        return task_reads(TASKS_VIEW, event)

    def reads_next(self, event: EventEnvelope, loaded: Peek) -> Iterable[tuple[str, str]]:
        # The cells of the task as it stood before the batch (of a new task, from its
        # event), and those the event adds a unit or town to; a cell that an earlier
        # event of the same batch brought in is read when applied.
        task = task_as_loaded(TASKS_VIEW, event, loaded)
        if task is None:
            return ()
        units, towns = [task["lead_unit"], *task["co_units"]], list(task["towns"])
        if event.type == "TaskCoUnitAdded":
            units.append(event.data["unit"])
        elif event.type == "TaskLeadTransferred":
            units.append(event.data["new_lead"])
        elif event.type == "TaskTownAdded":
            towns.append(event.data["unit"])
        return [(CELLS_VIEW, f"{unit}/{town}") for unit in units for town in towns]

    def apply(self, event: EventEnvelope, store: ViewStore) -> None:
        step = step_task(store, TASKS_VIEW, event)
        if step is None:
            return
        old, new = contribution(step[0]), contribution(step[1])
        for unit, town in sorted(old.keys() | new.keys()):
            before = old.get((unit, town), {})
            after = new.get((unit, town), {})
            delta = {name: after.get(name, 0) - before.get(name, 0) for name in COUNTS}
            if not any(delta.values()):
                continue
            key = f"{unit}/{town}"
            cell = store.get(CELLS_VIEW, key) or {
                "unit": unit,
                "town": town,
                **dict.fromkeys(COUNTS, 0),
            }
            for name, change in delta.items():
                cell[name] += change
            if any(cell[name] for name in COUNTS):
                store.put(CELLS_VIEW, key, cell)
            else:
                store.delete(CELLS_VIEW, key)


def linkage_matrix(store: ViewStore) -> dict[str, Any]:
    """{"units", "towns", "cells"}: the units and towns with a non-zero cell, and the cells."""
    cells = sorted(
        (cell for _, cell in store.scan(CELLS_VIEW)), key=lambda c: (c["unit"], c["town"])
    )
    return {
        "units": sorted({cell["unit"] for cell in cells}),
        "towns": sorted({cell["town"] for cell in cells}),
        "cells": cells,
    }
