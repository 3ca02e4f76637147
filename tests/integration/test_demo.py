"""The demo seeding, against a fresh SQLite file and a fresh PostgreSQL schema.

No mocks: ``seed_demo`` runs the real use cases on the real stores, then the checks
read the aggregates, the stored events and the task list view.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from psycopg import sql

from domain.actor import Actor, Role
from domain.chains import LinkRole
from domain.tasks import TaskState
from domain.units import UnitKind
from infra.bootstrap import System, bootstrap
from infra.demo import DEPARTMENTS, HISTORY_DAYS, TOWNS, seed_demo
from infra.settings import Settings
from projections.tasks import list_tasks

POSTGRES_URL = os.environ.get(
    "TIAOKUAI_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
INDUSTRIES = ("express", "food-delivery", "ride-hailing", "freight", "new-media")
COMPETENT = {
    "express": "postal",
    "food-delivery": "commerce",
    "ride-hailing": "transport",
    "freight": "transport",
    "new-media": "cyberspace",
}
LIAISON_EVENTS = {
    "TaskSignedFor",
    "TaskProgressReported",
    "TaskContributionReported",
    "TaskCompletionReported",
    "TaskExtensionRequested",
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def demo_system(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[System]:
    """A fresh, empty store on the real wall clock: a SQLite file or a PostgreSQL schema."""
    if request.param == "sqlite":
        system = bootstrap(Settings(data_dir=tmp_path / "data"))
        try:
            yield system
        finally:
            system.close()
        return
    schema = f"t_{uuid4().hex[:10]}"
    try:
        system = bootstrap(Settings(store=POSTGRES_URL, store_schema=schema, data_dir=tmp_path))
        try:
            yield system
        finally:
            system.close()
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {0} CASCADE").format(sql.Identifier(schema))
            )


def stored_events(system: System) -> list[Any]:
    """Every stored domain event, in store order."""
    events: list[Any] = []
    start = 1
    while True:
        batch = system.app.recorder.select_notifications(start=start, limit=500)
        if not batch:
            return events
        events.extend(system.app.mapper.to_domain_event(n) for n in batch)
        start = batch[-1].id + 1


def printed_tokens(lines: list[str]) -> dict[str, str]:
    """Principal lines → {unit slug or role: token}; the token is the last field."""
    tokens: dict[str, str] = {}
    for line in lines:
        fields = line.split()
        if fields and fields[-1].startswith("tk_"):
            role, unit = fields[0], fields[1]
            tokens[unit if role == Role.LIAISON.value else role] = fields[-1]
    return tokens


def test_the_demo_district_is_seeded_with_a_believable_history(demo_system: System) -> None:
    system = demo_system
    before = datetime.now(UTC)
    lines = seed_demo(system)
    now = datetime.now(UTC)
    app = system.app

    # ---------------------------------------------------------------- printed lines
    assert lines[-1] == "Open http://127.0.0.1:8000/docs and use a token with Authorize"
    assert any(line.strip().startswith("tasks:") for line in lines)
    tokens = printed_tokens(lines)
    expected = {
        "secretariat": (Role.SECRETARIAT, None, "联席办 王主任"),
        "auditor": (Role.AUDITOR, None, None),
        "postal": (Role.LIAISON, "postal", None),
        "commerce": (Role.LIAISON, "commerce", None),
        "market-supervision": (Role.LIAISON, "market-supervision", None),
    }
    assert set(tokens) == set(expected)
    principal_ids: dict[str, str] = {}
    for key, (role, unit, name) in expected.items():
        principal = system.tokens.resolve(tokens[key])
        assert principal is not None, key
        assert (principal.role, principal.unit) == (role, unit)
        if name is not None:
            assert principal.name == name
        principal_ids[key] = principal.principal_id
    assert system.tokens.resolve("tk_not-a-token") is None

    # ------------------------------------------------------------------------ units
    kinds = Counter(app.unit(slug).kind for slug, _ in DEPARTMENTS + TOWNS)
    assert kinds == {UnitKind.DEPARTMENT: 12, UnitKind.TOWN: 7}
    assert {slug for slug, _ in DEPARTMENTS} == {
        "social-work",
        "organization",
        "non-public-economy",
        "postal",
        "commerce",
        "market-supervision",
        "transport",
        "cyberspace",
        "public-security",
        "hr-social-security",
        "trade-unions",
        "youth-league",
    }
    town_slugs = [slug for slug, _ in TOWNS]
    assert sum(slug.startswith("town-") for slug in town_slugs) == 6
    assert sum(slug.startswith("park-") for slug in town_slugs) == 1
    assert app.unit("postal").name == "邮政管理局"

    # ----------------------------------------------------------------------- chains
    handovers: list[dict[str, Any]] = []
    for industry in INDUSTRIES:
        chain = app.chain(industry)
        links = [chain.links[link_id] for link_id in chain.order]
        assert 4 <= len(links) <= 6, industry
        holders = {(link["role"], link["unit"]) for link in links}
        assert (LinkRole.OVERALL_LEAD.value, "social-work") in holders
        assert (LinkRole.INDUSTRY_COMPETENT.value, COMPETENT[industry]) in holders
        assert (LinkRole.SUPERVISORY.value, "market-supervision") in holders
        roles = {link["role"] for link in links}
        assert {LinkRole.TERRITORIAL.value} <= roles
        territorial = [link for link in links if link["role"] == LinkRole.TERRITORIAL.value]
        assert all(app.unit(link["unit"]).kind == UnitKind.TOWN for link in territorial)
        assert all(link["responsible_person"] and link["duties"] for link in links)
        handovers.extend(h for link in links for h in link["handovers"])
    assert handovers and all(h["reason"] for h in handovers)
    all_roles = {app.chain(i).links[lid]["role"] for i in INDUSTRIES for lid in app.chain(i).order}
    assert all_roles == {role.value for role in LinkRole}

    # ------------------------------------------------------------------- the events
    events = stored_events(system)
    names = Counter(type(e).__name__ for e in events)
    ats = [e.at for e in events]
    assert ats == sorted(ats), "business time never runs backwards"
    assert ats[0] >= before - timedelta(days=HISTORY_DAYS + 1)
    assert ats[0] <= before - timedelta(days=HISTORY_DAYS - 1)
    assert ats[-1] <= now
    assert all(e.actor.principal_id for e in events)
    secretariat_actor = Actor(principal_ids["secretariat"], Role.SECRETARIAT)
    assert any(e.actor == secretariat_actor for e in events)

    # Liaisons act for their own unit, each as an issued principal.
    liaison_events = [e for e in events if type(e).__name__ in LIAISON_EVENTS]
    assert liaison_events
    for e in liaison_events:
        assert e.actor.role == Role.LIAISON and e.actor.unit == e.unit
    by_unit = {e.actor.unit: e.actor.principal_id for e in liaison_events}
    for unit in ("postal", "commerce", "market-supervision"):
        assert by_unit[unit] == principal_ids[unit]
    assert len({e.actor.principal_id for e in liaison_events}) == len(by_unit)

    # ------------------------------------------------------------------- committees
    committees = [e for e in events if type(e).__name__ == "CommitteeEstablished"]
    assert {(e.industry, e.supervising_unit) for e in committees} == {
        ("express", "postal"),
        ("food-delivery", "commerce"),
    }
    for established in committees:
        committee = app.committee(established.originator_id)
        assert committee.secretary
        assert len([m for m in committee.members.values() if m["active"]]) >= 2
        assert committee.instructors
        assert all(i["enterprise_party_members"] < 3 for i in committee.instructors.values())
        assert len(committee.coverage) == 2
    assert names["InstructorRecalled"] >= 1

    # ---------------------------------------------------------------------- meeting
    assert names["MeetingConvened"] == 1 and names["MeetingClosed"] == 1
    assert names["AttendanceRecorded"] >= 1
    assert 3 <= names["ResolutionAdopted"] <= 4
    meeting_id = next(e.originator_id for e in events if type(e).__name__ == "MeetingConvened")
    meeting = app.meeting(meeting_id)
    assert meeting.is_closed and len(meeting.attendance) >= 10

    # ------------------------------------------------------------------------ tasks
    rows, total = list_tasks(system.views, limit=1000)
    assert 18 <= total <= 24
    tasks = {row["id"]: app.task(UUID(row["id"])) for row in rows}
    for row in rows:  # the view agrees with the aggregates
        task = tasks[row["id"]]
        assert (row["state"], row["overdue"], row["lead_unit"]) == (
            task.state.value,
            task.overdue,
            task.lead_unit,
        )
    states = Counter(task.state for task in tasks.values())
    assert set(states) == set(TaskState), states
    assert {task.industry for task in tasks.values()} == set(INDUSTRIES)
    tied = [task for task in tasks.values() if task.resolution_id is not None]
    assert len(tied) > total / 2
    assert all(task.meeting_id == str(meeting_id) for task in tied)

    overdue = [task for task in tasks.values() if task.overdue and not task.is_verified]
    assert len(overdue) >= 3
    assert all(task.deadline < now for task in overdue)
    # One overdue is recorded by the watcher at the real now, the rest during the history.
    overdue_events = [e for e in events if type(e).__name__ == "TaskBecameOverdue"]
    assert any(e.at >= before for e in overdue_events)
    assert any(e.at < before for e in overdue_events)

    open_tasks = [task for task in tasks.values() if not task.is_verified]
    assert any(now <= task.deadline <= now + timedelta(days=7) for task in open_tasks)
    # Open tasks are overdue exactly when their deadline has passed.
    assert all(task.overdue == (task.deadline <= now) for task in open_tasks)

    verified = [e for e in events if type(e).__name__ == "TaskVerified"]
    assert any(e.on_time for e in verified) and any(not e.on_time for e in verified)

    assert names["TaskExtensionGranted"] >= 1 and names["TaskExtensionDenied"] >= 1
    assert any(task.pending_extension is not None for task in tasks.values())
    denials = [e for e in events if type(e).__name__ == "TaskExtensionDenied"]
    assert all(e.reason for e in denials)
    transfers = [e for e in events if type(e).__name__ == "TaskLeadTransferred"]
    assert transfers and all(e.reason for e in transfers)
    returns = [e for e in events if type(e).__name__ == "TaskReturned"]
    assert returns and all(e.reason for e in returns)
    for name in (
        "TaskCoUnitAdded",
        "TaskCoUnitRemoved",
        "TaskTownAdded",
        "TaskTownRemoved",
        "TaskUrged",
        "TaskContributionReported",
    ):
        assert names[name] >= 1, name

    # Every department and every town plays a part somewhere.
    involved = {unit for task in tasks.values() for unit in task.units}
    assert involved >= {slug for slug, _ in DEPARTMENTS} - {"social-work"}
    assert involved >= set(town_slugs)
