"""/units — the unit directory (departments 条 and towns 块)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import CurrentPrincipal, Secretariat, SystemDep
from api.responses import with_etag, written
from api.schemas import WRITE_ERRORS, UnitRegister
from api.serialize import unit_public
from domain.units import UnitKind
from projections.directory import list_units

router = APIRouter(prefix="/units", tags=["units"], responses=WRITE_ERRORS)


@router.post("", status_code=201, summary="Register a unit")
def register_unit(body: UnitRegister, system: SystemDep, principal: Secretariat) -> JSONResponse:
    outcome = system.app.register_unit(
        slug=body.id, name=body.name, kind=UnitKind(body.kind), actor=principal.actor
    )
    return written(
        outcome, unit_public(outcome.aggregate), status=201, location=f"/units/{body.id}"
    )


@router.get("", summary="List the units")
def get_units(system: SystemDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Reference data every principal may read, so views can name their units."""
    return {"items": list_units(system.views)}


@router.get("/{unit}", summary="One unit")
def get_unit(unit: str, system: SystemDep, principal: CurrentPrincipal) -> JSONResponse:
    found = system.app.unit(unit)
    return with_etag(unit_public(found), found.version)
