"""/tasks — supervised tasks (督办任务) and every decision on them."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import JSONResponse

from api.deps import CurrentPrincipal, ExpectedVersion, Liaison, Secretariat, SystemDep
from api.responses import with_etag, written
from api.schemas import (
    WRITE_ERRORS,
    ExtensionRequest,
    LeadTransfer,
    MembershipChange,
    Note,
    ProgressReport,
    Reason,
    RequiredNote,
    TaskIssue,
)
from api.serialize import task_public
from domain.actor import Role
from domain.tasks import TaskState
from infra.application import Written
from projections.tasks import list_tasks

router = APIRouter(prefix="/tasks", tags=["tasks"], responses=WRITE_ERRORS)


def _task(outcome: Written[Any]) -> JSONResponse:
    return written(outcome, task_public(outcome.aggregate))


@router.post("", status_code=201, summary="Issue a supervised task")
def issue_task(body: TaskIssue, system: SystemDep, principal: Secretariat) -> JSONResponse:
    outcome = system.app.issue_task(
        title=body.title,
        description=body.description,
        industry=body.industry,
        lead_unit=body.lead_unit,
        co_units=body.co_units,
        towns=body.towns,
        deadline=body.deadline,
        weight=body.weight,
        meeting_id=body.meeting_id,
        resolution_id=body.resolution_id,
        actor=principal.actor,
    )
    task = outcome.aggregate
    return written(outcome, task_public(task), status=201, location=f"/tasks/{task.id}")


@router.get("", summary="List tasks (a liaison sees only its own unit's)")
def get_tasks(
    system: SystemDep,
    principal: CurrentPrincipal,
    state: TaskState | None = None,
    unit: Annotated[str | None, Query(description="lead or co-unit")] = None,
    town: str | None = None,
    industry: str | None = None,
    overdue: bool | None = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    involving = principal.unit if principal.role == Role.LIAISON else None
    items, total = list_tasks(
        system.views,
        state=state.value if state else None,
        unit=unit,
        town=town,
        industry=industry,
        overdue=overdue,
        involving=involving,
        offset=offset,
        limit=limit,
    )
    return {"items": items, "total": total, "offset": offset, "limit": limit}


@router.get("/{task_id}", summary="One task, with its version as ETag")
def get_task(task_id: UUID, system: SystemDep, principal: CurrentPrincipal) -> JSONResponse:
    task = system.app.task(task_id)
    if principal.role == Role.LIAISON and not task.involves(principal.unit):
        raise HTTPException(403, f"unit {principal.unit!r} is not involved in this task")
    return with_etag(task_public(task), task.version)


# ------------------------------------------------------------- liaisons
@router.post("/{task_id}/sign", summary="Sign for the task (签收) for the liaison's unit")
def sign(
    task_id: UUID, system: SystemDep, principal: Liaison, version: ExpectedVersion
) -> JSONResponse:
    return _task(
        system.app.sign_for(task_id=task_id, actor=principal.actor, expected_version=version)
    )


@router.post("/{task_id}/progress", summary="Report progress")
def progress(
    task_id: UUID,
    body: ProgressReport,
    system: SystemDep,
    principal: Liaison,
    version: ExpectedVersion,
) -> JSONResponse:
    return _task(
        system.app.report_progress(
            task_id=task_id,
            note=body.note,
            percent=body.percent,
            actor=principal.actor,
            expected_version=version,
        )
    )


@router.post("/{task_id}/contribution", summary="Report a co-unit's or town's contribution")
def contribution(
    task_id: UUID,
    body: RequiredNote,
    system: SystemDep,
    principal: Liaison,
    version: ExpectedVersion,
) -> JSONResponse:
    return _task(
        system.app.report_contribution(
            task_id=task_id, note=body.note, actor=principal.actor, expected_version=version
        )
    )


@router.post("/{task_id}/completion", summary="Report completion (lead unit only)")
def completion(
    task_id: UUID,
    body: RequiredNote,
    system: SystemDep,
    principal: Liaison,
    version: ExpectedVersion,
) -> JSONResponse:
    return _task(
        system.app.report_completion(
            task_id=task_id, note=body.note, actor=principal.actor, expected_version=version
        )
    )


@router.post(
    "/{task_id}/extension-requests", status_code=201, summary="Ask for a later deadline (延期)"
)
def request_extension(
    task_id: UUID,
    body: ExtensionRequest,
    system: SystemDep,
    principal: Liaison,
    version: ExpectedVersion,
) -> JSONResponse:
    outcome = system.app.request_extension(
        task_id=task_id,
        new_deadline=body.new_deadline,
        reason=body.reason,
        actor=principal.actor,
        expected_version=version,
    )
    rid = outcome.created_id
    return written(
        outcome,
        {"request_id": rid, "task": task_public(outcome.aggregate)},
        status=201,
        location=f"/tasks/{task_id}/extension-requests/{rid}",
    )


# ---------------------------------------------------------- secretariat
@router.post("/{task_id}/extension-requests/{request_id}/grant", summary="Grant an extension")
def grant_extension(
    task_id: UUID,
    request_id: str,
    body: Note,
    system: SystemDep,
    principal: Secretariat,
    version: ExpectedVersion,
) -> JSONResponse:
    return _task(
        system.app.grant_extension(
            task_id=task_id,
            request_id=request_id,
            note=body.note,
            actor=principal.actor,
            expected_version=version,
        )
    )


@router.post("/{task_id}/extension-requests/{request_id}/deny", summary="Deny an extension")
def deny_extension(
    task_id: UUID,
    request_id: str,
    body: Reason,
    system: SystemDep,
    principal: Secretariat,
    version: ExpectedVersion,
) -> JSONResponse:
    return _task(
        system.app.deny_extension(
            task_id=task_id,
            request_id=request_id,
            reason=body.reason,
            actor=principal.actor,
            expected_version=version,
        )
    )


@router.post("/{task_id}/verify", summary="Verify completion (验收销号)")
def verify(
    task_id: UUID, body: Note, system: SystemDep, principal: Secretariat, version: ExpectedVersion
) -> JSONResponse:
    return _task(
        system.app.verify_task(
            task_id=task_id, note=body.note, actor=principal.actor, expected_version=version
        )
    )


@router.post("/{task_id}/return", summary="Return for rework (退回)")
def return_task(
    task_id: UUID,
    body: Reason,
    system: SystemDep,
    principal: Secretariat,
    version: ExpectedVersion,
) -> JSONResponse:
    return _task(
        system.app.return_task(
            task_id=task_id, reason=body.reason, actor=principal.actor, expected_version=version
        )
    )


@router.post("/{task_id}/urge", summary="Urge the lead unit (催办)")
def urge(
    task_id: UUID, body: Note, system: SystemDep, principal: Secretariat, version: ExpectedVersion
) -> JSONResponse:
    return _task(
        system.app.urge_task(
            task_id=task_id, note=body.note, actor=principal.actor, expected_version=version
        )
    )


@router.post("/{task_id}/transfer", summary="Transfer the lead unit, with a reason")
def transfer(
    task_id: UUID,
    body: LeadTransfer,
    system: SystemDep,
    principal: Secretariat,
    version: ExpectedVersion,
) -> JSONResponse:
    return _task(
        system.app.transfer_lead(
            task_id=task_id,
            new_lead=body.new_lead,
            reason=body.reason,
            actor=principal.actor,
            expected_version=version,
        )
    )


def _require_change(body: MembershipChange) -> None:
    if not body.add and not body.remove:
        raise HTTPException(422, "add: give units to add or remove")
    if body.remove and not body.reason.strip():
        raise HTTPException(422, "reason: a reason is required to remove units")


@router.post("/{task_id}/co-units", summary="Add or remove co-units (配合单位)")
def co_units(
    task_id: UUID,
    body: MembershipChange,
    system: SystemDep,
    principal: Secretariat,
    version: ExpectedVersion,
) -> JSONResponse:
    _require_change(body)
    return _task(
        system.app.change_co_units(
            task_id=task_id,
            add=body.add,
            remove=body.remove,
            reason=body.reason,
            actor=principal.actor,
            expected_version=version,
        )
    )


@router.post("/{task_id}/towns", summary="Add or remove towns (属地)")
def towns(
    task_id: UUID,
    body: MembershipChange,
    system: SystemDep,
    principal: Secretariat,
    version: ExpectedVersion,
) -> JSONResponse:
    _require_change(body)
    return _task(
        system.app.change_towns(
            task_id=task_id,
            add=body.add,
            remove=body.remove,
            reason=body.reason,
            actor=principal.actor,
            expected_version=version,
        )
    )
