"""Which route shapes a plan binds, and that it binds them as FastAPI does (no database).

The same endpoints are declared on two apps, one with ``PlannedRoute`` and one with
FastAPI's ``APIRoute``; every request is sent to both and the answers compared. The
dependencies count their calls, so a dependency called twice, or not at all, shows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterator
from enum import StrEnum
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Cookie, Depends, FastAPI, Header, Query, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel

from api.planned_route import PlannedRoute

calls: Counter[str] = Counter()


class Colour(StrEnum):
    RED = "red"
    BLUE = "blue"


class Body(BaseModel):
    name: str
    size: int = 1


async def tenant(request: Request, x_tenant: Annotated[str | None, Header()] = None) -> str:
    calls["tenant"] += 1
    return x_tenant or request.url.path


def sync_count(limit: Annotated[int, Query(ge=1, le=50)] = 10) -> int:
    calls["sync_count"] += 1
    return limit


class Paging:
    def __init__(self, page: int = 1) -> None:
        calls["paging"] += 1
        self.page = page


async def needs_tenant(t: Annotated[str, Depends(tenant)]) -> str:
    calls["needs_tenant"] += 1
    return t.upper()


async def audit() -> None:
    calls["audit"] += 1


def answer(**values: Any) -> JSONResponse:
    return JSONResponse({k: v for k, v in values.items()}, headers={"X-Seen": "1"})


router = APIRouter()


@router.post("/things/{thing_id}", dependencies=[Depends(audit)])
def post_thing(
    thing_id: int,
    body: Body,
    t: Annotated[str, Depends(tenant)],
    loud: Annotated[str, Depends(needs_tenant)],
    colour: Colour = Colour.RED,
    note: str | None = None,
) -> JSONResponse:
    return answer(id=thing_id, body=body.model_dump(), t=t, loud=loud, colour=colour, note=note)


@router.get("/lists/{name}")
async def get_list(
    name: str,
    limit: Annotated[int, Depends(sync_count)],
    paging: Annotated[Paging, Depends(Paging)],
    alias_q: Annotated[str, Query(alias="q")] = "",
) -> JSONResponse:
    return answer(name=name, limit=limit, page=paging.page, q=alias_q)


@router.get("/tags")
def get_tags(tag: Annotated[list[str], Query()]) -> JSONResponse:  # a sequence: not planned
    return answer(tags=tag)


@router.get("/session")
def get_session(sid: Annotated[str | None, Cookie()] = None) -> JSONResponse:  # not planned
    return answer(sid=sid)


async def yielding() -> AsyncIterator[str]:
    yield "y"


@router.get("/yielded")
def get_yielded(y: Annotated[str, Depends(yielding)]) -> JSONResponse:  # not planned
    return answer(y=y)


@router.get("/model", response_model=Body)
def get_model() -> Any:  # a response model: not planned
    return {"name": "n"}


def _app(route_class: type[APIRoute]) -> FastAPI:
    app = FastAPI()
    for route in router.routes:
        assert isinstance(route, APIRoute)
        app.router.add_api_route(
            route.path,
            route.endpoint,
            methods=list(route.methods or ()),
            dependencies=route.dependencies,
            response_model=route.response_model,
            route_class_override=route_class,
        )
    return app


@pytest.fixture(scope="module")
def clients() -> Iterator[tuple[TestClient, TestClient]]:
    with TestClient(_app(PlannedRoute)) as planned, TestClient(_app(APIRoute)) as plain:
        yield planned, plain


def test_the_plain_shapes_are_planned_and_the_others_are_not() -> None:
    app = _app(PlannedRoute)
    planned = {r.path for r in app.routes if isinstance(r, PlannedRoute) and r.plan is not None}
    assert planned == {"/things/{thing_id}", "/lists/{name}"}


REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/things/3", {"json": {"name": "a"}}),
    ("POST", "/things/3?colour=blue&note=hi", {"json": {"name": "a", "size": 2}}),
    ("POST", "/things/3", {"json": {"name": "a"}, "headers": {"X-Tenant": "t1"}}),
    ("POST", "/things/3?colour=green", {"json": {"name": "a"}}),
    ("POST", "/things/x", {"json": {"name": "a"}}),
    ("POST", "/things/3", {"json": {"size": 2}}),
    ("POST", "/things/3", {"content": b"{", "headers": {"content-type": "application/json"}}),
    ("GET", "/lists/l", {}),
    ("GET", "/lists/l?limit=5&page=2&q=z", {}),
    ("GET", "/lists/l?limit=500", {}),
    ("GET", "/lists/l?page=zero", {}),
    ("GET", "/tags?tag=a&tag=b", {}),
    ("GET", "/session", {"cookies": {"sid": "s"}}),
    ("GET", "/yielded", {}),
    ("GET", "/model", {}),
]


@pytest.mark.parametrize(("method", "path", "options"), REQUESTS)
def test_a_planned_app_answers_as_fastapi_does(
    clients: tuple[TestClient, TestClient], method: str, path: str, options: dict[str, Any]
) -> None:
    planned, plain = clients
    answers = []
    for client in (planned, plain):
        calls.clear()
        cookies = options.get("cookies")
        client.cookies.clear()
        if cookies:
            client.cookies.update(cookies)
        kwargs = {k: v for k, v in options.items() if k != "cookies"}
        response = client.request(method, path, **kwargs)
        headers = {k: v for k, v in response.headers.items() if k != "date"}
        answers.append((response.status_code, headers, response.text, dict(calls)))
    assert answers[0] == answers[1]
    assert answers[0][0] < 500, answers[0]
