"""SupervisedTask aggregate: every lifecycle step, invariant and permission rule."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest

from domain.actor import SYSTEM, Actor
from domain.errors import (
    DomainError,
    InvalidState,
    InvariantViolated,
    NotFound,
    NotPermitted,
)
from domain.tasks import MAX_WEIGHT, Capacity, SupervisedTask, TaskState
from tests.unit.domain_helpers import (
    AUDITOR,
    LIAISON_WITHOUT_UNIT,
    SECRETARIAT,
    T0,
    assert_event,
    assert_raises_exactly,
    assert_refused,
    assert_replays,
    assert_unchanged,
    at,
    last_event,
    liaison,
    naive,
    record,
    replay,
    snapshot,
)

LEAD = "commerce"  # 商务局 leads the food-delivery task
CO = "market"  # 市场监管局
CO2 = "postal"  # 邮政管理局
TOWN = "town-a"
TOWN2 = "park"
OUTSIDER = "transport"  # 交通运输局, not involved
DEADLINE = at(days=30)

L_LEAD = liaison(LEAD)
L_CO = liaison(CO)
L_CO2 = liaison(CO2)
L_TOWN = liaison(TOWN)
L_TOWN2 = liaison(TOWN2)
L_OUTSIDER = liaison(OUTSIDER)
MICROSECOND = timedelta(microseconds=1)


def issue(**overrides: Any) -> SupervisedTask:
    kwargs: dict[str, Any] = {
        "title": "建设外卖骑手暖心驿站",
        "industry": "food-delivery",
        "lead_unit": LEAD,
        "co_units": [CO, CO2],
        "towns": [TOWN, TOWN2],
        "deadline": DEADLINE,
        "weight": 5,
        "meeting_id": "meeting-1",
        "resolution_id": "R1",
        "actor": SECRETARIAT,
        "at": T0,
    }
    kwargs.update(overrides)
    return SupervisedTask.issue(**kwargs)


def signed(*units: str) -> SupervisedTask:
    """An issued task the given units have signed for, in order, on day 1."""
    task = issue()
    for n, unit in enumerate(units):
        task.sign_for(actor=liaison(unit), at=at(days=1, minutes=n))
    return task


def in_progress() -> SupervisedTask:
    task = signed(LEAD, CO, TOWN)
    task.report_progress(note="选址完成", percent=30, actor=L_LEAD, at=at(days=2))
    return task


def reported(task: SupervisedTask | None = None) -> SupervisedTask:
    task = in_progress() if task is None else task
    task.report_completion(note="驿站已建成", actor=L_LEAD, at=at(days=10))
    return task


def with_pending_extension() -> SupervisedTask:
    task = signed(LEAD)
    task.request_extension(new_deadline=at(days=45), reason="选址困难", actor=L_LEAD, at=at(days=5))
    return task


def verified(*, pending_extension: bool = False) -> SupervisedTask:
    task = in_progress()
    if pending_extension:
        task.request_extension(
            new_deadline=at(days=45), reason="选址困难", actor=L_LEAD, at=at(days=5)
        )
    reported(task)
    task.verify(note="验收合格", actor=SECRETARIAT, at=at(days=12))
    assert state(task) is TaskState.VERIFIED
    return task


def state(task: SupervisedTask) -> TaskState:
    """The task's state, read through a call so mypy does not keep an earlier narrowing."""
    return task.state


def state_of(task: SupervisedTask) -> dict[str, Any]:
    """The task's attributes without its pending events, deep-copied."""
    state = copy.deepcopy(vars(task))
    del state["_pending_events"]
    return state


# ======================================================================== issue
def test_issue_records_task_issued() -> None:
    task = issue(title="  建设外卖骑手暖心驿站 ", description="每个街道至少一处")

    assert task.title == "建设外卖骑手暖心驿站"
    assert task.description == "每个街道至少一处"
    assert task.industry == "food-delivery"
    assert task.lead_unit == LEAD
    assert task.co_units == [CO, CO2]
    assert task.towns == [TOWN, TOWN2]
    assert task.deadline == DEADLINE
    assert task.weight == 5.0
    assert type(task.weight) is float
    assert task.meeting_id == "meeting-1"
    assert task.resolution_id == "R1"
    assert task.issued_at == T0
    assert state(task) is TaskState.ISSUED
    assert task.overdue is False
    assert task.overdue_since is None
    assert task.signatures == {}
    assert task.extension_requests == {}
    assert task.urge_count == 0
    assert task.completion_reported_at is None
    assert task.verified_at is None
    assert task.version == 1
    assert len(task.pending_events) == 1
    assert_event(
        last_event(task, "TaskIssued"),
        actor=SECRETARIAT,
        at=T0,
        title="建设外卖骑手暖心驿站",
        description="每个街道至少一处",
        industry="food-delivery",
        lead_unit=LEAD,
        co_units=[CO, CO2],
        towns=[TOWN, TOWN2],
        deadline=DEADLINE,
        weight=5.0,
        meeting_id="meeting-1",
        resolution_id="R1",
    )


def test_issue_queries() -> None:
    task = issue()
    assert task.units == [LEAD, CO, CO2, TOWN, TOWN2]
    assert task.capacity_of(LEAD) is Capacity.LEAD
    assert task.capacity_of(CO) is Capacity.CO_UNIT
    assert task.capacity_of(TOWN2) is Capacity.TOWN
    assert task.capacity_of(OUTSIDER) is None
    assert task.capacity_of(None) is None
    assert task.involves(CO2) is True
    assert task.involves(OUTSIDER) is False
    assert task.is_verified is False
    assert task.pending_extension is None


def test_issue_without_meeting_and_default_description() -> None:
    task = issue(meeting_id=None, resolution_id=None, co_units=[], towns=[])
    assert task.meeting_id is None
    assert task.resolution_id is None
    assert task.description == ""
    assert task.units == [LEAD]
    task2 = issue(meeting_id="meeting-1", resolution_id=None)
    assert task2.meeting_id == "meeting-1"


def test_issue_copies_the_lists_it_is_given() -> None:
    co_units = [CO]
    towns = [TOWN]
    task = issue(co_units=co_units, towns=towns)
    co_units.append(LEAD)
    towns.append(OUTSIDER)
    assert task.co_units == [CO]
    assert task.towns == [TOWN]


def test_tasks_get_distinct_ids() -> None:
    assert issue().id != issue().id


@pytest.mark.parametrize("actor", [L_LEAD, L_OUTSIDER, AUDITOR])
def test_only_the_secretariat_issues(actor: Actor) -> None:
    assert_raises_exactly(NotPermitted, lambda: issue(actor=actor))


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"deadline": naive(DEADLINE)}, id="naive-deadline"),
        pytest.param({"deadline": T0}, id="deadline-equals-at"),
        pytest.param({"deadline": T0 - MICROSECOND}, id="deadline-before-at"),
        pytest.param({"title": ""}, id="empty-title"),
        pytest.param({"title": "   "}, id="blank-title"),
        pytest.param({"industry": "Food Delivery"}, id="industry-not-slug"),
        pytest.param({"industry": ""}, id="industry-empty"),
        pytest.param({"co_units": [CO, LEAD]}, id="lead-is-co-unit"),
        pytest.param({"co_units": [CO, CO]}, id="co-unit-twice"),
        pytest.param({"towns": [TOWN, TOWN]}, id="town-twice"),
        pytest.param({"towns": [TOWN, LEAD]}, id="lead-is-town"),
        pytest.param({"co_units": [CO], "towns": [CO]}, id="co-unit-and-town"),
        pytest.param({"weight": 0}, id="weight-0"),
        pytest.param({"weight": -1}, id="weight-negative"),
        pytest.param({"weight": MAX_WEIGHT + 0.0001}, id="weight-above-max"),
        pytest.param({"weight": math.nan}, id="weight-nan"),
        pytest.param({"weight": math.inf}, id="weight-inf"),
        pytest.param({"meeting_id": None, "resolution_id": "R1"}, id="resolution-without-meeting"),
    ],
)
def test_issue_refuses_content_that_breaks_a_rule(overrides: dict[str, Any]) -> None:
    assert_raises_exactly(InvariantViolated, lambda: issue(**overrides))


@pytest.mark.parametrize("weight", [0.001, 1, 50.5, MAX_WEIGHT])
def test_issue_accepts_weights_in_bounds(weight: float) -> None:
    assert MAX_WEIGHT == 100.0
    assert issue(weight=weight).weight == float(weight)


def test_issue_accepts_a_deadline_just_after_at() -> None:
    assert issue(deadline=T0 + MICROSECOND).deadline == T0 + MICROSECOND


# ================================================================ the commands
@dataclass(frozen=True)
class Command:
    """A task command, a task on which it succeeds for ``rightful``, and its event."""

    prepare: Callable[[], SupervisedTask]
    call: Callable[[SupervisedTask, Actor], object]
    rightful: Actor
    event: str


COMMANDS: dict[str, Command] = {
    "sign_for": Command(
        issue, lambda t, a: t.sign_for(actor=a, at=at(days=1)), L_LEAD, "TaskSignedFor"
    ),
    "report_progress": Command(
        lambda: signed(LEAD),
        lambda t, a: t.report_progress(note="进展", percent=10, actor=a, at=at(days=2)),
        L_LEAD,
        "TaskProgressReported",
    ),
    "report_contribution": Command(
        lambda: signed(LEAD, CO),
        lambda t, a: t.report_contribution(note="配合检查", actor=a, at=at(days=2)),
        L_CO,
        "TaskContributionReported",
    ),
    "report_completion": Command(
        lambda: signed(LEAD),
        lambda t, a: t.report_completion(note="完成", actor=a, at=at(days=2)),
        L_LEAD,
        "TaskCompletionReported",
    ),
    "request_extension": Command(
        issue,
        lambda t, a: t.request_extension(
            new_deadline=at(days=40), reason="延期理由", actor=a, at=at(days=2)
        ),
        L_LEAD,
        "TaskExtensionRequested",
    ),
    "grant_extension": Command(
        with_pending_extension,
        lambda t, a: t.grant_extension(request_id="E1", note="同意", actor=a, at=at(days=6)),
        SECRETARIAT,
        "TaskExtensionGranted",
    ),
    "deny_extension": Command(
        with_pending_extension,
        lambda t, a: t.deny_extension(request_id="E1", reason="理由不足", actor=a, at=at(6)),
        SECRETARIAT,
        "TaskExtensionDenied",
    ),
    "verify": Command(
        reported,
        lambda t, a: t.verify(note="合格", actor=a, at=at(days=12)),
        SECRETARIAT,
        "TaskVerified",
    ),
    "return_for_rework": Command(
        reported,
        lambda t, a: t.return_for_rework(reason="材料不全", actor=a, at=at(days=12)),
        SECRETARIAT,
        "TaskReturned",
    ),
    "urge": Command(
        issue, lambda t, a: t.urge(note="请抓紧", actor=a, at=at(days=3)), SECRETARIAT, "TaskUrged"
    ),
    "transfer_lead": Command(
        lambda: signed(LEAD),
        lambda t, a: t.transfer_lead(new_lead=CO, reason="职能调整", actor=a, at=at(days=3)),
        SECRETARIAT,
        "TaskLeadTransferred",
    ),
    "add_co_unit": Command(
        issue,
        lambda t, a: t.add_co_unit(unit=OUTSIDER, actor=a, at=at(days=3)),
        SECRETARIAT,
        "TaskCoUnitAdded",
    ),
    "remove_co_unit": Command(
        issue,
        lambda t, a: t.remove_co_unit(unit=CO2, reason="不再涉及", actor=a, at=at(days=3)),
        SECRETARIAT,
        "TaskCoUnitRemoved",
    ),
    "add_town": Command(
        issue,
        lambda t, a: t.add_town(unit="town-b", actor=a, at=at(days=3)),
        SECRETARIAT,
        "TaskTownAdded",
    ),
    "remove_town": Command(
        issue,
        lambda t, a: t.remove_town(unit=TOWN2, reason="不涉及该园区", actor=a, at=at(days=3)),
        SECRETARIAT,
        "TaskTownRemoved",
    ),
}
LIAISON_COMMANDS = sorted(n for n, c in COMMANDS.items() if c.rightful != SECRETARIAT)
SECRETARIAT_COMMANDS = sorted(n for n, c in COMMANDS.items() if c.rightful == SECRETARIAT)


def test_the_command_table_covers_every_public_command() -> None:
    public = {
        name
        for name, value in vars(SupervisedTask).items()
        if callable(value) and not name.startswith("_") and name[0].islower()
    }
    queries = {"capacity_of", "involves", "is_due_for_overdue", "create_id", "issue"}
    assert public - queries == {*COMMANDS, "mark_overdue"}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_succeeds_for_its_rightful_actor(name: str) -> None:
    command = COMMANDS[name]
    task = command.prepare()
    _, event = record(task, command.event, lambda: command.call(task, command.rightful))
    assert event.actor == command.rightful


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_an_auditor_can_do_nothing(name: str) -> None:
    command = COMMANDS[name]
    task = command.prepare()
    assert_refused(task, NotPermitted, lambda: command.call(task, AUDITOR))


@pytest.mark.parametrize("name", SECRETARIAT_COMMANDS)
@pytest.mark.parametrize("actor", [L_LEAD, L_CO, L_TOWN, L_OUTSIDER], ids=lambda a: a.unit)
def test_only_the_secretariat_decides(name: str, actor: Actor) -> None:
    command = COMMANDS[name]
    task = command.prepare()
    error = assert_refused(task, NotPermitted, lambda: command.call(task, actor))
    assert "only the secretariat" in str(error)


@pytest.mark.parametrize("name", LIAISON_COMMANDS)
@pytest.mark.parametrize(
    "actor",
    [SECRETARIAT, L_OUTSIDER, LIAISON_WITHOUT_UNIT],
    ids=["secretariat", "outsider", "none"],
)
def test_liaison_steps_are_for_liaisons_of_the_task(name: str, actor: Actor) -> None:
    command = COMMANDS[name]
    task = command.prepare()
    assert_refused(task, NotPermitted, lambda: command.call(task, actor))


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_nothing_changes_a_verified_task(name: str) -> None:
    command = COMMANDS[name]
    task = verified(pending_extension=name in {"grant_extension", "deny_extension"})
    # the unsigned town could sign, were the task not verified
    actor = L_TOWN2 if name == "sign_for" else command.rightful
    error = assert_refused(task, InvalidState, lambda: command.call(task, actor))
    assert "verified" in str(error)


def test_a_verified_task_does_not_become_overdue() -> None:
    task = verified()
    before = snapshot(task)
    assert task.is_due_for_overdue(at(days=31)) is False
    assert task.mark_overdue(actor=SYSTEM, at=at(days=31)) is False
    assert_unchanged(task, before)


# ====================================================================== sign_for
def test_the_leads_signature_moves_the_task_to_signed() -> None:
    task = issue()
    _, event = record(task, "TaskSignedFor", lambda: task.sign_for(actor=L_LEAD, at=at(1)))
    assert state(task) is TaskState.SIGNED
    assert task.signatures == {LEAD: at(1)}
    assert_event(event, actor=L_LEAD, at=at(1), unit=LEAD)


@pytest.mark.parametrize("actor", [L_CO, L_CO2, L_TOWN, L_TOWN2], ids=lambda a: a.unit)
def test_co_units_and_towns_sign_without_moving_the_state(actor: Actor) -> None:
    task = issue()
    _, event = record(task, "TaskSignedFor", lambda: task.sign_for(actor=actor, at=at(1)))
    assert state(task) is TaskState.ISSUED
    assert task.signatures == {actor.unit: at(1)}
    assert_event(event, actor=actor, at=at(1), unit=actor.unit)


def test_the_lead_signing_after_others_moves_the_task_to_signed() -> None:
    task = signed(CO, TOWN)
    assert state(task) is TaskState.ISSUED
    task.sign_for(actor=L_LEAD, at=at(days=2))
    assert state(task) is TaskState.SIGNED
    assert task.signatures == {CO: at(days=1), TOWN: at(days=1, minutes=1), LEAD: at(days=2)}


@pytest.mark.parametrize("unit", [LEAD, CO, TOWN])
def test_a_unit_signs_once(unit: str) -> None:
    task = signed(unit)
    assert_refused(task, InvalidState, lambda: task.sign_for(actor=liaison(unit), at=at(2)))


# =============================================================== report_progress
def test_the_leads_progress_puts_the_task_in_progress() -> None:
    task = signed(LEAD)
    _, event = record(
        task,
        "TaskProgressReported",
        lambda: task.report_progress(note="  选址完成 ", percent=30, actor=L_LEAD, at=at(2)),
    )
    assert state(task) is TaskState.IN_PROGRESS
    assert_event(event, actor=L_LEAD, at=at(2), unit=LEAD, note="选址完成", percent=30)


@pytest.mark.parametrize("unit", [CO, TOWN])
def test_others_progress_leaves_the_state(unit: str) -> None:
    task = signed(LEAD, unit)
    _, event = record(
        task,
        "TaskProgressReported",
        lambda: task.report_progress(note="配合", percent=None, actor=liaison(unit), at=at(2)),
    )
    assert state(task) is TaskState.SIGNED
    assert_event(event, actor=liaison(unit), at=at(2), unit=unit, note="配合", percent=None)


@pytest.mark.parametrize("percent", [None, 0, 100])
def test_progress_percent_in_bounds(percent: int | None) -> None:
    task = signed(LEAD)
    task.report_progress(note="进展", percent=percent, actor=L_LEAD, at=at(2))
    assert last_event(task, "TaskProgressReported").percent == percent


@pytest.mark.parametrize("percent", [-1, 101])
def test_progress_percent_out_of_bounds(percent: int) -> None:
    task = signed(LEAD)
    assert_refused(
        task,
        InvariantViolated,
        lambda: task.report_progress(note="进展", percent=percent, actor=L_LEAD, at=at(2)),
    )


@pytest.mark.parametrize("note", ["", "  "])
def test_progress_needs_a_note(note: str) -> None:
    task = signed(LEAD)
    assert_refused(
        task,
        InvariantViolated,
        lambda: task.report_progress(note=note, percent=10, actor=L_LEAD, at=at(2)),
    )


@pytest.mark.parametrize("unit", [LEAD, CO, TOWN])
def test_progress_requires_the_units_own_signature(unit: str) -> None:
    # every other unit has signed, the reporting one has not
    task = signed(*[u for u in (LEAD, CO, CO2, TOWN, TOWN2) if u != unit])
    error = assert_refused(
        task,
        InvalidState,
        lambda: task.report_progress(note="进展", percent=10, actor=liaison(unit), at=at(2)),
    )
    assert "has not signed" in str(error)


@pytest.mark.parametrize("unit", [LEAD, CO])
def test_completion_reported_blocks_progress(unit: str) -> None:
    task = reported()
    assert state(task) is TaskState.COMPLETION_REPORTED
    assert_refused(
        task,
        InvalidState,
        lambda: task.report_progress(note="进展", percent=10, actor=liaison(unit), at=at(11)),
    )


# =========================================================== report_contribution
@pytest.mark.parametrize("unit", [CO, TOWN])
def test_co_units_and_towns_report_contributions(unit: str) -> None:
    task = signed(LEAD, unit)
    _, event = record(
        task,
        "TaskContributionReported",
        lambda: task.report_contribution(note=" 联合检查 ", actor=liaison(unit), at=at(3)),
    )
    assert state(task) is TaskState.SIGNED
    assert_event(event, actor=liaison(unit), at=at(3), unit=unit, note="联合检查")


def test_the_lead_reports_no_contribution() -> None:
    task = signed(LEAD)
    error = assert_refused(
        task,
        NotPermitted,
        lambda: task.report_contribution(note="贡献", actor=L_LEAD, at=at(3)),
    )
    assert "is lead" in str(error)


def test_a_contribution_requires_the_units_signature() -> None:
    task = signed(LEAD)
    assert_refused(
        task, InvalidState, lambda: task.report_contribution(note="贡献", actor=L_CO, at=at(3))
    )


def test_a_contribution_needs_a_note() -> None:
    task = signed(LEAD, CO)
    assert_refused(
        task, InvariantViolated, lambda: task.report_contribution(note=" ", actor=L_CO, at=at(3))
    )


# ============================================================= report_completion
def test_the_lead_reports_completion() -> None:
    task = in_progress()
    _, event = record(
        task,
        "TaskCompletionReported",
        lambda: task.report_completion(note="  驿站已建成 ", actor=L_LEAD, at=at(10)),
    )
    assert state(task) is TaskState.COMPLETION_REPORTED
    assert task.completion_reported_at == at(10)
    assert_event(event, actor=L_LEAD, at=at(10), unit=LEAD, note="驿站已建成")


def test_completion_may_be_reported_straight_after_signing() -> None:
    task = signed(LEAD)
    task.report_completion(note="完成", actor=L_LEAD, at=at(2))
    assert state(task) is TaskState.COMPLETION_REPORTED


@pytest.mark.parametrize("unit", [CO, CO2, TOWN, TOWN2])
def test_only_the_lead_reports_completion(unit: str) -> None:
    task = signed(LEAD, CO, CO2, TOWN, TOWN2)
    error = assert_refused(
        task,
        NotPermitted,
        lambda: task.report_completion(note="完成", actor=liaison(unit), at=at(2)),
    )
    assert "only the lead" in str(error)


def test_completion_requires_the_leads_signature() -> None:
    task = signed(CO)
    assert_refused(
        task, InvalidState, lambda: task.report_completion(note="完成", actor=L_LEAD, at=at(2))
    )


def test_completion_is_reported_once() -> None:
    task = reported()
    assert_refused(
        task, InvalidState, lambda: task.report_completion(note="完成", actor=L_LEAD, at=at(11))
    )


def test_completion_needs_a_note() -> None:
    task = signed(LEAD)
    assert_refused(
        task,
        InvariantViolated,
        lambda: task.report_completion(note="  ", actor=L_LEAD, at=at(2)),
    )


# ============================================================= request_extension
def test_the_lead_requests_an_extension() -> None:
    task = issue()
    request_id, event = record(
        task,
        "TaskExtensionRequested",
        lambda: task.request_extension(
            new_deadline=at(days=45), reason="  选址困难 ", actor=L_LEAD, at=at(5)
        ),
    )
    assert request_id == "E1"
    assert task.pending_extension == "E1"
    assert task.deadline == DEADLINE
    assert task.extension_requests == {
        "E1": {
            "unit": LEAD,
            "new_deadline": at(days=45),
            "reason": "选址困难",
            "status": "pending",
            "requested_at": at(5),
        }
    }
    assert_event(
        event,
        actor=L_LEAD,
        at=at(5),
        request_id="E1",
        unit=LEAD,
        new_deadline=at(days=45),
        reason="选址困难",
    )


@pytest.mark.parametrize("unit", [CO, TOWN])
def test_only_the_lead_requests_an_extension(unit: str) -> None:
    task = signed(LEAD, unit)
    assert_refused(
        task,
        NotPermitted,
        lambda: task.request_extension(
            new_deadline=at(days=45), reason="理由", actor=liaison(unit), at=at(5)
        ),
    )


@pytest.mark.parametrize(
    ("new_deadline", "reason"),
    [
        pytest.param(naive(at(days=45)), "理由", id="naive"),
        pytest.param(DEADLINE, "理由", id="equal-to-deadline"),
        pytest.param(DEADLINE - MICROSECOND, "理由", id="earlier-than-deadline"),
        pytest.param(at(days=45), "", id="no-reason"),
        pytest.param(at(days=45), "   ", id="blank-reason"),
    ],
)
def test_request_extension_refusals(new_deadline: datetime, reason: str) -> None:
    task = issue()
    assert_refused(
        task,
        InvariantViolated,
        lambda: task.request_extension(
            new_deadline=new_deadline, reason=reason, actor=L_LEAD, at=at(5)
        ),
    )


def test_one_pending_extension_at_a_time() -> None:
    task = with_pending_extension()
    error = assert_refused(
        task,
        InvalidState,
        lambda: task.request_extension(
            new_deadline=at(days=60), reason="再延", actor=L_LEAD, at=at(6)
        ),
    )
    assert "E1" in str(error)


def test_after_a_denial_a_new_request_may_be_made() -> None:
    task = with_pending_extension()
    task.deny_extension(request_id="E1", reason="理由不足", actor=SECRETARIAT, at=at(6))
    assert task.pending_extension is None
    assert (
        task.request_extension(new_deadline=at(days=40), reason="再议", actor=L_LEAD, at=at(7))
        == "E2"
    )
    assert task.pending_extension == "E2"


def test_after_a_grant_a_new_request_is_later_than_the_granted_deadline() -> None:
    task = with_pending_extension()
    task.grant_extension(request_id="E1", note="同意", actor=SECRETARIAT, at=at(6))
    assert task.deadline == at(days=45)
    assert_refused(
        task,
        InvariantViolated,
        lambda: task.request_extension(
            new_deadline=at(days=40), reason="再延", actor=L_LEAD, at=at(7)
        ),
    )
    assert (
        task.request_extension(new_deadline=at(days=50), reason="再延", actor=L_LEAD, at=at(7))
        == "E2"
    )


@pytest.mark.parametrize("new_deadline", [at(days=35), at(days=40)], ids=["past", "now"])
def test_an_extension_asks_for_a_deadline_later_than_now(new_deadline: datetime) -> None:
    task = issue()  # deadline day 30; on day 40 the lead asks for day 35 (or day 40 itself)
    assert_refused(
        task,
        InvariantViolated,
        lambda: task.request_extension(
            new_deadline=new_deadline, reason="补申请", actor=L_LEAD, at=at(days=40)
        ),
    )


def test_an_overdue_lead_may_ask_for_a_deadline_just_after_now() -> None:
    task = issue()
    request_id = task.request_extension(
        new_deadline=at(days=40) + MICROSECOND, reason="补申请", actor=L_LEAD, at=at(days=40)
    )
    assert request_id == "E1"
    assert task.extension_requests["E1"]["new_deadline"] == at(days=40) + MICROSECOND


# ============================================================ grant / deny
def test_grant_extension_moves_the_deadline() -> None:
    task = with_pending_extension()
    _, event = record(
        task,
        "TaskExtensionGranted",
        lambda: task.grant_extension(request_id="E1", note="同意", actor=SECRETARIAT, at=at(6)),
    )
    assert task.deadline == at(days=45)
    assert task.extension_requests["E1"]["status"] == "granted"
    assert task.pending_extension is None
    assert task.overdue is False
    assert state(task) is TaskState.SIGNED
    assert_event(
        event,
        actor=SECRETARIAT,
        at=at(6),
        request_id="E1",
        previous_deadline=DEADLINE,
        new_deadline=at(days=45),
        note="同意",
    )


def test_grant_clears_overdue() -> None:
    task = signed(LEAD)
    task.request_extension(new_deadline=at(days=45), reason="延期", actor=L_LEAD, at=at(29))
    assert task.mark_overdue(actor=SYSTEM, at=at(days=31)) is True
    assert (task.overdue, task.overdue_since) == (True, DEADLINE)
    task.grant_extension(request_id="E1", note="同意", actor=SECRETARIAT, at=at(days=32))
    assert task.overdue is False
    assert task.overdue_since is None
    assert task.deadline == at(days=45)


def test_deny_extension_keeps_the_deadline() -> None:
    task = with_pending_extension()
    _, event = record(
        task,
        "TaskExtensionDenied",
        lambda: task.deny_extension(
            request_id="E1", reason="  理由不足 ", actor=SECRETARIAT, at=at(6)
        ),
    )
    assert task.deadline == DEADLINE
    assert task.extension_requests["E1"]["status"] == "denied"
    assert task.pending_extension is None
    assert_event(event, actor=SECRETARIAT, at=at(6), request_id="E1", reason="理由不足")


@pytest.mark.parametrize("reason", ["", "  "])
def test_deny_needs_a_reason(reason: str) -> None:
    task = with_pending_extension()
    assert_refused(
        task,
        InvariantViolated,
        lambda: task.deny_extension(request_id="E1", reason=reason, actor=SECRETARIAT, at=at(6)),
    )


@pytest.mark.parametrize("decide", ["grant", "deny"])
def test_an_unknown_request_is_not_found(decide: str) -> None:
    task = with_pending_extension()

    def call() -> None:
        if decide == "grant":
            task.grant_extension(request_id="E2", note="同意", actor=SECRETARIAT, at=at(6))
        else:
            task.deny_extension(request_id="E2", reason="不同意", actor=SECRETARIAT, at=at(6))

    assert_refused(task, NotFound, call)


@pytest.mark.parametrize("first", ["grant", "deny"])
@pytest.mark.parametrize("then", ["grant", "deny"])
def test_a_decided_request_is_not_decided_again(first: str, then: str) -> None:
    task = with_pending_extension()

    def decide(how: str) -> None:
        if how == "grant":
            task.grant_extension(request_id="E1", note="同意", actor=SECRETARIAT, at=at(6))
        else:
            task.deny_extension(request_id="E1", reason="不同意", actor=SECRETARIAT, at=at(6))

    decide(first)
    error = assert_refused(task, InvalidState, lambda: decide(then))
    assert ("granted" if first == "grant" else "denied") in str(error)


# ====================================================================== verify
@pytest.mark.parametrize(
    ("when", "on_time"),
    [(at(days=12), True), (DEADLINE, True), (DEADLINE + MICROSECOND, False)],
)
def test_verify_records_whether_it_was_on_time(when: datetime, on_time: bool) -> None:
    task = reported()
    _, event = record(
        task, "TaskVerified", lambda: task.verify(note="验收合格", actor=SECRETARIAT, at=when)
    )
    assert state(task) is TaskState.VERIFIED
    assert task.is_verified is True
    assert task.verified_at == when
    assert_event(event, actor=SECRETARIAT, at=when, note="验收合格", on_time=on_time)


@pytest.mark.parametrize(
    "prepare",
    [issue, lambda: signed(LEAD), in_progress],
    ids=["issued", "signed", "in-progress"],
)
def test_only_a_reported_completion_is_verified(prepare: Callable[[], SupervisedTask]) -> None:
    task = prepare()
    assert_refused(
        task, InvalidState, lambda: task.verify(note="合格", actor=SECRETARIAT, at=at(3))
    )


def test_a_returned_task_is_not_verified() -> None:
    task = reported()
    task.return_for_rework(reason="材料不全", actor=SECRETARIAT, at=at(11))
    assert_refused(
        task, InvalidState, lambda: task.verify(note="合格", actor=SECRETARIAT, at=at(12))
    )


# ========================================================== return_for_rework
def test_return_for_rework_then_rework() -> None:
    task = reported()
    _, event = record(
        task,
        "TaskReturned",
        lambda: task.return_for_rework(reason="  材料不全 ", actor=SECRETARIAT, at=at(11)),
    )
    assert state(task) is TaskState.RETURNED
    assert task.completion_reported_at is None
    assert_event(event, actor=SECRETARIAT, at=at(11), reason="材料不全")

    task.report_progress(note="补充材料", percent=90, actor=L_LEAD, at=at(12))
    assert state(task) is TaskState.IN_PROGRESS
    task.report_completion(note="已补充", actor=L_LEAD, at=at(13))
    assert state(task) is TaskState.COMPLETION_REPORTED
    assert task.completion_reported_at == at(13)
    task.verify(note="合格", actor=SECRETARIAT, at=at(14))
    assert state(task) is TaskState.VERIFIED


def test_a_returned_task_may_report_completion_again_directly() -> None:
    task = reported()
    task.return_for_rework(reason="材料不全", actor=SECRETARIAT, at=at(11))
    task.report_completion(note="已补充", actor=L_LEAD, at=at(12))
    assert state(task) is TaskState.COMPLETION_REPORTED


@pytest.mark.parametrize("reason", ["", "   "])
def test_return_needs_a_reason(reason: str) -> None:
    task = reported()
    assert_refused(
        task,
        InvariantViolated,
        lambda: task.return_for_rework(reason=reason, actor=SECRETARIAT, at=at(11)),
    )


@pytest.mark.parametrize("prepare", [issue, in_progress], ids=["issued", "in-progress"])
def test_only_a_reported_completion_is_returned(prepare: Callable[[], SupervisedTask]) -> None:
    task = prepare()
    assert_refused(
        task,
        InvalidState,
        lambda: task.return_for_rework(reason="材料不全", actor=SECRETARIAT, at=at(11)),
    )


# ======================================================================== urge
def test_urge_presses_the_lead_and_counts() -> None:
    task = signed(LEAD)
    _, event = record(
        task, "TaskUrged", lambda: task.urge(note="请加快进度", actor=SECRETARIAT, at=at(3))
    )
    assert task.urge_count == 1
    assert_event(event, actor=SECRETARIAT, at=at(3), unit=LEAD, note="请加快进度")
    task.urge(note="再次催办", actor=SECRETARIAT, at=at(4))
    assert task.urge_count == 2
    assert state(task) is TaskState.SIGNED


# =============================================================== transfer_lead
def test_transfer_to_an_outsider_puts_the_task_back_to_issued() -> None:
    task = in_progress()
    _, event = record(
        task,
        "TaskLeadTransferred",
        lambda: task.transfer_lead(
            new_lead=OUTSIDER, reason="  职能调整 ", actor=SECRETARIAT, at=at(5)
        ),
    )
    assert task.lead_unit == OUTSIDER
    assert state(task) is TaskState.ISSUED
    assert task.co_units == [CO, CO2]
    assert task.capacity_of(LEAD) is None
    assert task.capacity_of(OUTSIDER) is Capacity.LEAD
    assert LEAD in task.signatures  # history is kept
    assert_event(
        event,
        actor=SECRETARIAT,
        at=at(5),
        previous_lead=LEAD,
        new_lead=OUTSIDER,
        reason="职能调整",
    )
    # the former lead no longer acts on the task, the new one signs anew
    assert_refused(
        task,
        NotPermitted,
        lambda: task.report_progress(note="进展", percent=1, actor=L_LEAD, at=at(6)),
    )
    task.sign_for(actor=L_OUTSIDER, at=at(6))
    assert state(task) is TaskState.SIGNED


def test_transfer_to_a_signed_co_unit_removes_it_from_co_units() -> None:
    task = in_progress()  # LEAD, CO and TOWN signed
    task.transfer_lead(new_lead=CO, reason="职能调整", actor=SECRETARIAT, at=at(5))
    assert task.lead_unit == CO
    assert task.co_units == [CO2]
    assert CO not in task.co_units
    assert state(task) is TaskState.SIGNED
    assert task.capacity_of(CO) is Capacity.LEAD
    task.report_completion(note="完成", actor=L_CO, at=at(6))
    assert state(task) is TaskState.COMPLETION_REPORTED


def test_transfer_to_an_unsigned_co_unit_puts_the_task_back_to_issued() -> None:
    task = in_progress()
    task.transfer_lead(new_lead=CO2, reason="职能调整", actor=SECRETARIAT, at=at(5))
    assert task.lead_unit == CO2
    assert task.co_units == [CO]
    assert state(task) is TaskState.ISSUED


def test_transfer_back_to_a_lead_that_had_signed() -> None:
    task = in_progress()
    task.transfer_lead(new_lead=OUTSIDER, reason="调整", actor=SECRETARIAT, at=at(5))
    task.transfer_lead(new_lead=LEAD, reason="恢复", actor=SECRETARIAT, at=at(6))
    assert task.lead_unit == LEAD
    assert state(task) is TaskState.SIGNED


def test_transfer_of_a_returned_task() -> None:
    task = reported()
    task.return_for_rework(reason="材料不全", actor=SECRETARIAT, at=at(11))
    task.transfer_lead(new_lead=OUTSIDER, reason="调整", actor=SECRETARIAT, at=at(12))
    assert state(task) is TaskState.ISSUED


@pytest.mark.parametrize(
    ("new_lead", "reason"),
    [(LEAD, "调整"), (TOWN, "调整"), (TOWN2, "调整"), (OUTSIDER, ""), (OUTSIDER, "  ")],
)
def test_transfer_refusals(new_lead: str, reason: str) -> None:
    task = in_progress()
    assert_refused(
        task,
        InvariantViolated,
        lambda: task.transfer_lead(new_lead=new_lead, reason=reason, actor=SECRETARIAT, at=at(5)),
    )


def test_completion_reported_blocks_transfer() -> None:
    task = reported()
    assert_refused(
        task,
        InvalidState,
        lambda: task.transfer_lead(new_lead=OUTSIDER, reason="调整", actor=SECRETARIAT, at=at(11)),
    )


# ======================================================== co-units and towns
def test_add_and_remove_co_units() -> None:
    task = issue()
    _, added = record(
        task,
        "TaskCoUnitAdded",
        lambda: task.add_co_unit(unit=OUTSIDER, actor=SECRETARIAT, at=at(3)),
    )
    assert task.co_units == [CO, CO2, OUTSIDER]
    assert_event(added, actor=SECRETARIAT, at=at(3), unit=OUTSIDER)

    _, removed = record(
        task,
        "TaskCoUnitRemoved",
        lambda: task.remove_co_unit(unit=CO, reason="  不再涉及 ", actor=SECRETARIAT, at=at(4)),
    )
    assert task.co_units == [CO2, OUTSIDER]
    assert_event(removed, actor=SECRETARIAT, at=at(4), unit=CO, reason="不再涉及")


@pytest.mark.parametrize("unit", [LEAD, CO, TOWN])
def test_add_co_unit_refuses_the_lead_a_co_unit_or_a_town(unit: str) -> None:
    task = issue()
    assert_refused(
        task, InvariantViolated, lambda: task.add_co_unit(unit=unit, actor=SECRETARIAT, at=at(3))
    )


@pytest.mark.parametrize(("unit", "reason"), [(LEAD, "x"), (TOWN, "x"), (OUTSIDER, "x"), (CO, "")])
def test_remove_co_unit_refusals(unit: str, reason: str) -> None:
    task = issue()
    assert_refused(
        task,
        InvariantViolated,
        lambda: task.remove_co_unit(unit=unit, reason=reason, actor=SECRETARIAT, at=at(3)),
    )


def test_a_removed_co_unit_no_longer_acts() -> None:
    task = signed(LEAD, CO)
    task.remove_co_unit(unit=CO, reason="不再涉及", actor=SECRETARIAT, at=at(3))
    assert task.involves(CO) is False
    assert_refused(
        task, NotPermitted, lambda: task.report_contribution(note="贡献", actor=L_CO, at=at(4))
    )


def test_add_and_remove_towns() -> None:
    task = issue()
    _, added = record(
        task, "TaskTownAdded", lambda: task.add_town(unit="town-b", actor=SECRETARIAT, at=at(3))
    )
    assert task.towns == [TOWN, TOWN2, "town-b"]
    assert_event(added, actor=SECRETARIAT, at=at(3), unit="town-b")

    _, removed = record(
        task,
        "TaskTownRemoved",
        lambda: task.remove_town(unit=TOWN, reason=" 不涉及 ", actor=SECRETARIAT, at=at(4)),
    )
    assert task.towns == [TOWN2, "town-b"]
    assert_event(removed, actor=SECRETARIAT, at=at(4), unit=TOWN, reason="不涉及")


@pytest.mark.parametrize("unit", [LEAD, CO, TOWN])
def test_add_town_refuses_the_lead_a_co_unit_or_a_town(unit: str) -> None:
    task = issue()
    assert_refused(
        task, InvariantViolated, lambda: task.add_town(unit=unit, actor=SECRETARIAT, at=at(3))
    )


@pytest.mark.parametrize(("unit", "reason"), [(LEAD, "x"), (CO, "x"), (OUTSIDER, "x"), (TOWN, " ")])
def test_remove_town_refusals(unit: str, reason: str) -> None:
    task = issue()
    assert_refused(
        task,
        InvariantViolated,
        lambda: task.remove_town(unit=unit, reason=reason, actor=SECRETARIAT, at=at(3)),
    )


# ===================================================================== overdue
@pytest.mark.parametrize("when", [T0, at(days=29), DEADLINE - MICROSECOND])
def test_not_overdue_before_the_deadline(when: datetime) -> None:
    task = signed(LEAD)
    before = snapshot(task)
    assert task.is_due_for_overdue(when) is False
    assert task.mark_overdue(actor=SYSTEM, at=when) is False
    assert_unchanged(task, before)


def test_overdue_is_recorded_once_per_deadline() -> None:
    task = in_progress()
    assert task.is_due_for_overdue(at(days=31)) is True
    result, event = record(
        task, "TaskBecameOverdue", lambda: task.mark_overdue(actor=SYSTEM, at=at(days=31))
    )
    assert result is True
    assert task.overdue is True
    assert task.overdue_since == DEADLINE
    assert state(task) is TaskState.IN_PROGRESS  # overdue is a fact, not a state
    assert_event(event, actor=SYSTEM, at=at(days=31), deadline=DEADLINE)

    before = snapshot(task)
    assert task.is_due_for_overdue(at(days=40)) is False
    assert task.mark_overdue(actor=SYSTEM, at=at(days=40)) is False
    assert_unchanged(task, before)


def test_a_reported_but_unverified_task_becomes_overdue() -> None:
    task = reported()
    assert task.mark_overdue(actor=SYSTEM, at=at(days=31)) is True
    assert task.overdue is True


def test_overdue_again_after_a_granted_extension_passes() -> None:
    task = signed(LEAD)
    assert task.mark_overdue(actor=SYSTEM, at=at(days=31)) is True
    task.request_extension(new_deadline=at(days=45), reason="延期", actor=L_LEAD, at=at(31))
    task.grant_extension(request_id="E1", note="同意", actor=SECRETARIAT, at=at(days=32))
    assert task.overdue is False

    before = snapshot(task)
    assert task.mark_overdue(actor=SYSTEM, at=at(days=45) - MICROSECOND) is False
    assert_unchanged(task, before)

    _, event = record(
        task, "TaskBecameOverdue", lambda: task.mark_overdue(actor=SYSTEM, at=at(days=46))
    )
    assert task.overdue is True
    assert task.overdue_since == at(days=45)
    assert_event(event, actor=SYSTEM, at=at(days=46), deadline=at(days=45))
    assert task.mark_overdue(actor=SYSTEM, at=at(days=47)) is False


def test_an_extension_granted_in_time_prevents_overdue_at_the_old_deadline() -> None:
    task = with_pending_extension()
    task.grant_extension(request_id="E1", note="同意", actor=SECRETARIAT, at=at(6))
    assert task.mark_overdue(actor=SYSTEM, at=at(days=31)) is False
    assert task.overdue is False


def test_a_task_verified_late_does_not_become_overdue_afterwards() -> None:
    task = reported()
    task.verify(note="合格", actor=SECRETARIAT, at=at(days=35))
    assert last_event(task, "TaskVerified").on_time is False
    assert task.mark_overdue(actor=SYSTEM, at=at(days=36)) is False


def test_not_overdue_at_the_very_instant_of_the_deadline() -> None:
    # verify() counts at == deadline as on time, so the deadline has not passed yet
    task = signed(LEAD)
    before = snapshot(task)
    assert task.is_due_for_overdue(DEADLINE) is False
    assert task.mark_overdue(actor=SYSTEM, at=DEADLINE) is False
    assert_unchanged(task, before)
    assert task.is_due_for_overdue(DEADLINE + MICROSECOND) is True
    assert task.mark_overdue(actor=SYSTEM, at=DEADLINE + MICROSECOND) is True
    assert last_event(task, "TaskBecameOverdue").at == DEADLINE + MICROSECOND


@pytest.mark.parametrize(
    "actor", [AUDITOR, L_LEAD, L_OUTSIDER, LIAISON_WITHOUT_UNIT], ids=lambda a: a.principal_id
)
@pytest.mark.parametrize("when", [at(days=31), at(days=1)], ids=["past", "before"])
def test_only_the_system_or_secretariat_records_overdue(actor: Actor, when: datetime) -> None:
    task = signed(LEAD)
    assert_refused(task, NotPermitted, lambda: task.mark_overdue(actor=actor, at=when))


def test_the_secretariat_may_record_overdue_in_its_own_name() -> None:
    task = signed(LEAD)
    _, event = record(
        task, "TaskBecameOverdue", lambda: task.mark_overdue(actor=SECRETARIAT, at=at(days=31))
    )
    assert_event(event, actor=SECRETARIAT, at=at(days=31), deadline=DEADLINE)


# ====================================================================== replay
def test_a_long_history_replays_to_the_same_state_at_every_version() -> None:
    task = issue()
    states = [state_of(task)]

    def step(fn: Callable[[], object]) -> None:
        fn()
        states.append(state_of(task))

    step(lambda: task.sign_for(actor=L_LEAD, at=at(1)))
    step(lambda: task.sign_for(actor=L_CO, at=at(1, hours=1)))
    step(lambda: task.sign_for(actor=L_TOWN, at=at(1, hours=2)))
    step(lambda: task.report_progress(note="选址", percent=20, actor=L_LEAD, at=at(2)))
    step(lambda: task.report_progress(note="配合选址", percent=None, actor=L_CO, at=at(3)))
    step(lambda: task.report_contribution(note="联合检查", actor=L_CO, at=at(4)))
    step(lambda: task.report_contribution(note="提供场地", actor=L_TOWN, at=at(4, hours=1)))
    step(
        lambda: task.request_extension(
            new_deadline=at(45), reason="选址困难", actor=L_LEAD, at=at(5)
        )
    )
    step(lambda: task.deny_extension(request_id="E1", reason="不充分", actor=SECRETARIAT, at=at(6)))
    step(lambda: task.urge(note="请加快", actor=SECRETARIAT, at=at(7)))
    step(lambda: task.add_co_unit(unit=OUTSIDER, actor=SECRETARIAT, at=at(20)))
    step(lambda: task.add_town(unit="town-b", actor=SECRETARIAT, at=at(20, hours=1)))
    step(lambda: task.remove_co_unit(unit=CO2, reason="不涉及", actor=SECRETARIAT, at=at(21)))
    step(lambda: task.remove_town(unit=TOWN2, reason="不涉及", actor=SECRETARIAT, at=at(21, 1)))
    step(
        lambda: task.request_extension(
            new_deadline=at(50), reason="施工延误", actor=L_LEAD, at=at(25)
        )
    )
    step(lambda: task.mark_overdue(actor=SYSTEM, at=at(31)))
    assert task.mark_overdue(actor=SYSTEM, at=at(31, hours=1)) is False
    step(lambda: task.grant_extension(request_id="E2", note="同意", actor=SECRETARIAT, at=at(32)))
    step(lambda: task.transfer_lead(new_lead=CO, reason="职能调整", actor=SECRETARIAT, at=at(33)))
    assert state(task) is TaskState.SIGNED
    step(lambda: task.report_progress(note="接手", percent=60, actor=L_CO, at=at(34)))
    step(lambda: task.report_completion(note="完成", actor=L_CO, at=at(35)))
    step(lambda: task.return_for_rework(reason="台账不全", actor=SECRETARIAT, at=at(36)))
    step(lambda: task.report_progress(note="补台账", percent=95, actor=L_CO, at=at(37)))
    step(lambda: task.urge(note="限期完成", actor=SECRETARIAT, at=at(38)))
    step(lambda: task.mark_overdue(actor=SYSTEM, at=at(51)))
    step(lambda: task.report_completion(note="已补齐", actor=L_CO, at=at(52)))
    step(lambda: task.verify(note="验收合格", actor=SECRETARIAT, at=at(53)))
    assert last_event(task, "TaskVerified").on_time is False

    assert task.lead_unit == CO
    assert task.co_units == [OUTSIDER]
    assert task.towns == [TOWN, "town-b"]
    assert task.deadline == at(50)
    assert (task.overdue, task.overdue_since) == (True, at(50))
    assert state(task) is TaskState.VERIFIED
    assert task.verified_at == at(53)
    assert task.completion_reported_at == at(52)
    assert task.urge_count == 2
    assert {rid: r["status"] for rid, r in task.extension_requests.items()} == {
        "E1": "denied",
        "E2": "granted",
    }
    assert task.signatures == {LEAD: at(1), CO: at(1, hours=1), TOWN: at(1, hours=2)}
    assert task.capacity_of(LEAD) is None

    events = list(task.pending_events)
    copy_, names = assert_replays(task)
    assert names == [
        "TaskIssued",
        "TaskSignedFor",
        "TaskSignedFor",
        "TaskSignedFor",
        "TaskProgressReported",
        "TaskProgressReported",
        "TaskContributionReported",
        "TaskContributionReported",
        "TaskExtensionRequested",
        "TaskExtensionDenied",
        "TaskUrged",
        "TaskCoUnitAdded",
        "TaskTownAdded",
        "TaskCoUnitRemoved",
        "TaskTownRemoved",
        "TaskExtensionRequested",
        "TaskBecameOverdue",
        "TaskExtensionGranted",
        "TaskLeadTransferred",
        "TaskProgressReported",
        "TaskCompletionReported",
        "TaskReturned",
        "TaskProgressReported",
        "TaskUrged",
        "TaskBecameOverdue",
        "TaskCompletionReported",
        "TaskVerified",
    ]
    assert state(copy_) is TaskState.VERIFIED
    assert copy_.co_units == [OUTSIDER]
    assert len(states) == len(events)
    # the state at every version is what the first `version` events rebuild
    for version in range(1, len(events) + 1):
        partial = replay(events[:version])
        assert isinstance(partial, SupervisedTask)
        rebuilt = vars(partial).copy()
        del rebuilt["_pending_events"]
        assert rebuilt == states[version - 1], f"state at version {version}"


def test_replayed_task_refuses_like_the_original() -> None:
    task = verified()
    copy_, _ = assert_replays(task)
    assert isinstance(copy_, SupervisedTask)
    error: DomainError = assert_refused(
        copy_, InvalidState, lambda: copy_.urge(note="催办", actor=SECRETARIAT, at=at(13))
    )
    assert "verified" in str(error)


def test_a_removed_co_unit_signs_again_when_added_back() -> None:
    task = signed(LEAD, CO)
    task.remove_co_unit(unit=CO, reason="职责调整", actor=SECRETARIAT, at=at(days=2))
    assert CO not in task.signatures
    task.add_co_unit(unit=CO, actor=SECRETARIAT, at=at(days=3))
    assert_refused(
        task,
        InvalidState,
        lambda: task.report_contribution(note="配合", actor=L_CO, at=at(days=4)),
    )
    task.sign_for(actor=L_CO, at=at(days=4))
    assert task.signatures[CO] == at(days=4)


def test_a_removed_town_signs_again_when_added_back() -> None:
    task = signed(LEAD, TOWN)
    task.remove_town(unit=TOWN, reason="区划调整", actor=SECRETARIAT, at=at(days=2))
    assert TOWN not in task.signatures


def test_an_extension_whose_deadline_has_passed_is_not_granted() -> None:
    task = with_pending_extension()  # asks for day 45 on day 5
    assert_refused(
        task,
        InvariantViolated,
        lambda: task.grant_extension(
            request_id="E1", note="同意", actor=SECRETARIAT, at=at(days=46)
        ),
    )
    task.deny_extension(request_id="E1", reason="已过期", actor=SECRETARIAT, at=at(days=46))
    assert task.extension_requests["E1"]["status"] == "denied"
