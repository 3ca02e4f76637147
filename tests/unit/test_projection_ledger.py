"""The accountability ledger (问责台账)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from projections.ledger import LedgerProjection, task_ledger
from projections.store import MemoryViewStore
from tests.unit.envelopes import Events, iso, run, t

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = 86_400


def _transfer_scenario() -> Events:
    ev = Events()
    ev.chain("express")
    ev.link("express", "L1", "postal", "Zhang", "2026-01-05T00:00")
    ev.link("express", "L3", "commerce", "Zhao", "2026-01-06T00:00")
    ev.issue(
        "T1",
        at="2026-11-01T00:00",
        lead="postal",
        co_units=["commerce"],
        deadline="2026-12-01T15:59",  # 23:59 local
        title="Stations",
    )
    ev.sign("T1", "postal", "2026-11-02T00:00")
    ev.progress("T1", "postal", "2026-11-03T00:00")
    # A second link of postal in the same chain, and a handover mid-holding.
    ev.link("express", "L2", "postal", "Qian", "2026-11-05T00:00", role="supervisory")
    ev.handover("express", "L1", "Zhang", "Wang", "2026-11-10T00:00", "2026-11-11T00:00")
    ev.urge("T1", "2026-11-20T00:00", note="stations still missing")
    ev.overdue("T1", "2026-12-01T16:00")
    ev.transfer("T1", "commerce", "2026-12-03T02:00", reason="commerce owns the sites")
    return ev


def test_holders_with_responsible_persons_and_handover() -> None:
    store = run(LedgerProjection(), _transfer_scenario().log)
    ledger = task_ledger(store, "T1", now=t("2026-12-05T04:00"), tz=SHANGHAI)
    assert ledger is not None
    assert (ledger["task_id"], ledger["title"], ledger["industry"]) == ("T1", "Stations", "express")
    assert ledger["holders"] == [
        {
            "unit": "postal",
            "from": iso("2026-11-01T00:00"),
            "to": iso("2026-12-03T02:00"),
            "responsible_persons": [
                {
                    "person": "Zhang",
                    "from": iso("2026-11-01T00:00"),
                    "to": iso("2026-11-10T00:00"),
                    "link_id": "L1",
                    "role": "industry-competent",
                },
                {
                    "person": "Qian",
                    "from": iso("2026-11-05T00:00"),
                    "to": iso("2026-12-03T02:00"),
                    "link_id": "L2",
                    "role": "supervisory",
                },
                {
                    "person": "Wang",
                    "from": iso("2026-11-10T00:00"),
                    "to": iso("2026-12-03T02:00"),
                    "link_id": "L1",
                    "role": "industry-competent",
                },
            ],
        },
        {
            "unit": "commerce",
            "from": iso("2026-12-03T02:00"),
            "to": None,
            "responsible_persons": [
                {
                    "person": "Zhao",
                    "from": iso("2026-12-03T02:00"),
                    "to": None,
                    "link_id": "L3",
                    "role": "industry-competent",
                }
            ],
        },
    ]
    assert ledger["transfers"] == [
        {
            "at": iso("2026-12-03T02:00"),
            "by": "sec-wang",
            "previous_lead": "postal",
            "new_lead": "commerce",
            "reason": "commerce owns the sites",
        }
    ]
    assert ledger["urges"] == [
        {
            "at": iso("2026-11-20T00:00"),
            "by": "sec-wang",
            "note": "stations still missing",
            "unit": "postal",
        }
    ]


def test_time_in_state_per_unit_with_open_period_ending_now() -> None:
    store = run(LedgerProjection(), _transfer_scenario().log)
    ledger = task_ledger(store, "T1", now=t("2026-12-05T04:00"), tz=SHANGHAI)
    assert ledger is not None
    assert ledger["time_in_state"] == [
        {"unit": "postal", "state": "issued", "seconds": 1.0 * DAY},
        {"unit": "postal", "state": "signed", "seconds": 1.0 * DAY},
        {"unit": "postal", "state": "in_progress", "seconds": 30.0 * DAY + 2 * 3600},
        {"unit": "commerce", "state": "issued", "seconds": 2.0 * DAY + 2 * 3600},
    ]
    assert [p["state"] for p in ledger["state_periods"]] == [
        "issued",
        "signed",
        "in_progress",
        "issued",
    ]


def test_overdue_days_split_across_a_transfer() -> None:
    store = run(LedgerProjection(), _transfer_scenario().log)
    # Deadline 12-01 23:59 local; transfer 12-03 10:00 local; now 12-05 12:00 local.
    ledger = task_ledger(store, "T1", now=t("2026-12-05T04:00"), tz=SHANGHAI)
    assert ledger is not None
    assert ledger["overdue_periods"] == [{"from": iso("2026-12-01T15:59"), "to": None}]
    assert ledger["overdue_days_by_unit"] == {"postal": 2, "commerce": 2}
    assert ledger["overdue_days_total"] == 4
    # Just after local midnight of 12-02, postal holds one overdue day.
    early = task_ledger(store, "T1", now=t("2026-12-01T16:30"), tz=SHANGHAI)
    assert early is not None
    assert early["overdue_days_by_unit"] == {"postal": 1}


def test_extensions_returns_and_verification_close_periods() -> None:
    ev = Events()
    ev.issue("T2", at="2026-11-01T00:00", lead="postal", deadline="2026-12-01T00:00")
    ev.sign("T2", "postal", "2026-11-02T00:00")
    ev.complete("T2", "2026-11-10T00:00")
    ev.return_("T2", "2026-11-11T00:00", reason="photos missing")
    ev.overdue("T2", "2026-12-01T00:00")
    ev.request_extension("T2", "E1", "2026-12-10T00:00", "2026-12-02T00:00", reason="rain")
    ev.grant("T2", "E1", "2026-12-03T00:00", note="ok")
    ev.request_extension("T2", "E2", "2026-12-20T00:00", "2026-12-04T00:00", reason="more rain")
    ev.deny("T2", "E2", "2026-12-05T00:00", reason="enough")
    ev.complete("T2", "2026-12-08T00:00")
    ev.verify("T2", "2026-12-09T00:00")
    store = run(LedgerProjection(), ev.log)
    ledger = task_ledger(store, "T2", now=t("2027-01-01T00:00"), tz=SHANGHAI)
    assert ledger is not None
    assert ledger["holders"] == [
        {
            "unit": "postal",
            "from": iso("2026-11-01T00:00"),
            "to": iso("2026-12-09T00:00"),
            "responsible_persons": [],
        }
    ]
    assert ledger["overdue_periods"] == [
        {"from": iso("2026-12-01T00:00"), "to": iso("2026-12-03T00:00")}
    ]
    assert ledger["overdue_days_by_unit"] == {"postal": 2}
    assert ledger["overdue_days_total"] == 2
    assert ledger["time_in_state"] == [
        {"unit": "postal", "state": "issued", "seconds": 1.0 * DAY},
        {"unit": "postal", "state": "signed", "seconds": 8.0 * DAY},
        {"unit": "postal", "state": "completion_reported", "seconds": 2.0 * DAY},
        {"unit": "postal", "state": "returned", "seconds": 27.0 * DAY},
    ]
    assert ledger["extensions"] == [
        {
            "request_id": "E1",
            "unit": "postal",
            "new_deadline": iso("2026-12-10T00:00"),
            "reason": "rain",
            "status": "granted",
            "requested_at": iso("2026-12-02T00:00"),
            "decided_at": iso("2026-12-03T00:00"),
            "decided_by": "sec-wang",
            "decision_note": "ok",
        },
        {
            "request_id": "E2",
            "unit": "postal",
            "new_deadline": iso("2026-12-20T00:00"),
            "reason": "more rain",
            "status": "denied",
            "requested_at": iso("2026-12-04T00:00"),
            "decided_at": iso("2026-12-05T00:00"),
            "decided_by": "sec-wang",
            "decision_note": "enough",
        },
    ]
    assert ledger["returns"] == [
        {
            "at": iso("2026-11-11T00:00"),
            "by": "sec-wang",
            "reason": "photos missing",
            "unit": "postal",
        }
    ]
    assert ledger["state"] == "verified"


def test_a_second_overdue_period_after_an_extension() -> None:
    ev = Events()
    ev.issue("T3", at="2026-11-01T00:00", lead="postal", deadline="2026-12-01T00:00")
    ev.overdue("T3", "2026-12-01T00:00")
    ev.request_extension("T3", "E1", "2026-12-05T00:00", "2026-12-02T00:00")
    ev.grant("T3", "E1", "2026-12-02T00:00")
    ev.overdue("T3", "2026-12-05T00:00")
    store = run(LedgerProjection(), ev.log)
    ledger = task_ledger(store, "T3", now=t("2026-12-07T00:00"), tz=SHANGHAI)
    assert ledger is not None
    assert ledger["overdue_periods"] == [
        {"from": iso("2026-12-01T00:00"), "to": iso("2026-12-02T00:00")},
        {"from": iso("2026-12-05T00:00"), "to": None},
    ]
    assert ledger["overdue_days_by_unit"] == {"postal": 3}


def test_unknown_task() -> None:
    assert task_ledger(MemoryViewStore(), "nope", now=t("2026-12-01T00:00"), tz=SHANGHAI) is None
