"""Who may call what: 401 without a valid token, 403 for the wrong principal.

Every route of the app must appear in ACCESS, so a new route cannot ship unguarded.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from api.app import ROUTE_MODULES, create_app
from domain.actor import Role
from infra.bootstrap import System
from infra.clock import ManualClock
from tests.integration.api_client import Api

S, L, A = "secretariat", "liaison", "auditor"
OWN = "liaison-own"  # a liaison of the unit the path names
ANY = {S, L, A}

# (method, path) -> principals allowed past authorization
ACCESS: dict[tuple[str, str], set[str]] = {
    ("POST", "/units"): {S},
    ("GET", "/units"): ANY,
    ("GET", "/units/{unit}"): ANY,
    ("POST", "/meetings"): {S},
    ("POST", "/meetings/{meeting_id}/attendance"): {S},
    ("POST", "/meetings/{meeting_id}/resolutions"): {S},
    ("POST", "/meetings/{meeting_id}/close"): {S},
    ("GET", "/meetings/{meeting_id}"): {S, A},
    ("POST", "/tasks"): {S},
    ("GET", "/tasks"): ANY,
    ("GET", "/tasks/{task_id}"): {S, A, OWN},
    ("POST", "/tasks/{task_id}/sign"): {OWN},
    ("POST", "/tasks/{task_id}/progress"): {OWN},
    ("POST", "/tasks/{task_id}/contribution"): {OWN},
    ("POST", "/tasks/{task_id}/completion"): {OWN},
    ("POST", "/tasks/{task_id}/extension-requests"): {OWN},
    ("POST", "/tasks/{task_id}/extension-requests/{request_id}/grant"): {S},
    ("POST", "/tasks/{task_id}/extension-requests/{request_id}/deny"): {S},
    ("POST", "/tasks/{task_id}/verify"): {S},
    ("POST", "/tasks/{task_id}/return"): {S},
    ("POST", "/tasks/{task_id}/urge"): {S},
    ("POST", "/tasks/{task_id}/transfer"): {S},
    ("POST", "/tasks/{task_id}/co-units"): {S},
    ("POST", "/tasks/{task_id}/towns"): {S},
    ("POST", "/chains"): {S},
    ("POST", "/chains/{industry}/links"): {S},
    ("POST", "/chains/{industry}/links/{link_id}/handover"): {S},
    ("GET", "/chains/{industry}"): {S, A},
    ("POST", "/committees"): {S},
    ("POST", "/committees/{committee_id}/secretary"): {S},
    ("POST", "/committees/{committee_id}/members"): {S},
    ("POST", "/committees/{committee_id}/members/{member_id}/leave"): {S},
    ("POST", "/committees/{committee_id}/instructors"): {S},
    ("POST", "/committees/{committee_id}/instructors/{instructor_id}/recall"): {S},
    ("POST", "/committees/{committee_id}/coverage-reports"): {S},
    ("GET", "/committees/{committee_id}"): {S, A},
    ("GET", "/persons/{person_id}"): {S, A},
    ("POST", "/persons/{person_id}/erasure"): {S},
    ("GET", "/views/units/{unit}"): {S, A, OWN},
    ("GET", "/views/towns/{town}"): {S, A, OWN},
    ("GET", "/views/linkage"): {S, A},
    ("GET", "/views/ledger/tasks/{task_id}"): {S, A},
    ("GET", "/views/assessment"): {S, A},
    ("GET", "/views/coverage"): {S, A},
    ("GET", "/audit/{kind}/{id}/history"): {S, A},
    ("GET", "/audit/{kind}/{id}/state"): {S, A},
    ("GET", "/audit/responsibility"): {S, A},
    ("GET", "/audit/tasks/{task_id}/holders"): {S, A},
    ("GET", "/audit/views/units/{unit}"): {S, A},
    ("GET", "/audit/views/towns/{town}"): {S, A},
    ("GET", "/audit/views/linkage"): {S, A},
    ("GET", "/audit/views/assessment"): {S, A},
    ("POST", "/audit/replays"): {S, A},
    ("GET", "/audit/replays/{replay_id}"): {S, A},
    ("GET", "/audit/integrity"): {S, A},
    ("GET", "/audit/events"): {S, A},
}
QUERIES = {
    "/audit/responsibility": "?industry=express&at=2026-11-02T10:00:00%2B08:00",
    "/audit/views/units/{unit}": "?at=2026-11-02T10:00:00%2B08:00",
    "/audit/views/towns/{town}": "?at=2026-11-02T10:00:00%2B08:00",
    "/audit/views/linkage": "?at=2026-11-02T10:00:00%2B08:00",
    "/audit/views/assessment": "?year=2026&at=2026-11-02T10:00:00%2B08:00",
    "/views/assessment": "?year=2026",
}
PUBLIC = {("GET", "/health"), ("GET", "/metrics")}

# A valid body per command, so refusals come from authorization, not validation.
BODIES: dict[str, dict[str, object]] = {
    "/units": {"id": "youth-league", "name": "团区委", "kind": "department"},
    "/meetings": {"title": "m2", "held_at": "2026-11-02T09:00:00+08:00"},
    "/meetings/{meeting_id}/attendance": {"units": ["postal"]},
    "/meetings/{meeting_id}/resolutions": {"text": "决议"},
    "/tasks": {
        "title": "t2",
        "industry": "express",
        "lead_unit": "postal",
        "deadline": "2027-01-01T00:00:00+08:00",
    },
    "/tasks/{task_id}/progress": {"note": "进展"},
    "/tasks/{task_id}/contribution": {"note": "配合"},
    "/tasks/{task_id}/completion": {"note": "完成"},
    "/tasks/{task_id}/extension-requests": {
        "new_deadline": "2027-02-01T00:00:00+08:00",
        "reason": "原因",
    },
    "/tasks/{task_id}/extension-requests/{request_id}/deny": {"reason": "不同意"},
    "/tasks/{task_id}/return": {"reason": "退回"},
    "/tasks/{task_id}/transfer": {"new_lead": "commerce", "reason": "调整"},
    "/tasks/{task_id}/co-units": {"add": ["commerce"]},
    "/tasks/{task_id}/towns": {"remove": ["town-chengguan"], "reason": "调整"},
    "/chains": {"industry": "freight", "name": "货运"},
    "/chains/{industry}/links": {
        "unit": "postal",
        "role": "industry-competent",
        "responsible_person": "张三",
        "duties": ["监管"],
    },
    "/chains/{industry}/links/{link_id}/handover": {
        "responsible_person": "李四",
        "effective_at": "2026-11-03T09:00:00+08:00",
        "reason": "调任",
    },
    "/committees": {
        "name": "外卖行业党委",
        "industry": "food-delivery",
        "supervising_unit": "commerce",
    },
    "/committees/{committee_id}/secretary": {"name": "赵书记"},
    "/committees/{committee_id}/members": {"name": "某快递公司党支部"},
    "/committees/{committee_id}/members/{member_id}/leave": {"reason": "注销"},
    "/committees/{committee_id}/instructors": {
        "name": "钱指导员",
        "enterprise": "某站点",
        "enterprise_party_members": 1,
    },
    "/committees/{committee_id}/instructors/{instructor_id}/recall": {"reason": "期满"},
    "/persons/{person_id}/erasure": {"reason": "本人申请删除"},
    "/committees/{committee_id}/coverage-reports": {
        "period": "2026-Q4",
        "enterprises": 10,
        "organizations_covered": 5,
        "work_covered": 8,
        "party_members": 30,
        "workers": 900,
    },
}


@pytest.fixture
def world(system: System, clock: ManualClock) -> tuple[Api, dict[str, str]]:
    """Units, a task of postal's (town: chengguan), a chain and a committee."""
    api = Api(system)
    api.principal(S, Role.SECRETARIAT)
    api.principal(A, Role.AUDITOR)
    for slug, kind in [("postal", "department"), ("commerce", "department")]:
        api.post(S, "/units", {"id": slug, "name": slug, "kind": kind}, expect=201)
    api.post(S, "/units", {"id": "town-chengguan", "name": "城关", "kind": "town"}, expect=201)
    api.principal(OWN, Role.LIAISON, "postal")
    api.principal("liaison-town", Role.LIAISON, "town-chengguan")
    api.principal(L, Role.LIAISON, "commerce")  # involved in nothing below
    meeting = api.post(
        S, "/meetings", {"title": "m", "held_at": clock.now().isoformat()}, expect=201
    )
    task = api.post(
        S,
        "/tasks",
        {
            "title": "t",
            "industry": "express",
            "lead_unit": "postal",
            "towns": ["town-chengguan"],
            "deadline": (clock.now() + timedelta(days=3)).isoformat(),
        },
        expect=201,
    )
    api.post(S, "/chains", {"industry": "express", "name": "快递"}, expect=201)
    committee = api.post(
        S,
        "/committees",
        {"name": "快递行业党委", "industry": "express", "supervising_unit": "postal"},
        expect=201,
    )
    values = {
        "unit": "postal",
        "town": "town-chengguan",
        "meeting_id": meeting["id"],
        "task_id": task["id"],
        "request_id": "E1",
        "industry": "express",
        "link_id": "L1",
        "committee_id": committee["id"],
        "member_id": "M1",
        "instructor_id": "I1",
        "kind": "tasks",
        "id": task["id"],
        "replay_id": "0123456789abcdef",
        "person_id": "p-0123456789abcdef0123456789abcdef",
    }
    return api, values


def concrete(template: str, values: dict[str, str]) -> str:
    path = template
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    return path + QUERIES.get(template, "")


def call(api: Api, method: str, template: str, path: str, token: str | None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if method == "GET":
        return int(api.client.get(path, headers=headers).status_code)
    response = api.client.post(path, json=BODIES.get(template, {}), headers=headers)
    return int(response.status_code)


def test_every_route_is_in_the_access_table(system: System) -> None:
    paths = create_app(system).openapi()["paths"]
    routes = {(method.upper(), path) for path, ops in paths.items() for method in ops}
    assert routes - PUBLIC == set(ACCESS)


def test_access_matrix(world: tuple[Api, dict[str, str]]) -> None:
    api, values = world
    for (method, template), allowed in ACCESS.items():
        path = concrete(template, values)
        if template in ("/views/towns/{town}", "/tasks/{task_id}/contribution"):
            own_token = api.tokens["liaison-town"]
        else:
            own_token = api.tokens[OWN]
        # No token, a malformed one, a revoked-looking one: 401.
        assert call(api, method, template, path, None) == 401, (method, path)
        assert call(api, method, template, path, "tk_not-a-real-token") == 401, (method, path)
        principals = {S: api.tokens[S], A: api.tokens[A], L: api.tokens[L], OWN: own_token}
        for who, token in principals.items():
            status = call(api, method, template, path, token)
            permitted = who in allowed or (who == OWN and L in allowed)
            if permitted:
                assert status not in (401, 403), (method, path, who, status)
            else:
                assert status == 403, (method, path, who, status)


def test_revoked_token_is_refused(world: tuple[Api, dict[str, str]]) -> None:
    api, _ = world
    principal = api.system.tokens.resolve(api.tokens[A])
    assert principal is not None
    assert api.client.get("/units", headers=api.headers(A)).status_code == 200
    api.system.tokens.revoke(principal.principal_id)
    response = api.client.get("/units", headers=api.headers(A))
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


def test_liaison_lists_only_its_own_tasks(world: tuple[Api, dict[str, str]]) -> None:
    api, values = world
    assert [t["id"] for t in api.get(OWN, "/tasks")["items"]] == [values["task_id"]]
    assert [t["id"] for t in api.get("liaison-town", "/tasks")["items"]] == [values["task_id"]]
    assert api.get(L, "/tasks") == {"items": [], "total": 0, "offset": 0, "limit": 50}
    # Even when asking for another unit's tasks by filter.
    assert api.get(L, "/tasks?unit=postal")["total"] == 0
    assert api.get(S, "/tasks?unit=postal")["total"] == 1


def test_only_the_lead_reports_completion(world: tuple[Api, dict[str, str]]) -> None:
    api, values = world
    tid = values["task_id"]
    api.post("liaison-town", f"/tasks/{tid}/sign")
    refused = api.post("liaison-town", f"/tasks/{tid}/completion", {"note": "x"}, expect=403)
    assert "lead" in refused["detail"]
    api.post(OWN, f"/tasks/{tid}/sign")
    api.post(OWN, f"/tasks/{tid}/completion", {"note": "done"})


def test_expired_token_is_refused(world: tuple[Api, dict[str, str]]) -> None:
    api, _ = world
    from datetime import timedelta as td

    _, expired = api.system.tokens.issue(
        role=Role.AUDITOR, unit=None, name="old", lifetime=td(seconds=-1)
    )
    _, fresh = api.system.tokens.issue(
        role=Role.AUDITOR, unit=None, name="new", lifetime=td(days=1)
    )
    refused = api.client.get("/units", headers={"Authorization": f"Bearer {expired}"})
    assert refused.status_code == 401
    assert expired not in refused.text
    assert api.client.get("/units", headers={"Authorization": f"Bearer {fresh}"}).status_code == 200


def test_routes_declared_on_the_app_document_as_included_routers_would(system: System) -> None:
    """``create_app`` declares the module routers' routes on the app itself (one match per
    route instead of two); the OpenAPI document is the one ``include_router`` gives."""
    app = create_app(system)
    reference = FastAPI(title=app.title, version=app.version, description=app.description)
    for module in sorted(ROUTE_MODULES, key=lambda module: module.__name__):
        reference.include_router(module.router)
    assert app.openapi() == reference.openapi()
    served = [route for route in app.routes if isinstance(route, APIRoute)]
    assert len(served) == sum(len(module.router.routes) for module in ROUTE_MODULES)
    # The busiest commands are matched first.
    assert served[0].path.startswith("/tasks")
