"""Department (条) and town (块) views."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from projections.store import MemoryViewStore
from projections.unit_views import ROWS_VIEW, UnitViewProjection, town_view, unit_view
from tests.unit.envelopes import Events, iso, run, t

SHANGHAI = ZoneInfo("Asia/Shanghai")
UTC_ZONE = ZoneInfo("UTC")
NOW = t("2026-12-01T16:30")  # 2026-12-02 00:30 in Shanghai

ZERO = {
    "issued": 0,
    "signed": 0,
    "in_progress": 0,
    "completion_reported": 0,
    "returned": 0,
    "verified": 0,
}


def _scenario() -> Events:
    ev = Events()
    # A: deadline 23:59 local on 12-01; overdue from 16:00Z.
    ev.issue(
        "A",
        at="2026-11-01T00:00",
        lead="postal",
        co_units=["commerce"],
        towns=["town-a"],
        deadline="2026-12-01T15:59",
        title="Stations",
    )
    ev.sign("A", "postal", "2026-11-02T00:00")
    ev.overdue("A", "2026-12-01T16:00")
    # B: due 1 minute inside the 7-day window; postal (co-unit) has not signed.
    ev.issue(
        "B",
        at="2026-11-01T00:00",
        lead="commerce",
        co_units=["postal"],
        towns=["town-a"],
        deadline="2026-12-08T16:29",
        title="Meals",
    )
    ev.sign("B", "commerce", "2026-11-02T00:00")
    ev.progress("B", "commerce", "2026-11-03T00:00")
    # C: 1 minute outside the window.
    ev.issue("C", at="2026-11-01T00:00", lead="postal", deadline="2026-12-08T16:31")
    ev.sign("C", "postal", "2026-11-02T00:00")
    # D: verified on time; E: overdue, then verified late.
    ev.issue(
        "D", at="2026-11-01T00:00", lead="postal", towns=["town-b"], deadline="2026-11-20T00:00"
    )
    ev.sign("D", "postal", "2026-11-02T00:00")
    ev.complete("D", "2026-11-18T00:00")
    ev.verify("D", "2026-11-19T00:00")
    ev.issue("E", at="2026-11-01T00:00", lead="postal", deadline="2026-11-25T00:00")
    ev.sign("E", "postal", "2026-11-02T00:00")
    ev.overdue("E", "2026-11-25T00:00")
    ev.complete("E", "2026-11-26T00:00")
    ev.verify("E", "2026-11-27T00:00")
    # F: transferred from transport (signed) to postal (not signed).
    ev.issue("F", at="2026-11-01T00:00", lead="transport", deadline="2026-12-20T00:00")
    ev.sign("F", "transport", "2026-11-02T00:00")
    ev.transfer("F", "postal", "2026-11-10T00:00")
    # Chains and committees.
    ev.chain("express")
    ev.link("express", "L1", "postal", "Zhang", "2026-01-05T00:00", duties=["licensing"])
    ev.link("express", "L2", "town-a", "Li", "2026-01-05T00:00", role="territorial")
    ev.handover("express", "L1", "Zhang", "Wang", "2026-06-01T00:00", "2026-06-02T00:00")
    ev.revise_duties("express", "L1", ["licensing", "rider stations"], "2026-07-01T00:00")
    ev.chain("food-delivery")
    ev.link("food-delivery", "L1", "commerce", "Zhao", "2026-01-06T00:00")
    ev.committee("K1", "Express Party Committee", "express", "postal")
    ev.committee("K2", "Food Delivery Party Committee", "food-delivery", "commerce")
    return ev


def _summary(
    task_id: str, title: str, capacity: str, state: str, deadline: str, overdue: bool
) -> dict[str, object]:
    return {
        "id": task_id,
        "title": title,
        "capacity": capacity,
        "state": state,
        "deadline": iso(deadline),
        "overdue": overdue,
    }


def test_department_view_of_postal() -> None:
    store = run(UnitViewProjection(), _scenario().log)
    view = unit_view(store, "postal", now=NOW, tz=SHANGHAI)
    assert view == {
        "unit": "postal",
        "tasks": {
            "lead": {**ZERO, "issued": 1, "signed": 2, "verified": 2},
            "co-unit": {**ZERO, "in_progress": 1},
            "town": ZERO,
        },
        "awaiting_signature": [
            _summary("B", "Meals", "co-unit", "in_progress", "2026-12-08T16:29", False),
            _summary("F", "Task F", "lead", "issued", "2026-12-20T00:00", False),
        ],
        "due_within_7_days": [
            _summary("B", "Meals", "co-unit", "in_progress", "2026-12-08T16:29", False),
        ],
        "overdue": [
            {
                **_summary("A", "Stations", "lead", "signed", "2026-12-01T15:59", True),
                "overdue_days": 1,
            }
        ],
        # A overdue, D on time, E late: 1 of 3.
        "on_time_rate": 1 / 3,
        "chain_links": [
            {
                "unit": "postal",
                "industry": "express",
                "link_id": "L1",
                "role": "industry-competent",
                "responsible_person": "Wang",
                "since": iso("2026-06-01T00:00"),
                "duties": ["licensing", "rider stations"],
            }
        ],
        "committees": [{"id": "K1", "name": "Express Party Committee", "industry": "express"}],
    }


def test_overdue_days_count_local_days() -> None:
    store = run(UnitViewProjection(), _scenario().log)

    def days(now: str, tz: ZoneInfo) -> int:
        overdue = unit_view(store, "postal", now=t(now), tz=tz)["overdue"]
        return int(overdue[0]["overdue_days"])

    # 23:59 local on 12-01 → 00:30 local on 12-02 is one day, though only 31 minutes.
    assert days("2026-12-01T16:30", SHANGHAI) == 1
    # In UTC both instants fall on 12-01.
    assert days("2026-12-01T16:30", UTC_ZONE) == 0
    assert days("2026-12-03T15:59", SHANGHAI) == 2
    assert days("2026-12-03T16:00", SHANGHAI) == 3


def test_due_within_7_days_window_edges() -> None:
    store = run(UnitViewProjection(), _scenario().log)

    def due(now: str) -> list[str]:
        view = unit_view(store, "postal", now=t(now), tz=SHANGHAI)
        return [task["id"] for task in view["due_within_7_days"]]

    assert due("2026-12-01T16:30") == ["B"]
    assert due("2026-12-01T16:31") == ["B", "C"]
    # B's deadline passed: it is no longer "due within", and it is not marked overdue.
    assert due("2026-12-08T16:30") == ["C"]


def test_town_view_and_signing_by_the_town() -> None:
    ev = _scenario()
    store = run(UnitViewProjection(), ev.log)
    view = town_view(store, "town-a", now=NOW, tz=SHANGHAI)
    assert view["tasks"] == {
        "lead": ZERO,
        "co-unit": ZERO,
        "town": {**ZERO, "signed": 1, "in_progress": 1},
    }
    assert [task["id"] for task in view["awaiting_signature"]] == ["A", "B"]
    assert [(t_["id"], t_["overdue_days"]) for t_ in view["overdue"]] == [("A", 1)]
    assert view["on_time_rate"] is None
    assert [link["link_id"] for link in view["chain_links"]] == ["L2"]
    assert view["committees"] == []

    run(UnitViewProjection(), [ev.sign("A", "town-a", "2026-12-01T17:00")], store)
    view = town_view(store, "town-a", now=NOW, tz=SHANGHAI)
    assert [task["id"] for task in view["awaiting_signature"]] == ["B"]


def test_transfer_moves_rows_and_the_new_lead_awaits_signature() -> None:
    store = run(UnitViewProjection(), _scenario().log)
    transport = unit_view(store, "transport", now=NOW, tz=SHANGHAI)
    assert transport["tasks"] == {"lead": ZERO, "co-unit": ZERO, "town": ZERO}
    assert transport["awaiting_signature"] == []
    assert transport["on_time_rate"] is None
    assert not [key for key in store.docs[ROWS_VIEW] if key.startswith("transport/")]


def test_co_unit_and_town_rows_follow_membership() -> None:
    ev = Events()
    ev.issue("T1", at="2026-11-01T00:00", lead="postal", deadline="2026-12-20T00:00")
    ev.add_co_unit("T1", "commerce", "2026-11-02T00:00")
    ev.add_town("T1", "town-b", "2026-11-02T00:00")
    store = run(UnitViewProjection(), ev.log)
    assert sorted(store.docs[ROWS_VIEW]) == ["commerce/T1", "postal/T1", "town-b/T1"]
    assert store.docs[ROWS_VIEW]["commerce/T1"]["capacity"] == "co-unit"
    ev.remove_co_unit("T1", "commerce", "2026-11-03T00:00")
    ev.remove_town("T1", "town-b", "2026-11-03T00:00")
    run(UnitViewProjection(), ev.log[-2:], store)
    assert sorted(store.docs[ROWS_VIEW]) == ["postal/T1"]
    # Transfer to a co-unit: its row changes capacity rather than being duplicated.
    ev.add_co_unit("T1", "market", "2026-11-04T00:00")
    ev.sign("T1", "market", "2026-11-04T01:00")
    ev.transfer("T1", "market", "2026-11-05T00:00")
    run(UnitViewProjection(), ev.log[-3:], store)
    assert sorted(store.docs[ROWS_VIEW]) == ["market/T1"]
    row = store.docs[ROWS_VIEW]["market/T1"]
    assert (row["capacity"], row["state"], row["signed"]) == ("lead", "signed", True)


def test_verified_tasks_leave_awaiting_and_due_lists() -> None:
    ev = Events()
    ev.issue(
        "T1",
        at="2026-11-01T00:00",
        lead="postal",
        co_units=["commerce"],
        deadline="2026-12-03T00:00",
    )
    ev.sign("T1", "postal", "2026-11-02T00:00")
    ev.complete("T1", "2026-11-20T00:00")
    store = run(UnitViewProjection(), ev.log)
    commerce = unit_view(store, "commerce", now=NOW, tz=SHANGHAI)
    assert [task["id"] for task in commerce["awaiting_signature"]] == ["T1"]
    assert [task["id"] for task in commerce["due_within_7_days"]] == ["T1"]
    run(UnitViewProjection(), [ev.verify("T1", "2026-11-21T00:00")], store)
    commerce = unit_view(store, "commerce", now=NOW, tz=SHANGHAI)
    assert commerce["awaiting_signature"] == []
    assert commerce["due_within_7_days"] == []
    assert commerce["tasks"]["co-unit"]["verified"] == 1
    postal = unit_view(store, "postal", now=NOW, tz=SHANGHAI)
    assert postal["on_time_rate"] == 1.0


def test_empty_store_gives_an_empty_view() -> None:
    view = unit_view(MemoryViewStore(), "postal", now=NOW, tz=SHANGHAI)
    assert view["tasks"]["lead"] == ZERO
    assert view["on_time_rate"] is None
    assert view["chain_links"] == view["committees"] == view["overdue"] == []
