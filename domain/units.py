"""Unit — 单位: a department (条) or a town/street/park (块) of the district."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.actor import Actor
from domain.base import TiaokuaiAggregate
from domain.errors import InvariantViolated
from domain.ids import is_slug, unit_id


class UnitKind(StrEnum):
    DEPARTMENT = "department"  # 条: vertical industry or functional department
    TOWN = "town"  # 块: town, street or industrial park (属地)


class Unit(TiaokuaiAggregate):
    """A unit of the directory, named by a stable slug such as ``postal``."""

    @staticmethod
    def create_id(slug: str, **_: Any) -> UUID:
        return unit_id(slug)

    @classmethod
    def register(cls, *, slug: str, name: str, kind: UnitKind, actor: Actor, at: datetime) -> Unit:
        cls.require_secretariat(actor, "register units")
        if not is_slug(slug):
            raise InvariantViolated(
                "id: a unit id is a lowercase slug such as 'postal' or 'town-longgang'"
            )
        if not name.strip():
            raise InvariantViolated("name: a unit needs a name")
        if kind not in {k.value for k in UnitKind}:
            raise InvariantViolated("kind: a unit is a 'department' or a 'town'")
        return cls._registered(
            slug=slug, name=name.strip(), kind=UnitKind(kind).value, actor=actor, at=at
        )

    @classmethod
    def _registered(cls, *, slug: str, name: str, kind: str, actor: Actor, at: datetime) -> Unit:
        return cls._create(cls.UnitRegistered, slug=slug, name=name, kind=kind, actor=actor, at=at)

    class UnitRegistered(TiaokuaiAggregate.Created):
        slug: str
        name: str
        kind: str
        actor: Actor
        at: datetime

    def __init__(self, *, slug: str, name: str, kind: str, actor: Actor, at: datetime) -> None:
        self.slug = slug
        self.name = name
        self.kind = UnitKind(kind)
        self.registered_at = at

    def rename(self, *, name: str, reason: str, actor: Actor, at: datetime) -> None:
        self.require_secretariat(actor, "rename units")
        if not name.strip():
            raise InvariantViolated("name: a unit needs a name")
        reason = self.require_reason(reason, "rename a unit")
        self._renamed(name=name.strip(), reason=reason, actor=actor, at=at)

    @event("UnitRenamed")
    def _renamed(self, *, name: str, reason: str, actor: Actor, at: datetime) -> None:
        self.name = name
