"""/views — the read side, one view per audience."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query

from api.deps import CurrentPrincipal, Overseer, SystemDep, require_own_unit
from api.responses import JSONBody
from api.schemas import MAX_POSITION, READ_ERRORS
from domain.units import UnitKind
from infra.bootstrap import System
from projections.assessment import assessment_board
from projections.coverage import coverage_board
from projections.ledger import task_ledger
from projections.linkage import linkage_matrix
from projections.unit_views import town_view, unit_view

router = APIRouter(prefix="/views", tags=["views"], responses=READ_ERRORS)

View = dict[str, Any]
"""What every view route answers (declared as its response model, for the schema)."""

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


def _answer(view: View, meta: dict[str, Any]) -> JSONBody:
    # Rendered here by orjson: a department's view is hundreds of summaries, and
    # FastAPI would validate the dict against its model and then run json.dumps on it.
    return JSONBody({**view, **meta})


@router.get(
    "/units/{unit}",
    response_model=View,
    summary="Department view (条): one unit's tasks, links, committees",
)
def department_view(
    unit: str, system: SystemDep, principal: CurrentPrincipal, after: After = None
) -> JSONBody:
    require_own_unit(principal, unit)
    if system.app.unit_kind(unit) != UnitKind.DEPARTMENT:
        raise HTTPException(404, f"unit: {unit!r} is a town; its view is /views/towns/{unit}")
    meta = _fresh(system, after, "unit_views")
    view = unit_view(system.views, unit, now=system.clock.now(), tz=system.tz)
    return _answer(system.app.persons.resolve_refs(view), meta)


@router.get(
    "/towns/{town}", response_model=View, summary="Town view (块): one town's or street's tasks"
)
def get_town_view(
    town: str, system: SystemDep, principal: CurrentPrincipal, after: After = None
) -> JSONBody:
    require_own_unit(principal, town)
    if system.app.unit_kind(town, field="town") != UnitKind.TOWN:
        raise HTTPException(404, f"town: {town!r} is a department; see /views/units/{town}")
    meta = _fresh(system, after, "unit_views")
    view = town_view(system.views, town, now=system.clock.now(), tz=system.tz)
    return _answer(system.app.persons.resolve_refs(view), meta)


@router.get("/linkage", response_model=View, summary="Linkage matrix (条块联动): units × towns")
def get_linkage(system: SystemDep, principal: Overseer, after: After = None) -> JSONBody:
    meta = _fresh(system, after, "linkage")
    return _answer(linkage_matrix(system.views), meta)


@router.get(
    "/ledger/tasks/{task_id}",
    response_model=View,
    summary="Accountability ledger (问责台账) of a task",
)
def get_ledger(
    task_id: UUID, system: SystemDep, principal: Overseer, after: After = None
) -> JSONBody:
    meta = _fresh(system, after, "ledger")
    ledger = task_ledger(system.views, str(task_id), now=system.clock.now(), tz=system.tz)
    if ledger is None:
        raise HTTPException(404, f"task {task_id} does not exist")
    return _answer(system.app.persons.resolve_refs(ledger), meta)


@router.get("/assessment", response_model=View, summary="Assessment board (考核) of one year")
def get_assessment(
    system: SystemDep,
    principal: Overseer,
    year: Annotated[int, Query(ge=2000, le=2100)],
    after: After = None,
) -> JSONBody:
    meta = _fresh(system, after, "assessment")
    return _answer(assessment_board(system.views, year), meta)


@router.get(
    "/coverage", response_model=View, summary="Coverage board of the industry party committees"
)
def get_coverage(system: SystemDep, principal: Overseer, after: After = None) -> JSONBody:
    meta = _fresh(system, after, "coverage")
    return _answer(system.app.persons.resolve_refs(coverage_board(system.views)), meta)
