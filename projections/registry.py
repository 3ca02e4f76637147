"""Every projection of the read side, and how to build the set the runners use."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from projections.assessment import AssessmentProjection
from projections.base import Projection
from projections.coverage import CoverageProjection
from projections.directory import UnitDirectoryProjection
from projections.ledger import LedgerProjection
from projections.linkage import LinkageProjection
from projections.tasks import TaskListProjection
from projections.timeutil import DEFAULT_TZ
from projections.unit_views import UnitViewProjection

ALL_PROJECTIONS: tuple[type[Projection], ...] = (
    UnitDirectoryProjection,
    TaskListProjection,
    UnitViewProjection,
    LinkageProjection,
    LedgerProjection,
    AssessmentProjection,
    CoverageProjection,
)
"""Each owns disjoint view namespaces and reads no other's documents."""


def build_projections(tz: ZoneInfo = DEFAULT_TZ) -> list[Projection]:
    """One instance of every projection; ``tz`` is the district time zone (考核 year)."""
    built: list[Projection] = []
    for cls in ALL_PROJECTIONS:
        built.append(AssessmentProjection(tz) if cls is AssessmentProjection else cls())
    return built
