"""The accountability ledger (问责台账): who held each task when, and who let it slip.

Per task: the lead units that held it, its state periods, overdue periods, urges,
extensions, transfers and returns. From the responsibility chains it also keeps, per
(industry, unit), the history of each link's responsible person (负责人), so the ledger
can say which person stood behind the lead unit at any time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from domain.tasks import TaskState
from projections.base import Peek, Projection
from projections.envelope import EventEnvelope
from projections.store import Doc, ViewStore
from projections.tasks import TASK_AGGREGATE, fold_task, is_task_event
from projections.timeutil import days_between, iso, normalize, parse_instant

CHAIN_AGGREGATE = "ResponsibilityChain"

TASKS_VIEW = "ledger_tasks"
"""Per task: this projection's folded copy ("task") and the task's history."""
CHAINS_VIEW = "ledger_chains"
"""Per chain aggregate: its industry and the unit of each link."""
PERSONS_VIEW = "ledger_persons"
"""Per (industry, unit), keyed ``industry/unit``: each link's responsible persons."""

TERMINAL = TaskState.VERIFIED.value


def _close(periods: list[Doc], at: str) -> None:
    if periods and periods[-1]["to"] is None:
        periods[-1]["to"] = at


def _by(event: EventEnvelope) -> str | None:
    return event.actor.get("id")


def _new_ledger(task: Doc, at: str) -> Doc:
    lead = task["lead_unit"]
    return {
        "task": task,
        "holders": [{"unit": lead, "from": at, "to": None}],
        "state_periods": [{"state": task["state"], "unit": lead, "from": at, "to": None}],
        "overdue_periods": [],
        "urges": [],
        "extensions": [],
        "transfers": [],
        "returns": [],
    }


def _record(ledger: Doc, before: Doc, after: Doc, event: EventEnvelope) -> None:
    """Append what the event adds to the task's history."""
    at = iso(event.at)
    data = event.data
    kind = event.type
    if kind == "TaskLeadTransferred":
        _close(ledger["holders"], at)
        ledger["holders"].append({"unit": after["lead_unit"], "from": at, "to": None})
        ledger["transfers"].append(
            {
                "at": at,
                "by": _by(event),
                "previous_lead": before["lead_unit"],
                "new_lead": after["lead_unit"],
                "reason": data.get("reason"),
            }
        )
    elif kind == "TaskVerified":
        # Nobody holds a verified task any more: its last holding and overdue end here.
        _close(ledger["holders"], at)
        _close(ledger["overdue_periods"], at)
    elif kind == "TaskBecameOverdue":
        if not ledger["overdue_periods"] or ledger["overdue_periods"][-1]["to"] is not None:
            since = normalize(data.get("deadline")) or before["deadline"]
            ledger["overdue_periods"].append({"from": since, "to": None})
    elif kind == "TaskExtensionRequested":
        ledger["extensions"].append(
            {
                "request_id": data["request_id"],
                "unit": data.get("unit"),
                "new_deadline": normalize(data.get("new_deadline")),
                "reason": data.get("reason"),
                "status": "pending",
                "requested_at": at,
                "decided_at": None,
                "decided_by": None,
                "decision_note": None,
            }
        )
    elif kind in ("TaskExtensionGranted", "TaskExtensionDenied"):
        granted = kind == "TaskExtensionGranted"
        for request in ledger["extensions"]:
            if request["request_id"] == data["request_id"]:
                request["status"] = "granted" if granted else "denied"
                request["decided_at"] = at
                request["decided_by"] = _by(event)
                request["decision_note"] = data.get("note") if granted else data.get("reason")
        if granted:
            _close(ledger["overdue_periods"], at)
    elif kind == "TaskUrged":
        ledger["urges"].append(
            {
                "at": at,
                "by": _by(event),
                "note": data.get("note"),
                "unit": data.get("unit", before["lead_unit"]),
            }
        )
    elif kind == "TaskReturned":
        ledger["returns"].append(
            {"at": at, "by": _by(event), "reason": data.get("reason"), "unit": after["lead_unit"]}
        )
    if (after["state"], after["lead_unit"]) != (before["state"], before["lead_unit"]):
        _close(ledger["state_periods"], at)
        ledger["state_periods"].append(
            {"state": after["state"], "unit": after["lead_unit"], "from": at, "to": None}
        )


class LedgerProjection(Projection):
    """Task histories and responsible-person histories for the accountability ledger."""

    name: ClassVar[str] = "ledger"
    views: ClassVar[tuple[str, ...]] = (TASKS_VIEW, CHAINS_VIEW, PERSONS_VIEW)
    aggregate_types: ClassVar[frozenset[str] | None] = frozenset({TASK_AGGREGATE, CHAIN_AGGREGATE})

    def reads(self, event: EventEnvelope) -> Iterable[tuple[str, str]]:
        if is_task_event(event):
            return [(TASKS_VIEW, event.aggregate_id)]
        if event.aggregate_type == CHAIN_AGGREGATE and event.type != "ChainEstablished":
            return [(CHAINS_VIEW, event.aggregate_id)]
        return ()

    def reads_next(self, event: EventEnvelope, loaded: Peek) -> Iterable[tuple[str, str]]:
        # The responsible persons of the link's unit in the chain's industry.
        if event.type not in ("ChainLinkAdded", "ResponsiblePersonHandedOver"):
            return ()
        if event.aggregate_type != CHAIN_AGGREGATE:
            return ()
        chain = loaded(CHAINS_VIEW, event.aggregate_id)
        if chain is None:
            return ()
        if event.type == "ChainLinkAdded":
            unit = str(event.data["unit"])
        else:
            unit = chain["links"].get(str(event.data["link_id"]))
        return [(PERSONS_VIEW, f"{chain['industry']}/{unit}")] if unit else []

    def apply(self, event: EventEnvelope, store: ViewStore) -> None:
        if is_task_event(event):
            self._apply_task(event, store)
        elif event.aggregate_type == CHAIN_AGGREGATE:
            self._apply_chain(event, store)

    @staticmethod
    def _apply_task(event: EventEnvelope, store: ViewStore) -> None:
        ledger = store.get(TASKS_VIEW, event.aggregate_id)
        if event.type == "TaskIssued":
            issued = fold_task(None, event)
            if issued is not None:
                store.put(TASKS_VIEW, event.aggregate_id, _new_ledger(issued, iso(event.at)))
            return
        if ledger is None:
            return
        before = ledger["task"]
        after = fold_task(before, event)
        if after is None:
            return
        _record(ledger, before, after, event)
        ledger["task"] = after
        store.put(TASKS_VIEW, event.aggregate_id, ledger)

    @staticmethod
    def _apply_chain(event: EventEnvelope, store: ViewStore) -> None:
        data = event.data
        if event.type == "ChainEstablished":
            store.put(CHAINS_VIEW, event.aggregate_id, {"industry": data["industry"], "links": {}})
            return
        if event.type not in ("ChainLinkAdded", "ResponsiblePersonHandedOver"):
            return
        chain = store.get(CHAINS_VIEW, event.aggregate_id)
        if chain is None:
            return
        link_id = str(data["link_id"])
        if event.type == "ChainLinkAdded":
            unit = str(data["unit"])
            chain["links"][link_id] = unit
            store.put(CHAINS_VIEW, event.aggregate_id, chain)
        else:
            unit = chain["links"].get(link_id)
            if unit is None:
                return
        key = f"{chain['industry']}/{unit}"
        doc = store.get(PERSONS_VIEW, key) or {
            "industry": chain["industry"],
            "unit": unit,
            "links": {},
        }
        if event.type == "ChainLinkAdded":
            doc["links"][link_id] = {
                "role": data.get("role"),
                "persons": [
                    {"person": data["responsible_person"], "from": iso(event.at), "reason": None}
                ],
            }
        else:
            link = doc["links"].get(link_id)
            if link is None:
                return
            link["persons"].append(
                {
                    "person": data["responsible_person"],
                    "from": normalize(data["effective_at"]),
                    "reason": data.get("reason"),
                }
            )
        store.put(PERSONS_VIEW, key, doc)


# ------------------------------------------------------------------------------ query
def _link_order(link_id: str) -> tuple[int, str]:
    # Link ids are L1, L2, ... L10: order by the number, not the text.
    match = re.search(r"(\d+)$", link_id)
    return (int(match.group(1)) if match else 0, link_id)


def _spans(periods: list[Doc]) -> Iterator[tuple[Doc, datetime, datetime | None]]:
    for period in periods:
        end = period["to"]
        yield period, parse_instant(period["from"]), parse_instant(end) if end else None


def _intersect(
    a_from: datetime, a_to: datetime | None, b_from: datetime, b_to: datetime | None
) -> tuple[datetime, datetime | None]:
    start = max(a_from, b_from)
    ends = [end for end in (a_to, b_to) if end is not None]
    return start, min(ends) if ends else None


def _persons_during(
    store: ViewStore, industry: str, holder: Doc, now: datetime
) -> list[dict[str, Any]]:
    """The responsible persons of the holder's links in the industry's chain, while it held."""
    doc = store.get(PERSONS_VIEW, f"{industry}/{holder['unit']}")
    if doc is None:
        return []
    h_from = parse_instant(holder["from"])
    h_to = parse_instant(holder["to"]) if holder["to"] else None
    found: list[tuple[datetime, tuple[int, str], dict[str, Any]]] = []
    for link_id in sorted(doc["links"], key=_link_order):
        link = doc["links"][link_id]
        persons = link["persons"]
        for index, person in enumerate(persons):
            p_from = parse_instant(person["from"])
            nxt = persons[index + 1] if index + 1 < len(persons) else None
            p_to = parse_instant(nxt["from"]) if nxt else None
            start, end = _intersect(h_from, h_to, p_from, p_to)
            # An open-ended intersection counts up to now; empty ones are dropped.
            if start >= (end if end is not None else now):
                continue
            found.append(
                (
                    start,
                    _link_order(link_id),
                    {
                        "person": person["person"],
                        "from": iso(start),
                        "to": iso(end) if end is not None else None,
                        "link_id": link_id,
                        "role": link["role"],
                    },
                )
            )
    found.sort(key=lambda item: (item[0], item[1]))
    return [entry for _, _, entry in found]


def _time_in_state(ledger: Doc, now: datetime) -> list[dict[str, Any]]:
    totals: dict[tuple[str, str], float] = {}
    for period, start, end in _spans(ledger["state_periods"]):
        if period["state"] == TERMINAL:
            # Time after verification is nobody's time in a state.
            continue
        seconds = max(0.0, ((end or now) - start).total_seconds())
        key = (period["unit"], period["state"])
        totals[key] = totals.get(key, 0.0) + seconds
    return [{"unit": u, "state": s, "seconds": secs} for (u, s), secs in totals.items()]


def _overdue_days_by_unit(ledger: Doc, now: datetime, tz: ZoneInfo) -> dict[str, int]:
    days: dict[str, int] = {}
    holders = list(_spans(ledger["holders"]))
    for _, o_from, o_to in _spans(ledger["overdue_periods"]):
        o_end = o_to or now
        for holder, h_from, h_to in holders:
            start, end = _intersect(o_from, o_end, h_from, h_to)
            if end is None or start >= end:
                continue
            unit = holder["unit"]
            days[unit] = days.get(unit, 0) + days_between(start, end, tz)
    return days


def task_ledger(
    store: ViewStore, task_id: str, *, now: datetime, tz: ZoneInfo
) -> dict[str, Any] | None:
    """The accountability ledger of one task, with open periods ending at ``now``.

    Overdue periods are split at lead transfers; each piece [a, b) gives its holder
    (local date of b − local date of a) days in ``tz``.
    """
    ledger = store.get(TASKS_VIEW, task_id)
    if ledger is None:
        return None
    task = ledger["task"]
    holders = [
        {**holder, "responsible_persons": _persons_during(store, task["industry"], holder, now)}
        for holder in ledger["holders"]
    ]
    by_unit = _overdue_days_by_unit(ledger, now, tz)
    return {
        "task_id": task_id,
        "title": task["title"],
        "industry": task["industry"],
        "lead_unit": task["lead_unit"],
        "state": task["state"],
        "holders": holders,
        "state_periods": ledger["state_periods"],
        "time_in_state": _time_in_state(ledger, now),
        "overdue_periods": ledger["overdue_periods"],
        "overdue_days_by_unit": by_unit,
        "overdue_days_total": sum(by_unit.values()),
        "urges": ledger["urges"],
        "extensions": ledger["extensions"],
        "transfers": ledger["transfers"],
        "returns": ledger["returns"],
    }
