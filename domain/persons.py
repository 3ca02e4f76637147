"""Persons (个人信息): responsible persons, instructors, secretaries, and their erasure.

A ``Person`` is a value: a stable id plus the personal fields (name, phone). The
domain compares persons by id or plain value; how the personal fields are stored
(encrypted per person, so that deleting the key erases them) is infrastructure's.
``PersonErasure`` records, without any personal data, that a person was erased.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4, uuid5

from domain.actor import Actor
from domain.base import TiaokuaiAggregate
from domain.errors import InvariantViolated
from domain.ids import NAMESPACE

ERASED = "[erased]"
"""What an erased name reads as, in history, state, views and exports."""

PERSON_ID_RE = re.compile(r"^[a-z][a-z0-9]*-[0-9a-f]{12,32}$")
"""Person ids: ``p-`` and 32 hex digits, or a liaison's principal id (``liaison-…``)."""

_PHONE_RE = re.compile(r"^\+?[0-9]{5,20}$")
NAME_MAX = 200


def is_person_id(value: str) -> bool:
    return bool(PERSON_ID_RE.match(value))


@dataclass(frozen=True)
class Person:
    """A natural person named in a decision; ``erased`` once their key is gone."""

    id: str
    name: str
    phone: str | None = None
    erased: bool = False

    @classmethod
    def new(cls, name: str, phone: str | None = None, *, person_id: str | None = None) -> Person:
        """A validated person; a fresh random id unless ``person_id`` names a known one."""
        text = name.strip()
        if not text:
            raise InvariantViolated("name: a person needs a name")
        if len(text) > NAME_MAX:
            raise InvariantViolated(f"name: at most {NAME_MAX} characters")
        if person_id is not None and not is_person_id(person_id):
            raise InvariantViolated("person_id: not a person id such as 'p-3f2a…'")
        return cls(person_id or f"p-{uuid4().hex}", text, normalize_phone(phone))

    @classmethod
    def erased_marker(cls, person_id: str) -> Person:
        return cls(person_id, ERASED, None, erased=True)

    def same_as(self, other: Person | str | None) -> bool:
        """The same person: the same id, or (neither erased) the same name and phone."""
        if other is None:
            return False
        if isinstance(other, str):
            # Events stored before persons were values hold a plain name.
            return not self.erased and self.name == other
        if self.id == other.id:
            return True
        if self.erased or other.erased:
            return False
        return self.name == other.name and self.phone == other.phone

    def as_dict(self) -> dict[str, Any]:
        return {"person_id": self.id, "name": self.name, "phone": self.phone, "erased": self.erased}


def normalize_phone(phone: str | None) -> str | None:
    """Digits with an optional leading ``+``; spaces and hyphens are dropped."""
    if phone is None:
        return None
    compact = re.sub(r"[\s-]", "", phone)
    if not compact:
        return None
    if not _PHONE_RE.match(compact):
        raise InvariantViolated("phone: digits with an optional leading +, 5 to 20 of them")
    return compact


def erasure_id(person_id: str) -> UUID:
    """The aggregate id of a person's erasure record: one per person, race-free."""
    return uuid5(NAMESPACE, f"erasure:{person_id}")


class PersonErasure(TiaokuaiAggregate):
    """删除个人信息: who erased a person, when and why. Holds no personal data."""

    @staticmethod
    def create_id(person_id: str, **_: Any) -> UUID:
        return erasure_id(person_id)

    @classmethod
    def erase(cls, *, person_id: str, reason: str, actor: Actor, at: datetime) -> PersonErasure:
        cls.require_secretariat(actor, "erase persons")
        if not is_person_id(person_id):
            raise InvariantViolated("person_id: not a person id")
        reason = cls.require_reason(reason, "erase a person")
        return cls._create(cls.PersonErased, person_id=person_id, reason=reason, actor=actor, at=at)

    class PersonErased(TiaokuaiAggregate.Created):
        person_id: str
        reason: str
        actor: Actor
        at: datetime

    def __init__(self, *, person_id: str, reason: str, actor: Actor, at: datetime) -> None:
        self.person_id = person_id
        self.reason = reason
        self.erased_by = actor
        self.erased_at = at
