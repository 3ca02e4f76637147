"""ResponsibilityChain aggregate: links, handovers of the responsible person, duties."""

from __future__ import annotations

from datetime import datetime

import pytest

from domain.actor import Actor
from domain.chains import LinkRole, ResponsibilityChain
from domain.errors import InvariantViolated, NotFound, NotPermitted
from domain.ids import chain_id
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
    naive,
    record,
    someone,
)


def establish(
    industry: str = "express", name: str = "快递行业责任链条", actor: Actor = SECRETARIAT
) -> ResponsibilityChain:
    return ResponsibilityChain.establish(industry=industry, name=name, actor=actor, at=T0)


def chain_with_link() -> ResponsibilityChain:
    """An express chain whose link L1 is postal's industry-competent link, since at(1)."""
    chain = establish()
    chain.add_link(
        unit="postal",
        role=LinkRole.INDUSTRY_COMPETENT,
        responsible_person=someone("张三"),
        duties=["行业监管", "督促企业建立党组织"],
        actor=SECRETARIAT,
        at=at(days=1),
    )
    return chain


def hand_over(
    chain: ResponsibilityChain,
    *,
    person: str = "李四",
    effective_at: datetime | None = None,
    reason: str = "岗位调整",
    link_id: str = "L1",
    actor: Actor = SECRETARIAT,
) -> None:
    chain.hand_over(
        link_id=link_id,
        responsible_person=someone(person),
        effective_at=at(days=10) if effective_at is None else effective_at,
        reason=reason,
        actor=actor,
        at=at(days=9),
    )


# --------------------------------------------------------------------- establish
def test_establish_records_chain_established() -> None:
    chain = establish(name="  快递行业责任链条 ")

    assert chain.id == chain_id("express")
    assert chain.industry == "express"
    assert chain.name == "快递行业责任链条"
    assert chain.established_at == T0
    assert chain.links == {}
    assert chain.order == []
    assert chain.version == 1
    assert_event(
        last_event(chain, "ChainEstablished"),
        actor=SECRETARIAT,
        at=T0,
        industry="express",
        name="快递行业责任链条",
    )


def test_one_chain_id_per_industry() -> None:
    assert establish("express").id == establish("express").id
    assert establish("express").id != establish("food-delivery").id


@pytest.mark.parametrize("actor", [liaison("postal"), AUDITOR])
def test_only_the_secretariat_establishes_chains(actor: Actor) -> None:
    assert_raises_exactly(NotPermitted, lambda: establish(actor=actor))


@pytest.mark.parametrize("industry", ["", "Express", "food_delivery", "外卖", "-x"])
def test_establish_refuses_a_bad_industry(industry: str) -> None:
    assert_raises_exactly(InvariantViolated, lambda: establish(industry=industry))


@pytest.mark.parametrize("name", ["", "  "])
def test_establish_refuses_a_blank_name(name: str) -> None:
    assert_raises_exactly(InvariantViolated, lambda: establish(name=name))


# ---------------------------------------------------------------------- add_link
def test_add_link_numbers_links_and_records_them() -> None:
    chain = establish()
    first_id, first = record(
        chain,
        "ChainLinkAdded",
        lambda: chain.add_link(
            unit="postal",
            role=LinkRole.INDUSTRY_COMPETENT,
            responsible_person=someone("  张三 "),
            duties=[" 行业监管 ", "", "  ", "督促企业建立党组织"],
            actor=SECRETARIAT,
            at=at(days=1),
        ),
    )
    second_id, second = record(
        chain,
        "ChainLinkAdded",
        lambda: chain.add_link(
            unit="town-a",
            role=LinkRole("territorial"),
            responsible_person=someone("王五"),
            duties=["属地管理"],
            actor=SECRETARIAT,
            at=at(days=2),
        ),
    )
    third_id = chain.add_link(
        unit="postal",
        role=LinkRole.INDUSTRY_COMMITTEE,
        responsible_person=someone("赵六"),
        duties=["行业党委建设"],
        actor=SECRETARIAT,
        at=at(days=3),
    )

    assert (first_id, second_id, third_id) == ("L1", "L2", "L3")
    assert chain.order == ["L1", "L2", "L3"]
    assert chain.links["L1"] == {
        "unit": "postal",
        "role": "industry-competent",
        "responsible_person": someone("张三"),
        "duties": ["行业监管", "督促企业建立党组织"],
        "added_at": at(days=1),
        "since": at(days=1),
        "handovers": [],
    }
    assert chain.links["L2"]["role"] == "territorial"
    assert chain.link("L3")["responsible_person"] == someone("赵六")
    assert chain.links_of("postal") == ["L1", "L3"]
    assert chain.links_of("town-a") == ["L2"]
    assert chain.links_of("commerce") == []
    assert_event(
        first,
        actor=SECRETARIAT,
        at=at(days=1),
        link_id="L1",
        unit="postal",
        role="industry-competent",
        responsible_person=someone("张三"),
        duties=["行业监管", "督促企业建立党组织"],
    )
    assert_event(second, actor=SECRETARIAT, at=at(days=2), link_id="L2", role="territorial")


def test_add_link_refuses_the_same_unit_in_the_same_role() -> None:
    chain = chain_with_link()
    assert_refused(
        chain,
        InvariantViolated,
        lambda: chain.add_link(
            unit="postal",
            role=LinkRole.INDUSTRY_COMPETENT,
            responsible_person=someone("另一人"),
            duties=["其他职责"],
            actor=SECRETARIAT,
            at=at(days=2),
        ),
    )


def test_the_same_role_may_be_held_by_another_unit() -> None:
    chain = chain_with_link()
    link_id = chain.add_link(
        unit="market",
        role=LinkRole.INDUSTRY_COMPETENT,
        responsible_person=someone("钱七"),
        duties=["平台监管"],
        actor=SECRETARIAT,
        at=at(days=2),
    )
    assert link_id == "L2"
    assert chain.links_of("market") == ["L2"]


@pytest.mark.parametrize("actor", [liaison("postal"), AUDITOR])
def test_only_the_secretariat_adds_links(actor: Actor) -> None:
    chain = establish()
    assert_refused(
        chain,
        NotPermitted,
        lambda: chain.add_link(
            unit="postal",
            role=LinkRole.SUPERVISORY,
            responsible_person=someone("张三"),
            duties=["监管"],
            actor=actor,
            at=at(days=1),
        ),
    )


@pytest.mark.parametrize(
    ("person", "duties"),
    [("", ["监管"]), ("   ", ["监管"]), ("张三", []), ("张三", ["", "  "])],
)
def test_add_link_needs_a_person_and_a_duty(person: str, duties: list[str]) -> None:
    chain = establish()
    assert_refused(
        chain,
        InvariantViolated,
        lambda: chain.add_link(
            unit="postal",
            role=LinkRole.SUPERVISORY,
            responsible_person=someone(person),
            duties=duties,
            actor=SECRETARIAT,
            at=at(days=1),
        ),
    )


def test_link_of_an_unknown_id_is_not_found() -> None:
    chain = chain_with_link()
    assert_refused(chain, NotFound, lambda: chain.link("L2"))


# --------------------------------------------------------------------- hand_over
def test_hand_over_records_the_new_responsible_person() -> None:
    chain = chain_with_link()
    _, event = record(
        chain,
        "ResponsiblePersonHandedOver",
        lambda: chain.hand_over(
            link_id="L1",
            responsible_person=someone(" 李四 "),
            effective_at=at(days=10),
            reason="  岗位调整 ",
            actor=SECRETARIAT,
            at=at(days=9),
        ),
    )

    link = chain.links["L1"]
    assert link["responsible_person"] == someone("李四")
    assert link["since"] == at(days=10)
    assert link["handovers"] == [
        {
            "from": someone("张三"),
            "to": someone("李四"),
            "effective_at": at(days=10),
            "reason": "岗位调整",
        }
    ]
    assert link["duties"] == ["行业监管", "督促企业建立党组织"]
    assert link["added_at"] == at(days=1)  # the link's own start does not move
    assert_event(
        event,
        actor=SECRETARIAT,
        at=at(days=9),
        link_id="L1",
        previous_person=someone("张三"),
        responsible_person=someone("李四"),
        effective_at=at(days=10),
        reason="岗位调整",
    )


def test_hand_over_may_take_effect_at_the_previous_start() -> None:
    chain = chain_with_link()
    hand_over(chain, effective_at=at(days=1))
    assert chain.links["L1"]["since"] == at(days=1)
    assert chain.links["L1"]["responsible_person"] == someone("李四")


def test_successive_handovers_are_kept_in_order() -> None:
    chain = chain_with_link()
    hand_over(chain, person="李四", effective_at=at(days=10))
    hand_over(chain, person="王五", effective_at=at(days=20), reason="退休")
    assert chain.links["L1"]["responsible_person"] == someone("王五")
    assert [(h["from"].name, h["to"].name) for h in chain.links["L1"]["handovers"]] == [
        ("张三", "李四"),
        ("李四", "王五"),
    ]


def test_hand_over_refuses_an_effective_at_before_the_current_persons_start() -> None:
    chain = chain_with_link()
    assert_refused(
        chain,
        InvariantViolated,
        lambda: hand_over(chain, effective_at=at(days=1) - (at(minutes=1) - T0)),
    )
    hand_over(chain, person="李四", effective_at=at(days=10))
    # after the first link start, but before the current person's start
    assert_refused(
        chain, InvariantViolated, lambda: hand_over(chain, person="王五", effective_at=at(days=5))
    )


def test_hand_over_refuses_a_naive_effective_at() -> None:
    chain = chain_with_link()
    assert_refused(
        chain, InvariantViolated, lambda: hand_over(chain, effective_at=naive(at(days=10)))
    )


@pytest.mark.parametrize("reason", ["", "   "])
def test_hand_over_needs_a_reason(reason: str) -> None:
    chain = chain_with_link()
    assert_refused(chain, InvariantViolated, lambda: hand_over(chain, reason=reason))


@pytest.mark.parametrize("person", ["", "  "])
def test_hand_over_names_the_new_person(person: str) -> None:
    chain = chain_with_link()
    assert_refused(chain, InvariantViolated, lambda: hand_over(chain, person=person))


@pytest.mark.parametrize("person", ["张三", "  张三 "])
def test_hand_over_refuses_the_same_person(person: str) -> None:
    chain = chain_with_link()
    assert_refused(chain, InvariantViolated, lambda: hand_over(chain, person=person))


def test_hand_over_of_an_unknown_link_is_not_found() -> None:
    chain = chain_with_link()
    assert_refused(chain, NotFound, lambda: hand_over(chain, link_id="L9"))


@pytest.mark.parametrize("actor", [liaison("postal"), AUDITOR])
def test_only_the_secretariat_records_handovers(actor: Actor) -> None:
    chain = chain_with_link()
    assert_refused(chain, NotPermitted, lambda: hand_over(chain, actor=actor))


# --------------------------------------------------------------------- person_at
def test_person_at_follows_the_handovers_by_effective_instant() -> None:
    chain = chain_with_link()  # 张三 from day 1
    assert chain.person_at("L1", at(days=1) - (at(minutes=1) - T0)) is None
    assert chain.person_at("L1", at(days=1)) == someone("张三")
    assert chain.person_at("L1", at(days=5)) == someone("张三")

    hand_over(chain, person="李四", effective_at=at(days=10))
    hand_over(chain, person="王五", effective_at=at(days=20), reason="退休")

    assert chain.person_at("L1", T0) is None
    assert chain.person_at("L1", at(days=1)) == someone("张三")
    assert chain.person_at("L1", at(days=10) - (at(minutes=1) - T0)) == someone("张三")
    assert chain.person_at("L1", at(days=10)) == someone("李四")
    assert chain.person_at("L1", at(days=19)) == someone("李四")
    assert chain.person_at("L1", at(days=20)) == someone("王五")
    assert chain.person_at("L1", at(days=365)) == someone("王五")


def test_person_at_a_handover_effective_before_it_was_recorded() -> None:
    chain = chain_with_link()
    # recorded on day 9 (see hand_over), effective from day 3
    hand_over(chain, person="李四", effective_at=at(days=3))
    assert chain.person_at("L1", at(days=2)) == someone("张三")
    assert chain.person_at("L1", at(days=3)) == someone("李四")


def test_person_at_an_unknown_link_is_not_found() -> None:
    chain = chain_with_link()
    assert_refused(chain, NotFound, lambda: chain.person_at("L2", at(days=5)))


# ----------------------------------------------------------------- revise_duties
def test_revise_duties_replaces_the_duty_list() -> None:
    chain = chain_with_link()
    _, event = record(
        chain,
        "ChainLinkDutiesRevised",
        lambda: chain.revise_duties(
            link_id="L1",
            duties=[" 行业监管 ", "", "推动快递员入会"],
            reason="  年度修订 ",
            actor=SECRETARIAT,
            at=at(days=30),
        ),
    )
    assert chain.links["L1"]["duties"] == ["行业监管", "推动快递员入会"]
    assert chain.links["L1"]["responsible_person"] == someone("张三")
    assert_event(
        event,
        actor=SECRETARIAT,
        at=at(days=30),
        link_id="L1",
        duties=["行业监管", "推动快递员入会"],
        reason="年度修订",
    )


@pytest.mark.parametrize(
    ("link_id", "duties", "reason", "exc"),
    [
        ("L2", ["职责"], "修订", NotFound),
        ("L1", [], "修订", InvariantViolated),
        ("L1", [" ", ""], "修订", InvariantViolated),
        ("L1", ["职责"], "", InvariantViolated),
        ("L1", ["职责"], "  ", InvariantViolated),
    ],
)
def test_revise_duties_refusals(
    link_id: str, duties: list[str], reason: str, exc: type[InvariantViolated]
) -> None:
    chain = chain_with_link()
    assert_refused(
        chain,
        exc,
        lambda: chain.revise_duties(
            link_id=link_id, duties=duties, reason=reason, actor=SECRETARIAT, at=at(days=30)
        ),
    )


@pytest.mark.parametrize("actor", [liaison("postal"), AUDITOR])
def test_only_the_secretariat_revises_duties(actor: Actor) -> None:
    chain = chain_with_link()
    assert_refused(
        chain,
        NotPermitted,
        lambda: chain.revise_duties(
            link_id="L1", duties=["职责"], reason="修订", actor=actor, at=at(days=30)
        ),
    )


# ------------------------------------------------------------------------ replay
def test_chain_replays_to_the_same_state() -> None:
    chain = chain_with_link()
    chain.add_link(
        unit="town-a",
        role=LinkRole.TERRITORIAL,
        responsible_person=someone("王五"),
        duties=["属地管理"],
        actor=SECRETARIAT,
        at=at(days=2),
    )
    hand_over(chain, person="李四", effective_at=at(days=10))
    chain.revise_duties(
        link_id="L2", duties=["属地管理", "驿站建设"], reason="修订", actor=SECRETARIAT, at=at(11)
    )
    hand_over(chain, person="孙八", effective_at=at(days=12), link_id="L2")

    copy, names = assert_replays(chain)

    assert names == [
        "ChainEstablished",
        "ChainLinkAdded",
        "ChainLinkAdded",
        "ResponsiblePersonHandedOver",
        "ChainLinkDutiesRevised",
        "ResponsiblePersonHandedOver",
    ]
    assert copy.order == ["L1", "L2"]
    assert copy.links["L1"]["responsible_person"] == someone("李四")
    assert copy.links["L2"]["responsible_person"] == someone("孙八")
    assert copy.links["L2"]["duties"] == ["属地管理", "驿站建设"]
    assert copy.person_at("L1", at(days=5)) == someone("张三")
    assert copy.person_at("L1", at(days=10)) == someone("李四")
