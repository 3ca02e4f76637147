"""/meetings — joint meetings (联席会议), their attendance and resolutions."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import ExpectedVersion, Overseer, Secretariat, SystemDep
from api.responses import with_etag, written
from api.schemas import WRITE_ERRORS, AttendanceRecord, MeetingConvene, ResolutionAdopt
from api.serialize import meeting_public

router = APIRouter(prefix="/meetings", tags=["meetings"], responses=WRITE_ERRORS)


@router.post("", status_code=201, summary="Convene a joint meeting")
def convene(body: MeetingConvene, system: SystemDep, principal: Secretariat) -> JSONResponse:
    outcome = system.app.convene_meeting(
        title=body.title, held_at=body.held_at, actor=principal.actor
    )
    meeting = outcome.aggregate
    return written(outcome, meeting_public(meeting), status=201, location=f"/meetings/{meeting.id}")


@router.post("/{meeting_id}/attendance", summary="Record the units present")
def record_attendance(
    meeting_id: UUID,
    body: AttendanceRecord,
    system: SystemDep,
    principal: Secretariat,
    version: ExpectedVersion,
) -> JSONResponse:
    outcome = system.app.record_attendance(
        meeting_id=meeting_id, units=body.units, actor=principal.actor, expected_version=version
    )
    return written(outcome, meeting_public(outcome.aggregate))


@router.post("/{meeting_id}/resolutions", status_code=201, summary="Adopt a resolution")
def adopt_resolution(
    meeting_id: UUID,
    body: ResolutionAdopt,
    system: SystemDep,
    principal: Secretariat,
    version: ExpectedVersion,
) -> JSONResponse:
    outcome = system.app.adopt_resolution(
        meeting_id=meeting_id, text=body.text, actor=principal.actor, expected_version=version
    )
    body_out = {"resolution_id": outcome.created_id, "meeting": meeting_public(outcome.aggregate)}
    return written(outcome, body_out, status=201)


@router.post("/{meeting_id}/close", summary="Close the meeting")
def close(
    meeting_id: UUID, system: SystemDep, principal: Secretariat, version: ExpectedVersion
) -> JSONResponse:
    outcome = system.app.close_meeting(
        meeting_id=meeting_id, actor=principal.actor, expected_version=version
    )
    return written(outcome, meeting_public(outcome.aggregate))


@router.get("/{meeting_id}", summary="One meeting")
def get_meeting(meeting_id: UUID, system: SystemDep, principal: Overseer) -> JSONResponse:
    meeting = system.app.meeting(meeting_id)
    return with_etag(meeting_public(meeting), meeting.version)
