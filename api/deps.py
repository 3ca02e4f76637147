"""Request dependencies: the system, the principal behind the bearer token, If-Match."""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import Depends, Header, HTTPException, Request
from fastapi.security import HTTPBearer
from starlette.concurrency import run_in_threadpool

from domain.actor import Role
from infra.bootstrap import System
from infra.tokens import Principal

TOKEN_DESCRIPTION = "A token from `tiaokuai token issue`"


# The dependencies below are async although they do no I/O: FastAPI runs a sync
# dependency in the thread pool, a hop that cost more than the dependency itself.
async def get_system(request: Request) -> System:
    system: System = request.app.state.system
    return system


SystemDep = Annotated[System, Depends(get_system)]


class PrincipalBearer(HTTPBearer):
    """The principal behind the bearer token, admitted only in one of ``roles`` (any if none).

    401 without a valid token, 403 for another role. It is FastAPI's HTTPBearer itself
    (so the OpenAPI document declares the scheme, under HTTPBearer's own name) rather
    than a dependency on one: FastAPI solves each dependency with a pass of its own, a
    cost every request pays.
    """

    def __init__(self, *roles: Role) -> None:
        super().__init__(auto_error=False, scheme_name="HTTPBearer", description=TOKEN_DESCRIPTION)
        self.roles = roles
        self.allowed = " or ".join(r.value for r in roles)

    # It answers the principal, not the credentials HTTPBearer answers: a dependency's
    # value is what the endpoint wants. Async so that the principal bound here is in the
    # context the endpoint's thread copies; a token not in the cache is looked up in the
    # thread pool.
    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        credentials = await super().__call__(request)  # None unless a Bearer credential
        if credentials is None:
            raise HTTPException(
                401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"}
            )
        system: System = request.app.state.system
        token = credentials.credentials
        principal = system.tokens.cached(token) or await run_in_threadpool(
            system.tokens.resolve, token
        )
        if principal is None:
            raise HTTPException(
                401, "the bearer token is not valid", headers={"WWW-Authenticate": "Bearer"}
            )
        structlog.contextvars.bind_contextvars(
            principal=principal.principal_id, role=principal.role.value, unit=principal.unit
        )
        request.state.principal = principal
        if self.roles and principal.role not in self.roles:
            raise HTTPException(403, f"this needs the {self.allowed} role")
        return principal


CurrentPrincipal = Annotated[Principal, Depends(PrincipalBearer())]
"""Any authenticated principal."""
Secretariat = Annotated[Principal, Depends(PrincipalBearer(Role.SECRETARIAT))]
Liaison = Annotated[Principal, Depends(PrincipalBearer(Role.LIAISON))]
Overseer = Annotated[Principal, Depends(PrincipalBearer(Role.SECRETARIAT, Role.AUDITOR))]
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
