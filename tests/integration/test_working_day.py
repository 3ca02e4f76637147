"""A whole working day over HTTP, on SQLite and on PostgreSQL.

The secretariat convenes and issues; liaisons sign, report, ask for an extension and
complete; the secretariat urges, returns and verifies; a deadline passes. After each
step every department's and town's view is read back and checked.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from domain.actor import Role
from infra.bootstrap import System, bootstrap
from infra.clock import ManualClock
from infra.rebuild import drift
from tests.conftest import SettingsFactory
from tests.integration.api_client import Api
from workers.deadline_watcher import DeadlineWatcher

DEPARTMENTS = {"postal": "邮政管理局", "commerce": "商务局", "market-supervision": "市场监管局"}
TOWNS = {"town-chengguan": "城关街道", "town-xinqiao": "新桥镇"}
SEC = "secretariat"
AUD = "auditor"


def setup_principals(api: Api) -> None:
    api.principal(SEC, Role.SECRETARIAT)
    api.principal(AUD, Role.AUDITOR)


def liaisons(api: Api) -> None:
    for unit in [*DEPARTMENTS, *TOWNS]:
        api.principal(unit, Role.LIAISON, unit)


def all_views(api: Api) -> dict[str, dict[str, Any]]:
    """Every department's and town's view, read by the auditor, minus the position."""
    views = {}
    for unit in DEPARTMENTS:
        views[unit] = api.get(AUD, f"/views/units/{unit}")
    for town in TOWNS:
        views[town] = api.get(AUD, f"/views/towns/{town}")
    for view in views.values():
        view.pop("position")
    return views


def counts(view: dict[str, Any], capacity: str) -> dict[str, int]:
    return {state: n for state, n in view["tasks"][capacity].items() if n}


def ids(items: list[dict[str, Any]]) -> list[str]:
    return sorted(item["id"] for item in items)


def cell(api: Api, unit: str, town: str) -> dict[str, int]:
    matrix = api.get(SEC, "/views/linkage")
    for found in matrix["cells"]:
        if found["unit"] == unit and found["town"] == town:
            return {k: v for k, v in found.items() if k not in ("unit", "town")}
    return {}


def test_a_working_day(system: System, clock: ManualClock, make_settings: SettingsFactory) -> None:
    api = Api(system)
    setup_principals(api)

    # Morning: the secretariat registers the units of the day.
    for slug, name in DEPARTMENTS.items():
        unit = api.post(SEC, "/units", {"id": slug, "name": name, "kind": "department"}, expect=201)
        assert unit["name"] == name
    for slug, name in TOWNS.items():
        api.post(SEC, "/units", {"id": slug, "name": name, "kind": "town"}, expect=201)
    liaisons(api)
    assert [u["id"] for u in api.get("postal", "/units")["items"]] == sorted([*DEPARTMENTS, *TOWNS])

    # The joint meeting convenes, records who came and adopts two resolutions.
    meeting = api.post(
        SEC,
        "/meetings",
        {"title": "新就业群体党建工作联席会议（第一次）", "held_at": clock.now().isoformat()},
        expect=201,
    )
    mid = meeting["id"]
    api.post(SEC, f"/meetings/{mid}/attendance", {"units": [*DEPARTMENTS, *TOWNS]})
    r1 = api.post(
        SEC, f"/meetings/{mid}/resolutions", {"text": "建立快递员权益保障机制"}, expect=201
    )
    assert r1["resolution_id"] == "R1"
    api.post(SEC, f"/meetings/{mid}/resolutions", {"text": "外卖骑手服务站点建设"}, expect=201)
    api.post(SEC, f"/meetings/{mid}/close")
    assert api.get(AUD, f"/meetings/{mid}")["closed_at"] is not None

    # The secretariat issues two supervised tasks from the resolutions.
    t1 = api.post(
        SEC,
        "/tasks",
        {
            "title": "快递员权益保障：建立“小哥驿站”",
            "industry": "express",
            "lead_unit": "postal",
            "co_units": ["commerce"],
            "towns": ["town-chengguan"],
            "deadline": (clock.now() + timedelta(days=5)).isoformat(),
            "weight": 2,
            "meeting_id": mid,
            "resolution_id": "R1",
        },
        expect=201,
    )["id"]
    t2 = api.post(
        SEC,
        "/tasks",
        {
            "title": "外卖骑手服务站点建设",
            "industry": "food-delivery",
            "lead_unit": "commerce",
            "co_units": ["market-supervision"],
            "towns": ["town-xinqiao"],
            "deadline": (clock.now() + timedelta(days=2)).isoformat(),
            "meeting_id": mid,
            "resolution_id": "R2",
        },
        expect=201,
    )["id"]
    views = all_views(api)
    assert counts(views["postal"], "lead") == {"issued": 1}
    assert counts(views["commerce"], "lead") == {"issued": 1}
    assert counts(views["commerce"], "co-unit") == {"issued": 1}
    assert counts(views["market-supervision"], "co-unit") == {"issued": 1}
    assert counts(views["town-chengguan"], "town") == {"issued": 1}
    assert counts(views["town-xinqiao"], "town") == {"issued": 1}
    assert ids(views["postal"]["awaiting_signature"]) == [t1]
    assert ids(views["commerce"]["awaiting_signature"]) == sorted([t1, t2])
    assert ids(views["town-xinqiao"]["awaiting_signature"]) == [t2]
    assert ids(views["postal"]["due_within_7_days"]) == [t1]
    assert cell(api, "postal", "town-chengguan") == {
        "joint": 1,
        "open": 1,
        "overdue": 0,
        "verified_on_time": 0,
    }
    assert cell(api, "market-supervision", "town-xinqiao")["joint"] == 1

    # Liaisons sign for their parts.
    signed = api.post("postal", f"/tasks/{t1}/sign", if_match=1)
    assert signed["state"] == "signed" and signed["version"] == 2
    api.post("commerce", f"/tasks/{t1}/sign")
    api.post("commerce", f"/tasks/{t2}/sign")
    api.post("town-chengguan", f"/tasks/{t1}/sign")
    views = all_views(api)
    assert counts(views["postal"], "lead") == {"signed": 1}
    assert views["postal"]["awaiting_signature"] == []
    assert views["commerce"]["awaiting_signature"] == []
    assert counts(views["commerce"], "lead") == {"signed": 1}
    assert ids(views["market-supervision"]["awaiting_signature"]) == [t2]
    assert views["town-chengguan"]["awaiting_signature"] == []
    # A unit signs once.
    again = api.post("postal", f"/tasks/{t1}/sign", expect=409)
    assert "signed" in again["detail"]

    # Progress and contributions through the day.
    clock.advance(timedelta(hours=2))
    progress = api.post("postal", f"/tasks/{t1}/progress", {"note": "已选址三处", "percent": 40})
    assert progress["state"] == "in_progress"
    api.post("commerce", f"/tasks/{t1}/contribution", {"note": "协调外卖平台共建"})
    api.post("town-chengguan", f"/tasks/{t1}/contribution", {"note": "提供社区用房"})
    views = all_views(api)
    assert counts(views["postal"], "lead") == {"in_progress": 1}
    assert counts(views["commerce"], "co-unit") == {"in_progress": 1}
    assert counts(views["town-chengguan"], "town") == {"in_progress": 1}

    # Commerce asks for more time: denied once, then granted.
    e1 = api.post(
        "commerce",
        f"/tasks/{t2}/extension-requests",
        {"new_deadline": (clock.now() + timedelta(days=10)).isoformat(), "reason": "站点选址未定"},
        expect=201,
    )
    assert e1["request_id"] == "E1"
    api.post(SEC, f"/tasks/{t2}/extension-requests/E1/deny", {"reason": "延期过长"})
    new_deadline = clock.now() + timedelta(days=4)
    api.post(
        "commerce",
        f"/tasks/{t2}/extension-requests",
        {"new_deadline": new_deadline.isoformat(), "reason": "需与市场监管局会商"},
        expect=201,
    )
    granted = api.post(SEC, f"/tasks/{t2}/extension-requests/E2/grant", {"note": "同意"})
    assert granted["deadline"] == new_deadline.isoformat()
    assert [r["status"] for r in granted["extension_requests"]] == ["denied", "granted"]

    # The secretariat urges commerce.
    api.post(SEC, f"/tasks/{t2}/urge", {"note": "请加快进度"})
    ledger = api.get(SEC, f"/views/ledger/tasks/{t2}")
    assert [u["unit"] for u in ledger["urges"]] == ["commerce"]
    assert [x["status"] for x in ledger["extensions"]] == ["denied", "granted"]

    # Postal reports completion; the secretariat returns it, then verifies the rework.
    clock.advance(timedelta(hours=3))
    api.post("postal", f"/tasks/{t1}/completion", {"note": "驿站已建成"})
    assert counts(all_views(api)["postal"], "lead") == {"completion_reported": 1}
    returned = api.post(SEC, f"/tasks/{t1}/return", {"reason": "缺少验收照片"})
    assert returned["state"] == "returned"
    assert counts(all_views(api)["town-chengguan"], "town") == {"returned": 1}
    api.post("postal", f"/tasks/{t1}/completion", {"note": "补充照片"})
    verified = api.post(SEC, f"/tasks/{t1}/verify", {"note": "验收通过"})
    assert verified["state"] == "verified"
    views = all_views(api)
    assert counts(views["postal"], "lead") == {"verified": 1}
    assert views["postal"]["on_time_rate"] == 1.0
    assert views["postal"]["due_within_7_days"] == []
    assert cell(api, "postal", "town-chengguan") == {
        "joint": 1,
        "open": 0,
        "overdue": 0,
        "verified_on_time": 1,
    }
    # Nothing changes a verified task.
    api.post(SEC, f"/tasks/{t1}/urge", {"note": "x"}, expect=409)

    # Evening, days later: commerce's new deadline passes unverified.
    clock.set(new_deadline + timedelta(hours=1))
    watcher = DeadlineWatcher(system)
    assert watcher.tick() == [t2]
    assert watcher.tick() == []  # recorded once
    views = all_views(api)
    assert ids(views["commerce"]["overdue"]) == [t2]
    assert views["commerce"]["overdue"][0]["overdue_days"] == 0
    assert ids(views["market-supervision"]["overdue"]) == [t2]
    assert ids(views["town-xinqiao"]["overdue"]) == [t2]
    assert views["postal"]["overdue"] == []
    assert cell(api, "commerce", "town-xinqiao")["overdue"] == 1
    overdue = api.get(SEC, "/tasks?overdue=true")
    assert [t["id"] for t in overdue["items"]] == [t2]

    # Two days on, the secretariat moves the lead to market supervision.
    clock.advance(timedelta(days=2))
    moved = api.post(
        SEC, f"/tasks/{t2}/transfer", {"new_lead": "market-supervision", "reason": "职责调整"}
    )
    assert moved["lead_unit"] == "market-supervision" and moved["co_units"] == []
    views = all_views(api)
    assert counts(views["market-supervision"], "lead") == {"issued": 1}
    assert ids(views["market-supervision"]["awaiting_signature"]) == [t2]
    assert counts(views["commerce"], "lead") == {}
    assert views["commerce"]["overdue"] == []
    ledger = api.get(AUD, f"/views/ledger/tasks/{t2}")
    assert [h["unit"] for h in ledger["holders"]] == ["commerce", "market-supervision"]
    assert ledger["overdue_days_by_unit"]["commerce"] == 2
    assert ledger["transfers"][0]["reason"] == "职责调整"

    # The assessment board of the year.
    board = api.get(AUD, "/views/assessment?year=2026")
    postal = next(u for u in board["units"] if u["unit"] == "postal")
    assert postal["verified_on_time"] == {"count": 1, "weight": 2.0}
    assert postal["score"] == 2.0

    # The views equal a rebuild from the store.
    assert list(drift(system)) == []

    # A restarted server shows the same views.
    before = all_views(api)
    before_linkage = api.get(AUD, "/views/linkage")
    system.close()
    restarted = bootstrap(make_settings(), clock=clock)
    try:
        api2 = Api(restarted)
        api2.tokens = api.tokens
        assert all_views(api2) == before
        assert api2.get(AUD, "/views/linkage") == before_linkage
        assert api2.get("postal", f"/tasks/{t1}")["state"] == "verified"
    finally:
        restarted.close()
