"""What every Tiaokuai aggregate shares."""

from __future__ import annotations

from datetime import datetime

from eventsourcing.domain import Aggregate

from domain.actor import Actor
from domain.errors import InvariantViolated, NotPermitted


class TiaokuaiAggregate(Aggregate):
    """An aggregate whose events all carry ``actor`` and business time ``at``.

    Public methods check the rules and then call a private ``@event`` method, so a
    refused command raises before anything changes and replay never re-runs checks.
    """

    @staticmethod
    def require_secretariat(actor: Actor, what: str) -> None:
        if not actor.is_secretariat:
            raise NotPermitted(f"only the secretariat may {what}")

    @staticmethod
    def require_reason(reason: str | None, what: str) -> str:
        text = (reason or "").strip()
        if not text:
            raise InvariantViolated(f"reason: a reason is required to {what}")
        return text

    @staticmethod
    def require_aware(value: datetime, field: str) -> None:
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvariantViolated(f"{field}: an instant needs a UTC offset")
        # Far-off years overflow when converted to UTC and mean a typing error anyway.
        if not 1900 <= value.year <= 9000:
            raise InvariantViolated(f"{field}: the year must lie between 1900 and 9000")
