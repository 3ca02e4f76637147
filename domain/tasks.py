"""SupervisedTask — 督办任务: the joint-meeting task and its lifecycle.

issued → signed for (签收) → in progress → completion reported → verified (验收销号),
or returned for rework (退回); urged (催办); extension (延期) requested, granted or
denied; lead unit (牵头单位) transferred; co-units (配合单位) and towns (属地) added or
removed. Overdue is a recorded fact, not a state: ``TaskBecameOverdue`` happens once
per deadline.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import event

from domain.actor import Actor, Role
from domain.base import TiaokuaiAggregate
from domain.errors import InvalidState, InvariantViolated, NotFound, NotPermitted
from domain.ids import is_slug

MAX_WEIGHT = 100.0


class TaskState(StrEnum):
    ISSUED = "issued"  # 已下发, awaiting the lead's signature
    SIGNED = "signed"  # 已签收
    IN_PROGRESS = "in_progress"  # 办理中
    COMPLETION_REPORTED = "completion_reported"  # 已报结, awaiting verification
    RETURNED = "returned"  # 退回重办
    VERIFIED = "verified"  # 验收销号


class Capacity(StrEnum):
    """The part a unit plays in a task."""

    LEAD = "lead"  # 牵头单位
    CO_UNIT = "co-unit"  # 配合单位
    TOWN = "town"  # 属地


class SupervisedTask(TiaokuaiAggregate):
    """A supervised task with a lead unit, co-units, towns and a deadline."""

    @staticmethod
    def create_id(**_: Any) -> UUID:
        return uuid4()

    # ----------------------------------------------------------------- issue
    @classmethod
    def issue(
        cls,
        *,
        title: str,
        industry: str,
        lead_unit: str,
        co_units: list[str],
        towns: list[str],
        deadline: datetime,
        weight: float,
        meeting_id: str | None,
        resolution_id: str | None,
        actor: Actor,
        at: datetime,
        description: str = "",
    ) -> SupervisedTask:
        cls.require_secretariat(actor, "issue supervised tasks")
        cls.require_aware(deadline, "deadline")
        if not title.strip():
            raise InvariantViolated("title: a task needs a title")
        if not is_slug(industry):
            raise InvariantViolated("industry: an industry is a slug such as 'express'")
        if lead_unit in co_units:
            raise InvariantViolated("co_units: the lead unit is never also a co-unit")
        if len(set(co_units)) != len(co_units):
            raise InvariantViolated("co_units: a co-unit is listed twice")
        if len(set(towns)) != len(towns):
            raise InvariantViolated("towns: a town is listed twice")
        if lead_unit in towns:
            raise InvariantViolated("towns: the lead unit is not also listed as a town")
        if set(co_units) & set(towns):
            raise InvariantViolated("towns: a unit is either a co-unit or a town, not both")
        if deadline <= at:
            raise InvariantViolated("deadline: the deadline must be later than now")
        if not 0 < weight <= MAX_WEIGHT:
            raise InvariantViolated(f"weight: the weight is above 0 and at most {MAX_WEIGHT:g}")
        if resolution_id is not None and meeting_id is None:
            raise InvariantViolated("meeting_id: a resolution_id needs its meeting_id")
        return cls._create(
            cls.TaskIssued,
            title=title.strip(),
            description=description,
            industry=industry,
            lead_unit=lead_unit,
            co_units=list(co_units),
            towns=list(towns),
            deadline=deadline,
            weight=float(weight),
            meeting_id=meeting_id,
            resolution_id=resolution_id,
            actor=actor,
            at=at,
        )

    class TaskIssued(TiaokuaiAggregate.Created):
        title: str
        description: str
        industry: str
        lead_unit: str
        co_units: list[str]
        towns: list[str]
        deadline: datetime
        weight: float
        meeting_id: str | None
        resolution_id: str | None
        actor: Actor
        at: datetime

    def __init__(
        self,
        *,
        title: str,
        description: str,
        industry: str,
        lead_unit: str,
        co_units: list[str],
        towns: list[str],
        deadline: datetime,
        weight: float,
        meeting_id: str | None,
        resolution_id: str | None,
        actor: Actor,
        at: datetime,
    ) -> None:
        self.title = title
        self.description = description
        self.industry = industry
        self.lead_unit = lead_unit
        self.co_units = list(co_units)
        self.towns = list(towns)
        self.deadline = deadline
        self.weight = weight
        self.meeting_id = meeting_id
        self.resolution_id = resolution_id
        self.issued_at = at
        self.state = TaskState.ISSUED
        self.overdue = False
        self.overdue_since: datetime | None = None
        self.signatures: dict[str, datetime] = {}
        self.extension_requests: dict[str, dict[str, Any]] = {}
        self.urge_count = 0
        self.completion_reported_at: datetime | None = None
        self.verified_at: datetime | None = None

    # ------------------------------------------------------------- queries
    @property
    def units(self) -> list[str]:
        """Every unit involved: the lead, the co-units, the towns."""
        return [self.lead_unit, *self.co_units, *self.towns]

    def capacity_of(self, unit: str | None) -> Capacity | None:
        if unit is None:
            return None
        if unit == self.lead_unit:
            return Capacity.LEAD
        if unit in self.co_units:
            return Capacity.CO_UNIT
        if unit in self.towns:
            return Capacity.TOWN
        return None

    def involves(self, unit: str | None) -> bool:
        return self.capacity_of(unit) is not None

    @property
    def is_verified(self) -> bool:
        return self.state == TaskState.VERIFIED

    @property
    def pending_extension(self) -> str | None:
        for rid, request in self.extension_requests.items():
            if request["status"] == "pending":
                return rid
        return None

    # ------------------------------------------------------------- checks
    def _require_not_verified(self) -> None:
        if self.is_verified:
            raise InvalidState("the task is verified; nothing changes it any more")

    def _require_liaison_of(self, actor: Actor, what: str, *allowed: Capacity) -> str:
        """The acting liaison's unit, if it holds one of the allowed capacities."""
        if actor.role != Role.LIAISON or actor.unit is None:
            raise NotPermitted(f"only a liaison of a unit of the task may {what}")
        capacity = self.capacity_of(actor.unit)
        if capacity is None:
            raise NotPermitted(f"unit {actor.unit!r} is not involved in this task")
        if capacity not in allowed:
            roles = " or ".join(c.value for c in allowed)
            raise NotPermitted(f"only the {roles} may {what}; {actor.unit!r} is {capacity.value}")
        return actor.unit

    def _require_signed(self, unit: str) -> None:
        if unit not in self.signatures:
            raise InvalidState(f"unit {unit!r} has not signed for the task yet")

    # ------------------------------------------------------- liaison steps
    def sign_for(self, *, actor: Actor, at: datetime) -> None:
        """签收: the acting liaison's unit acknowledges its part of the task."""
        self._require_not_verified()
        unit = self._require_liaison_of(
            actor, "sign for the task", Capacity.LEAD, Capacity.CO_UNIT, Capacity.TOWN
        )
        if unit in self.signatures:
            raise InvalidState(f"unit {unit!r} has signed for the task already")
        self._signed_for(unit=unit, actor=actor, at=at)

    @event("TaskSignedFor")
    def _signed_for(self, *, unit: str, actor: Actor, at: datetime) -> None:
        self.signatures[unit] = at
        if unit == self.lead_unit and self.state == TaskState.ISSUED:
            self.state = TaskState.SIGNED

    def report_progress(
        self, *, note: str, percent: int | None, actor: Actor, at: datetime
    ) -> None:
        """Report progress; the lead's report puts the task in progress."""
        self._require_not_verified()
        unit = self._require_liaison_of(
            actor, "report progress", Capacity.LEAD, Capacity.CO_UNIT, Capacity.TOWN
        )
        self._require_signed(unit)
        if self.state == TaskState.COMPLETION_REPORTED:
            raise InvalidState("completion is reported; wait for verification or return")
        if not note.strip():
            raise InvariantViolated("note: a progress report needs a note")
        if percent is not None and not 0 <= percent <= 100:
            raise InvariantViolated("percent: progress is between 0 and 100")
        self._progress_reported(unit=unit, note=note.strip(), percent=percent, actor=actor, at=at)

    @event("TaskProgressReported")
    def _progress_reported(
        self, *, unit: str, note: str, percent: int | None, actor: Actor, at: datetime
    ) -> None:
        if unit == self.lead_unit:
            self.state = TaskState.IN_PROGRESS

    def report_contribution(self, *, note: str, actor: Actor, at: datetime) -> None:
        """A co-unit or town reports what it contributed to the task."""
        self._require_not_verified()
        unit = self._require_liaison_of(
            actor, "report a contribution", Capacity.CO_UNIT, Capacity.TOWN
        )
        self._require_signed(unit)
        if not note.strip():
            raise InvariantViolated("note: a contribution report needs a note")
        self._contribution_reported(unit=unit, note=note.strip(), actor=actor, at=at)

    @event("TaskContributionReported")
    def _contribution_reported(self, *, unit: str, note: str, actor: Actor, at: datetime) -> None:
        pass

    def report_completion(self, *, note: str, actor: Actor, at: datetime) -> None:
        """Only the lead unit reports completion (报结)."""
        self._require_not_verified()
        unit = self._require_liaison_of(actor, "report completion", Capacity.LEAD)
        self._require_signed(unit)
        if self.state == TaskState.COMPLETION_REPORTED:
            raise InvalidState("completion is reported already")
        if not note.strip():
            raise InvariantViolated("note: a completion report needs a note")
        self._completion_reported(unit=unit, note=note.strip(), actor=actor, at=at)

    @event("TaskCompletionReported")
    def _completion_reported(self, *, unit: str, note: str, actor: Actor, at: datetime) -> None:
        self.state = TaskState.COMPLETION_REPORTED
        self.completion_reported_at = at

    def request_extension(
        self, *, new_deadline: datetime, reason: str, actor: Actor, at: datetime
    ) -> str:
        """The lead asks for a later deadline; returns the request id (``E1`` ...)."""
        self._require_not_verified()
        unit = self._require_liaison_of(actor, "request an extension", Capacity.LEAD)
        self.require_aware(new_deadline, "new_deadline")
        reason = self.require_reason(reason, "request an extension")
        if new_deadline <= self.deadline:
            raise InvariantViolated("new_deadline: a new deadline is later than the current one")
        if new_deadline <= at:
            raise InvariantViolated("new_deadline: a new deadline is later than now")
        if self.pending_extension is not None:
            raise InvalidState(f"extension request {self.pending_extension} is still pending")
        request_id = f"E{len(self.extension_requests) + 1}"
        self._extension_requested(
            request_id=request_id,
            unit=unit,
            new_deadline=new_deadline,
            reason=reason,
            actor=actor,
            at=at,
        )
        return request_id

    @event("TaskExtensionRequested")
    def _extension_requested(
        self,
        *,
        request_id: str,
        unit: str,
        new_deadline: datetime,
        reason: str,
        actor: Actor,
        at: datetime,
    ) -> None:
        self.extension_requests[request_id] = {
            "unit": unit,
            "new_deadline": new_deadline,
            "reason": reason,
            "status": "pending",
            "requested_at": at,
        }

    # --------------------------------------------------- secretariat steps
    def _require_pending_request(self, request_id: str) -> dict[str, Any]:
        request = self.extension_requests.get(request_id)
        if request is None:
            raise NotFound(f"extension request {request_id!r} does not exist")
        if request["status"] != "pending":
            raise InvalidState(f"extension request {request_id} is {request['status']} already")
        return request

    def grant_extension(self, *, request_id: str, note: str, actor: Actor, at: datetime) -> None:
        """准予延期: the deadline moves to the requested one; overdue is lifted."""
        self.require_secretariat(actor, "grant extensions")
        self._require_not_verified()
        request = self._require_pending_request(request_id)
        if request["new_deadline"] <= self.deadline:
            raise InvariantViolated("new_deadline: a new deadline is later than the current one")
        if request["new_deadline"] <= at:
            raise InvariantViolated(
                "new_deadline: the requested deadline has passed; deny it and ask again"
            )
        self._extension_granted(
            request_id=request_id,
            previous_deadline=self.deadline,
            new_deadline=request["new_deadline"],
            note=note,
            actor=actor,
            at=at,
        )

    @event("TaskExtensionGranted")
    def _extension_granted(
        self,
        *,
        request_id: str,
        previous_deadline: datetime,
        new_deadline: datetime,
        note: str,
        actor: Actor,
        at: datetime,
    ) -> None:
        self.extension_requests[request_id]["status"] = "granted"
        self.deadline = new_deadline
        self.overdue = False
        self.overdue_since = None

    def deny_extension(self, *, request_id: str, reason: str, actor: Actor, at: datetime) -> None:
        self.require_secretariat(actor, "deny extensions")
        self._require_not_verified()
        self._require_pending_request(request_id)
        reason = self.require_reason(reason, "deny an extension")
        self._extension_denied(request_id=request_id, reason=reason, actor=actor, at=at)

    @event("TaskExtensionDenied")
    def _extension_denied(
        self, *, request_id: str, reason: str, actor: Actor, at: datetime
    ) -> None:
        self.extension_requests[request_id]["status"] = "denied"

    def verify(self, *, note: str, actor: Actor, at: datetime) -> None:
        """验收销号: only the secretariat verifies a reported completion."""
        self.require_secretariat(actor, "verify tasks")
        self._require_not_verified()
        if self.state != TaskState.COMPLETION_REPORTED:
            raise InvalidState("only a task whose completion is reported can be verified")
        self._verified(note=note, on_time=at <= self.deadline, actor=actor, at=at)

    @event("TaskVerified")
    def _verified(self, *, note: str, on_time: bool, actor: Actor, at: datetime) -> None:
        self.state = TaskState.VERIFIED
        self.verified_at = at

    def return_for_rework(self, *, reason: str, actor: Actor, at: datetime) -> None:
        """退回: the reported completion is not accepted."""
        self.require_secretariat(actor, "return tasks")
        self._require_not_verified()
        if self.state != TaskState.COMPLETION_REPORTED:
            raise InvalidState("only a task whose completion is reported can be returned")
        reason = self.require_reason(reason, "return a task")
        self._returned(reason=reason, actor=actor, at=at)

    @event("TaskReturned")
    def _returned(self, *, reason: str, actor: Actor, at: datetime) -> None:
        self.state = TaskState.RETURNED
        self.completion_reported_at = None

    def urge(self, *, note: str, actor: Actor, at: datetime) -> None:
        """催办: the secretariat presses the lead unit."""
        self.require_secretariat(actor, "urge tasks")
        self._require_not_verified()
        self._urged(unit=self.lead_unit, note=note, actor=actor, at=at)

    @event("TaskUrged")
    def _urged(self, *, unit: str, note: str, actor: Actor, at: datetime) -> None:
        self.urge_count += 1

    def transfer_lead(self, *, new_lead: str, reason: str, actor: Actor, at: datetime) -> None:
        """Move the lead to another unit; it must sign for the task anew."""
        self.require_secretariat(actor, "transfer the lead unit")
        self._require_not_verified()
        reason = self.require_reason(reason, "transfer the lead unit")
        if new_lead == self.lead_unit:
            raise InvariantViolated(f"new_lead: {new_lead!r} leads the task already")
        if new_lead in self.towns:
            raise InvariantViolated(f"new_lead: {new_lead!r} is a town of this task")
        if self.state == TaskState.COMPLETION_REPORTED:
            raise InvalidState("completion is reported; verify or return it before a transfer")
        self._lead_transferred(
            previous_lead=self.lead_unit, new_lead=new_lead, reason=reason, actor=actor, at=at
        )

    @event("TaskLeadTransferred")
    def _lead_transferred(
        self, *, previous_lead: str, new_lead: str, reason: str, actor: Actor, at: datetime
    ) -> None:
        self.lead_unit = new_lead
        if new_lead in self.co_units:
            self.co_units.remove(new_lead)
        self.state = TaskState.SIGNED if new_lead in self.signatures else TaskState.ISSUED

    def add_co_unit(self, *, unit: str, actor: Actor, at: datetime) -> None:
        self.require_secretariat(actor, "add co-units")
        self._require_not_verified()
        if unit == self.lead_unit:
            raise InvariantViolated("co_units: the lead unit is never also a co-unit")
        if unit in self.co_units:
            raise InvariantViolated(f"co_units: {unit!r} is a co-unit already")
        if unit in self.towns:
            raise InvariantViolated(f"co_units: {unit!r} is a town of this task")
        self._co_unit_added(unit=unit, actor=actor, at=at)

    @event("TaskCoUnitAdded")
    def _co_unit_added(self, *, unit: str, actor: Actor, at: datetime) -> None:
        self.co_units.append(unit)

    def remove_co_unit(self, *, unit: str, reason: str, actor: Actor, at: datetime) -> None:
        self.require_secretariat(actor, "remove co-units")
        self._require_not_verified()
        if unit not in self.co_units:
            raise InvariantViolated(f"co_units: {unit!r} is not a co-unit")
        reason = self.require_reason(reason, "remove a co-unit")
        self._co_unit_removed(unit=unit, reason=reason, actor=actor, at=at)

    @event("TaskCoUnitRemoved")
    def _co_unit_removed(self, *, unit: str, reason: str, actor: Actor, at: datetime) -> None:
        self.co_units.remove(unit)
        # A unit added again later signs for its part again.
        self.signatures.pop(unit, None)

    def add_town(self, *, unit: str, actor: Actor, at: datetime) -> None:
        self.require_secretariat(actor, "add towns")
        self._require_not_verified()
        if unit == self.lead_unit or unit in self.co_units:
            raise InvariantViolated(f"towns: {unit!r} is the lead or a co-unit of this task")
        if unit in self.towns:
            raise InvariantViolated(f"towns: {unit!r} is a town of this task already")
        self._town_added(unit=unit, actor=actor, at=at)

    @event("TaskTownAdded")
    def _town_added(self, *, unit: str, actor: Actor, at: datetime) -> None:
        self.towns.append(unit)

    def remove_town(self, *, unit: str, reason: str, actor: Actor, at: datetime) -> None:
        self.require_secretariat(actor, "remove towns")
        self._require_not_verified()
        if unit not in self.towns:
            raise InvariantViolated(f"towns: {unit!r} is not a town of this task")
        reason = self.require_reason(reason, "remove a town")
        self._town_removed(unit=unit, reason=reason, actor=actor, at=at)

    @event("TaskTownRemoved")
    def _town_removed(self, *, unit: str, reason: str, actor: Actor, at: datetime) -> None:
        self.towns.remove(unit)
        self.signatures.pop(unit, None)

    # ------------------------------------------------------------ deadline
    def is_due_for_overdue(self, now: datetime) -> bool:
        # Strictly after: a task verified at the deadline instant is on time, not late.
        return not self.is_verified and not self.overdue and now > self.deadline

    def mark_overdue(self, *, actor: Actor, at: datetime) -> bool:
        """Record that the deadline passed unverified; once per deadline.

        Returns False (and records nothing) when there is nothing to record.
        """
        self.require_secretariat(actor, "record that a task became overdue")
        if not self.is_due_for_overdue(at):
            return False
        self._became_overdue(deadline=self.deadline, actor=actor, at=at)
        return True

    @event("TaskBecameOverdue")
    def _became_overdue(self, *, deadline: datetime, actor: Actor, at: datetime) -> None:
        self.overdue = True
        self.overdue_since = deadline
