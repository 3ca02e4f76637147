"""Building event envelopes for projection tests, without any I/O.

``Events`` hands out increasing positions and per-aggregate versions, and remembers
each task's deadline and extension requests so its envelopes carry the same data the
domain would record (previous deadlines, ``on_time``...).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any
from uuid import UUID

from domain.ids import chain_id, unit_id
from projections.base import Projection
from projections.envelope import EventEnvelope
from projections.store import MemoryViewStore

Actor = dict[str, str | None]

SECRETARIAT: Actor = {"id": "sec-wang", "role": "secretariat", "unit": "social-work"}
SYSTEM: Actor = {"id": "system:deadline-watcher", "role": "secretariat", "unit": None}


def liaison(unit: str) -> Actor:
    """The actor dict of the liaison of ``unit``."""
    return {"id": f"liaison-{unit}", "role": "liaison", "unit": unit}


def t(text: str) -> datetime:
    """An aware UTC instant from ``YYYY-MM-DDTHH:MM`` (UTC)."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def iso(text: str) -> str:
    """The document form of ``t(text)``."""
    return t(text).isoformat()


class Events:
    """An ordered log of envelopes with helpers for every event type the tests use."""

    def __init__(self) -> None:
        self.log: list[EventEnvelope] = []
        self.versions: dict[str, int] = {}
        self.deadlines: dict[str, datetime] = {}
        self.requests: dict[tuple[str, str], datetime] = {}
        self.leads: dict[str, str] = {}

    def emit(
        self,
        aggregate_type: str,
        aggregate_id: str,
        type_: str,
        at: datetime,
        data: dict[str, Any] | None = None,
        actor: Actor | None = None,
    ) -> EventEnvelope:
        """Append one envelope at the next position and the aggregate's next version."""
        version = self.versions.get(aggregate_id, 0) + 1
        self.versions[aggregate_id] = version
        envelope = EventEnvelope(
            position=len(self.log) + 1,
            aggregate_id=aggregate_id,
            aggregate_type=aggregate_type,
            version=version,
            type=type_,
            at=at,
            actor=dict(actor or SECRETARIAT),
            data=dict(data or {}),
        )
        self.log.append(envelope)
        return envelope

    # ------------------------------------------------------------------- tasks
    def _task(
        self, task_id: str, type_: str, at: str, data: dict[str, Any], actor: Actor | None = None
    ) -> EventEnvelope:
        return self.emit("SupervisedTask", task_id, type_, t(at), data, actor)

    def issue(
        self,
        task_id: str,
        *,
        at: str,
        lead: str,
        deadline: str,
        co_units: Sequence[str] = (),
        towns: Sequence[str] = (),
        weight: float = 1.0,
        industry: str = "express",
        title: str | None = None,
    ) -> EventEnvelope:
        self.deadlines[task_id] = t(deadline)
        self.leads[task_id] = lead
        return self._task(
            task_id,
            "TaskIssued",
            at,
            {
                "title": title or f"Task {task_id}",
                "description": "",
                "industry": industry,
                "lead_unit": lead,
                "co_units": list(co_units),
                "towns": list(towns),
                "deadline": t(deadline).isoformat(),
                "weight": weight,
                "meeting_id": "m-1",
                "resolution_id": "R1",
            },
        )

    def sign(self, task_id: str, unit: str, at: str) -> EventEnvelope:
        return self._task(task_id, "TaskSignedFor", at, {"unit": unit}, liaison(unit))

    def progress(self, task_id: str, unit: str, at: str, percent: int | None = 50) -> EventEnvelope:
        data = {"unit": unit, "note": "working on it", "percent": percent}
        return self._task(task_id, "TaskProgressReported", at, data, liaison(unit))

    def contribute(self, task_id: str, unit: str, at: str) -> EventEnvelope:
        data = {"unit": unit, "note": "did our part"}
        return self._task(task_id, "TaskContributionReported", at, data, liaison(unit))

    def complete(self, task_id: str, at: str) -> EventEnvelope:
        unit = self.leads[task_id]
        data = {"unit": unit, "note": "done"}
        return self._task(task_id, "TaskCompletionReported", at, data, liaison(unit))

    def verify(self, task_id: str, at: str) -> EventEnvelope:
        on_time = t(at) <= self.deadlines[task_id]
        return self._task(task_id, "TaskVerified", at, {"note": "accepted", "on_time": on_time})

    def return_(self, task_id: str, at: str, reason: str = "incomplete evidence") -> EventEnvelope:
        return self._task(task_id, "TaskReturned", at, {"reason": reason})

    def urge(self, task_id: str, at: str, note: str = "hurry") -> EventEnvelope:
        data = {"unit": self.leads[task_id], "note": note}
        return self._task(task_id, "TaskUrged", at, data)

    def transfer(
        self, task_id: str, new_lead: str, at: str, reason: str = "wrong lead"
    ) -> EventEnvelope:
        previous = self.leads[task_id]
        self.leads[task_id] = new_lead
        data = {"previous_lead": previous, "new_lead": new_lead, "reason": reason}
        return self._task(task_id, "TaskLeadTransferred", at, data)

    def add_co_unit(self, task_id: str, unit: str, at: str) -> EventEnvelope:
        return self._task(task_id, "TaskCoUnitAdded", at, {"unit": unit})

    def remove_co_unit(self, task_id: str, unit: str, at: str) -> EventEnvelope:
        return self._task(task_id, "TaskCoUnitRemoved", at, {"unit": unit, "reason": "not needed"})

    def add_town(self, task_id: str, unit: str, at: str) -> EventEnvelope:
        return self._task(task_id, "TaskTownAdded", at, {"unit": unit})

    def remove_town(self, task_id: str, unit: str, at: str) -> EventEnvelope:
        return self._task(task_id, "TaskTownRemoved", at, {"unit": unit, "reason": "not needed"})

    def request_extension(
        self, task_id: str, request_id: str, new_deadline: str, at: str, reason: str = "rain"
    ) -> EventEnvelope:
        self.requests[(task_id, request_id)] = t(new_deadline)
        unit = self.leads[task_id]
        data = {
            "request_id": request_id,
            "unit": unit,
            "new_deadline": t(new_deadline).isoformat(),
            "reason": reason,
        }
        return self._task(task_id, "TaskExtensionRequested", at, data, liaison(unit))

    def grant(self, task_id: str, request_id: str, at: str, note: str = "ok") -> EventEnvelope:
        previous = self.deadlines[task_id]
        new = self.requests[(task_id, request_id)]
        self.deadlines[task_id] = new
        data = {
            "request_id": request_id,
            "previous_deadline": previous.isoformat(),
            "new_deadline": new.isoformat(),
            "note": note,
        }
        return self._task(task_id, "TaskExtensionGranted", at, data)

    def deny(self, task_id: str, request_id: str, at: str, reason: str = "no") -> EventEnvelope:
        data = {"request_id": request_id, "reason": reason}
        return self._task(task_id, "TaskExtensionDenied", at, data)

    def overdue(self, task_id: str, at: str) -> EventEnvelope:
        data = {"deadline": self.deadlines[task_id].isoformat()}
        return self._task(task_id, "TaskBecameOverdue", at, data, SYSTEM)

    # ------------------------------------------------------------------- units
    def unit(
        self, slug: str, name: str, kind: str = "department", at: str = "2026-01-01T00:00"
    ) -> EventEnvelope:
        data = {"slug": slug, "name": name, "kind": kind}
        return self.emit("Unit", str(unit_id(slug)), "UnitRegistered", t(at), data)

    def rename_unit(self, slug: str, name: str, at: str) -> EventEnvelope:
        data = {"name": name, "reason": "reorganisation"}
        return self.emit("Unit", str(unit_id(slug)), "UnitRenamed", t(at), data)

    # ------------------------------------------------------------------ chains
    def chain(self, industry: str, at: str = "2026-01-01T00:00") -> EventEnvelope:
        data = {"industry": industry, "name": f"{industry} chain"}
        return self.emit(
            "ResponsibilityChain", str(chain_id(industry)), "ChainEstablished", t(at), data
        )

    def link(
        self,
        industry: str,
        link_id: str,
        unit: str,
        person: str,
        at: str,
        role: str = "industry-competent",
        duties: Iterable[str] = ("supervise",),
    ) -> EventEnvelope:
        data = {
            "link_id": link_id,
            "unit": unit,
            "role": role,
            "responsible_person": person,
            "duties": list(duties),
        }
        return self.emit(
            "ResponsibilityChain", str(chain_id(industry)), "ChainLinkAdded", t(at), data
        )

    def handover(
        self,
        industry: str,
        link_id: str,
        previous: str,
        person: str,
        effective_at: str,
        at: str,
        reason: str = "rotation",
    ) -> EventEnvelope:
        data = {
            "link_id": link_id,
            "previous_person": previous,
            "responsible_person": person,
            "effective_at": t(effective_at).isoformat(),
            "reason": reason,
        }
        chain = str(chain_id(industry))
        return self.emit("ResponsibilityChain", chain, "ResponsiblePersonHandedOver", t(at), data)

    def revise_duties(
        self, industry: str, link_id: str, duties: Iterable[str], at: str
    ) -> EventEnvelope:
        data = {"link_id": link_id, "duties": list(duties), "reason": "new law"}
        chain = str(chain_id(industry))
        return self.emit("ResponsibilityChain", chain, "ChainLinkDutiesRevised", t(at), data)

    # -------------------------------------------------------------- committees
    def _committee(self, cid: str, type_: str, at: str, data: dict[str, Any]) -> EventEnvelope:
        return self.emit("IndustryPartyCommittee", cid, type_, t(at), data)

    def committee(
        self,
        cid: str,
        name: str,
        industry: str,
        supervising_unit: str,
        at: str = "2026-02-01T00:00",
    ) -> EventEnvelope:
        data = {"name": name, "industry": industry, "supervising_unit": supervising_unit}
        return self._committee(cid, "CommitteeEstablished", at, data)

    def secretary(self, cid: str, name: str, at: str, previous: str | None = None) -> EventEnvelope:
        data = {"name": name, "previous": previous, "reason": "appointed"}
        return self._committee(cid, "SecretaryAppointed", at, data)

    def member_joined(self, cid: str, member_id: str, name: str, at: str) -> EventEnvelope:
        data = {"member_id": member_id, "name": name, "enterprise": f"{name} Co."}
        return self._committee(cid, "MemberOrganizationJoined", at, data)

    def member_left(self, cid: str, member_id: str, at: str) -> EventEnvelope:
        data = {"member_id": member_id, "reason": "merged"}
        return self._committee(cid, "MemberOrganizationLeft", at, data)

    def instructor(
        self, cid: str, instructor_id: str, name: str, enterprise: str, at: str
    ) -> EventEnvelope:
        data = {
            "instructor_id": instructor_id,
            "name": name,
            "enterprise": enterprise,
            "enterprise_party_members": 1,
        }
        return self._committee(cid, "InstructorDispatched", at, data)

    def recall(self, cid: str, instructor_id: str, at: str) -> EventEnvelope:
        data = {"instructor_id": instructor_id, "reason": "enterprise grew"}
        return self._committee(cid, "InstructorRecalled", at, data)

    def coverage(
        self,
        cid: str,
        period: str,
        at: str,
        *,
        enterprises: int,
        organizations_covered: int,
        work_covered: int,
        party_members: int = 0,
        workers: int = 0,
    ) -> EventEnvelope:
        data = {
            "period": period,
            "enterprises": enterprises,
            "organizations_covered": organizations_covered,
            "work_covered": work_covered,
            "party_members": party_members,
            "workers": workers,
        }
        return self._committee(cid, "CoverageReported", at, data)


def run(
    projection: Projection,
    events: Iterable[EventEnvelope],
    store: MemoryViewStore | None = None,
) -> MemoryViewStore:
    """Apply the events in order to ``store`` (a fresh one if None) and return it."""
    target = store if store is not None else MemoryViewStore()
    for event in events:
        projection.apply(event, target)
    return target


# ----------------------------------------------------- domain events as the infra maps them
_NOT_DATA = {"originator_topic", "originator_id", "originator_version", "timestamp", "actor", "at"}


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if is_dataclass(value) and not isinstance(value, type):
        return _plain(asdict(value))
    return value


def from_domain(events: Iterable[Any], aggregate_type: str, start: int = 1) -> list[EventEnvelope]:
    """Envelopes of collected domain events, mapped as the brief describes the infra's mapping."""
    envelopes = []
    for offset, event in enumerate(events):
        fields = dict(event.__dict__)
        actor = fields["actor"]
        envelopes.append(
            EventEnvelope(
                position=start + offset,
                aggregate_id=str(fields["originator_id"]),
                aggregate_type=aggregate_type,
                version=int(fields["originator_version"]),
                type=type(event).__name__,
                at=fields["at"],
                actor=actor.as_dict(),
                data={k: _plain(v) for k, v in fields.items() if k not in _NOT_DATA},
            )
        )
    return envelopes


DEPTS = ("postal", "commerce", "transport", "cyberspace")
TOWNS = ("town-a", "town-b", "town-c")


def rich_history() -> Events:
    """Every kind of document change: puts, deletes, renames, cells to zero and back."""
    ev = Events()
    for slug in DEPTS:
        ev.unit(slug, f"{slug} bureau")
    for slug in TOWNS:
        ev.unit(slug, f"{slug} street", kind="town")
    ev.rename_unit("postal", "postal administration", "2026-01-02T00:00")
    ev.chain("express")
    ev.link("express", "L1", "postal", "Zhang", "2026-01-02T00:00")
    ev.link("express", "L2", "town-a", "Li", "2026-01-02T00:00", role="territorial")
    ev.handover("express", "L1", "Zhang", "Wang", "2026-01-03T00:00", "2026-01-03T00:00")
    ev.revise_duties("express", "L2", ["inspect", "report"], "2026-01-04T00:00")
    ev.committee("c-1", "Express committee", "express", "postal")
    ev.secretary("c-1", "Zhao", "2026-02-02T00:00")
    ev.member_joined("c-1", "m-1", "SF", "2026-02-03T00:00")
    ev.instructor("c-1", "i-1", "Qian", "SF", "2026-02-04T00:00")
    ev.coverage(
        "c-1", "2026-Q1", "2026-03-01T00:00", enterprises=4, organizations_covered=2, work_covered=3
    )
    ev.member_left("c-1", "m-1", "2026-03-02T00:00")
    tasks = [f"task-{i}" for i in range(12)]
    for i, task in enumerate(tasks):
        ev.issue(
            task,
            at="2026-01-05T00:00",
            lead=DEPTS[i % 4],
            co_units=[DEPTS[(i + 1) % 4]],
            towns=[TOWNS[i % 3]],
            deadline=f"2026-0{3 + i % 6}-01T00:00",
            weight=float(1 + i % 3),
        )
    # Step-major, as writers interleave: consecutive events of different aggregates.
    for i, task in enumerate(tasks):
        ev.sign(task, DEPTS[i % 4], "2026-01-06T00:00")
    for i, task in enumerate(tasks):
        ev.progress(task, DEPTS[i % 4], "2026-01-07T00:00")
        ev.urge(task, "2026-01-08T00:00")
    for i, task in enumerate(tasks[:6]):
        ev.add_town(task, TOWNS[(i + 1) % 3], "2026-01-09T00:00")
        ev.remove_town(task, TOWNS[i % 3], "2026-01-10T00:00")
    for task in tasks[:8]:
        ev.complete(task, "2026-02-01T00:00")
    for task in tasks[:2]:
        ev.return_(task, "2026-02-02T00:00")
    for task in tasks[2:8]:
        ev.verify(task, "2026-02-03T00:00")
    for task in tasks[8:]:
        ev.overdue(task, "2026-09-01T00:00")
    return ev
