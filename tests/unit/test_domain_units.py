"""Unit aggregate: registration (slug, name, kind) and renaming."""

from __future__ import annotations

import pytest

from domain.actor import Actor
from domain.errors import InvariantViolated, NotPermitted
from domain.ids import unit_id
from domain.units import Unit, UnitKind
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
)


def register(
    slug: str = "postal",
    name: str = "邮政管理局",
    kind: UnitKind = UnitKind.DEPARTMENT,
    actor: Actor = SECRETARIAT,
) -> Unit:
    return Unit.register(slug=slug, name=name, kind=kind, actor=actor, at=T0)


def test_register_records_unit_registered() -> None:
    unit = register(name="  邮政管理局 ")

    assert unit.id == unit_id("postal")
    assert unit.slug == "postal"
    assert unit.name == "邮政管理局"
    assert unit.kind is UnitKind.DEPARTMENT
    assert unit.registered_at == T0
    assert unit.version == 1
    event = last_event(unit, "UnitRegistered")
    assert len(unit.pending_events) == 1
    assert_event(
        event, actor=SECRETARIAT, at=T0, slug="postal", name="邮政管理局", kind="department"
    )


def test_register_a_town_from_its_string_kind() -> None:
    unit = Unit.register(
        slug="town-longgang",
        name="龙岗街道",
        kind=UnitKind("town"),
        actor=SECRETARIAT,
        at=T0,
    )
    assert unit.kind is UnitKind.TOWN
    assert unit.id == unit_id("town-longgang")
    assert last_event(unit, "UnitRegistered").kind == "town"


def test_unit_id_is_stable_per_slug() -> None:
    assert register("postal").id == register("postal").id
    assert register("postal").id != register("commerce").id


@pytest.mark.parametrize("slug", ["a", "postal", "town-longgang", "p2", "a1-b2-c3", "a" * 64])
def test_valid_slugs_are_accepted(slug: str) -> None:
    assert register(slug=slug).slug == slug


@pytest.mark.parametrize(
    "slug",
    [
        "",
        "Postal",
        "1postal",
        "postal_office",
        "post al",
        "-postal",
        "postal-",
        "town--a",
        "邮政",
        "a" * 65,
    ],
)
def test_register_refuses_a_bad_slug(slug: str) -> None:
    assert_raises_exactly(InvariantViolated, lambda: register(slug=slug))


@pytest.mark.parametrize("name", ["", "   ", "\t\n"])
def test_register_refuses_a_blank_name(name: str) -> None:
    assert_raises_exactly(InvariantViolated, lambda: register(name=name))


@pytest.mark.parametrize("actor", [liaison("postal"), AUDITOR])
def test_only_the_secretariat_registers_units(actor: Actor) -> None:
    assert_raises_exactly(NotPermitted, lambda: register(actor=actor))


def test_rename_records_unit_renamed() -> None:
    unit = register()
    _, event = record(
        unit,
        "UnitRenamed",
        lambda: unit.rename(
            name=" 区邮政管理局 ", reason="  机构改革 ", actor=SECRETARIAT, at=at(days=1)
        ),
    )
    assert unit.name == "区邮政管理局"
    assert unit.slug == "postal"
    assert unit.kind is UnitKind.DEPARTMENT
    assert unit.version == 2
    assert_event(event, actor=SECRETARIAT, at=at(days=1), name="区邮政管理局", reason="机构改革")


@pytest.mark.parametrize("actor", [liaison("postal"), AUDITOR])
def test_only_the_secretariat_renames_units(actor: Actor) -> None:
    unit = register()
    assert_refused(
        unit,
        NotPermitted,
        lambda: unit.rename(name="新名称", reason="改名", actor=actor, at=at(days=1)),
    )


@pytest.mark.parametrize("name", ["", "  "])
def test_rename_refuses_a_blank_name(name: str) -> None:
    unit = register()
    assert_refused(
        unit,
        InvariantViolated,
        lambda: unit.rename(name=name, reason="改名", actor=SECRETARIAT, at=at(days=1)),
    )


@pytest.mark.parametrize("reason", ["", "   "])
def test_rename_needs_a_reason(reason: str) -> None:
    unit = register()
    assert_refused(
        unit,
        InvariantViolated,
        lambda: unit.rename(name="新名称", reason=reason, actor=SECRETARIAT, at=at(days=1)),
    )


def test_unit_replays_to_the_same_state() -> None:
    unit = register()
    unit.rename(name="区邮政管理局", reason="机构改革", actor=SECRETARIAT, at=at(days=1))
    unit.rename(name="邮政局", reason="简称", actor=SECRETARIAT, at=at(days=2))

    copy, names = assert_replays(unit)

    assert names == ["UnitRegistered", "UnitRenamed", "UnitRenamed"]
    assert copy.name == "邮政局"
    assert copy.kind is UnitKind.DEPARTMENT
    assert copy.registered_at == T0
