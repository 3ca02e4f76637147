"""The unit directory (单位名录): departments (条) and towns (块) by slug."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from projections.base import Projection
from projections.envelope import EventEnvelope
from projections.store import ViewStore
from projections.timeutil import iso

UNIT_AGGREGATE = "Unit"
UNITS_VIEW = "directory_units"
"""Unit documents keyed by slug."""
IDS_VIEW = "directory_ids"
"""Aggregate id → slug, because ``UnitRenamed`` carries only the aggregate id."""


class UnitDirectoryProjection(Projection):
    """Units from ``UnitRegistered`` and ``UnitRenamed``."""

    name: ClassVar[str] = "directory"
    views: ClassVar[tuple[str, ...]] = (UNITS_VIEW, IDS_VIEW)
    aggregate_types: ClassVar[frozenset[str] | None] = frozenset({UNIT_AGGREGATE})

    def reads(self, event: EventEnvelope) -> Iterable[tuple[str, str]]:
        if event.aggregate_type == UNIT_AGGREGATE and event.type == "UnitRenamed":
            return [(IDS_VIEW, event.aggregate_id)]
        return ()

    def apply(self, event: EventEnvelope, store: ViewStore) -> None:
        if event.aggregate_type != UNIT_AGGREGATE:
            return
        if event.type == "UnitRegistered":
            slug = str(event.data["slug"])
            store.put(
                UNITS_VIEW,
                slug,
                {
                    "id": slug,
                    "name": event.data["name"],
                    "kind": event.data["kind"],
                    "registered_at": iso(event.at),
                },
            )
            store.put(IDS_VIEW, event.aggregate_id, {"slug": slug})
        elif event.type == "UnitRenamed":
            index = store.get(IDS_VIEW, event.aggregate_id)
            if index is None:
                return
            unit = store.get(UNITS_VIEW, index["slug"])
            if unit is None:
                return
            unit["name"] = event.data["name"]
            store.put(UNITS_VIEW, index["slug"], unit)


def list_units(store: ViewStore) -> list[dict[str, Any]]:
    """Every unit {"id", "name", "kind", "registered_at"}, sorted by id (slug)."""
    # Sorted here: a SQL store's key order follows its collation, not Python's.
    return sorted((doc for _, doc in store.scan(UNITS_VIEW)), key=lambda doc: str(doc["id"]))


def get_unit(store: ViewStore, slug: str) -> dict[str, Any] | None:
    """The unit with this slug, or None."""
    return store.get(UNITS_VIEW, slug)
