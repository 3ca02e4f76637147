"""Preconditions, validation and races over HTTP."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest

from domain.actor import Actor, Role
from domain.errors import DomainError, VersionMismatch
from infra.bootstrap import System
from infra.clock import ManualClock
from tests.integration.api_client import Api

S = "secretariat"


@pytest.fixture
def api(system: System) -> Api:
    api = Api(system)
    api.principal(S, Role.SECRETARIAT)
    api.post(S, "/units", {"id": "postal", "name": "邮政管理局", "kind": "department"}, expect=201)
    api.post(S, "/units", {"id": "commerce", "name": "商务局", "kind": "department"}, expect=201)
    api.post(S, "/units", {"id": "town-a", "name": "城关街道", "kind": "town"}, expect=201)
    api.principal("postal", Role.LIAISON, "postal")
    return api


def issue(api: Api, clock: ManualClock, **overrides: Any) -> dict[str, Any]:
    body = {
        "title": "快递员权益保障",
        "industry": "express",
        "lead_unit": "postal",
        "deadline": (clock.now() + timedelta(days=3)).isoformat(),
        **overrides,
    }
    return api.post(S, "/tasks", body, expect=201)


def test_stale_if_match_gets_412_and_changes_nothing(api: Api, clock: ManualClock) -> None:
    task = issue(api, clock)
    response = api.client.get(f"/tasks/{task['id']}", headers=api.headers(S))
    assert response.headers["ETag"] == '"1"'
    api.post("postal", f"/tasks/{task['id']}/sign", if_match=1)
    stale = api.client.post(
        f"/tasks/{task['id']}/urge", json={"note": "催"}, headers=api.headers(S, if_match=1)
    )
    assert stale.status_code == 412
    assert stale.json()["error"] == "version_mismatch"
    assert stale.headers["ETag"] == '"2"'
    after = api.get(S, f"/tasks/{task['id']}")
    assert after["version"] == 2 and after["urge_count"] == 0
    # A current one applies.
    assert api.post(S, f"/tasks/{task['id']}/urge", {"note": "催"}, if_match=2)["version"] == 3


def test_malformed_if_match_is_a_400(api: Api, clock: ManualClock) -> None:
    task = issue(api, clock)
    response = api.client.post(
        f"/tasks/{task['id']}/urge",
        json={},
        headers={**api.headers(S), "If-Match": "yesterday"},
    )
    assert response.status_code == 400
    assert "If-Match" in response.json()["detail"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"title": ""}, "title"),
        ({"deadline": "2026-12-01T00:00:00"}, "deadline"),
        ({"deadline": "next week"}, "deadline"),
        ({"weight": 0}, "weight"),
        ({"weight": "heavy"}, "weight"),
        ({"lead_unit": "Postal Bureau"}, "lead_unit"),
        ({"co_units": "commerce"}, "co_units"),
        ({"meeting_id": "not-a-uuid"}, "meeting_id"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_input_names_the_field(
    api: Api, clock: ManualClock, overrides: dict[str, Any], field: str
) -> None:
    body = {
        "title": "t",
        "industry": "express",
        "lead_unit": "postal",
        "deadline": (clock.now() + timedelta(days=3)).isoformat(),
        **overrides,
    }
    refused = api.post(S, "/tasks", body, expect=422)
    assert refused["error"] == "validation_error"
    assert refused["detail"].startswith(field) or f"; {field}" in refused["detail"]
    assert api.get(S, "/tasks")["total"] == 0


@pytest.mark.parametrize(
    ("overrides", "status", "field"),
    [
        ({"lead_unit": "nobody"}, 404, "lead_unit"),
        ({"co_units": ["postal"]}, 422, "co_units"),
        ({"towns": ["commerce"]}, 422, "towns"),
        ({"deadline": "2020-01-01T00:00:00+08:00"}, 422, "deadline"),
        ({"resolution_id": "R1"}, 422, "meeting_id"),
    ],
)
def test_domain_rules_name_the_field(
    api: Api, clock: ManualClock, overrides: dict[str, Any], status: int, field: str
) -> None:
    body = {
        "title": "t",
        "industry": "express",
        "lead_unit": "postal",
        "deadline": (clock.now() + timedelta(days=3)).isoformat(),
        **overrides,
    }
    refused = api.post(S, "/tasks", body, expect=status)
    assert refused["detail"].startswith(field), refused
    assert api.get(S, "/tasks")["total"] == 0


def test_malformed_json_is_a_400(api: Api) -> None:
    response = api.client.post(
        "/tasks",
        content=b'{"title": ',
        headers={**api.headers(S), "content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json() == {"error": "bad_request", "detail": "body: malformed JSON"}


def test_unknown_things_are_404(api: Api) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    assert api.get(S, f"/tasks/{missing}", expect=404)["error"] == "not_found"
    assert api.get(S, "/chains/express", expect=404)["error"] == "not_found"
    assert api.get(S, "/views/units/nobody", expect=404)["error"] == "not_found"
    assert api.get(S, f"/views/ledger/tasks/{missing}", expect=404)["error"] == "not_found"
    assert api.get(S, "/tasks/not-a-uuid", expect=422)["detail"].startswith("task_id")


def test_duplicate_unit_is_a_409(api: Api) -> None:
    again = api.post(S, "/units", {"id": "postal", "name": "x", "kind": "department"}, expect=409)
    assert again["error"] == "already_exists"
    assert [u["name"] for u in api.get(S, "/units")["items"] if u["id"] == "postal"] == [
        "邮政管理局"
    ]


def test_chinese_text_round_trips(api: Api, clock: ManualClock) -> None:
    title = "“小哥驿站”建设——快递员、外卖骑手暖心服务（第二批）"
    task = issue(api, clock, title=title)
    api.post("postal", f"/tasks/{task['id']}/sign")
    reason = "需与属地镇街会商，涉及𠮷野家等站点"
    api.post(
        "postal",
        f"/tasks/{task['id']}/extension-requests",
        {"new_deadline": (clock.now() + timedelta(days=9)).isoformat(), "reason": reason},
        expect=201,
    )
    fetched = api.get(S, f"/tasks/{task['id']}")
    assert fetched["title"] == title
    assert fetched["extension_requests"][0]["reason"] == reason
    listed = api.get(S, "/tasks")["items"][0]
    assert listed["title"] == title
    assert api.get(S, "/views/units/postal")["due_within_7_days"][0]["title"] == title


def test_racing_writes_never_both_apply(api: Api, clock: ManualClock) -> None:
    task = issue(api, clock)
    task_id = task["id"]
    secretariat = Actor("racer", Role.SECRETARIAT)
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def urge(n: int) -> None:
        from uuid import UUID

        barrier.wait()
        try:
            api.system.app.urge_task(
                task_id=UUID(task_id), note=f"urge {n}", actor=secretariat, expected_version=1
            )
            outcomes.append("applied")
        except VersionMismatch:
            outcomes.append("stale")
        except DomainError as error:
            outcomes.append(type(error).__name__)

    threads = [threading.Thread(target=urge, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("applied") == 1
    assert outcomes.count("stale") == 7
    after = api.get(S, f"/tasks/{task_id}")
    assert after["version"] == 2 and after["urge_count"] == 1


def test_write_is_visible_in_views_before_the_response(api: Api, clock: ManualClock) -> None:
    task = issue(api, clock)
    signed = api.client.post(f"/tasks/{task['id']}/sign", headers=api.headers("postal"))
    position = int(signed.headers["X-Tiaokuai-Position"])
    assert api.system.projector.position() >= position
    view = api.get("postal", f"/views/units/postal?after={position}")
    assert view["position"] >= position
    assert view["tasks"]["lead"]["signed"] == 1


def test_oversize_body_is_a_413(api: Api) -> None:
    response = api.client.post(
        "/tasks",
        content=b'{"title": "' + b"x" * 70_000 + b'"}',
        headers={**api.headers(S), "content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["detail"].startswith("body")


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b'{"title": "\\u0007bell", "industry": "express", "lead_unit": "postal"}', 422),
        (b'{"title": "\xff\xfe", "industry": "express"}', 400),
        (b'{"weight": 1e400}', 422),
        (b"[1, 2, 3]", 422),
        (b"", 422),
    ],
)
def test_malformed_bodies_get_a_4xx_naming_the_problem(api: Api, raw: bytes, status: int) -> None:
    response = api.client.post(
        "/tasks", content=raw, headers={**api.headers(S), "content-type": "application/json"}
    )
    assert response.status_code == status, response.text
    assert response.json()["detail"]
    assert api.get(S, "/tasks")["total"] == 0


def test_control_characters_are_refused_by_field(api: Api, clock: ManualClock) -> None:
    refused = api.post(
        S,
        "/tasks",
        {
            "title": "ok",
            "industry": "express",
            "lead_unit": "postal",
            "co_units": ["commerce\u0000"],
            "deadline": (clock.now() + timedelta(days=3)).isoformat(),
        },
        expect=422,
    )
    assert refused["detail"].startswith("co_units")
