"""/audit — history, state then, responsibility then, views then, replays (auditor, secretariat)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import JSONResponse, StreamingResponse

from api import schemas
from api.deps import Overseer, SystemDep
from api.schemas import READ_ERRORS
from api.serialize import (
    chain_public,
    committee_public,
    erasure_public,
    meeting_public,
    task_public,
    unit_public,
)
from domain.base import TiaokuaiAggregate
from domain.chains import ResponsibilityChain
from domain.committees import IndustryPartyCommittee
from domain.meetings import JointMeeting
from domain.persons import PersonErasure
from domain.tasks import SupervisedTask
from domain.units import Unit, UnitKind
from infra import audit
from infra.replay import replay_status, start_background_replay
from projections.assessment import assessment_board
from projections.ledger import task_ledger
from projections.linkage import linkage_matrix
from projections.unit_views import town_view, unit_view

router = APIRouter(prefix="/audit", tags=["audit"], responses=READ_ERRORS)


class Kind(StrEnum):
    TASKS = "tasks"
    CHAINS = "chains"
    COMMITTEES = "committees"
    MEETINGS = "meetings"
    UNITS = "units"
    ERASURES = "erasures"


class ExportFormat(StrEnum):
    JSON = "json"
    NDJSON = "ndjson"
    CSV = "csv"


Instant = Annotated[
    schemas.Instant,
    Query(description="an ISO-8601 instant with its offset, between the years 1900 and 9000"),
]


def public(aggregate: TiaokuaiAggregate) -> dict[str, Any]:
    if isinstance(aggregate, SupervisedTask):
        return task_public(aggregate)
    if isinstance(aggregate, ResponsibilityChain):
        return chain_public(aggregate)
    if isinstance(aggregate, IndustryPartyCommittee):
        return committee_public(aggregate)
    if isinstance(aggregate, JointMeeting):
        return meeting_public(aggregate)
    if isinstance(aggregate, PersonErasure):
        return erasure_public(aggregate)
    assert isinstance(aggregate, Unit)
    return unit_public(aggregate)


def _ndjson(rows: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    for row in rows:
        yield (json.dumps(row, ensure_ascii=False) + "\n").encode()


CSV_COLUMNS = ["version", "type", "at", "recorded_at", "actor_id", "actor_role", "actor_unit"]


def _csv(rows: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    # A byte-order mark so spreadsheet programs read the Chinese text as UTF-8.
    yield "\ufeff".encode()
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([*CSV_COLUMNS, "reason", "data"])
    for row in rows:
        actor = row["actor"] or {}
        writer.writerow(
            [
                row["version"],
                row["type"],
                row["at"],
                row["recorded_at"],
                actor.get("id"),
                actor.get("role"),
                actor.get("unit"),
                row["reason"] or "",
                json.dumps(row["data"], ensure_ascii=False),
            ]
        )
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()


EXPORTS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A page of events as JSON, or every event as NDJSON or CSV (`format`)",
        "content": {
            "application/x-ndjson": {"schema": {"type": "string"}},
            "text/csv": {"schema": {"type": "string"}},
        },
    }
}


@router.get("/{kind}/{id}/history", summary="Every event of one aggregate", responses=EXPORTS)
def history(
    kind: Kind,
    id: str,
    system: SystemDep,
    principal: Overseer,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    format: ExportFormat = ExportFormat.JSON,
) -> Any:
    if format == ExportFormat.JSON:
        items, total = audit.history(system, kind.value, id, offset=offset, limit=limit)
        return {
            "kind": kind.value,
            "id": id,
            "items": items,
            "total": total,
            "offset": offset,
            "limit": limit,
        }
    rows = list(audit.all_history(system, kind.value, id))  # raises 404 before streaming
    filename = f"{kind.value}-{id}-history.{format.value}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if format == ExportFormat.NDJSON:
        return StreamingResponse(
            _ndjson(iter(rows)), media_type="application/x-ndjson; charset=utf-8", headers=headers
        )
    return StreamingResponse(
        _csv(iter(rows)), media_type="text/csv; charset=utf-8", headers=headers
    )


@router.get("/{kind}/{id}/state", summary="The aggregate as it was at a version or instant")
def state(
    kind: Kind,
    id: str,
    system: SystemDep,
    principal: Overseer,
    version: Annotated[int | None, Query(ge=1, le=10_000_000)] = None,
    at: Instant | None = None,
) -> dict[str, Any]:
    if version is not None and at is not None:
        raise HTTPException(422, "version: give either version or at, not both")
    aggregate = audit.state_at(system, kind.value, id, version=version, at=at)
    return {"kind": kind.value, "id": id, "version": aggregate.version, "state": public(aggregate)}


@router.get("/responsibility", summary="Each link of a chain and its responsible person then")
def responsibility(
    industry: str, at: Instant, system: SystemDep, principal: Overseer
) -> dict[str, Any]:
    return audit.responsibility_at(system, industry, at)


@router.get("/tasks/{task_id}/holders", summary="Who held a task, and the overdue days of each")
def holders(task_id: UUID, system: SystemDep, principal: Overseer) -> dict[str, Any]:
    system.app.task(task_id)  # 404 for an unknown task
    if system.settings.bus is None:
        system.catch_up()
    ledger = task_ledger(system.views, str(task_id), now=system.clock.now(), tz=system.tz)
    if ledger is None:
        raise HTTPException(503, "the ledger has not applied this task yet; retry")
    keys = (
        "task_id",
        "title",
        "industry",
        "lead_unit",
        "holders",
        "overdue_days_by_unit",
        "overdue_days_total",
        "transfers",
    )
    found = {key: ledger[key] for key in keys if key in ledger}
    return dict(system.app.persons.resolve_refs(found))


# --------------------------------------------------------------- views then
@router.get("/views/units/{unit}", summary="A department's view as it stood at an instant")
def unit_view_at(unit: str, at: Instant, system: SystemDep, principal: Overseer) -> dict[str, Any]:
    if system.app.unit_kind(unit) != UnitKind.DEPARTMENT:
        raise HTTPException(404, f"unit: {unit!r} is a town; see /audit/views/towns/{unit}")
    found = audit.view_at(
        system, "unit_views", at, lambda s: unit_view(s, unit, now=at, tz=system.tz)
    )
    return dict(system.app.persons.resolve_refs(found))


@router.get("/views/towns/{town}", summary="A town's view as it stood at an instant")
def town_view_at(town: str, at: Instant, system: SystemDep, principal: Overseer) -> dict[str, Any]:
    if system.app.unit_kind(town, field="town") != UnitKind.TOWN:
        raise HTTPException(404, f"town: {town!r} is a department; see /audit/views/units/{town}")
    found = audit.view_at(
        system, "unit_views", at, lambda s: town_view(s, town, now=at, tz=system.tz)
    )
    return dict(system.app.persons.resolve_refs(found))


@router.get("/views/linkage", summary="The linkage matrix as it stood at an instant")
def linkage_at(at: Instant, system: SystemDep, principal: Overseer) -> dict[str, Any]:
    return audit.view_at(system, "linkage", at, linkage_matrix)


@router.get("/views/assessment", summary="The assessment board as it stood at an instant")
def assessment_at(
    at: Instant,
    system: SystemDep,
    principal: Overseer,
    year: Annotated[int, Query(ge=2000, le=2100)],
) -> dict[str, Any]:
    return audit.view_at(system, "assessment", at, lambda s: assessment_board(s, year))


# ------------------------------------------------------------------ replays
@router.post("/replays", status_code=202, summary="Rebuild every view aside and report drift")
def start_replay(system: SystemDep, principal: Overseer) -> JSONResponse:
    replay_id = start_background_replay(system)
    location = f"/audit/replays/{replay_id}"
    return JSONResponse(
        {"id": replay_id, "state": "running", "status": location},
        status_code=202,
        headers={"Location": location},
    )


@router.get("/replays/{replay_id}", summary="Progress and outcome of a replay")
def get_replay(replay_id: str, system: SystemDep, principal: Overseer) -> dict[str, Any]:
    found = replay_status(system, replay_id)
    if found is None:
        raise HTTPException(404, f"replay {replay_id} does not exist (yet)")
    return found
