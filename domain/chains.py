"""ResponsibilityChain — 责任链条: one per industry, ordered links of units with duties."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.actor import Actor
from domain.base import TiaokuaiAggregate
from domain.errors import InvariantViolated, NotFound
from domain.ids import chain_id, is_slug
from domain.persons import Person


class LinkRole(StrEnum):
    OVERALL_LEAD = "overall-lead"  # 牵头抓总
    INDUSTRY_COMPETENT = "industry-competent"  # 行业主管
    SUPERVISORY = "supervisory"  # 监管
    INDUSTRY_COMMITTEE = "industry-committee"  # 行业党委
    TERRITORIAL = "territorial"  # 属地
    GRASSROOTS = "grassroots"  # 基层党组织


class ResponsibilityChain(TiaokuaiAggregate):
    """The chain of responsibility of one industry (express, food-delivery ...)."""

    @staticmethod
    def create_id(industry: str, **_: Any) -> UUID:
        return chain_id(industry)

    @classmethod
    def establish(
        cls, *, industry: str, name: str, actor: Actor, at: datetime
    ) -> ResponsibilityChain:
        cls.require_secretariat(actor, "establish responsibility chains")
        if not is_slug(industry):
            raise InvariantViolated("industry: an industry is a slug such as 'express'")
        if not name.strip():
            raise InvariantViolated("name: a chain needs a name")
        return cls._create(
            cls.ChainEstablished, industry=industry, name=name.strip(), actor=actor, at=at
        )

    class ChainEstablished(TiaokuaiAggregate.Created):
        industry: str
        name: str
        actor: Actor
        at: datetime

    def __init__(self, *, industry: str, name: str, actor: Actor, at: datetime) -> None:
        self.industry = industry
        self.name = name
        self.established_at = at
        # link id -> {unit, role, responsible_person (a Person), duties, since, handovers}
        self.links: dict[str, dict[str, Any]] = {}
        self.order: list[str] = []

    def link(self, link_id: str) -> dict[str, Any]:
        found = self.links.get(link_id)
        if found is None:
            raise NotFound(f"link_id: chain {self.industry!r} has no link {link_id!r}")
        return found

    def add_link(
        self,
        *,
        unit: str,
        role: LinkRole,
        responsible_person: Person,
        duties: list[str],
        actor: Actor,
        at: datetime,
    ) -> str:
        """Append a link; returns its id (``L1``, ``L2`` ...)."""
        self.require_secretariat(actor, "maintain responsibility chains")
        if responsible_person.erased or not responsible_person.name.strip():
            raise InvariantViolated("responsible_person: a link needs a responsible person")
        duties = [d.strip() for d in duties if d.strip()]
        if not duties:
            raise InvariantViolated("duties: a link needs at least one duty")
        if role not in {r.value for r in LinkRole}:
            roles = ", ".join(r.value for r in LinkRole)
            raise InvariantViolated(f"role: a link's role is one of {roles}")
        role = LinkRole(role)
        for existing in self.links.values():
            if existing["unit"] == unit and existing["role"] == role.value:
                raise InvariantViolated(
                    f"unit: {unit!r} holds the {role.value} link of this chain already"
                )
        link_id = f"L{len(self.links) + 1}"
        self._link_added(
            link_id=link_id,
            unit=unit,
            role=role.value,
            responsible_person=responsible_person,
            duties=duties,
            actor=actor,
            at=at,
        )
        return link_id

    @event("ChainLinkAdded")
    def _link_added(
        self,
        *,
        link_id: str,
        unit: str,
        role: str,
        responsible_person: Person,
        duties: list[str],
        actor: Actor,
        at: datetime,
    ) -> None:
        self.links[link_id] = {
            "unit": unit,
            "role": role,
            "responsible_person": responsible_person,
            "duties": list(duties),
            "added_at": at,
            "since": at,
            "handovers": [],
        }
        self.order.append(link_id)

    def hand_over(
        self,
        *,
        link_id: str,
        responsible_person: Person,
        effective_at: datetime,
        reason: str,
        actor: Actor,
        at: datetime,
    ) -> None:
        """交接: a new responsible person for a link, from an effective instant."""
        self.require_secretariat(actor, "record handovers")
        link = self.link(link_id)
        self.require_aware(effective_at, "effective_at")
        reason = self.require_reason(reason, "hand over a link")
        person = responsible_person
        if person.erased or not person.name.strip():
            raise InvariantViolated("responsible_person: a handover names the new person")
        if person.same_as(link["responsible_person"]):
            # No name in the message: refusals are logged, and names are personal data.
            raise InvariantViolated("responsible_person: that person is responsible already")
        if effective_at < link["since"]:
            raise InvariantViolated(
                "effective_at: a handover takes effect after the previous responsible "
                "person's start"
            )
        self._handed_over(
            link_id=link_id,
            previous_person=link["responsible_person"],
            responsible_person=person,
            effective_at=effective_at,
            reason=reason,
            actor=actor,
            at=at,
        )

    @event("ResponsiblePersonHandedOver")
    def _handed_over(
        self,
        *,
        link_id: str,
        previous_person: Person,
        responsible_person: Person,
        effective_at: datetime,
        reason: str,
        actor: Actor,
        at: datetime,
    ) -> None:
        link = self.links[link_id]
        link["handovers"].append(
            {
                "from": previous_person,
                "to": responsible_person,
                "effective_at": effective_at,
                "reason": reason,
            }
        )
        link["responsible_person"] = responsible_person
        link["since"] = effective_at

    def revise_duties(
        self, *, link_id: str, duties: list[str], reason: str, actor: Actor, at: datetime
    ) -> None:
        """Replace a link's duty list (职责清单)."""
        self.require_secretariat(actor, "maintain responsibility chains")
        self.link(link_id)
        duties = [d.strip() for d in duties if d.strip()]
        if not duties:
            raise InvariantViolated("duties: a link needs at least one duty")
        reason = self.require_reason(reason, "revise duties")
        self._duties_revised(link_id=link_id, duties=duties, reason=reason, actor=actor, at=at)

    @event("ChainLinkDutiesRevised")
    def _duties_revised(
        self, *, link_id: str, duties: list[str], reason: str, actor: Actor, at: datetime
    ) -> None:
        self.links[link_id]["duties"] = list(duties)

    def links_of(self, unit: str) -> list[str]:
        return [lid for lid in self.order if self.links[lid]["unit"] == unit]

    def person_at(self, link_id: str, instant: datetime) -> Person | None:
        """The responsible person in force for a link at an instant (None before it existed).

        Handovers take effect from their ``effective_at``, which may lie before or after
        the moment the handover was recorded.
        """
        link = self.link(link_id)
        if instant < link.get("added_at", link["since"]):
            return None
        handovers = link["handovers"]
        person: Person = handovers[0]["from"] if handovers else link["responsible_person"]
        for handover in handovers:
            if handover["effective_at"] <= instant:
                person = handover["to"]
        return person
