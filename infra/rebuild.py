"""Rebuild views from the store and compare them with the live ones (drift check)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from infra.audit import stream_envelopes
from infra.bootstrap import System
from projections.registry import build_projections
from projections.store import MemoryViewStore


@dataclass(frozen=True)
class Drift:
    """One document that differs between the live view and the rebuild."""

    view: str
    key: str
    live: dict[str, Any] | None
    rebuilt: dict[str, Any] | None


def compare(
    view: str,
    live: Iterable[tuple[str, dict[str, Any]]],
    rebuilt: Iterable[tuple[str, dict[str, Any]]],
) -> Iterator[Drift]:
    """The documents of one view that differ between two scans, both in key order.

    The two scans are merged like sorted files, so only one document of each side is
    held at a time, whatever the size of the view (the audit replay relies on that).
    """
    left, right = iter(live), iter(rebuilt)
    last_left = last_right = None
    a, b = next(left, None), next(right, None)
    while a is not None or b is not None:
        if a is not None and b is not None and a[0] == b[0]:
            if a[1] != b[1]:
                yield Drift(view, a[0], a[1], b[1])
            key, take_left, take_right = a[0], True, True
        elif b is None or (a is not None and a[0] < b[0]):
            assert a is not None
            yield Drift(view, a[0], a[1], None)
            key, take_left, take_right = a[0], True, False
        else:
            yield Drift(view, b[0], None, b[1])
            key, take_left, take_right = b[0], False, True
        # A scan out of key order would pair the wrong documents: refuse, never misreport.
        if take_left:
            if last_left is not None and key <= last_left:
                raise ValueError(f"{view}: the live scan is not in key order at {key!r}")
            last_left, a = key, next(left, None)
        if take_right:
            if last_right is not None and key <= last_right:
                raise ValueError(f"{view}: the rebuilt scan is not in key order at {key!r}")
            last_right, b = key, next(right, None)


def rebuild(system: System, *, upto: int | None = None, batch: int = 500) -> MemoryViewStore:
    """Every projection, fresh, fed the store's log (up to a position) in batches."""
    store = MemoryViewStore()
    projections = build_projections(system.tz)
    for envelope in stream_envelopes(system, upto=upto, batch=batch):
        for projection in projections:
            projection.apply(envelope, store)
    return store


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
            yield from compare(view, system.views.scan(view), rebuilt.scan(view))
