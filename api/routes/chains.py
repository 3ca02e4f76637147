"""/chains — responsibility chains (责任链条), one per industry."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import ExpectedVersion, Overseer, Secretariat, SystemDep
from api.responses import with_etag, written
from api.schemas import WRITE_ERRORS, ChainEstablish, Handover, LinkAdd
from api.serialize import chain_public, link_public

router = APIRouter(prefix="/chains", tags=["chains"], responses=WRITE_ERRORS)


@router.post("", status_code=201, summary="Establish an industry's chain")
def establish(body: ChainEstablish, system: SystemDep, principal: Secretariat) -> JSONResponse:
    outcome = system.app.establish_chain(
        industry=body.industry, name=body.name, actor=principal.actor
    )
    return written(
        outcome,
        chain_public(outcome.aggregate),
        status=201,
        location=f"/chains/{body.industry}",
    )


@router.post("/{industry}/links", status_code=201, summary="Add a link to the chain")
def add_link(
    industry: str,
    body: LinkAdd,
    system: SystemDep,
    principal: Secretariat,
    version: ExpectedVersion,
) -> JSONResponse:
    outcome = system.app.add_chain_link(
        industry=industry,
        unit=body.unit,
        role=body.role,
        responsible_person=body.responsible_person,
        phone=body.phone,
        person_id=body.person_id,
        duties=body.duties,
        actor=principal.actor,
        expected_version=version,
    )
    assert outcome.created_id is not None
    return written(outcome, link_public(outcome.aggregate, outcome.created_id), status=201)


@router.post("/{industry}/links/{link_id}/handover", summary="Hand a link to a new person")
def handover(
    industry: str,
    link_id: str,
    body: Handover,
    system: SystemDep,
    principal: Secretariat,
    version: ExpectedVersion,
) -> JSONResponse:
    outcome = system.app.hand_over_link(
        industry=industry,
        link_id=link_id,
        responsible_person=body.responsible_person,
        phone=body.phone,
        person_id=body.person_id,
        effective_at=body.effective_at,
        reason=body.reason,
        actor=principal.actor,
        expected_version=version,
    )
    return written(outcome, link_public(outcome.aggregate, link_id))


@router.get("/{industry}", summary="One chain with its links")
def get_chain(industry: str, system: SystemDep, principal: Overseer) -> JSONResponse:
    chain = system.app.chain(industry)
    return with_etag(chain_public(chain), chain.version)
