"""Every error leaves as JSON ``{"error": code, "detail": message}``, mapped here only."""

from __future__ import annotations

from typing import Any

import psycopg
import structlog
from eventsourcing.persistence import InterfaceError, OperationalError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain.errors import (
    AlreadyExists,
    ConcurrentWrite,
    DomainError,
    InvalidState,
    InvariantViolated,
    NotFound,
    NotPermitted,
    VersionMismatch,
)

log = structlog.get_logger(__name__)

STATUS_OF: dict[type[DomainError], int] = {
    NotFound: 404,
    AlreadyExists: 409,
    NotPermitted: 403,
    InvalidState: 409,
    InvariantViolated: 422,
    VersionMismatch: 412,
    ConcurrentWrite: 409,
}

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    412: "precondition_failed",
    415: "unsupported_media_type",
    422: "validation_error",
    503: "unavailable",
}


def error_body(code: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"error": code, "detail": detail, **extra}


def _status_of(error: DomainError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]  # type: ignore[index]
    return 400


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


async def on_domain_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, DomainError)
    status = _status_of(error)
    log.info("command.refused", status=status, error=error.code, detail=str(error))
    headers = {}
    if isinstance(error, VersionMismatch):
        headers["ETag"] = f'"{error.actual}"'
    return JSONResponse(error_body(error.code, str(error)), status_code=status, headers=headers)


async def on_validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    errors = error.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return JSONResponse(error_body("bad_request", "body: malformed JSON"), status_code=400)
    fields = [{"field": _field_path(e.get("loc", ())), "message": e.get("msg", "")} for e in errors]
    detail = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    return JSONResponse(error_body("validation_error", detail, fields=fields), status_code=422)


async def on_http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    code = _HTTP_CODES.get(error.status_code, "error")
    return JSONResponse(
        error_body(code, str(error.detail)),
        status_code=error.status_code,
        headers=getattr(error, "headers", None),
    )


STORE_UNREACHABLE = (OperationalError, InterfaceError, psycopg.OperationalError)
"""The database is down or restarting: nothing was written, the client may retry."""


async def on_store_unreachable(request: Request, error: Exception) -> JSONResponse:
    log.warning("store.unavailable", error=repr(error))
    return JSONResponse(
        error_body("store_unavailable", "the store cannot be reached right now; retry"),
        status_code=503,
        headers={"Retry-After": "1"},
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, on_domain_error)
    for error in STORE_UNREACHABLE:
        app.add_exception_handler(error, on_store_unreachable)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
