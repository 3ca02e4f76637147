"""The auditor's questions over a scripted history, on SQLite and on PostgreSQL.

The history has a transfer of the lead unit, a handover of a chain link's responsible
person, an overdue spell and an extension.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest

from domain.actor import Role
from infra.bootstrap import System, bootstrap
from infra.clock import ManualClock
from tests.conftest import START, SettingsFactory
from tests.integration.api_client import Api
from workers.deadline_watcher import DeadlineWatcher

A = "auditor"
S = "secretariat"


def q(instant: datetime) -> str:
    return quote(instant.isoformat())


class History:
    """What the script did, and when."""

    task: str
    issued: datetime
    signed: datetime
    handover_recorded: datetime
    handover_effective: datetime
    overdue_at: datetime
    deadline: datetime
    transferred: datetime
    extended: datetime
    new_deadline: datetime
    verified: datetime
    postal_view_after_sign: dict[str, Any]
    linkage_after_sign: dict[str, Any]


@pytest.fixture
def snapshotting_system(make_settings: SettingsFactory, clock: ManualClock) -> Iterator[System]:
    settings = make_settings()
    settings.snapshot_interval = 2  # snapshots every other event: state? must not care
    built = bootstrap(settings, clock=clock)
    yield built
    built.close()


@pytest.fixture
def scripted(snapshotting_system: System, clock: ManualClock) -> tuple[Api, History]:
    system = snapshotting_system
    api = Api(system)
    h = History()
    api.principal(S, Role.SECRETARIAT)
    api.principal(A, Role.AUDITOR)
    for slug, kind in [("postal", "department"), ("commerce", "department"), ("town-a", "town")]:
        api.post(S, "/units", {"id": slug, "name": f"{slug}单位", "kind": kind}, expect=201)
    api.principal("postal", Role.LIAISON, "postal")
    api.principal("commerce", Role.LIAISON, "commerce")
    api.post(S, "/chains", {"industry": "express", "name": "快递行业责任链条"}, expect=201)
    api.post(
        S,
        "/chains/express/links",
        {
            "unit": "postal",
            "role": "industry-competent",
            "responsible_person": "张三",
            "duties": ["行业监管"],
        },
        expect=201,
    )
    api.post(
        S,
        "/chains/express/links",
        {
            "unit": "commerce",
            "role": "supervisory",
            "responsible_person": "王五",
            "duties": ["配合"],
        },
        expect=201,
    )

    clock.advance(timedelta(hours=1))
    h.issued = clock.now()
    h.deadline = h.issued + timedelta(days=2)
    h.task = api.post(
        S,
        "/tasks",
        {
            "title": "快递员驿站建设",
            "industry": "express",
            "lead_unit": "postal",
            "towns": ["town-a"],
            "deadline": h.deadline.isoformat(),
        },
        expect=201,
    )["id"]

    clock.advance(timedelta(hours=1))
    h.signed = clock.now()
    api.post("postal", f"/tasks/{h.task}/sign")
    h.postal_view_after_sign = api.get(A, "/views/units/postal")
    h.linkage_after_sign = api.get(A, "/views/linkage")

    clock.advance(timedelta(hours=22))
    h.handover_recorded = clock.now()
    h.handover_effective = h.handover_recorded + timedelta(hours=2)
    api.post(
        S,
        "/chains/express/links/L1/handover",
        {
            "responsible_person": "李四",
            "effective_at": h.handover_effective.isoformat(),
            "reason": "岗位调整",
        },
    )

    clock.set(h.deadline + timedelta(hours=1))
    h.overdue_at = clock.now()
    assert DeadlineWatcher(system).tick() == [h.task]

    clock.set(h.deadline + timedelta(days=1))
    h.transferred = clock.now()
    api.post(S, f"/tasks/{h.task}/transfer", {"new_lead": "commerce", "reason": "职责划转"})

    clock.advance(timedelta(hours=1))
    h.extended = clock.now()
    h.new_deadline = h.extended + timedelta(days=3)
    api.post(
        "commerce",
        f"/tasks/{h.task}/extension-requests",
        {"new_deadline": h.new_deadline.isoformat(), "reason": "需重新选址"},
        expect=201,
    )
    api.post(S, f"/tasks/{h.task}/extension-requests/E1/grant", {"note": "同意"})

    clock.advance(timedelta(hours=20))
    api.post("commerce", f"/tasks/{h.task}/sign")
    api.post("commerce", f"/tasks/{h.task}/completion", {"note": "已完成"})
    h.verified = clock.now()
    api.post(S, f"/tasks/{h.task}/verify", {"note": "验收通过"})
    return api, h


EXPECTED_TYPES = [
    "TaskIssued",
    "TaskSignedFor",
    "TaskBecameOverdue",
    "TaskLeadTransferred",
    "TaskExtensionRequested",
    "TaskExtensionGranted",
    "TaskSignedFor",
    "TaskCompletionReported",
    "TaskVerified",
]


def test_history_lists_every_event_with_actor_and_reason(scripted: tuple[Api, History]) -> None:
    api, h = scripted
    page = api.get(A, f"/audit/tasks/{h.task}/history?limit=4")
    assert page["total"] == len(EXPECTED_TYPES)
    assert [e["type"] for e in page["items"]] == EXPECTED_TYPES[:4]
    rest = api.get(A, f"/audit/tasks/{h.task}/history?offset=4")
    events = page["items"] + rest["items"]
    assert [e["type"] for e in events] == EXPECTED_TYPES
    assert [e["version"] for e in events] == list(range(1, 10))
    transfer = events[3]
    assert transfer["reason"] == "职责划转"
    assert transfer["actor"]["role"] == "secretariat"
    assert transfer["data"] == {
        "previous_lead": "postal",
        "new_lead": "commerce",
        "reason": "职责划转",
    }
    assert transfer["at"] == h.transferred.isoformat()
    assert events[1]["actor"]["unit"] == "postal"
    assert events[2]["actor"]["id"] == "system:deadline-watcher"
    chain = api.get(A, "/audit/chains/express/history")
    assert [e["type"] for e in chain["items"]] == [
        "ChainEstablished",
        "ChainLinkAdded",
        "ChainLinkAdded",
        "ResponsiblePersonHandedOver",
    ]
    assert api.get(A, "/audit/units/postal/history")["items"][0]["data"]["name"] == "postal单位"
    assert api.get("postal", f"/audit/tasks/{h.task}/history", expect=403)["error"] == "forbidden"


def test_exports_keep_chinese_text(scripted: tuple[Api, History]) -> None:
    api, h = scripted
    response = api.client.get(
        f"/audit/tasks/{h.task}/history?format=ndjson", headers=api.headers(A)
    )
    assert response.status_code == 200
    lines = [json.loads(line) for line in response.content.decode("utf-8").splitlines()]
    assert [line["type"] for line in lines] == EXPECTED_TYPES
    assert lines[0]["data"]["title"] == "快递员驿站建设"
    response = api.client.get(f"/audit/tasks/{h.task}/history?format=csv", headers=api.headers(A))
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert [r["type"] for r in rows] == EXPECTED_TYPES
    assert rows[3]["reason"] == "职责划转"
    assert json.loads(rows[0]["data"])["title"] == "快递员驿站建设"


def test_state_at_each_version_and_instant(scripted: tuple[Api, History]) -> None:
    api, h = scripted
    expected = {  # version -> (lead, state, overdue, deadline)
        1: ("postal", "issued", False, h.deadline),
        2: ("postal", "signed", False, h.deadline),
        3: ("postal", "signed", True, h.deadline),
        4: ("commerce", "issued", True, h.deadline),
        5: ("commerce", "issued", True, h.deadline),
        6: ("commerce", "issued", False, h.new_deadline),
        7: ("commerce", "signed", False, h.new_deadline),
        8: ("commerce", "completion_reported", False, h.new_deadline),
        9: ("commerce", "verified", False, h.new_deadline),
    }
    system = api.system
    for version, (lead, state, overdue, deadline) in expected.items():
        got = api.get(A, f"/audit/tasks/{h.task}/state?version={version}")["state"]
        assert (got["lead_unit"], got["state"], got["overdue"], got["deadline"]) == (
            lead,
            state,
            overdue,
            deadline.isoformat(),
        ), version
        # The same with and without snapshots.
        from infra.audit import state_at

        with_snapshots = state_at(system, "tasks", h.task, version=version)
        without = state_at(system, "tasks", h.task, version=version, use_snapshots=False)
        assert vars(with_snapshots) == vars(without)
    # Between events.
    between = h.signed + timedelta(hours=1)
    assert api.get(A, f"/audit/tasks/{h.task}/state?at={q(between)}")["version"] == 2
    just_before_transfer = h.transferred - timedelta(seconds=1)
    got = api.get(A, f"/audit/tasks/{h.task}/state?at={q(just_before_transfer)}")
    assert got["version"] == 3 and got["state"]["lead_unit"] == "postal"
    assert api.get(A, f"/audit/tasks/{h.task}/state?at={q(h.transferred)}")["version"] == 4
    before = h.issued - timedelta(minutes=1)
    assert api.get(A, f"/audit/tasks/{h.task}/state?at={q(before)}", expect=404)[
        "detail"
    ].startswith("at")
    assert api.get(A, f"/audit/tasks/{h.task}/state?version=99", expect=404)["detail"].startswith(
        "version"
    )
    api.get(A, f"/audit/tasks/{h.task}/state?at=2026-11-02T09:00:00", expect=422)


def test_state_at_an_instant_ignores_events_after_one_decided_later(
    snapshotting_system: System, clock: ManualClock
) -> None:
    """Two API processes with skewed clocks can store an earlier instant after a later one.

    The version at an instant is the end of the run of events all decided by then: the
    later-stored event with the earlier instant does not count before the event it
    follows (else the state would hold an urge without the one stored before it).
    """
    api = Api(snapshotting_system)
    api.principal(S, Role.SECRETARIAT)
    api.principal(A, Role.AUDITOR)
    api.post(S, "/units", {"id": "postal", "name": "邮政管理局", "kind": "department"}, expect=201)
    issued = clock.now()
    task = api.post(
        S,
        "/tasks",
        {
            "title": "驿站",
            "industry": "express",
            "lead_unit": "postal",
            "deadline": (issued + timedelta(days=9)).isoformat(),
        },
        expect=201,
    )["id"]
    clock.set(issued + timedelta(hours=2))
    api.post(S, f"/tasks/{task}/urge", {"note": "第一次"})
    clock.set(issued + timedelta(hours=1))  # the other process's clock is behind
    api.post(S, f"/tasks/{task}/urge", {"note": "第二次"})

    def at(instant: datetime) -> dict[str, Any]:
        got: dict[str, Any] = api.get(A, f"/audit/tasks/{task}/state?at={q(instant)}")
        return got

    assert at(issued + timedelta(minutes=90))["version"] == 1
    assert at(issued + timedelta(minutes=90))["state"]["urge_count"] == 0
    assert at(issued + timedelta(hours=2))["version"] == 3
    assert at(issued + timedelta(hours=2))["state"]["urge_count"] == 2


def test_responsibility_at_instants(scripted: tuple[Api, History]) -> None:
    api, h = scripted

    def persons(instant: datetime) -> dict[str, str | None]:
        found = api.get(A, f"/audit/responsibility?industry=express&at={q(instant)}")
        return {link["id"]: link["responsible_person"]["name"] for link in found["links"]}

    assert persons(h.signed) == {"L1": "张三", "L2": "王五"}
    # Recorded, but not in force yet.
    assert persons(h.handover_recorded + timedelta(hours=1)) == {"L1": "张三", "L2": "王五"}
    assert persons(h.handover_effective) == {"L1": "李四", "L2": "王五"}
    assert persons(h.verified) == {"L1": "李四", "L2": "王五"}
    assert api.get(
        A, f"/audit/responsibility?industry=express&at={q(START - timedelta(days=1))}", expect=404
    )["detail"].startswith("at")


def test_holders_timeline_and_overdue_days(scripted: tuple[Api, History]) -> None:
    api, h = scripted
    holders = api.get(A, f"/audit/tasks/{h.task}/holders")
    assert [(x["unit"], x["from"], x["to"]) for x in holders["holders"]] == [
        ("postal", h.issued.isoformat(), h.transferred.isoformat()),
        ("commerce", h.transferred.isoformat(), h.verified.isoformat()),
    ]
    postal_people = [
        (p["person"]["name"], p["from"], p["to"])
        for p in holders["holders"][0]["responsible_persons"]
    ]
    assert postal_people == [
        ("张三", h.issued.isoformat(), h.handover_effective.isoformat()),
        ("李四", h.handover_effective.isoformat(), h.transferred.isoformat()),
    ]
    assert [p["person"]["name"] for p in holders["holders"][1]["responsible_persons"]] == ["王五"]
    # Overdue from the deadline (11-04 09:00 local) to the transfer (11-05 09:00): one day
    # for postal; commerce held it overdue one hour on 11-05 until the extension.
    assert holders["overdue_days_by_unit"] == {"postal": 1, "commerce": 0}
    assert holders["overdue_days_total"] == 1


def strip(view: dict[str, Any]) -> dict[str, Any]:
    """A view without the answer's metadata (position reached, instant asked)."""
    return {k: v for k, v in view.items() if k not in ("position", "caught_up", "at")}


def test_views_as_they_stood(scripted: tuple[Api, History], clock: ManualClock) -> None:
    api, h = scripted
    then = api.get(A, f"/audit/views/units/postal?at={q(h.signed)}")
    assert then["at"] == h.signed.isoformat()
    assert strip(then) == strip(h.postal_view_after_sign)
    assert strip(then)["tasks"]["lead"]["signed"] == 1
    linkage_then = api.get(A, f"/audit/views/linkage?at={q(h.signed)}")
    assert strip(linkage_then) == strip(h.linkage_after_sign)
    # At now, the audit view equals the live one.
    at_now = q(clock.now())
    for live_path, audit_path in [
        ("/views/units/commerce", f"/audit/views/units/commerce?at={at_now}"),
        ("/views/units/postal", f"/audit/views/units/postal?at={at_now}"),
        ("/views/towns/town-a", f"/audit/views/towns/town-a?at={at_now}"),
        ("/views/linkage", f"/audit/views/linkage?at={at_now}"),
        ("/views/assessment?year=2026", f"/audit/views/assessment?year=2026&at={at_now}"),
    ]:
        assert strip(api.get(A, audit_path)) == strip(api.get(A, live_path)), live_path
    # And the postal view then differs from now (the task has moved on).
    assert strip(then) != strip(api.get(A, "/views/units/postal"))


def test_replay_reports_drift_by_view_and_key(scripted: tuple[Api, History]) -> None:
    api, h = scripted
    system = api.system
    started = api.post(A, "/audit/replays", expect=202)
    status = _wait_for_replay(api, started["id"])
    assert status["state"] == "finished", status
    assert status["difference_count"] == 0
    assert status["processed"] == system.app.head()

    # Corrupt one read-model row directly in the database.
    key = f"postal/{h.task}"
    rows = dict(system.views.scan("unit_views_rows"))
    assert key not in rows  # the task moved to commerce
    key = f"commerce/{h.task}"
    corrupted = {**rows[key], "state": "issued"}
    _write_row_directly(system, "unit_views_rows", key, corrupted)

    status = _wait_for_replay(api, api.post(S, "/audit/replays", expect=202)["id"])
    assert status["difference_count"] == 1
    assert status["differences"][0]["view"] == "unit_views_rows"
    assert status["differences"][0]["key"] == key
    assert status["differences"][0]["live"]["state"] == "issued"
    assert status["differences"][0]["rebuilt"]["state"] == "verified"
    # The scratch area is gone and the live row untouched by the replay.
    assert all(not view.startswith("scratch:") for view in _views_in_table(system))
    assert dict(system.views.scan("unit_views_rows"))[key]["state"] == "issued"


def _wait_for_replay(api: Api, replay_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = api.get(A, f"/audit/replays/{replay_id}")
        if status["state"] != "running":
            return status
        time.sleep(0.05)
    raise AssertionError("replay did not finish in 60 s")


def _write_row_directly(system: System, view: str, key: str, doc: dict[str, Any]) -> None:
    recorder: Any = system.view_recorder
    text = json.dumps(doc, ensure_ascii=False)
    with recorder.datastore.transaction(commit=True) as c:
        if system.settings.store is None:
            c.execute(
                "UPDATE tiaokuai_views SET doc = ? WHERE view = ? AND key = ?", (text, view, key)
            )
        else:
            c.execute(
                f"UPDATE {recorder.datastore.schema}.tiaokuai_views SET doc = %s::jsonb "
                "WHERE view = %s AND key = %s",
                (text, view, key),
            )


def _views_in_table(system: System) -> set[str]:
    recorder: Any = system.view_recorder
    with recorder.datastore.transaction(commit=False) as c:
        if system.settings.store is None:
            c.execute("SELECT DISTINCT view FROM tiaokuai_views")
        else:
            c.execute(f"SELECT DISTINCT view FROM {recorder.datastore.schema}.tiaokuai_views")
        return {row["view"] for row in c.fetchall()}
