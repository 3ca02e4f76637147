"""The FastAPI application: routers, error handlers, request context for logs."""

from __future__ import annotations

import inspect
import os
import time
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import install_error_handlers
from api.limits import BodySizeLimit
from api.planned_route import PlannedRoute
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
from infra.logging import request_line

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


class RequestContext:
    """Request id, log context, metrics and the request log line of every HTTP request.

    A plain ASGI middleware: Starlette's ``BaseHTTPMiddleware`` (``@app.middleware``)
    runs the app in a task of its own behind memory streams, which cost more CPU per
    request than this whole middleware.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._meters: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        """(method, route, status) → its counter and histogram: ``labels`` takes a lock
        and builds its key on every call. Bounded by the routes × methods × statuses."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = ""
        for name, value in scope.get("headers") or ():
            if name == b"x-request-id":
                request_id = value.decode("latin-1")
                break
        # 32 hex digits, as uuid4().hex wrote them, without building a UUID.
        request_id = request_id or os.urandom(16).hex()
        method, path = scope["method"], scope["path"]
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id, method=method, path=path)
        id_bytes = request_id.encode("latin-1")
        state: dict[str, Any] = scope.setdefault("state", {})  # request.state lives here
        status = 500
        responded = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status, responded = message["status"], True
                # Appended, not set through MutableHeaders (which scans the list to
                # replace): only this middleware writes the header.
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", id_bytes)]
            await send(message)

        try:
            with request_line() as saved:
                await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("request.failed")
            if responded:
                raise
            await JSONResponse(
                {
                    "error": "internal_error",
                    "detail": "an internal error; see the server log",
                    "request_id": request_id,
                },
                status_code=500,
            )(scope, receive, send_with_id)
        route = scope.get("route")
        template = getattr(route, "path", "unmatched")
        elapsed = time.perf_counter() - started
        meters = self._meters.get((method, template, status))
        if meters is None:
            meters = self._meters[(method, template, status)] = (
                operations.REQUESTS.labels(method, template, str(status)),
                operations.LATENCY.labels(method, template),
            )
        meters[0].inc()
        meters[1].observe(elapsed)
        principal = state.get("principal")
        log.info(
            "request",
            status=status,
            ms=round(elapsed * 1000, 1),
            principal=principal.principal_id if principal else None,
            # What the request saved: the command.saved lines it would have logged.
            **({"saved": saved, "aggregate_id": saved[0]["aggregate_id"]} if saved else {}),
        )


ROUTE_MODULES = (
    tasks,
    views,
    units,
    meetings,
    chains,
    committees,
    persons,
    audit,
    event_log,
    integrity,
    operations,
)
"""Every module of routes, the busiest paths first (the liaisons' and the secretariat's
task commands, the views): a request is matched against the routes one by one, in this
order. The prefixes do not overlap, so the order changes nothing else."""

_ROUTE_FIELDS = tuple(
    name
    for name in inspect.signature(APIRouter.add_api_route).parameters
    if name not in {"self", "path", "endpoint", "route_class_override"}
)
"""What ``add_api_route`` takes that an APIRoute holds under the same name."""


def _add_routes(app: FastAPI, router: APIRouter, *, planned: bool) -> None:
    """Declare a module router's routes on the app itself, as they are.

    ``include_router`` would put the router in front of them, and FastAPI then matches
    every route of an included router twice per request (once for the router, once
    for the route), through a layer of scope bookkeeping each time: for a task
    command that was the largest single cost FastAPI added to a request. The routes
    already carry the router's prefix, tags and responses, so the OpenAPI document is
    the same (a test compares it).
    """
    route_class = PlannedRoute if planned else APIRoute
    for route in router.routes:
        if not isinstance(route, APIRoute):
            raise TypeError(f"{route!r}: only API routes are declared this way")
        fields = {name: getattr(route, name) for name in _ROUTE_FIELDS}
        app.router.add_api_route(
            route.path, route.endpoint, route_class_override=route_class, **fields
        )


def create_app(system: System, *, plan_routes: bool = True) -> FastAPI:
    """The API over one built system.

    ``plan_routes=False`` leaves every request's inputs to FastAPI's own binding
    (``api.planned_route``): the reference the tests compare the planned routes with.
    """
    app = FastAPI(title="Tiaokuai", version="0.1.0", description=DESCRIPTION)
    app.state.system = system
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit)
    for module in ROUTE_MODULES:
        _add_routes(app, module.router, planned=plan_routes)

    # Added last, so outermost: it sees every answer, BodySizeLimit's 413 included.
    app.add_middleware(RequestContext)
    return app
