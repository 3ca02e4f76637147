"""/committees — industry party committees (行业党委)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import ExpectedVersion, Overseer, Secretariat, SystemDep
from api.responses import with_etag, written
from api.schemas import (
    WRITE_ERRORS,
    CommitteeEstablish,
    CoverageReport,
    InstructorDispatch,
    MemberAdmit,
    Reason,
    SecretaryAppoint,
)
from api.serialize import committee_public

router = APIRouter(prefix="/committees", tags=["committees"], responses=WRITE_ERRORS)


@router.post("", status_code=201, summary="Register an industry party committee")
def establish(body: CommitteeEstablish, system: SystemDep, principal: Secretariat) -> JSONResponse:
    outcome = system.app.establish_committee(
        name=body.name,
        industry=body.industry,
        supervising_unit=body.supervising_unit,
        actor=principal.actor,
    )
    committee = outcome.aggregate
    return written(
        outcome,
        committee_public(committee),
        status=201,
        location=f"/committees/{committee.id}",
    )


@router.post("/{committee_id}/secretary", summary="Appoint the secretary")
def appoint_secretary(
    committee_id: UUID,
    body: SecretaryAppoint,
    system: SystemDep,
    principal: Secretariat,
    version: ExpectedVersion,
) -> JSONResponse:
    outcome = system.app.appoint_secretary(
        committee_id=committee_id,
        name=body.name,
        phone=body.phone,
        person_id=body.person_id,
        reason=body.reason,
        actor=principal.actor,
        expected_version=version,
    )
    return written(outcome, committee_public(outcome.aggregate))


@router.post("/{committee_id}/members", status_code=201, summary="A party organization joins")
def admit_member(
    committee_id: UUID,
    body: MemberAdmit,
    system: SystemDep,
    principal: Secretariat,
    version: ExpectedVersion,
) -> JSONResponse:
    outcome = system.app.admit_member(
        committee_id=committee_id,
        name=body.name,
        enterprise=body.enterprise,
        actor=principal.actor,
        expected_version=version,
    )
    return written(
        outcome,
        {"member_id": outcome.created_id, "committee": committee_public(outcome.aggregate)},
        status=201,
    )


@router.post("/{committee_id}/members/{member_id}/leave", summary="A member organization leaves")
def member_leaves(
    committee_id: UUID,
    member_id: str,
    body: Reason,
    system: SystemDep,
    principal: Secretariat,
    version: ExpectedVersion,
) -> JSONResponse:
    outcome = system.app.remove_member(
        committee_id=committee_id,
        member_id=member_id,
        reason=body.reason,
        actor=principal.actor,
        expected_version=version,
    )
    return written(outcome, committee_public(outcome.aggregate))


@router.post(
    "/{committee_id}/instructors", status_code=201, summary="Dispatch an instructor (党建指导员)"
)
def dispatch_instructor(
    committee_id: UUID,
    body: InstructorDispatch,
    system: SystemDep,
    principal: Secretariat,
    version: ExpectedVersion,
) -> JSONResponse:
    outcome = system.app.dispatch_instructor(
        committee_id=committee_id,
        name=body.name,
        phone=body.phone,
        person_id=body.person_id,
        enterprise=body.enterprise,
        enterprise_party_members=body.enterprise_party_members,
        actor=principal.actor,
        expected_version=version,
    )
    return written(
        outcome,
        {"instructor_id": outcome.created_id, "committee": committee_public(outcome.aggregate)},
        status=201,
    )


@router.post("/{committee_id}/instructors/{instructor_id}/recall", summary="Recall an instructor")
def recall_instructor(
    committee_id: UUID,
    instructor_id: str,
    body: Reason,
    system: SystemDep,
    principal: Secretariat,
    version: ExpectedVersion,
) -> JSONResponse:
    outcome = system.app.recall_instructor(
        committee_id=committee_id,
        instructor_id=instructor_id,
        reason=body.reason,
        actor=principal.actor,
        expected_version=version,
    )
    return written(outcome, committee_public(outcome.aggregate))


@router.post(
    "/{committee_id}/coverage-reports", status_code=201, summary="Report coverage for a period"
)
def report_coverage(
    committee_id: UUID,
    body: CoverageReport,
    system: SystemDep,
    principal: Secretariat,
    version: ExpectedVersion,
) -> JSONResponse:
    outcome = system.app.report_coverage(
        committee_id=committee_id,
        period=body.period,
        enterprises=body.enterprises,
        organizations_covered=body.organizations_covered,
        work_covered=body.work_covered,
        party_members=body.party_members,
        workers=body.workers,
        actor=principal.actor,
        expected_version=version,
    )
    return written(outcome, committee_public(outcome.aggregate), status=201)


@router.get("/{committee_id}", summary="One committee")
def get_committee(committee_id: UUID, system: SystemDep, principal: Overseer) -> JSONResponse:
    committee = system.app.committee(committee_id)
    return with_etag(committee_public(committee), committee.version)
