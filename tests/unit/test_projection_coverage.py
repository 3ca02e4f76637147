"""The coverage board of industry party committees (行业党委)."""

from __future__ import annotations

from projections.coverage import CoverageProjection, coverage_board
from tests.unit.envelopes import Events, iso, run


def _scenario() -> Events:
    ev = Events()
    ev.committee("K1", "Express Party Committee", "express", "postal")
    ev.committee("K2", "Food Delivery Party Committee", "food-delivery", "commerce")
    ev.committee("K3", "City Couriers Committee", "express", "postal")
    ev.secretary("K1", "Chen", "2026-02-02T00:00")
    ev.secretary("K1", "Liu", "2026-03-01T00:00", previous="Chen")
    ev.member_joined("K1", "M1", "SF Branch", "2026-02-03T00:00")
    ev.member_joined("K1", "M2", "JD Branch", "2026-02-04T00:00")
    ev.member_left("K1", "M1", "2026-04-01T00:00")
    ev.instructor("K1", "I1", "Sun", "Tiny Courier Ltd", "2026-02-05T00:00")
    ev.instructor("K1", "I2", "Zhou", "Small Express Ltd", "2026-02-06T00:00")
    ev.recall("K1", "I1", "2026-05-01T00:00")
    ev.coverage(
        "K1",
        "2026-Q3",
        "2026-10-01T00:00",
        enterprises=40,
        organizations_covered=10,
        work_covered=30,
    )
    ev.coverage(
        "K1",
        "2026-Q4",
        "2027-01-02T00:00",
        enterprises=50,
        organizations_covered=20,
        work_covered=45,
        party_members=120,
        workers=3000,
    )
    return ev


def test_committee_counts_and_ratios_of_the_latest_period() -> None:
    board = coverage_board(run(CoverageProjection(), _scenario().log))
    assert [c["id"] for c in board["committees"]] == ["K3", "K1", "K2"]
    k1 = board["committees"][1]
    assert k1 == {
        "id": "K1",
        "name": "Express Party Committee",
        "industry": "express",
        "supervising_unit": "postal",
        "established_at": iso("2026-02-01T00:00"),
        "secretary": "Liu",
        "member_organizations": 1,
        "instructors": 1,
        "instructor_list": [
            {
                "id": "I2",
                "person": "Zhou",
                "enterprise": "Small Express Ltd",
                "enterprise_party_members": 1,
                "dispatched_at": iso("2026-02-06T00:00"),
            }
        ],
        "latest_period": "2026-Q4",
        "coverage": {
            "2026-Q3": {
                "enterprises": 40,
                "organizations_covered": 10,
                "work_covered": 30,
                "party_members": 0,
                "workers": 0,
            },
            "2026-Q4": {
                "enterprises": 50,
                "organizations_covered": 20,
                "work_covered": 45,
                "party_members": 120,
                "workers": 3000,
            },
        },
        "organization_coverage": 0.4,
        "work_coverage": 0.9,
    }
    k2 = board["committees"][2]
    assert (k2["secretary"], k2["member_organizations"], k2["instructors"]) == (None, 0, 0)
    assert (k2["latest_period"], k2["organization_coverage"], k2["work_coverage"]) == (
        None,
        None,
        None,
    )


def test_latest_period_is_the_one_reported_last_and_zero_enterprises_gives_none() -> None:
    ev = _scenario()
    # A late report for an earlier period, with no enterprises at all.
    ev.coverage(
        "K1", "2026-Q2", "2027-01-03T00:00", enterprises=0, organizations_covered=0, work_covered=0
    )
    k1 = coverage_board(run(CoverageProjection(), ev.log))["committees"][1]
    assert k1["latest_period"] == "2026-Q2"
    assert (k1["organization_coverage"], k1["work_coverage"]) == (None, None)
    assert sorted(k1["coverage"]) == ["2026-Q2", "2026-Q3", "2026-Q4"]


def test_events_of_an_unknown_committee_are_ignored() -> None:
    ev = Events()
    ev.secretary("K9", "Ghost", "2026-02-02T00:00")
    assert coverage_board(run(CoverageProjection(), ev.log)) == {"committees": []}
