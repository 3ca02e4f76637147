"""JointMeeting — 联席会议: convened, attendance recorded, resolutions adopted, closed."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import event

from domain.actor import Actor
from domain.base import TiaokuaiAggregate
from domain.errors import InvalidState, InvariantViolated, NotFound


class JointMeeting(TiaokuaiAggregate):
    """A meeting of the joint conference whose resolutions give rise to tasks."""

    @staticmethod
    def create_id(**_: Any) -> UUID:
        return uuid4()

    @classmethod
    def convene(cls, *, title: str, held_at: datetime, actor: Actor, at: datetime) -> JointMeeting:
        cls.require_secretariat(actor, "convene joint meetings")
        cls.require_aware(held_at, "held_at")
        if not title.strip():
            raise InvariantViolated("title: a meeting needs a title")
        return cls._create(
            cls.MeetingConvened, title=title.strip(), held_at=held_at, actor=actor, at=at
        )

    class MeetingConvened(TiaokuaiAggregate.Created):
        title: str
        held_at: datetime
        actor: Actor
        at: datetime

    def __init__(self, *, title: str, held_at: datetime, actor: Actor, at: datetime) -> None:
        self.title = title
        self.held_at = held_at
        self.convened_at = at
        self.attendance: list[str] = []
        self.resolutions: dict[str, str] = {}
        self.closed_at: datetime | None = None

    @property
    def is_closed(self) -> bool:
        return self.closed_at is not None

    def _require_open(self) -> None:
        if self.is_closed:
            raise InvalidState("the meeting is closed")

    def record_attendance(self, *, units: list[str], actor: Actor, at: datetime) -> None:
        """Record the units present; units already recorded are ignored."""
        self.require_secretariat(actor, "record attendance")
        self._require_open()
        new = [u for u in dict.fromkeys(units) if u not in self.attendance]
        if not new:
            raise InvariantViolated("units: every unit given is already recorded as present")
        self._attendance_recorded(units=new, actor=actor, at=at)

    @event("AttendanceRecorded")
    def _attendance_recorded(self, *, units: list[str], actor: Actor, at: datetime) -> None:
        self.attendance.extend(units)

    def adopt_resolution(self, *, text: str, actor: Actor, at: datetime) -> str:
        """Adopt a resolution and return its id within the meeting (``R1``, ``R2`` ...)."""
        self.require_secretariat(actor, "adopt resolutions")
        self._require_open()
        if not text.strip():
            raise InvariantViolated("text: a resolution needs its text")
        resolution_id = f"R{len(self.resolutions) + 1}"
        self._resolution_adopted(resolution_id=resolution_id, text=text.strip(), actor=actor, at=at)
        return resolution_id

    @event("ResolutionAdopted")
    def _resolution_adopted(
        self, *, resolution_id: str, text: str, actor: Actor, at: datetime
    ) -> None:
        self.resolutions[resolution_id] = text

    def close(self, *, actor: Actor, at: datetime) -> None:
        self.require_secretariat(actor, "close meetings")
        self._require_open()
        self._closed(actor=actor, at=at)

    @event("MeetingClosed")
    def _closed(self, *, actor: Actor, at: datetime) -> None:
        self.closed_at = at

    def require_resolution(self, resolution_id: str) -> None:
        if resolution_id not in self.resolutions:
            raise NotFound(f"resolution_id: meeting has no resolution {resolution_id!r}")
