"""Stored events → ``EventEnvelope``: the one place that knows both shapes."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, Notification

from domain.actor import Actor
from domain.persons import Person
from projections.envelope import EventEnvelope
from projections.timeutil import iso

_NOT_DATA = frozenset(
    {"originator_id", "originator_version", "originator_topic", "timestamp", "actor", "at"}
)


def plain(value: Any, *, persons: bool = True) -> Any:
    """A JSON-plain copy: instants as ISO-8601 in UTC, ids and enums as strings.

    A ``Person`` becomes ``{"person_id", "name", "phone", "erased"}``, or with
    ``persons=False`` only the reference ``{"person_id"}`` (what envelopes carry).
    """
    if isinstance(value, Person):
        return value.as_dict() if persons else {"person_id": value.id}
    if isinstance(value, datetime):
        return iso(value) if value.tzinfo is not None else value.astimezone(UTC).isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Actor):
        return value.as_dict()
    if isinstance(value, dict):
        return {str(k): plain(v, persons=persons) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v, persons=persons) for v in value]
    return value


def topic_names(topic: str) -> tuple[str, str]:
    """('SupervisedTask', 'TaskSignedFor') from 'domain.tasks:SupervisedTask.TaskSignedFor'."""
    qualname = topic.split(":", 1)[-1]
    parts = qualname.split(".")
    return (parts[-2] if len(parts) > 1 else parts[-1]), parts[-1]


def envelope_from(notification: Notification, mapper: Mapper[UUID]) -> EventEnvelope:
    """Decode one notification of the store's log into an envelope."""
    domain_event = mapper.to_domain_event(notification)
    attrs = vars(domain_event)
    aggregate_type, event_type = topic_names(notification.topic)
    actor = attrs.get("actor")
    at = attrs.get("at") or attrs["timestamp"]
    return EventEnvelope(
        position=notification.id,
        aggregate_id=str(notification.originator_id),
        aggregate_type=aggregate_type,
        version=notification.originator_version,
        type=event_type,
        at=at.astimezone(UTC),
        actor=actor.as_dict() if isinstance(actor, Actor) else {"id": None, "role": None},
        # Envelopes (and so Kafka and the views) carry person ids, never names: views
        # resolve names at query time, so an erasure shows at once, with no rebuild.
        data={k: plain(v, persons=False) for k, v in attrs.items() if k not in _NOT_DATA},
    )
