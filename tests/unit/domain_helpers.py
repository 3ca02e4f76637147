"""Shared helpers of the aggregate unit tests (tests/unit/test_domain_*.py)."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from eventsourcing.domain import Aggregate

from domain.actor import Actor, Role
from domain.errors import DomainError
from domain.persons import Person

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
"""The business time at which every test history starts."""

SECRETARIAT = Actor("sec-wang", Role.SECRETARIAT)
AUDITOR = Actor("aud-li", Role.AUDITOR)
LIAISON_WITHOUT_UNIT = Actor("liaison-nobody", Role.LIAISON, None)

A = TypeVar("A", bound=Aggregate)


def liaison(unit: str) -> Actor:
    """The liaison of ``unit``."""
    return Actor(f"liaison-{unit}", Role.LIAISON, unit)


def at(days: float = 0, hours: float = 0, minutes: float = 0) -> datetime:
    """An aware UTC instant relative to ``T0``."""
    return T0 + timedelta(days=days, hours=hours, minutes=minutes)


def naive(moment: datetime) -> datetime:
    """The same wall-clock instant without its UTC offset."""
    return moment.replace(tzinfo=None)


Snapshot = tuple[dict[str, Any], int, list[Any]]


def snapshot(aggregate: Aggregate) -> Snapshot:
    """A deep copy of the aggregate's attributes, its version and its pending events."""
    return copy.deepcopy(vars(aggregate)), aggregate.version, list(aggregate.pending_events)


def assert_unchanged(aggregate: Aggregate, before: Snapshot) -> None:
    state, version, pending = before
    assert vars(aggregate) == state
    assert aggregate.version == version
    assert aggregate.pending_events == pending


def assert_refused(
    aggregate: Aggregate, exc_type: type[DomainError], fn: Callable[[], object]
) -> DomainError:
    """``fn`` raises exactly ``exc_type`` and leaves ``aggregate`` as it was.

    Compares a deep copy of ``vars(aggregate)``, the version and the pending events
    before and after, so a command that changed something before raising fails here.
    """
    before = snapshot(aggregate)
    with pytest.raises(DomainError) as info:
        fn()
    assert type(info.value) is exc_type, f"raised {type(info.value).__name__}: {info.value}"
    assert_unchanged(aggregate, before)
    return info.value


def assert_raises_exactly(exc_type: type[DomainError], fn: Callable[[], object]) -> DomainError:
    """For creation commands (class methods): ``fn`` raises exactly ``exc_type``."""
    with pytest.raises(DomainError) as info:
        fn()
    assert type(info.value) is exc_type, f"raised {type(info.value).__name__}: {info.value}"
    return info.value


def record(aggregate: Aggregate, event_name: str, fn: Callable[[], object]) -> tuple[Any, Any]:
    """Run a command that must succeed; return ``(its result, the one event it recorded)``.

    Checks that exactly one event named ``event_name`` was appended, that it carries
    the next version and that the aggregate's version moved to it.
    """
    version = aggregate.version
    pending = len(aggregate.pending_events)
    result = fn()
    assert len(aggregate.pending_events) == pending + 1
    event: Any = aggregate.pending_events[-1]
    assert type(event).__name__ == event_name
    assert event.originator_id == aggregate.id
    assert event.originator_version == version + 1
    assert aggregate.version == version + 1
    return result, event


def last_event(aggregate: Aggregate, event_name: str) -> Any:
    """The last pending event, which must be named ``event_name``."""
    assert aggregate.pending_events, "no event was recorded"
    event: Any = aggregate.pending_events[-1]
    assert type(event).__name__ == event_name
    return event


def assert_event(event: Any, *, actor: Actor, at: datetime, **fields: object) -> None:
    """The event was decided by ``actor`` at ``at`` and carries these field values."""
    assert event.actor == actor
    assert event.at == at
    for name, value in fields.items():
        assert getattr(event, name) == value, f"{type(event).__name__}.{name}"


def event_names(events: Sequence[object]) -> list[str]:
    return [type(e).__name__ for e in events]


def replay(events: Sequence[Any]) -> Aggregate:
    """Reconstruct an aggregate by mutating ``None`` through its events, in order."""
    rebuilt: Aggregate | None = None
    for event in events:
        rebuilt = event.mutate(rebuilt)
    assert rebuilt is not None
    return rebuilt


def assert_replays(aggregate: A) -> tuple[A, list[str]]:
    """Drain the aggregate's events (it must hold its whole history), replay them and
    check the copy equals the original attribute for attribute.

    Returns the copy and the names of the events replayed.
    """
    events = aggregate.collect_events()
    assert events, "nothing to replay"
    assert [e.originator_version for e in events] == list(range(1, len(events) + 1))
    rebuilt = replay(events)
    assert type(rebuilt) is type(aggregate)
    assert vars(rebuilt) == vars(aggregate)
    assert rebuilt.version == aggregate.version == len(events)
    assert isinstance(rebuilt, type(aggregate))
    return rebuilt, event_names(events)


def someone(name: str, phone: str | None = None) -> Person:
    """A person with an id derived from the name, so equal names give equal persons here."""
    text = name.strip()
    return Person(f"p-{hashlib.md5(text.encode()).hexdigest()}", text, phone)
