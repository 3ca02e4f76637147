"""Request dependencies: the system, the principal behind the bearer token, If-Match."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

import structlog
from fastapi import Depends, Header, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from domain.actor import Role
from infra.bootstrap import System
from infra.tokens import Principal

bearer = HTTPBearer(auto_error=False, description="A token from `tiaokuai token issue`")


# The dependencies below are async although they do no I/O: FastAPI runs a sync
# dependency in the thread pool, a hop that cost more than the dependency itself.
async def get_system(request: Request) -> System:
    system: System = request.app.state.system
    return system


SystemDep = Annotated[System, Depends(get_system)]


async def current_principal(
    request: Request,
    system: SystemDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    # Async so that the principal bound here is in the context the endpoint's thread
    # copies; a token not in the cache is looked up in the thread pool.
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"}
        )
    token = credentials.credentials
    principal = system.tokens.cached(token) or await run_in_threadpool(system.tokens.resolve, token)
    if principal is None:
        raise HTTPException(
            401, "the bearer token is not valid", headers={"WWW-Authenticate": "Bearer"}
        )
    structlog.contextvars.bind_contextvars(
        principal=principal.principal_id, role=principal.role.value, unit=principal.unit
    )
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that admits only principals of the given roles (403 otherwise)."""

    async def check(principal: CurrentPrincipal) -> Principal:
        if principal.role not in roles:
            allowed = " or ".join(r.value for r in roles)
            raise HTTPException(403, f"this needs the {allowed} role")
        return principal

    return check


Secretariat = Annotated[Principal, Depends(require(Role.SECRETARIAT))]
Liaison = Annotated[Principal, Depends(require(Role.LIAISON))]
Overseer = Annotated[Principal, Depends(require(Role.SECRETARIAT, Role.AUDITOR))]
"""The secretariat or the auditor: the principals that read across every unit."""


async def expected_version(
    if_match: Annotated[
        str | None,
        Header(description="The aggregate version the command expects (the GET's ETag)"),
    ] = None,
) -> int | None:
    if if_match is None or if_match.strip() == "*":
        return None
    raw = if_match.strip()
    if raw.startswith("W/"):
        raw = raw[2:]
    raw = raw.strip('"')
    if not raw.isdigit():
        raise HTTPException(400, 'If-Match: give the aggregate version, e.g. If-Match: "3"')
    return int(raw)


ExpectedVersion = Annotated[int | None, Depends(expected_version)]


def require_own_unit(principal: Principal, unit: str) -> None:
    """A liaison reads only its own unit's view."""
    if principal.role == Role.LIAISON and principal.unit != unit:
        raise HTTPException(403, f"a liaison of {principal.unit!r} reads only its own view")
