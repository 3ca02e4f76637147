"""IndustryPartyCommittee aggregate: secretary, members, instructors, coverage."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from domain.actor import Actor
from domain.committees import SMALL_ENTERPRISE_MEMBERS, IndustryPartyCommittee
from domain.errors import (
    AlreadyExists,
    DomainError,
    InvalidState,
    InvariantViolated,
    NotFound,
    NotPermitted,
)
from tests.unit.domain_helpers import (
    AUDITOR,
    SECRETARIAT,
    T0,
    assert_event,
    assert_raises_exactly,
    assert_refused,
    assert_replays,
    at,
    last_event,
    liaison,
    record,
    someone,
)

COUNTS = {
    "enterprises": 40,
    "organizations_covered": 25,
    "work_covered": 38,
    "party_members": 120,
    "workers": 5200,
}


def establish(
    name: str = "区快递行业党委", industry: str = "express", actor: Actor = SECRETARIAT
) -> IndustryPartyCommittee:
    return IndustryPartyCommittee.establish(
        name=name, industry=industry, supervising_unit="postal", actor=actor, at=T0
    )


def report(
    committee: IndustryPartyCommittee,
    period: str = "2026-Q1",
    actor: Actor = SECRETARIAT,
    figures: dict[str, int] | None = None,
    **overrides: int,
) -> None:
    figures = {**COUNTS, **(figures or {}), **overrides}
    committee.report_coverage(
        period=period,
        enterprises=figures["enterprises"],
        organizations_covered=figures["organizations_covered"],
        work_covered=figures["work_covered"],
        party_members=figures["party_members"],
        workers=figures["workers"],
        actor=actor,
        at=at(days=30),
    )


def dispatch(
    committee: IndustryPartyCommittee,
    enterprise: str = "顺达快递网点",
    members: int = 1,
    name: str = "陈指导员",
) -> str:
    return committee.dispatch_instructor(
        name=someone(name),
        enterprise=enterprise,
        enterprise_party_members=members,
        actor=SECRETARIAT,
        at=at(days=2),
    )


# --------------------------------------------------------------------- establish
def test_establish_records_committee_established() -> None:
    committee = establish(name="  区快递行业党委 ")

    assert committee.name == "区快递行业党委"
    assert committee.industry == "express"
    assert committee.supervising_unit == "postal"
    assert committee.established_at == T0
    assert committee.secretary is None
    assert committee.members == {}
    assert committee.instructors == {}
    assert committee.coverage == {}
    assert committee.version == 1
    assert_event(
        last_event(committee, "CommitteeEstablished"),
        actor=SECRETARIAT,
        at=T0,
        name="区快递行业党委",
        industry="express",
        supervising_unit="postal",
    )


@pytest.mark.parametrize("actor", [liaison("postal"), AUDITOR])
def test_only_the_secretariat_establishes_committees(actor: Actor) -> None:
    assert_raises_exactly(NotPermitted, lambda: establish(actor=actor))


def test_establish_refuses_a_blank_name_or_bad_industry() -> None:
    assert_raises_exactly(InvariantViolated, lambda: establish(name="  "))
    assert_raises_exactly(InvariantViolated, lambda: establish(industry="Express"))
    assert_raises_exactly(InvariantViolated, lambda: establish(industry=""))


# -------------------------------------------------------------------- secretary
def test_appoint_secretary_records_the_previous_one() -> None:
    committee = establish()
    _, first = record(
        committee,
        "SecretaryAppointed",
        lambda: committee.appoint_secretary(
            name=someone("  周书记 "), reason="成立", actor=SECRETARIAT, at=at(days=1)
        ),
    )
    assert committee.secretary == someone("周书记")
    assert_event(
        first,
        actor=SECRETARIAT,
        at=at(days=1),
        name=someone("周书记"),
        previous=None,
        reason="成立",
    )

    _, second = record(
        committee,
        "SecretaryAppointed",
        lambda: committee.appoint_secretary(
            name=someone("吴书记"), reason="换届", actor=SECRETARIAT, at=at(days=100)
        ),
    )
    assert committee.secretary == someone("吴书记")
    assert_event(
        second,
        actor=SECRETARIAT,
        at=at(days=100),
        name=someone("吴书记"),
        previous=someone("周书记"),
    )


@pytest.mark.parametrize("name", ["周书记", " 周书记  "])
def test_appoint_secretary_refuses_the_current_secretary(name: str) -> None:
    committee = establish()
    committee.appoint_secretary(
        name=someone("周书记"), reason="成立", actor=SECRETARIAT, at=at(days=1)
    )
    assert_refused(
        committee,
        InvariantViolated,
        lambda: committee.appoint_secretary(
            name=someone(name), reason="再任", actor=SECRETARIAT, at=at(days=2)
        ),
    )


def test_appoint_secretary_refuses_a_blank_name() -> None:
    committee = establish()
    assert_refused(
        committee,
        InvariantViolated,
        lambda: committee.appoint_secretary(
            name=someone(" "), reason="x", actor=SECRETARIAT, at=at(1)
        ),
    )


# ---------------------------------------------------------------------- members
def test_admit_member_numbers_members() -> None:
    committee = establish()
    first_id, event = record(
        committee,
        "MemberOrganizationJoined",
        lambda: committee.admit_member(
            name="  顺达快递党支部 ", enterprise=" 顺达快递 ", actor=SECRETARIAT, at=at(days=1)
        ),
    )
    second_id = committee.admit_member(
        name="飞鸿快递党支部", enterprise="飞鸿快递", actor=SECRETARIAT, at=at(days=2)
    )

    assert (first_id, second_id) == ("M1", "M2")
    assert committee.members["M1"] == {
        "name": "顺达快递党支部",
        "enterprise": "顺达快递",
        "active": True,
        "joined_at": at(days=1),
    }
    assert committee.members["M2"]["name"] == "飞鸿快递党支部"
    assert_event(
        event,
        actor=SECRETARIAT,
        at=at(days=1),
        member_id="M1",
        name="顺达快递党支部",
        enterprise="顺达快递",
    )


@pytest.mark.parametrize("name", ["顺达快递党支部", "  顺达快递党支部 "])
def test_admit_member_refuses_an_active_member_twice(name: str) -> None:
    committee = establish()
    committee.admit_member(name="顺达快递党支部", enterprise="顺达快递", actor=SECRETARIAT, at=T0)
    assert_refused(
        committee,
        AlreadyExists,
        lambda: committee.admit_member(
            name=name, enterprise="顺达快递", actor=SECRETARIAT, at=at(1)
        ),
    )


def test_a_member_that_left_may_join_again_under_a_new_id() -> None:
    committee = establish()
    committee.admit_member(name="顺达快递党支部", enterprise="顺达快递", actor=SECRETARIAT, at=T0)
    committee.remove_member(member_id="M1", reason="企业注销", actor=SECRETARIAT, at=at(days=5))
    again = committee.admit_member(
        name="顺达快递党支部", enterprise="顺达快递", actor=SECRETARIAT, at=at(days=9)
    )
    assert again == "M2"
    assert committee.members["M1"]["active"] is False
    assert committee.members["M2"]["active"] is True


def test_admit_member_refuses_a_blank_name() -> None:
    committee = establish()
    assert_refused(
        committee,
        InvariantViolated,
        lambda: committee.admit_member(name="  ", enterprise="顺达快递", actor=SECRETARIAT, at=T0),
    )


def test_remove_member_records_member_left() -> None:
    committee = establish()
    committee.admit_member(name="顺达快递党支部", enterprise="顺达快递", actor=SECRETARIAT, at=T0)
    _, event = record(
        committee,
        "MemberOrganizationLeft",
        lambda: committee.remove_member(
            member_id="M1", reason="  企业注销 ", actor=SECRETARIAT, at=at(days=5)
        ),
    )
    assert committee.members["M1"]["active"] is False
    assert committee.members["M1"]["name"] == "顺达快递党支部"
    assert_event(event, actor=SECRETARIAT, at=at(days=5), member_id="M1", reason="企业注销")


def test_remove_member_refusals() -> None:
    committee = establish()
    committee.admit_member(name="顺达快递党支部", enterprise="顺达快递", actor=SECRETARIAT, at=T0)

    def remove(member_id: str, reason: str = "企业注销") -> Callable[[], None]:
        return lambda: committee.remove_member(
            member_id=member_id, reason=reason, actor=SECRETARIAT, at=at(days=5)
        )

    assert_refused(committee, NotFound, remove("M2"))
    assert_refused(committee, InvariantViolated, remove("M1", reason=" "))
    remove("M1")()
    assert_refused(committee, InvalidState, remove("M1"))


# ------------------------------------------------------------------ instructors
@pytest.mark.parametrize("members", list(range(SMALL_ENTERPRISE_MEMBERS)))
def test_dispatch_instructor_to_an_enterprise_with_fewer_than_three_members(
    members: int,
) -> None:
    committee = establish()
    instructor_id, event = record(
        committee,
        "InstructorDispatched",
        lambda: committee.dispatch_instructor(
            name=someone("  陈指导员 "),
            enterprise=" 顺达快递网点 ",
            enterprise_party_members=members,
            actor=SECRETARIAT,
            at=at(days=2),
        ),
    )
    assert SMALL_ENTERPRISE_MEMBERS == 3
    assert instructor_id == "I1"
    assert committee.instructors["I1"] == {
        "name": someone("陈指导员"),
        "enterprise": "顺达快递网点",
        "enterprise_party_members": members,
        "active": True,
        "dispatched_at": at(days=2),
    }
    assert_event(
        event,
        actor=SECRETARIAT,
        at=at(days=2),
        instructor_id="I1",
        name=someone("陈指导员"),
        enterprise="顺达快递网点",
        enterprise_party_members=members,
    )


@pytest.mark.parametrize("members", [3, 4, 50, -1])
def test_dispatch_instructor_refuses_other_enterprises(members: int) -> None:
    committee = establish()
    assert_refused(committee, InvariantViolated, lambda: dispatch(committee, members=members))


@pytest.mark.parametrize(
    ("name", "enterprise"), [("", "顺达"), (" ", "顺达"), ("陈", ""), ("陈", " ")]
)
def test_dispatch_instructor_needs_a_name_and_an_enterprise(name: str, enterprise: str) -> None:
    committee = establish()
    assert_refused(
        committee,
        InvariantViolated,
        lambda: dispatch(committee, name=name, enterprise=enterprise),
    )


@pytest.mark.parametrize("enterprise", ["顺达快递网点", "  顺达快递网点 "])
def test_one_active_instructor_per_enterprise(enterprise: str) -> None:
    committee = establish()
    dispatch(committee, enterprise="顺达快递网点")
    assert_refused(
        committee,
        AlreadyExists,
        lambda: dispatch(committee, enterprise=enterprise, name="林指导员"),
    )
    assert dispatch(committee, enterprise="飞鸿快递网点", name="林指导员") == "I2"


def test_recall_instructor_then_dispatch_another() -> None:
    committee = establish()
    dispatch(committee)
    _, event = record(
        committee,
        "InstructorRecalled",
        lambda: committee.recall_instructor(
            instructor_id="I1", reason="  企业党员已达3人 ", actor=SECRETARIAT, at=at(days=60)
        ),
    )
    assert committee.instructors["I1"]["active"] is False
    assert_event(
        event, actor=SECRETARIAT, at=at(days=60), instructor_id="I1", reason="企业党员已达3人"
    )
    assert dispatch(committee, name="林指导员") == "I2"
    assert committee.instructors["I2"]["active"] is True


def test_recall_instructor_refusals() -> None:
    committee = establish()
    dispatch(committee)

    def recall(instructor_id: str, reason: str = "任务完成") -> Callable[[], None]:
        return lambda: committee.recall_instructor(
            instructor_id=instructor_id, reason=reason, actor=SECRETARIAT, at=at(days=60)
        )

    assert_refused(committee, NotFound, recall("I2"))
    assert_refused(committee, InvariantViolated, recall("I1", reason=""))
    recall("I1")()
    assert_refused(committee, InvalidState, recall("I1"))


# --------------------------------------------------------------------- coverage
def test_report_coverage_records_the_figures() -> None:
    committee = establish()
    _, event = record(committee, "CoverageReported", lambda: report(committee, period="2026-Q1"))
    assert committee.coverage == {"2026-Q1": COUNTS}
    assert_event(event, actor=SECRETARIAT, at=at(days=30), period="2026-Q1", **COUNTS)
    report(committee, period="2026-Q2", enterprises=41)
    assert committee.coverage["2026-Q2"]["enterprises"] == 41
    assert sorted(committee.coverage) == ["2026-Q1", "2026-Q2"]


def test_coverage_is_reported_once_per_period() -> None:
    committee = establish()
    report(committee, period="2026-Q1")
    assert_refused(committee, AlreadyExists, lambda: report(committee, period="2026-Q1", workers=1))


def test_coverage_once_per_period_whatever_the_whitespace() -> None:
    committee = establish()
    report(committee, period="2026-Q1")
    assert_refused(
        committee, AlreadyExists, lambda: report(committee, period=" 2026-Q1 ", workers=1)
    )


def test_covered_counts_may_equal_enterprises() -> None:
    committee = establish()
    report(committee, enterprises=10, organizations_covered=10, work_covered=10)
    assert committee.coverage["2026-Q1"]["organizations_covered"] == 10


@pytest.mark.parametrize("field", sorted(COUNTS))
def test_report_coverage_refuses_negative_counts(field: str) -> None:
    committee = establish()
    assert_refused(committee, InvariantViolated, lambda: report(committee, figures={field: -1}))


@pytest.mark.parametrize("field", ["organizations_covered", "work_covered"])
def test_covered_counts_never_exceed_enterprises(field: str) -> None:
    committee = establish()
    assert_refused(
        committee,
        InvariantViolated,
        lambda: report(committee, figures={"enterprises": 10, field: 11}),
    )


@pytest.mark.parametrize("period", ["", "   "])
def test_report_coverage_needs_a_period(period: str) -> None:
    committee = establish()
    assert_refused(committee, InvariantViolated, lambda: report(committee, period=period))


# ------------------------------------------------------------------ permissions
def _committee_commands(actor: Actor) -> dict[str, Callable[[IndustryPartyCommittee], object]]:
    return {
        "appoint_secretary": lambda c: c.appoint_secretary(
            name=someone("吴书记"), reason="换届", actor=actor, at=at(days=3)
        ),
        "admit_member": lambda c: c.admit_member(
            name="新支部", enterprise="新企业", actor=actor, at=at(days=3)
        ),
        "remove_member": lambda c: c.remove_member(
            member_id="M1", reason="注销", actor=actor, at=at(days=3)
        ),
        "dispatch_instructor": lambda c: c.dispatch_instructor(
            name=someone("林指导员"),
            enterprise="新企业",
            enterprise_party_members=0,
            actor=actor,
            at=at(3),
        ),
        "recall_instructor": lambda c: c.recall_instructor(
            instructor_id="I1", reason="完成", actor=actor, at=at(days=3)
        ),
        "report_coverage": lambda c: c.report_coverage(
            period="2026-Q3", actor=actor, at=at(days=3), **COUNTS
        ),
    }


def _populated_committee() -> IndustryPartyCommittee:
    committee = establish()
    committee.appoint_secretary(name=someone("周书记"), reason="成立", actor=SECRETARIAT, at=at(1))
    committee.admit_member(name="顺达快递党支部", enterprise="顺达快递", actor=SECRETARIAT, at=T0)
    dispatch(committee)
    return committee


@pytest.mark.parametrize("command", sorted(_committee_commands(SECRETARIAT)))
def test_every_committee_command_works_for_the_secretariat(command: str) -> None:
    committee = _populated_committee()
    version = committee.version
    _committee_commands(SECRETARIAT)[command](committee)
    assert committee.version == version + 1


@pytest.mark.parametrize("command", sorted(_committee_commands(SECRETARIAT)))
@pytest.mark.parametrize("actor", [liaison("postal"), AUDITOR])
def test_only_the_secretariat_runs_a_committee(command: str, actor: Actor) -> None:
    committee = _populated_committee()
    fn = _committee_commands(actor)[command]
    error: DomainError = assert_refused(committee, NotPermitted, lambda: fn(committee))
    assert "only the secretariat" in str(error)


# ----------------------------------------------------------------------- replay
def test_committee_replays_to_the_same_state() -> None:
    committee = _populated_committee()
    committee.admit_member(
        name="飞鸿快递党支部", enterprise="飞鸿快递", actor=SECRETARIAT, at=at(2)
    )
    committee.remove_member(member_id="M1", reason="企业注销", actor=SECRETARIAT, at=at(3))
    committee.recall_instructor(instructor_id="I1", reason="完成", actor=SECRETARIAT, at=at(4))
    dispatch(committee, name="林指导员", members=0)
    committee.appoint_secretary(name=someone("吴书记"), reason="换届", actor=SECRETARIAT, at=at(5))
    report(committee, period="2026-Q1")
    report(committee, period="2026-Q2", enterprises=45)

    copy, names = assert_replays(committee)

    assert names == [
        "CommitteeEstablished",
        "SecretaryAppointed",
        "MemberOrganizationJoined",
        "InstructorDispatched",
        "MemberOrganizationJoined",
        "MemberOrganizationLeft",
        "InstructorRecalled",
        "InstructorDispatched",
        "SecretaryAppointed",
        "CoverageReported",
        "CoverageReported",
    ]
    assert copy.secretary == someone("吴书记")
    assert {mid: m["active"] for mid, m in copy.members.items()} == {"M1": False, "M2": True}
    assert {iid: i["active"] for iid, i in copy.instructors.items()} == {"I1": False, "I2": True}
    assert copy.coverage["2026-Q2"]["enterprises"] == 45
