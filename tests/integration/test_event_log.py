"""GET /audit/events: the whole log in position order, paged and as NDJSON."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from domain.actor import Role
from infra.bootstrap import System
from infra.clock import ManualClock
from tests.integration.api_client import Api

S, A = "secretariat", "auditor"


@pytest.fixture
def api(system: System, clock: ManualClock) -> Api:
    api = Api(system)
    api.principal(S, Role.SECRETARIAT)
    api.principal(A, Role.AUDITOR)
    api.post(S, "/units", {"id": "postal", "name": "邮政管理局", "kind": "department"}, expect=201)
    api.post(S, "/units", {"id": "town-a", "name": "城关街道", "kind": "town"}, expect=201)
    task = api.post(
        S,
        "/tasks",
        {
            "title": "快递员权益保障",
            "industry": "express",
            "lead_unit": "postal",
            "towns": ["town-a"],
            "deadline": (clock.now() + timedelta(days=3)).isoformat(),
        },
        expect=201,
    )
    api.post(S, f"/tasks/{task['id']}/urge", {"note": "请尽快签收"})
    return api


def test_pages_cover_the_log_once_in_order(api: Api, system: System) -> None:
    head = system.app.head()
    assert head == 4
    seen: list[int] = []
    after = 0
    while True:
        page = api.get(A, f"/audit/events?after={after}&limit=3")
        assert page["head"] == head
        if not page["items"]:
            assert page["next_after"] == after
            break
        seen += [item["position"] for item in page["items"]]
        after = page["next_after"]
    assert seen == list(range(1, head + 1))


def test_envelopes_say_who_did_what(api: Api) -> None:
    items = api.get(S, "/audit/events?after=2")["items"]
    assert [(i["aggregate_type"], i["type"], i["version"]) for i in items] == [
        ("SupervisedTask", "TaskIssued", 1),
        ("SupervisedTask", "TaskUrged", 2),
    ]
    issued = items[0]
    assert issued["schema"] == 1
    assert issued["actor"]["role"] == "secretariat"
    assert issued["data"]["title"] == "快递员权益保障"
    assert items[1]["aggregate_id"] == issued["aggregate_id"]


def test_ndjson_streams_everything_after_a_position(api: Api) -> None:
    response = api.client.get("/audit/events?after=1&format=ndjson", headers=api.headers(A))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    rows = [json.loads(line) for line in response.text.splitlines()]
    assert [row["position"] for row in rows] == [2, 3, 4]
    assert rows[0]["data"]["name"] == "城关街道"


@pytest.mark.parametrize(
    "query", ["after=-1", "after=99999999999999999999", "limit=0", "limit=1001"]
)
def test_out_of_range_paging_is_a_422_naming_the_field(api: Api, query: str) -> None:
    response = api.client.get(f"/audit/events?{query}", headers=api.headers(A))
    assert response.status_code == 422
    assert query.split("=")[0] in response.text


def test_a_liaison_may_not_read_the_log(api: Api) -> None:
    api.principal("postal", Role.LIAISON, "postal")
    response = api.client.get("/audit/events", headers=api.headers("postal"))
    assert response.status_code == 403


def test_a_view_refuses_a_position_beyond_a_bigint(api: Api) -> None:
    response = api.client.get(
        "/views/units/postal?after=9223372036854775808", headers=api.headers(S)
    )
    assert response.status_code == 422
    assert "after" in response.text
