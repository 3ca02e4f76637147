"""Department view (条) and town view (块): everything one unit has to see.

Rows are kept per (unit, task) and rewritten only for the units of the task an
event touches; chain links and supervised committees are kept per unit.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from domain.tasks import Capacity, TaskState
from projections.base import Projection
from projections.envelope import EventEnvelope
from projections.store import Doc, ViewStore
from projections.tasks import (
    LEAD,
    TASK_AGGREGATE,
    is_verified,
    is_verified_on_time,
    step_task,
    task_reads,
    task_units,
)
from projections.timeutil import days_between, iso, normalize, parse_instant

CHAIN_AGGREGATE = "ResponsibilityChain"
COMMITTEE_AGGREGATE = "IndustryPartyCommittee"

TASKS_VIEW = "unit_views_tasks"
"""This projection's own folded copy of every task."""
ROWS_VIEW = "unit_views_rows"
"""One row per (unit, task), keyed ``unit/task_id``."""
CHAINS_VIEW = "unit_views_chains"
"""Per chain aggregate: its industry and which unit holds each link."""
LINKS_VIEW = "unit_views_links"
"""Chain links held, keyed ``unit/industry/link_id``."""
COMMITTEES_VIEW = "unit_views_committees"
"""Committees supervised, keyed ``unit/committee_id``."""

DUE_SOON = timedelta(days=7)
CAPACITIES = tuple(c.value for c in Capacity)
STATES = tuple(s.value for s in TaskState)


def _rows(task: Doc | None) -> dict[str, Doc]:
    """The rows a task contributes, by unit."""
    if task is None:
        return {}
    return {
        unit: {
            "unit": unit,
            "task_id": task["id"],
            "capacity": capacity,
            "signed": unit in task["signatures"],
            "title": task["title"],
            "state": task["state"],
            "deadline": task["deadline"],
            "overdue": task["overdue"],
            "verified_at": task["verified_at"],
            "on_time": task["on_time"],
            "weight": task["weight"],
        }
        for unit, capacity in task_units(task).items()
    }


def _link_order(link_id: str) -> tuple[int, str]:
    # Link ids are L1, L2, ... L10: order by the number, not the text.
    match = re.search(r"(\d+)$", link_id)
    return (int(match.group(1)) if match else 0, link_id)


class UnitViewProjection(Projection):
    """Per-unit task rows, chain links held and committees supervised."""

    name: ClassVar[str] = "unit_views"
    views: ClassVar[tuple[str, ...]] = (
        TASKS_VIEW,
        ROWS_VIEW,
        CHAINS_VIEW,
        LINKS_VIEW,
        COMMITTEES_VIEW,
    )
    aggregate_types: ClassVar[frozenset[str] | None] = frozenset(
        {TASK_AGGREGATE, CHAIN_AGGREGATE, COMMITTEE_AGGREGATE}
    )

    def reads(self, event: EventEnvelope) -> Iterable[tuple[str, str]]:
        if event.aggregate_type == CHAIN_AGGREGATE and event.type != "ChainEstablished":
            return [(CHAINS_VIEW, event.aggregate_id)]
        return task_reads(TASKS_VIEW, event)

    def apply(self, event: EventEnvelope, store: ViewStore) -> None:
        step = step_task(store, TASKS_VIEW, event)
        if step is not None:
            self._apply_task(step[0], step[1], store)
        elif event.aggregate_type == CHAIN_AGGREGATE:
            self._apply_chain(event, store)
        elif event.aggregate_type == COMMITTEE_AGGREGATE and event.type == "CommitteeEstablished":
            unit = str(event.data["supervising_unit"])
            store.put(
                COMMITTEES_VIEW,
                f"{unit}/{event.aggregate_id}",
                {
                    "id": event.aggregate_id,
                    "name": event.data["name"],
                    "industry": event.data["industry"],
                },
            )

    @staticmethod
    def _apply_task(before: Doc | None, after: Doc | None, store: ViewStore) -> None:
        old, new = _rows(before), _rows(after)
        task_id = (after or before or {}).get("id")
        for unit in sorted(old.keys() - new.keys()):
            store.delete(ROWS_VIEW, f"{unit}/{task_id}")
        for unit in sorted(new):
            if old.get(unit) != new[unit]:
                store.put(ROWS_VIEW, f"{unit}/{task_id}", new[unit])

    @staticmethod
    def _apply_chain(event: EventEnvelope, store: ViewStore) -> None:
        data = event.data
        if event.type == "ChainEstablished":
            store.put(
                CHAINS_VIEW,
                event.aggregate_id,
                {"industry": data["industry"], "name": data["name"], "links": {}},
            )
            return
        chain = store.get(CHAINS_VIEW, event.aggregate_id)
        if chain is None:
            return
        industry = chain["industry"]
        if event.type == "ChainLinkAdded":
            link_id, unit = str(data["link_id"]), str(data["unit"])
            chain["links"][link_id] = unit
            store.put(CHAINS_VIEW, event.aggregate_id, chain)
            store.put(
                LINKS_VIEW,
                f"{unit}/{industry}/{link_id}",
                {
                    "unit": unit,
                    "industry": industry,
                    "link_id": link_id,
                    "role": data["role"],
                    "responsible_person": data["responsible_person"],
                    "since": iso(event.at),
                    "duties": list(data["duties"]),
                },
            )
            return
        if event.type not in ("ResponsiblePersonHandedOver", "ChainLinkDutiesRevised"):
            return
        link_id = str(data["link_id"])
        holder = chain["links"].get(link_id)
        if holder is None:
            return
        key = f"{holder}/{industry}/{link_id}"
        link = store.get(LINKS_VIEW, key)
        if link is None:
            return
        if event.type == "ResponsiblePersonHandedOver":
            link["responsible_person"] = data["responsible_person"]
            link["since"] = normalize(data["effective_at"])
        else:
            link["duties"] = list(data["duties"])
        store.put(LINKS_VIEW, key, link)


def _summary(row: Doc) -> dict[str, Any]:
    return {
        "id": row["task_id"],
        "title": row["title"],
        "capacity": row["capacity"],
        "state": row["state"],
        "deadline": row["deadline"],
        "overdue": row["overdue"],
    }


def unit_view(store: ViewStore, unit: str, *, now: datetime, tz: ZoneInfo) -> dict[str, Any]:
    """The department (条) or town (块) view of one unit.

    Overdue days are counted in local days of ``tz``; the on-time rate is over the
    tasks the unit currently leads that are verified or overdue (None if none).
    """
    counts: dict[str, dict[str, int]] = {c: dict.fromkeys(STATES, 0) for c in CAPACITIES}
    judged = on_time = 0
    # One pass over the rows, each deadline parsed once: a department leads hundreds
    # of tasks, and this runs on every read of its view.
    dated: list[tuple[datetime, str, Doc]] = []
    for _, row in store.scan(ROWS_VIEW, f"{unit}/"):
        by_state = counts[row["capacity"]]
        by_state[row["state"]] = by_state.get(row["state"], 0) + 1
        if row["capacity"] == LEAD and (is_verified(row) or row["overdue"]):
            judged += 1
            on_time += is_verified_on_time(row)
        dated.append((parse_instant(row["deadline"]), row["task_id"], row))
    dated.sort(key=itemgetter(0, 1))  # deadline, then task id: never the row itself
    horizon = now + DUE_SOON
    awaiting: list[dict[str, Any]] = []
    due_soon: list[dict[str, Any]] = []
    overdue: list[dict[str, Any]] = []
    for deadline, _, row in dated:
        if is_verified(row):
            continue
        if not row["signed"]:
            awaiting.append(_summary(row))
        if now <= deadline <= horizon:
            due_soon.append(_summary(row))
        if row["overdue"]:
            overdue.append({**_summary(row), "overdue_days": days_between(deadline, now, tz)})
    links = sorted(
        (link for _, link in store.scan(LINKS_VIEW, f"{unit}/")),
        key=lambda link: (link["industry"], _link_order(link["link_id"])),
    )
    committees = sorted(
        (committee for _, committee in store.scan(COMMITTEES_VIEW, f"{unit}/")),
        key=lambda c: (c["industry"], c["name"], c["id"]),
    )
    return {
        "unit": unit,
        "tasks": counts,
        "awaiting_signature": awaiting,
        "due_within_7_days": due_soon,
        "overdue": overdue,
        "on_time_rate": on_time / judged if judged else None,
        "chain_links": links,
        "committees": committees,
    }


def town_view(store: ViewStore, town: str, *, now: datetime, tz: ZoneInfo) -> dict[str, Any]:
    """The town/street view (块): the unit view of a unit of kind "town"."""
    return unit_view(store, town, now=now, tz=tz)
