"""Planned routes answer every request exactly as FastAPI's own binding does.

Two apps over one system: the default (``PlannedRoute``) and ``plan_routes=False``.
Each case is sent to both, on twin tasks issued alike, and the answers are compared
(status, headers, body; the twin's id and the store position set aside). A spy on
``RequestPlan.run`` checks which cases the plan bound and which it left to FastAPI,
so the comparison cannot pass by both apps taking FastAPI's path.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from httpx import Response

from api.app import create_app
from api.planned_route import PlannedRoute, RequestPlan
from domain.actor import Role
from infra.bootstrap import System
from infra.clock import ManualClock

JSON = "application/json"
URGE, NOTE = "/tasks/{task}/urge", b'{"note": "x"}'


@dataclass(frozen=True)
class Case:
    name: str
    path: str
    """``{task}`` is the twin task's id."""
    body: bytes | None
    who: str | None = "secretariat"
    if_match: str | None = None
    content_type: str | None = JSON
    planned: bool = True
    """Whether the plan binds it (else FastAPI's own handler answers)."""


CASES = [
    Case("urge", "/tasks/{task}/urge", b'{"note": "\xe5\x82\xac"}', if_match='"1"'),
    Case("urge without If-Match", "/tasks/{task}/urge", b'{"note": "x"}'),
    Case("If-Match *", "/tasks/{task}/urge", b"{}", if_match="*"),
    Case("weak If-Match", "/tasks/{task}/urge", b'{"note": "x"}', if_match='W/"1"'),
    Case("stale If-Match", "/tasks/{task}/urge", b'{"note": "x"}', if_match='"7"'),
    Case("malformed If-Match", "/tasks/{task}/urge", b'{"note": "x"}', if_match="abc"),
    Case("no token", "/tasks/{task}/urge", b'{"note": "x"}', who=None),
    Case("wrong role", "/tasks/{task}/urge", b'{"note": "x"}', who="postal"),
    Case("unknown task", f"/tasks/{uuid.UUID(int=7)}/urge", b'{"note": "x"}'),
    Case("sign, no body", "/tasks/{task}/sign", None, who="postal", if_match='"1"'),
    Case("sign by another unit", "/tasks/{task}/sign", None, who="commerce"),
    Case("progress", "/tasks/{task}/progress", b'{"note": "n"}', who="postal"),
    Case("path not a UUID", "/tasks/not-a-uuid/urge", b'{"note": "x"}', planned=False),
    Case("field of a wrong type", "/tasks/{task}/urge", b'{"note": 5}', planned=False),
    Case("unknown field", "/tasks/{task}/urge", b'{"note": "x", "z": 1}', planned=False),
    Case("note too long", "/tasks/{task}/urge", b'{"note": "' + b"x" * 2001 + b'"}', planned=False),
    Case("malformed JSON", "/tasks/{task}/urge", b'{"note": ', planned=False),
    Case("NaN", "/tasks/{task}/urge", b'{"note": NaN}', planned=False),
    Case("a list", "/tasks/{task}/urge", b"[]", planned=False),
    Case("empty body", "/tasks/{task}/urge", b"", planned=False),
    Case("lone surrogate", "/tasks/{task}/urge", b'{"note": "\\ud800"}', planned=False),
    Case("text/plain", URGE, NOTE, content_type="text/plain", planned=False),
    Case("no content type", URGE, NOTE, content_type=None, planned=False),
    Case(
        "JSON with a charset",
        "/tasks/{task}/urge",
        b'{"note": "x"}',
        content_type="application/json; charset=utf-8",
        planned=False,
    ),
    Case("vendor JSON", URGE, NOTE, content_type="application/x+json", planned=False),
]


class Twins:
    """Both apps, their principals, and a pair of tasks issued alike for each case."""

    def __init__(self, system: System, clock: ManualClock) -> None:
        self.system, self.clock = system, clock
        self.planned = TestClient(create_app(system))
        self.plain = TestClient(create_app(system, plan_routes=False))
        self.tokens = {
            "secretariat": system.tokens.issue(role=Role.SECRETARIAT, unit=None, name="s")[1],
            "postal": system.tokens.issue(role=Role.LIAISON, unit="postal", name="p")[1],
            "commerce": system.tokens.issue(role=Role.LIAISON, unit="commerce", name="c")[1],
        }
        for unit, kind in (("postal", "department"), ("commerce", "department")):
            answer = self.planned.post(
                "/units",
                json={"id": unit, "name": unit, "kind": kind},
                headers=self.auth("secretariat"),
            )
            assert answer.status_code == 201, answer.text

    def auth(self, who: str | None) -> dict[str, str]:
        return {} if who is None else {"Authorization": f"Bearer {self.tokens[who]}"}

    def task(self) -> str:
        body = {
            "title": "快递员权益保障",
            "industry": "express",
            "lead_unit": "postal",
            "deadline": (self.clock.now() + timedelta(days=3)).isoformat(),
        }
        answer = self.planned.post("/tasks", json=body, headers=self.auth("secretariat"))
        assert answer.status_code == 201, answer.text
        task_id: str = answer.json()["id"]
        return task_id

    def send(self, client: TestClient, case: Case, task: str) -> Response:
        headers = self.auth(case.who)
        if case.if_match is not None:
            headers["If-Match"] = case.if_match
        if case.content_type is not None:
            headers["Content-Type"] = case.content_type
        answer: Response = client.post(
            case.path.format(task=task), content=case.body, headers=headers
        )
        return answer


def _comparable(answer: Response, task: str) -> tuple[int, dict[str, str], Any]:
    """Status, headers and body, the twin task's id written alike and the position left out."""
    headers = {
        k: v.replace(task, "<task>")
        for k, v in answer.headers.items()
        if k not in {"date", "x-request-id", "x-tiaokuai-position", "content-length"}
    }
    text = answer.text.replace(task, "<task>")
    try:
        body: Any = json.loads(text)
    except ValueError:
        return answer.status_code, headers, text
    if isinstance(body, dict):
        body.pop("position", None)
    return answer.status_code, headers, body


@pytest.fixture
def twins(system: System, clock: ManualClock) -> Twins:
    return Twins(system, clock)


@pytest.fixture
def plan_runs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    runs: list[str] = []
    original = RequestPlan.run

    async def spy(self: RequestPlan, request: Any, bound: Any) -> Any:
        runs.append(request.url.path)
        return await original(self, request, bound)

    monkeypatch.setattr(RequestPlan, "run", spy)
    yield runs


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_planned_route_answers_as_fastapi_does(
    twins: Twins, plan_runs: list[str], case: Case
) -> None:
    first, second = twins.task(), twins.task()
    before = len(plan_runs)
    planned = twins.send(twins.planned, case, first)
    taken = len(plan_runs) - before
    plain = twins.send(twins.plain, case, second)
    assert len(plan_runs) == before + taken, "the reference app must not take the plan"
    assert (taken == 1) is case.planned, f"plan taken: {taken == 1}, expected {case.planned}"
    assert _comparable(planned, first) == _comparable(plain, second)


def test_the_task_commands_are_planned(system: System) -> None:
    app = create_app(system)
    planned = {
        (method, route.path)
        for route in app.routes
        if isinstance(route, PlannedRoute) and route.plan is not None
        for method in route.methods or ()
    }
    commands = {
        (method, route.path)
        for route in app.routes
        if isinstance(route, APIRoute) and route.path.startswith("/tasks")
        for method in route.methods or ()
        if method == "POST"
    }
    assert commands and commands <= planned, commands - planned
    reference = create_app(system, plan_routes=False)
    assert not any(isinstance(route, PlannedRoute) for route in reference.routes)


def test_a_planned_route_matches_paths_as_fastapi_does(system: System) -> None:
    planned, reference = create_app(system), create_app(system, plan_routes=False)
    pairs = [
        (a, b)
        for a, b in zip(planned.routes, reference.routes, strict=True)
        if isinstance(a, PlannedRoute) and isinstance(b, APIRoute)
    ]
    assert pairs and all(a.path == b.path for a, b in pairs)
    some_id = str(uuid.UUID(int=3))
    paths = {"/", "", "/tasks/", "/nothing"}
    for route, _ in pairs:
        concrete = re.sub(r"{[^}]+}", some_id, route.path)
        paths |= {concrete, concrete + "/", concrete + "/x", "/x" + concrete, concrete[:-1]}
        paths.add(re.sub(r"{[^}]+}", "", route.path))
    for path in sorted(paths):
        for method in ("GET", "POST", "DELETE"):
            scope = {"type": "http", "path": path, "root_path": "", "method": method}
            for a, b in pairs:
                assert _match(a, scope) == _match(b, scope), (a.path, path, method)


def _match(route: APIRoute, scope: dict[str, Any]) -> tuple[Any, ...]:
    """What ``matches`` answers, with the route it names as its own or not."""
    match, child = route.matches(dict(scope))
    named = child.pop("route", None)
    return match, child, named is route
