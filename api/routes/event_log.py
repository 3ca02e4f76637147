"""/audit/events — the store's whole log, in position order (auditor, secretariat)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from api.deps import Overseer, SystemDep
from api.schemas import MAX_POSITION, READ_ERRORS
from infra import event_log

router = APIRouter(prefix="/audit", tags=["audit"], responses=READ_ERRORS)


class LogFormat(StrEnum):
    JSON = "json"
    NDJSON = "ndjson"


LOG_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A page of envelopes as JSON, or every envelope up to the head as NDJSON",
        "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
    }
}


def _ndjson(rows: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    for row in rows:
        yield (json.dumps(row, ensure_ascii=False) + "\n").encode()


@router.get("/events", summary="The store's log after a position", responses=LOG_RESPONSES)
def events(
    system: SystemDep,
    principal: Overseer,
    after: Annotated[
        int, Query(ge=0, le=MAX_POSITION, description="the last position already read")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    format: LogFormat = LogFormat.JSON,
) -> Any:
    """Envelopes in the schema of ``docs/events.md``; page with ``after=next_after``.

    NDJSON streams every event from ``after`` to the head as it was when the request
    arrived, in batches, whatever the log's length.
    """
    if format == LogFormat.NDJSON:
        rows = event_log.stream(system, after=after, upto=system.app.head())
        headers = {"Content-Disposition": f'attachment; filename="events-after-{after}.ndjson"'}
        return StreamingResponse(
            _ndjson(rows), media_type="application/x-ndjson; charset=utf-8", headers=headers
        )
    page = event_log.read_page(system, after=after, limit=limit)
    return {
        "items": page.items,
        "after": page.after,
        "next_after": page.next_after,
        "head": page.head,
    }
