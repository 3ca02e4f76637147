"""The FastAPI application: routers, error handlers, request context for logs."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from api.errors import install_error_handlers
from api.limits import BodySizeLimit
from api.routes import (
    audit,
    chains,
    committees,
    event_log,
    integrity,
    meetings,
    operations,
    persons,
    tasks,
    units,
    views,
)
from infra.bootstrap import System

log = structlog.get_logger(__name__)

DESCRIPTION = """
Tiaokuai (条块): the event-sourced backend of the district's joint conference on party
building for new employment groups. Every decision is an event; each department and
town has its own view.

Authenticate with `Authorization: Bearer <token>` (tokens from `tiaokuai token issue`).
Writes accept `If-Match: "<version>"`; responses carry the new version as `ETag` and the
store position as `X-Tiaokuai-Position`. Pass that position as `?after=` to a view to
read your own write.
"""


def create_app(system: System) -> FastAPI:
    """The API over one built system."""
    app = FastAPI(title="Tiaokuai", version="0.1.0", description=DESCRIPTION)
    app.state.system = system
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit)
    routers = (
        units,
        meetings,
        tasks,
        chains,
        committees,
        persons,
        views,
        audit,
        event_log,
        integrity,
    )
    for module in (*routers, operations):
        app.include_router(module.router)

    @app.middleware("http")
    async def request_context(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            request_id=request_id, method=request.method, path=request.url.path
        )
        try:
            response = await call_next(request)
        except Exception:
            log.exception("request.failed")
            response = JSONResponse(
                {
                    "error": "internal_error",
                    "detail": "an internal error; see the server log",
                    "request_id": request_id,
                },
                status_code=500,
            )
        response.headers["X-Request-Id"] = request_id
        route = request.scope.get("route")
        template = getattr(route, "path", "unmatched")
        elapsed = time.perf_counter() - started
        operations.REQUESTS.labels(request.method, template, str(response.status_code)).inc()
        operations.LATENCY.labels(request.method, template).observe(elapsed)
        principal = getattr(request.state, "principal", None)
        log.info(
            "request",
            status=response.status_code,
            ms=round(elapsed * 1000, 1),
            principal=principal.principal_id if principal else None,
        )
        return response

    return app
