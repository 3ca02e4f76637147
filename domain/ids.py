"""Aggregate identities. Slug-named aggregates get stable name-based UUIDs."""

from __future__ import annotations

import re
from uuid import UUID, uuid5

NAMESPACE = UUID("6f1b7f1e-3c1a-4d8e-9a55-7a1c0de0b1a1")
SLUG_RE = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
INDUSTRIES = ("express", "food-delivery", "ride-hailing", "freight", "new-media")
"""The industries of the new employment groups (快递, 外卖, 网约车, 货运, 新媒体)."""


def unit_id(slug: str) -> UUID:
    """The aggregate id of the unit with this slug."""
    return uuid5(NAMESPACE, f"unit:{slug}")


def chain_id(industry: str) -> UUID:
    """The aggregate id of the responsibility chain of this industry."""
    return uuid5(NAMESPACE, f"chain:{industry}")


def is_slug(value: str) -> bool:
    return bool(SLUG_RE.match(value)) and len(value) <= 64
