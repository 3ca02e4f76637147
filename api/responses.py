"""How a command's outcome becomes an HTTP response."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from infra.application import Written

POSITION_HEADER = "X-Tiaokuai-Position"


def written(
    outcome: Written[Any], body: dict[str, Any], *, status: int = 200, location: str | None = None
) -> JSONResponse:
    """The body, with the aggregate's new version as ETag and the store position."""
    headers = {"ETag": f'"{outcome.aggregate.version}"', POSITION_HEADER: str(outcome.position)}
    if location is not None:
        headers["Location"] = location
    return JSONResponse({**body, "position": outcome.position}, status_code=status, headers=headers)


def with_etag(body: dict[str, Any], version: int) -> JSONResponse:
    return JSONResponse(body, headers={"ETag": f'"{version}"'})
