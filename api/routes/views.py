"""/views — the read side, one view per audience."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query

from api.deps import CurrentPrincipal, Overseer, SystemDep, require_own_unit
from api.schemas import MAX_POSITION, READ_ERRORS
from domain.units import UnitKind
from infra.bootstrap import System
from projections.assessment import assessment_board
from projections.coverage import coverage_board
from projections.ledger import task_ledger
from projections.linkage import linkage_matrix
from projections.unit_views import town_view, unit_view

router = APIRouter(prefix="/views", tags=["views"], responses=READ_ERRORS)

After = Annotated[
    int | None,
    Query(
        ge=0,
        le=MAX_POSITION,
        description="Answer only once the view has applied this store position "
        "(the X-Tiaokuai-Position of your write)",
    ),
]


def _fresh(system: System, after: int | None, *projections: str) -> dict[str, Any]:
    """Read-your-writes: wait (bounded) until the view has applied position ``after``."""
    if system.settings.bus is None:
        position = system.catch_up()
        failed = sorted(set(projections) & set(system.projector.failures))
        if failed and after is not None:
            raise HTTPException(
                503,
                f"after: projection {failed[0]} stopped at an event it cannot apply "
                "(see /health); this view stays behind it",
                headers={"Retry-After": "1"},
            )
        return {"position": position, "caught_up": not failed}
    if after is None:
        return {"caught_up": True}
    caught_up = system.wait_for(after, projections, system.settings.read_wait_seconds)
    if not caught_up:
        raise HTTPException(
            503,
            f"after: the view has not reached position {after} within "
            f"{system.settings.read_wait_seconds:g} s; retry",
            headers={"Retry-After": "1"},
        )
    return {"caught_up": True}


@router.get("/units/{unit}", summary="Department view (条): one unit's tasks, links, committees")
def department_view(
    unit: str, system: SystemDep, principal: CurrentPrincipal, after: After = None
) -> dict[str, Any]:
    require_own_unit(principal, unit)
    found = system.app.unit(unit)
    if found.kind != UnitKind.DEPARTMENT:
        raise HTTPException(404, f"unit: {unit!r} is a town; its view is /views/towns/{unit}")
    meta = _fresh(system, after, "unit_views")
    view = unit_view(system.views, unit, now=system.clock.now(), tz=system.tz)
    return {**system.app.persons.resolve_refs(view), **meta}


@router.get("/towns/{town}", summary="Town view (块): one town's or street's tasks")
def get_town_view(
    town: str, system: SystemDep, principal: CurrentPrincipal, after: After = None
) -> dict[str, Any]:
    require_own_unit(principal, town)
    found = system.app.unit(town, field="town")
    if found.kind != UnitKind.TOWN:
        raise HTTPException(404, f"town: {town!r} is a department; see /views/units/{town}")
    meta = _fresh(system, after, "unit_views")
    view = town_view(system.views, town, now=system.clock.now(), tz=system.tz)
    return {**system.app.persons.resolve_refs(view), **meta}


@router.get("/linkage", summary="Linkage matrix (条块联动): units × towns")
def get_linkage(system: SystemDep, principal: Overseer, after: After = None) -> dict[str, Any]:
    meta = _fresh(system, after, "linkage")
    return {**linkage_matrix(system.views), **meta}


@router.get("/ledger/tasks/{task_id}", summary="Accountability ledger (问责台账) of a task")
def get_ledger(
    task_id: UUID, system: SystemDep, principal: Overseer, after: After = None
) -> dict[str, Any]:
    meta = _fresh(system, after, "ledger")
    ledger = task_ledger(system.views, str(task_id), now=system.clock.now(), tz=system.tz)
    if ledger is None:
        raise HTTPException(404, f"task {task_id} does not exist")
    return {**system.app.persons.resolve_refs(ledger), **meta}


@router.get("/assessment", summary="Assessment board (考核) of one year")
def get_assessment(
    system: SystemDep,
    principal: Overseer,
    year: Annotated[int, Query(ge=2000, le=2100)],
    after: After = None,
) -> dict[str, Any]:
    meta = _fresh(system, after, "assessment")
    return {**assessment_board(system.views, year), **meta}


@router.get("/coverage", summary="Coverage board of the industry party committees")
def get_coverage(system: SystemDep, principal: Overseer, after: After = None) -> dict[str, Any]:
    meta = _fresh(system, after, "coverage")
    return {**system.app.persons.resolve_refs(coverage_board(system.views)), **meta}
