"""Instants and district days, the only time arithmetic the read side does.

Documents hold instants as ISO-8601 strings in UTC; queries turn them back into
aware datetimes and count days in the district time zone, never in UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

DEFAULT_TZ = ZoneInfo("Asia/Shanghai")
"""The district time zone unless a caller says otherwise."""


def parse_instant(value: str) -> datetime:
    """An aware datetime from an ISO-8601 string; a naive string is taken as UTC."""
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed


@lru_cache(maxsize=16_384)
def iso(value: datetime) -> str:
    """The canonical document form of an instant: ISO-8601 in UTC.

    Cached: every projection renders each event's instant, and ``isoformat`` is slow.
    Equal aware instants render alike whatever their zone, so equality is the right key.
    The cache holds more instants than a poll has events (5,000): the projections of a
    host render one poll's instants one projection after the other, and a smaller cache
    was emptied by each before the next came back to them (no hit at all at 4,096).
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def normalize(value: str | None) -> str | None:
    """Re-render an ISO string canonically, so equal instants compare equal as text."""
    return None if value is None else iso(parse_instant(value))


def local_date(value: datetime | str, tz: ZoneInfo) -> date:
    """The calendar date of an instant in the district time zone."""
    instant = parse_instant(value) if isinstance(value, str) else value
    return instant.astimezone(tz).date()


def days_between(start: datetime | str, end: datetime | str, tz: ZoneInfo) -> int:
    """Local days from start to end: (local date of end − local date of start), at least 0."""
    return max(0, (local_date(end, tz) - local_date(start, tz)).days)
