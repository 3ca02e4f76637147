"""JointMeeting aggregate: convened, attendance recorded, resolutions adopted, closed."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from domain.actor import Actor
from domain.errors import InvalidState, InvariantViolated, NotFound, NotPermitted
from domain.meetings import JointMeeting
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
)

HELD_AT = at(days=3)


def convene(title: str = "第一次联席会议", actor: Actor = SECRETARIAT) -> JointMeeting:
    return JointMeeting.convene(title=title, held_at=HELD_AT, actor=actor, at=T0)


def test_convene_records_meeting_convened() -> None:
    meeting = convene(title="  第一次联席会议 ")

    assert meeting.title == "第一次联席会议"
    assert meeting.held_at == HELD_AT
    assert meeting.convened_at == T0
    assert meeting.attendance == []
    assert meeting.resolutions == {}
    assert meeting.closed_at is None
    assert meeting.is_closed is False
    assert meeting.version == 1
    assert len(meeting.pending_events) == 1
    assert_event(
        last_event(meeting, "MeetingConvened"),
        actor=SECRETARIAT,
        at=T0,
        title="第一次联席会议",
        held_at=HELD_AT,
    )


def test_meetings_get_distinct_ids() -> None:
    assert convene().id != convene().id


@pytest.mark.parametrize("actor", [liaison("postal"), AUDITOR])
def test_only_the_secretariat_convenes(actor: Actor) -> None:
    assert_raises_exactly(NotPermitted, lambda: convene(actor=actor))


def test_convene_refuses_a_naive_held_at() -> None:
    assert_raises_exactly(
        InvariantViolated,
        lambda: JointMeeting.convene(
            title="会议", held_at=naive(HELD_AT), actor=SECRETARIAT, at=T0
        ),
    )


@pytest.mark.parametrize("title", ["", "   "])
def test_convene_refuses_a_blank_title(title: str) -> None:
    assert_raises_exactly(InvariantViolated, lambda: convene(title=title))


def test_record_attendance_ignores_duplicates_and_known_units() -> None:
    meeting = convene()
    _, first = record(
        meeting,
        "AttendanceRecorded",
        lambda: meeting.record_attendance(
            units=["postal", "commerce", "postal"], actor=SECRETARIAT, at=at(days=3)
        ),
    )
    assert meeting.attendance == ["postal", "commerce"]
    assert_event(first, actor=SECRETARIAT, at=at(days=3), units=["postal", "commerce"])

    _, second = record(
        meeting,
        "AttendanceRecorded",
        lambda: meeting.record_attendance(
            units=["commerce", "town-a", "market"], actor=SECRETARIAT, at=at(days=3, hours=1)
        ),
    )
    assert meeting.attendance == ["postal", "commerce", "town-a", "market"]
    assert_event(second, actor=SECRETARIAT, at=at(days=3, hours=1), units=["town-a", "market"])


@pytest.mark.parametrize("units", [["postal"], ["postal", "postal"], []])
def test_record_attendance_refuses_when_nothing_is_new(units: list[str]) -> None:
    meeting = convene()
    meeting.record_attendance(units=["postal"], actor=SECRETARIAT, at=at(days=3))
    assert_refused(
        meeting,
        InvariantViolated,
        lambda: meeting.record_attendance(units=units, actor=SECRETARIAT, at=at(days=3)),
    )


def test_adopt_resolution_numbers_resolutions() -> None:
    meeting = convene()
    first_id, first = record(
        meeting,
        "ResolutionAdopted",
        lambda: meeting.adopt_resolution(text="  建设骑手驿站 ", actor=SECRETARIAT, at=at(days=3)),
    )
    second_id, second = record(
        meeting,
        "ResolutionAdopted",
        lambda: meeting.adopt_resolution(text="开展快递员关爱行动", actor=SECRETARIAT, at=at(4)),
    )

    assert first_id == "R1"
    assert second_id == "R2"
    assert meeting.resolutions == {"R1": "建设骑手驿站", "R2": "开展快递员关爱行动"}
    assert_event(first, actor=SECRETARIAT, at=at(days=3), resolution_id="R1", text="建设骑手驿站")
    assert_event(second, actor=SECRETARIAT, at=at(4), resolution_id="R2", text="开展快递员关爱行动")


@pytest.mark.parametrize("text", ["", "  "])
def test_adopt_resolution_needs_text(text: str) -> None:
    meeting = convene()
    assert_refused(
        meeting,
        InvariantViolated,
        lambda: meeting.adopt_resolution(text=text, actor=SECRETARIAT, at=at(days=3)),
    )


def test_require_resolution() -> None:
    meeting = convene()
    meeting.adopt_resolution(text="建设骑手驿站", actor=SECRETARIAT, at=at(days=3))
    meeting.require_resolution("R1")
    assert_refused(meeting, NotFound, lambda: meeting.require_resolution("R2"))


def test_close_records_meeting_closed() -> None:
    meeting = convene()
    _, event = record(
        meeting, "MeetingClosed", lambda: meeting.close(actor=SECRETARIAT, at=at(days=3, hours=2))
    )
    assert meeting.closed_at == at(days=3, hours=2)
    assert meeting.is_closed is True
    assert_event(event, actor=SECRETARIAT, at=at(days=3, hours=2))


def _meeting_commands(actor: Actor) -> dict[str, Callable[[JointMeeting], object]]:
    return {
        "record_attendance": lambda m: m.record_attendance(
            units=["market"], actor=actor, at=at(days=5)
        ),
        "adopt_resolution": lambda m: m.adopt_resolution(text="新决议", actor=actor, at=at(5)),
        "close": lambda m: m.close(actor=actor, at=at(days=5)),
    }


@pytest.mark.parametrize("command", sorted(_meeting_commands(SECRETARIAT)))
@pytest.mark.parametrize("actor", [liaison("postal"), AUDITOR])
def test_only_the_secretariat_runs_a_meeting(command: str, actor: Actor) -> None:
    meeting = convene()
    fn = _meeting_commands(actor)[command]
    assert_refused(meeting, NotPermitted, lambda: fn(meeting))


@pytest.mark.parametrize("command", sorted(_meeting_commands(SECRETARIAT)))
def test_a_closed_meeting_refuses_every_command(command: str) -> None:
    meeting = convene()
    meeting.close(actor=SECRETARIAT, at=at(days=4))
    fn = _meeting_commands(SECRETARIAT)[command]
    assert_refused(meeting, InvalidState, lambda: fn(meeting))


def test_meeting_replays_to_the_same_state() -> None:
    meeting = convene()
    meeting.record_attendance(units=["postal", "commerce"], actor=SECRETARIAT, at=at(days=3))
    meeting.adopt_resolution(text="建设骑手驿站", actor=SECRETARIAT, at=at(days=3, hours=1))
    meeting.record_attendance(units=["town-a"], actor=SECRETARIAT, at=at(days=3, hours=2))
    meeting.adopt_resolution(text="开展关爱行动", actor=SECRETARIAT, at=at(days=3, hours=3))
    meeting.close(actor=SECRETARIAT, at=at(days=3, hours=4))

    copy, names = assert_replays(meeting)

    assert names == [
        "MeetingConvened",
        "AttendanceRecorded",
        "ResolutionAdopted",
        "AttendanceRecorded",
        "ResolutionAdopted",
        "MeetingClosed",
    ]
    assert copy.attendance == ["postal", "commerce", "town-a"]
    assert copy.resolutions == {"R1": "建设骑手驿站", "R2": "开展关爱行动"}
    assert copy.closed_at == at(days=3, hours=4)
