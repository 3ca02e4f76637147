"""Property tests of SupervisedTask: random command sequences keep every invariant.

For any sequence of commands drawn at random (any actor, any unit, any time step)
applied to a task, a refused command raises a DomainError and changes nothing, the
task's invariants hold after every step, and replaying the recorded events rebuilds
exactly the same state.
"""

from __future__ import annotations

from copy import deepcopy
from datetime import datetime, timedelta
from typing import Any

import pytest

pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from domain.actor import SYSTEM, Actor, Role
from domain.errors import DomainError
from domain.tasks import SupervisedTask, TaskState
from tests.unit.domain_helpers import (
    AUDITOR,
    LIAISON_WITHOUT_UNIT,
    SECRETARIAT,
    T0,
    assert_replays,
    assert_unchanged,
    at,
    liaison,
    snapshot,
)

UNITS = ["commerce", "market", "postal", "town-a", "park", "transport", "town-b"]
ACTORS = [SECRETARIAT, AUDITOR, LIAISON_WITHOUT_UNIT, *(liaison(u) for u in UNITS)]
COMMANDS = [
    "sign_for",
    "report_progress",
    "report_contribution",
    "report_completion",
    "request_extension",
    "grant_extension",
    "deny_extension",
    "verify",
    "return_for_rework",
    "urge",
    "transfer_lead",
    "add_co_unit",
    "remove_co_unit",
    "add_town",
    "remove_town",
    "mark_overdue",
]

SECRETARIAT_COMMANDS = {
    "grant_extension",
    "deny_extension",
    "verify",
    "return_for_rework",
    "urge",
    "transfer_lead",
    "add_co_unit",
    "remove_co_unit",
    "add_town",
    "remove_town",
    "mark_overdue",
}

LIAISON_EVENTS = {
    "TaskSignedFor",
    "TaskProgressReported",
    "TaskContributionReported",
    "TaskCompletionReported",
    "TaskExtensionRequested",
}

Step = tuple[str, Actor | None, int, int, int, bool]
"""command, actor (None: the actor that fits the command), unit index, hours, days, blank"""

# the steps that move a task forward are drawn more often, so histories get far
WEIGHTED_COMMANDS = [*COMMANDS, *["sign_for"] * 3, *["report_progress"] * 2]
WEIGHTED_COMMANDS += ["report_completion", "report_completion", "verify", "verify"]

steps = st.tuples(
    st.sampled_from(WEIGHTED_COMMANDS),
    st.one_of(st.none(), st.none(), st.sampled_from(ACTORS)),
    st.integers(min_value=0, max_value=len(UNITS) * 2),
    st.integers(min_value=0, max_value=24 * 3),  # hours the clock moves on
    st.integers(min_value=-3, max_value=20),  # days: extension offset / request number
    st.booleans(),  # give a blank note/reason
)


def new_task() -> SupervisedTask:
    return SupervisedTask.issue(
        title="建设外卖骑手暖心驿站",
        industry="food-delivery",
        lead_unit="commerce",
        co_units=["market", "postal"],
        towns=["town-a", "park"],
        deadline=at(days=20),
        weight=5,
        meeting_id="meeting-1",
        resolution_id="R1",
        actor=SECRETARIAT,
        at=T0,
    )


def fitting_actor(task: SupervisedTask, command: str, unit: str) -> Actor:
    """The actor most likely to be allowed the command, so histories get far."""
    if command in SECRETARIAT_COMMANDS:
        return SECRETARIAT
    if command in {"report_completion", "request_extension"}:
        return liaison(task.lead_unit)
    return liaison(unit)


def pick_unit(task: SupervisedTask, index: int) -> str:
    """A unit by index, the task's own units first, then the others."""
    candidates = [*task.units, *(u for u in UNITS if not task.involves(u))]
    return candidates[index % len(candidates)]


def apply(task: SupervisedTask, step: Step, now: datetime) -> None:
    command, drawn, index, _, days, blank = step
    unit = pick_unit(task, index)
    actor = fitting_actor(task, command, unit) if drawn is None else drawn
    text = "  " if blank else "说明"
    # mostly the latest request, sometimes one that does not exist
    request_id = f"E{max(len(task.extension_requests), 1)}" if days % 4 else "E9"
    if command == "sign_for":
        task.sign_for(actor=actor, at=now)
    elif command == "report_progress":
        task.report_progress(note=text, percent=days * 5, actor=actor, at=now)
    elif command == "report_contribution":
        task.report_contribution(note=text, actor=actor, at=now)
    elif command == "report_completion":
        task.report_completion(note=text, actor=actor, at=now)
    elif command == "request_extension":
        task.request_extension(
            new_deadline=task.deadline + timedelta(days=days), reason=text, actor=actor, at=now
        )
    elif command == "grant_extension":
        task.grant_extension(request_id=request_id, note=text, actor=actor, at=now)
    elif command == "deny_extension":
        task.deny_extension(request_id=request_id, reason=text, actor=actor, at=now)
    elif command == "verify":
        task.verify(note=text, actor=actor, at=now)
    elif command == "return_for_rework":
        task.return_for_rework(reason=text, actor=actor, at=now)
    elif command == "urge":
        task.urge(note=text, actor=actor, at=now)
    elif command == "transfer_lead":
        task.transfer_lead(new_lead=unit, reason=text, actor=actor, at=now)
    elif command == "add_co_unit":
        task.add_co_unit(unit=unit, actor=actor, at=now)
    elif command == "remove_co_unit":
        task.remove_co_unit(unit=unit, reason=text, actor=actor, at=now)
    elif command == "add_town":
        task.add_town(unit=unit, actor=actor, at=now)
    elif command == "remove_town":
        task.remove_town(unit=unit, reason=text, actor=actor, at=now)
    elif command == "mark_overdue":
        task.mark_overdue(actor=SYSTEM if drawn is None else actor, at=now)
    else:  # pragma: no cover
        raise AssertionError(command)


def check_invariants(task: SupervisedTask) -> None:
    assert task.lead_unit not in task.co_units
    assert task.lead_unit not in task.towns
    assert not set(task.co_units) & set(task.towns)
    assert len(set(task.co_units)) == len(task.co_units)
    assert len(set(task.towns)) == len(task.towns)
    assert task.version == len(task.pending_events)
    pending = [r for r, req in task.extension_requests.items() if req["status"] == "pending"]
    assert len(pending) <= 1
    assert task.pending_extension == (pending[0] if pending else None)
    assert list(task.extension_requests) == [
        f"E{n + 1}" for n in range(len(task.extension_requests))
    ]
    # the lead has not signed exactly while the task is (back to) issued
    assert (task.state == TaskState.ISSUED) == (task.lead_unit not in task.signatures)
    reported = task.state in (TaskState.COMPLETION_REPORTED, TaskState.VERIFIED)
    assert (task.completion_reported_at is not None) == reported
    assert (task.verified_at is not None) == (task.state == TaskState.VERIFIED)
    if task.overdue:
        assert task.overdue_since == task.deadline
    else:
        assert task.overdue_since is None


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(steps, min_size=30, max_size=100))
def test_random_histories_keep_invariants_and_replay(history: list[Step]) -> None:
    task = new_task()
    now = T0
    deadlines = [task.deadline]
    verified_version: int | None = None
    for step in history:
        now += timedelta(hours=step[3])
        before = snapshot(task)
        try:
            apply(task, step, now)
        except DomainError:
            assert_unchanged(task, before)
        else:
            assert before[1] <= task.version <= before[1] + 1
        check_invariants(task)
        # a deadline only ever moves later
        assert task.deadline >= deadlines[-1]
        deadlines.append(task.deadline)
        # nothing changes a verified task
        if verified_version is not None:
            assert task.version == verified_version
        if task.is_verified:
            verified_version = task.version

    event(f"final state: {task.state.value}")
    event(f"events recorded: {min(task.version // 10 * 10, 40)}+")
    recorded: list[Any] = list(task.pending_events)
    # an auditor can do nothing; liaisons record only liaison steps of their own unit
    for recorded_event in recorded[1:]:
        actor = recorded_event.actor
        assert actor.role != Role.AUDITOR
        if actor.role == Role.LIAISON:
            assert type(recorded_event).__name__ in LIAISON_EVENTS
            assert recorded_event.unit == actor.unit
    rebuilt, names = assert_replays(task)
    assert names[0] == "TaskIssued"
    assert rebuilt.lead_unit not in rebuilt.co_units
    assert rebuilt.state == task.state


def decided(task: SupervisedTask) -> dict[str, Any]:
    """A task's state and events, less the wall-clock instants each new event stamps."""
    state = {k: v for k, v in vars(task).items() if k not in {"_modified_on", "_pending_events"}}
    state["events"] = [
        (type(e).__name__, {k: v for k, v in vars(e).items() if k != "timestamp"})
        for e in task.pending_events
    ]
    return state


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(steps, min_size=10, max_size=60))
def test_a_copy_to_decide_is_a_deep_copy(history: list[Step]) -> None:
    """The API decides each command on ``copy_to_decide`` of the cached task."""
    task = new_task()
    now = T0
    for step in history:
        now += timedelta(hours=step[3])
        kept = deepcopy(vars(task))
        copy, deep = task.copy_to_decide(), deepcopy(task)
        outcomes = []
        for candidate in (copy, deep):
            try:
                apply(candidate, step, now)
                outcomes.append("done")
            except DomainError as error:
                outcomes.append(repr(error))
        # The copy decides as a deep copy would, and the original is left as it was.
        assert outcomes[0] == outcomes[1]
        assert decided(copy) == decided(deep)
        assert vars(task) == kept
        task = copy  # the written copy is what stays cached
    assert_replays(task)
