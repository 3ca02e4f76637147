"""Person values (个人信息) and the erasure record."""

from __future__ import annotations

import pytest

from domain.actor import Actor
from domain.errors import InvariantViolated, NotPermitted
from domain.persons import ERASED, Person, PersonErasure, erasure_id, is_person_id
from tests.unit.domain_helpers import AUDITOR, SECRETARIAT, T0, assert_replays, liaison


def test_a_new_person_gets_a_random_id_and_clean_fields() -> None:
    first = Person.new("  张三 ", " 138-0013 8000 ")
    second = Person.new("张三")
    assert first.name == "张三" and first.phone == "13800138000"
    assert second.phone is None
    assert first.id != second.id
    assert is_person_id(first.id) and first.id.startswith("p-")
    assert Person.new("李四", "+8613800138000", person_id=first.id).id == first.id


@pytest.mark.parametrize(
    ("name", "phone", "person_id"),
    [
        ("", None, None),
        ("   ", None, None),
        ("x" * 201, None, None),
        ("张三", "12ab5", None),
        ("张三", "1234", None),
        ("张三", "1" * 21, None),
        ("张三", None, "p-xyz"),
        ("张三", None, "P-0123456789abcdef"),
    ],
)
def test_a_person_needs_a_name_and_valid_fields(
    name: str, phone: str | None, person_id: str | None
) -> None:
    with pytest.raises(InvariantViolated):
        Person.new(name, phone, person_id=person_id)


def test_persons_are_the_same_by_id_or_by_plain_value() -> None:
    zhang = Person.new("张三", "13800138000")
    assert zhang.same_as(Person(zhang.id, "张三（改名）"))
    assert zhang.same_as(Person.new("张三", "13800138000"))
    assert not zhang.same_as(Person.new("张三", "13900139000"))  # a namesake
    assert not zhang.same_as(None)
    assert zhang.same_as("张三") and not zhang.same_as("李四")  # a name stored in clear
    marker = Person.erased_marker(zhang.id)
    assert marker.same_as(zhang)  # still the same id
    assert not Person.erased_marker("p-" + "0" * 32).same_as(Person.erased_marker("p-" + "1" * 32))


def test_the_erased_marker_holds_no_personal_data() -> None:
    marker = Person.erased_marker("p-" + "a" * 32)
    assert marker.as_dict() == {
        "person_id": "p-" + "a" * 32,
        "name": ERASED,
        "phone": None,
        "erased": True,
    }


def test_an_erasure_records_who_why_and_when_and_nothing_personal() -> None:
    pid = "p-" + "b" * 32
    erasure = PersonErasure.erase(person_id=pid, reason=" 本人申请 ", actor=SECRETARIAT, at=T0)
    assert erasure.id == erasure_id(pid)
    assert (erasure.person_id, erasure.reason, erasure.erased_at) == (pid, "本人申请", T0)
    event = erasure.collect_events()[0]
    assert type(event).__name__ == "PersonErased"
    assert set(vars(event)) == {
        "originator_id",
        "originator_version",
        "originator_topic",
        "timestamp",
        "person_id",
        "reason",
        "actor",
        "at",
    }
    again = PersonErasure.erase(person_id=pid, reason="x", actor=SECRETARIAT, at=T0)
    copy, names = assert_replays(again)
    assert names == ["PersonErased"] and copy.person_id == pid


@pytest.mark.parametrize("actor", [liaison("postal"), AUDITOR])
def test_only_the_secretariat_erases(actor: Actor) -> None:
    with pytest.raises(NotPermitted):
        PersonErasure.erase(person_id="p-" + "c" * 32, reason="x", actor=actor, at=T0)


@pytest.mark.parametrize(("person_id", "reason"), [("nobody", "x"), ("p-" + "d" * 32, " ")])
def test_an_erasure_needs_a_person_id_and_a_reason(person_id: str, reason: str) -> None:
    with pytest.raises(InvariantViolated):
        PersonErasure.erase(person_id=person_id, reason=reason, actor=SECRETARIAT, at=T0)
