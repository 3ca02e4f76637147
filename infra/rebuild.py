"""Rebuild views from the store and compare them with the live ones (drift check)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from infra.bootstrap import System
from infra.envelopes import envelope_from
from projections.registry import build_projections
from projections.store import MemoryViewStore


@dataclass(frozen=True)
class Drift:
    """One document that differs between the live view and the rebuild."""

    view: str
    key: str
    live: dict[str, Any] | None
    rebuilt: dict[str, Any] | None


def rebuild(system: System, *, upto: int | None = None, batch: int = 500) -> MemoryViewStore:
    """Every projection, fresh, fed the store's log (up to a position) in batches."""
    store = MemoryViewStore()
    projections = build_projections(system.tz)
    position = 0
    while True:
        notifications = system.app.recorder.select_notifications(
            start=position + 1, limit=batch, stop=upto
        )
        if not notifications:
            return store
        for notification in notifications:
            envelope = envelope_from(notification, system.app.mapper)
            for projection in projections:
                projection.apply(envelope, store)
        position = notifications[-1].id


def drift(system: System, *, upto: int | None = None) -> Iterator[Drift]:
    """Differences between the live views and a rebuild up to ``upto``.

    By default ``upto`` is the in-process projector's position; with a bus, pass the
    position the workers are known to have reached (e.g. the store head once idle).
    """
    if upto is None:
        upto = system.projector.position()
    rebuilt = rebuild(system, upto=upto)
    for projection in system.projections:
        for view in projection.views:
            live = dict(system.views.scan(view))
            fresh = dict(rebuilt.scan(view))
            for key in sorted(set(live) | set(fresh)):
                if live.get(key) != fresh.get(key):
                    yield Drift(view, key, live.get(key), fresh.get(key))
