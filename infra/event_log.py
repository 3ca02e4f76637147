"""The store's whole log in position order, as envelopes: the auditor's feed (like $all).

The envelopes are the ones the relay publishes (``docs/events.md``), read from the
store's notification log, so an auditor can export the record without the bus.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from infra.bootstrap import System
from infra.envelopes import envelope_from

STREAM_BATCH = 500


@dataclass(frozen=True)
class LogPage:
    """Events after ``after``, and where the next page starts."""

    items: list[dict[str, Any]]
    after: int
    next_after: int
    head: int


def read_page(system: System, *, after: int, limit: int) -> LogPage:
    """At most ``limit`` events after position ``after``."""
    notifications = system.app.recorder.select_notifications(start=after + 1, limit=limit)
    items = [envelope_from(n, system.app.envelope_mapper).to_dict() for n in notifications]
    next_after = notifications[-1].id if notifications else after
    return LogPage(items=items, after=after, next_after=next_after, head=system.app.head())


def stream(system: System, *, after: int, upto: int) -> Iterator[dict[str, Any]]:
    """Every event in ``(after, upto]``, read in batches so memory stays bounded."""
    position = after
    while position < upto:
        notifications = system.app.recorder.select_notifications(
            start=position + 1, limit=STREAM_BATCH, stop=upto
        )
        if not notifications:
            return
        for notification in notifications:
            yield envelope_from(notification, system.app.envelope_mapper).to_dict()
        position = notifications[-1].id
