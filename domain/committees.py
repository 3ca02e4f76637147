"""IndustryPartyCommittee — 行业党委: members, instructors and coverage of one industry."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import event

from domain.actor import Actor
from domain.base import TiaokuaiAggregate
from domain.errors import AlreadyExists, InvalidState, InvariantViolated, NotFound
from domain.ids import is_slug
from domain.persons import Person

SMALL_ENTERPRISE_MEMBERS = 3
"""Instructors (党建指导员) go to enterprises with fewer party members than this."""


class IndustryPartyCommittee(TiaokuaiAggregate):
    """An industry party committee registered with the joint conference."""

    @staticmethod
    def create_id(**_: Any) -> UUID:
        return uuid4()

    @classmethod
    def establish(
        cls, *, name: str, industry: str, supervising_unit: str, actor: Actor, at: datetime
    ) -> IndustryPartyCommittee:
        cls.require_secretariat(actor, "register industry party committees")
        if not name.strip():
            raise InvariantViolated("name: a committee needs a name")
        if not is_slug(industry):
            raise InvariantViolated("industry: an industry is a slug such as 'express'")
        return cls._create(
            cls.CommitteeEstablished,
            name=name.strip(),
            industry=industry,
            supervising_unit=supervising_unit,
            actor=actor,
            at=at,
        )

    class CommitteeEstablished(TiaokuaiAggregate.Created):
        name: str
        industry: str
        supervising_unit: str
        actor: Actor
        at: datetime

    def __init__(
        self, *, name: str, industry: str, supervising_unit: str, actor: Actor, at: datetime
    ) -> None:
        self.name = name
        self.industry = industry
        self.supervising_unit = supervising_unit
        self.established_at = at
        self.secretary: Person | None = None
        self.members: dict[str, dict[str, Any]] = {}
        self.instructors: dict[str, dict[str, Any]] = {}
        self.coverage: dict[str, dict[str, int]] = {}

    def appoint_secretary(self, *, name: Person, reason: str, actor: Actor, at: datetime) -> None:
        self.require_secretariat(actor, "appoint committee secretaries")
        if name.erased or not name.name.strip():
            raise InvariantViolated("name: the secretary needs a name")
        if name.same_as(self.secretary):
            raise InvariantViolated("name: that person is the secretary already")
        self._secretary_appointed(
            name=name, previous=self.secretary, reason=reason, actor=actor, at=at
        )

    @event("SecretaryAppointed")
    def _secretary_appointed(
        self, *, name: Person, previous: Person | None, reason: str, actor: Actor, at: datetime
    ) -> None:
        self.secretary = name

    def admit_member(self, *, name: str, enterprise: str, actor: Actor, at: datetime) -> str:
        """A party organization joins; returns its id (``M1`` ...)."""
        self.require_secretariat(actor, "admit member organizations")
        if not name.strip():
            raise InvariantViolated("name: a member organization needs a name")
        for member in self.members.values():
            if member["name"] == name.strip() and member["active"]:
                raise AlreadyExists(f"name: {name.strip()} is a member already")
        member_id = f"M{len(self.members) + 1}"
        self._member_joined(
            member_id=member_id,
            name=name.strip(),
            enterprise=enterprise.strip(),
            actor=actor,
            at=at,
        )
        return member_id

    @event("MemberOrganizationJoined")
    def _member_joined(
        self, *, member_id: str, name: str, enterprise: str, actor: Actor, at: datetime
    ) -> None:
        self.members[member_id] = {
            "name": name,
            "enterprise": enterprise,
            "active": True,
            "joined_at": at,
        }

    def remove_member(self, *, member_id: str, reason: str, actor: Actor, at: datetime) -> None:
        self.require_secretariat(actor, "record members leaving")
        member = self.members.get(member_id)
        if member is None:
            raise NotFound(f"member_id: no member organization {member_id!r}")
        if not member["active"]:
            raise InvalidState(f"member {member_id} has left already")
        reason = self.require_reason(reason, "record a member leaving")
        self._member_left(member_id=member_id, reason=reason, actor=actor, at=at)

    @event("MemberOrganizationLeft")
    def _member_left(self, *, member_id: str, reason: str, actor: Actor, at: datetime) -> None:
        self.members[member_id]["active"] = False

    def dispatch_instructor(
        self,
        *,
        name: Person,
        enterprise: str,
        enterprise_party_members: int,
        actor: Actor,
        at: datetime,
    ) -> str:
        """派驻党建指导员 to an enterprise with fewer than 3 party members."""
        self.require_secretariat(actor, "dispatch instructors")
        if name.erased or not name.name.strip():
            raise InvariantViolated("name: an instructor needs a name")
        if not enterprise.strip():
            raise InvariantViolated("enterprise: name the enterprise")
        if not 0 <= enterprise_party_members < SMALL_ENTERPRISE_MEMBERS:
            raise InvariantViolated(
                "enterprise_party_members: instructors go to enterprises with fewer than "
                f"{SMALL_ENTERPRISE_MEMBERS} party members"
            )
        for instructor in self.instructors.values():
            if instructor["enterprise"] == enterprise.strip() and instructor["active"]:
                raise AlreadyExists(f"enterprise: {enterprise.strip()} has an instructor already")
        instructor_id = f"I{len(self.instructors) + 1}"
        self._instructor_dispatched(
            instructor_id=instructor_id,
            name=name,
            enterprise=enterprise.strip(),
            enterprise_party_members=enterprise_party_members,
            actor=actor,
            at=at,
        )
        return instructor_id

    @event("InstructorDispatched")
    def _instructor_dispatched(
        self,
        *,
        instructor_id: str,
        name: Person,
        enterprise: str,
        enterprise_party_members: int,
        actor: Actor,
        at: datetime,
    ) -> None:
        self.instructors[instructor_id] = {
            "name": name,
            "enterprise": enterprise,
            "enterprise_party_members": enterprise_party_members,
            "active": True,
            "dispatched_at": at,
        }

    def recall_instructor(
        self, *, instructor_id: str, reason: str, actor: Actor, at: datetime
    ) -> None:
        self.require_secretariat(actor, "recall instructors")
        instructor = self.instructors.get(instructor_id)
        if instructor is None:
            raise NotFound(f"instructor_id: no instructor {instructor_id!r}")
        if not instructor["active"]:
            raise InvalidState(f"instructor {instructor_id} is recalled already")
        reason = self.require_reason(reason, "recall an instructor")
        self._instructor_recalled(instructor_id=instructor_id, reason=reason, actor=actor, at=at)

    @event("InstructorRecalled")
    def _instructor_recalled(
        self, *, instructor_id: str, reason: str, actor: Actor, at: datetime
    ) -> None:
        self.instructors[instructor_id]["active"] = False

    def report_coverage(
        self,
        *,
        period: str,
        enterprises: int,
        organizations_covered: int,
        work_covered: int,
        party_members: int,
        workers: int,
        actor: Actor,
        at: datetime,
    ) -> None:
        """Coverage for a period (组织覆盖, 工作覆盖); one report per period."""
        self.require_secretariat(actor, "report coverage")
        period = period.strip()
        if not period:
            raise InvariantViolated("period: name the period, e.g. '2026-Q4'")
        if period in self.coverage:
            raise AlreadyExists(f"period: coverage for {period} is reported already")
        figures = {
            "enterprises": enterprises,
            "organizations_covered": organizations_covered,
            "work_covered": work_covered,
            "party_members": party_members,
            "workers": workers,
        }
        for field, value in figures.items():
            if value < 0:
                raise InvariantViolated(f"{field}: a count is never negative")
        if organizations_covered > enterprises:
            raise InvariantViolated("organizations_covered: cannot exceed enterprises")
        if work_covered > enterprises:
            raise InvariantViolated("work_covered: cannot exceed enterprises")
        self._coverage_reported(period=period, actor=actor, at=at, **figures)

    @event("CoverageReported")
    def _coverage_reported(
        self,
        *,
        period: str,
        enterprises: int,
        organizations_covered: int,
        work_covered: int,
        party_members: int,
        workers: int,
        actor: Actor,
        at: datetime,
    ) -> None:
        self.coverage[period] = {
            "enterprises": enterprises,
            "organizations_covered": organizations_covered,
            "work_covered": work_covered,
            "party_members": party_members,
            "workers": workers,
        }
