"""The assessment board (考核)."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from projections.assessment import (
    CELLS_VIEW,
    SCORING_RULE,
    AssessmentProjection,
    assessment_board,
)
from tests.unit.envelopes import Events, run


def _bucket(count: int, weight: float) -> dict[str, Any]:
    return {"count": count, "weight": weight}


def _scenario() -> Events:
    ev = Events()
    ev.issue("A", at="2026-01-01T00:00", lead="postal", deadline="2026-06-01T00:00", weight=2.0)
    ev.sign("A", "postal", "2026-01-02T00:00")
    ev.complete("A", "2026-05-01T00:00")
    ev.verify("A", "2026-05-02T00:00")
    ev.issue("B", at="2026-01-01T00:00", lead="postal", deadline="2026-06-01T00:00", weight=3.0)
    ev.sign("B", "postal", "2026-01-02T00:00")
    ev.overdue("B", "2026-06-01T00:00")
    ev.complete("B", "2026-06-03T00:00")
    ev.verify("B", "2026-06-04T00:00")
    ev.issue("C", at="2026-01-01T00:00", lead="postal", deadline="2026-07-01T00:00", weight=1.5)
    ev.overdue("C", "2026-07-01T00:00")
    ev.issue("D", at="2026-01-01T00:00", lead="postal", deadline="2026-08-01T00:00", weight=4.0)
    # 23:30 local on 12-31: still 2026.
    ev.issue("E", at="2026-01-01T00:00", lead="commerce", deadline="2026-12-31T15:30", weight=5.0)
    ev.overdue("E", "2026-12-31T15:30")
    # 00:30 local on 2027-01-01 although 2026 in UTC.
    ev.issue("F", at="2026-01-01T00:00", lead="commerce", deadline="2026-12-31T16:30", weight=1.0)
    ev.issue("G", at="2026-01-01T00:00", lead="transport", deadline="2026-09-01T00:00", weight=2.0)
    ev.sign("G", "transport", "2026-01-02T00:00")
    ev.complete("G", "2026-08-01T00:00")
    ev.verify("G", "2026-08-02T00:00")
    ev.issue("H", at="2026-01-01T00:00", lead="transport", deadline="2026-10-01T00:00", weight=1.0)
    ev.transfer("H", "postal", "2026-02-01T00:00")
    return ev


def test_buckets_weights_and_score_per_unit_and_local_year() -> None:
    store = run(AssessmentProjection(ZoneInfo("Asia/Shanghai")), _scenario().log)
    board = assessment_board(store, 2026)
    assert board["year"] == 2026
    assert board["rule"] == SCORING_RULE
    assert board["units"] == [
        # postal = 1.0×2 + 0.5×3 − 1.0×1.5 = 2.0; ties with transport, so by unit.
        {
            "unit": "postal",
            "verified_on_time": _bucket(1, 2.0),
            "verified_late": _bucket(1, 3.0),
            "still_overdue": _bucket(1, 1.5),
            "open": _bucket(2, 5.0),
            "score": 2.0,
        },
        {
            "unit": "transport",
            "verified_on_time": _bucket(1, 2.0),
            "verified_late": _bucket(0, 0.0),
            "still_overdue": _bucket(0, 0.0),
            "open": _bucket(0, 0.0),
            "score": 2.0,
        },
        {
            "unit": "commerce",
            "verified_on_time": _bucket(0, 0.0),
            "verified_late": _bucket(0, 0.0),
            "still_overdue": _bucket(1, 5.0),
            "open": _bucket(0, 0.0),
            "score": -5.0,
        },
    ]
    assert [u["unit"] for u in assessment_board(store, 2027)["units"]] == ["commerce"]
    assert assessment_board(store, 2027)["units"][0]["open"] == _bucket(1, 1.0)
    assert assessment_board(store, 2025)["units"] == []


def test_extension_moves_a_task_into_the_next_year() -> None:
    ev = _scenario()
    proj = AssessmentProjection(ZoneInfo("Asia/Shanghai"))
    store = run(proj, ev.log)
    ev.request_extension("E", "E1", "2027-01-10T00:00", "2027-01-01T00:00")
    ev.grant("E", "E1", "2027-01-02T00:00")
    run(proj, ev.log[-2:], store)
    board = assessment_board(store, 2026)
    assert [u["unit"] for u in board["units"]] == ["postal", "transport"]
    # commerce's 2026 cell held only E: it is deleted, not left at zero.
    assert "2026/commerce" not in store.docs[CELLS_VIEW]
    commerce = assessment_board(store, 2027)["units"][0]
    assert commerce["open"] == _bucket(2, 6.0)
    assert commerce["still_overdue"] == _bucket(0, 0.0)
    assert commerce["score"] == 0.0
    # Verified late in 2027 would give half its weight; on time here (before 01-10).
    ev.sign("E", "commerce", "2027-01-03T00:00")
    ev.complete("E", "2027-01-04T00:00")
    ev.verify("E", "2027-01-05T00:00")
    run(proj, ev.log[-3:], store)
    commerce = assessment_board(store, 2027)["units"][0]
    assert commerce["verified_on_time"] == _bucket(1, 5.0)
    assert commerce["open"] == _bucket(1, 1.0)
    assert commerce["score"] == 5.0


def test_time_zone_decides_the_year() -> None:
    store = run(AssessmentProjection(ZoneInfo("UTC")), _scenario().log)
    # In UTC, F (2026-12-31T16:30Z) belongs to 2026.
    commerce = [u for u in assessment_board(store, 2026)["units"] if u["unit"] == "commerce"]
    assert commerce[0]["open"] == _bucket(1, 1.0)
    assert assessment_board(store, 2027)["units"] == []


def test_scoring_rule_is_written_down() -> None:
    for fragment in ("1.0 ×", "0.5 ×", "− 1.0 ×", "score 0"):
        assert fragment in SCORING_RULE
