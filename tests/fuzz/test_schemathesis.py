"""Schemathesis over ``/openapi.json``, as every role, against a small seeded world.

The ASGI app runs in-process over SQLite. A world of units, a meeting with a resolution,
tasks in several states, a chain with links and a committee is seeded through the API,
and hooks steer generated path parameters, filters and body fields towards those real
resources (with the generated value kept as one of the choices), so the fuzzer reaches
the domain and not only the 404s. Each role's run:

- finds no 5xx, no status the OpenAPI document leaves out, no undocumented content
  type, no body that breaks a declared response schema;
- is never answered 2xx where the role may not act (docs/api.md).

Afterwards the store itself is checked: every aggregate's versions are contiguous, no
task has its lead among its co-units, nothing happened to a task after it was verified,
no auditor ever acted, a liaison only took the liaison steps on tasks involving its
unit, and the live views equal a rebuild from the store.

The run is bounded and repeatable: a fixed seed per operation and role, derandomized
Hypothesis, no example database, ``MAX_EXAMPLES`` cases per operation and role.

Each operation's cases come from ``APIOperation.as_strategy`` under ``@given``, rather
than from ``schema.parametrize()``: the lazy loader (``schemathesis.pytest.from_fixture``)
sets ``Node._nodeid``, which pytest 9.2 no longer has, and the eager one needs the app,
hence a System, at import time.
"""

from __future__ import annotations

import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

pytest.importorskip("schemathesis")

import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode, HookContext
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from domain.actor import Role
from domain.tasks import SupervisedTask
from infra.bootstrap import System, bootstrap
from infra.clock import ManualClock
from infra.rebuild import drift
from infra.replay import REPLAYS_VIEW
from infra.settings import Settings
from tests.integration.api_client import Api
from tests.integration.test_api_access import ACCESS, OWN, PUBLIC, A, L, S

START = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # 09:00 in Asia/Shanghai
SEED = 20261102
MAX_EXAMPLES = 20
"""Generated cases (valid and invalid) per operation and role: 56 operations x 4 roles."""
OPERATIONS = sorted([*ACCESS, *PUBLIC])
"""Every route; test_api_access checks that ACCESS and PUBLIC cover the OpenAPI document."""

SECRETARIAT, AUDITOR = S, A
LIAISON_POSTAL, LIAISON_COMMERCE = "liaison-postal", "liaison-commerce"
ROLES = (SECRETARIAT, AUDITOR, LIAISON_POSTAL, LIAISON_COMMERCE)
PRINCIPALS: dict[str, tuple[Role, str | None]] = {
    SECRETARIAT: (Role.SECRETARIAT, None),
    AUDITOR: (Role.AUDITOR, None),
    LIAISON_POSTAL: (Role.LIAISON, "postal"),
    LIAISON_COMMERCE: (Role.LIAISON, "commerce"),
}
DEPARTMENTS = ["postal", "commerce"]
TOWNS = ["town-a"]
UNITS = [*DEPARTMENTS, *TOWNS]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

LIAISON_EVENTS = {
    "TaskSignedFor",
    "TaskProgressReported",
    "TaskContributionReported",
    "TaskCompletionReported",
    "TaskExtensionRequested",
}


@dataclass
class World:
    """The seeded system, its API, a token per role and the ids worth aiming at."""

    system: System
    app: FastAPI
    tokens: dict[str, str]
    path_values: dict[str, list[str]] = field(default_factory=dict)
    ids_by_kind: dict[str, list[str]] = field(default_factory=dict)
    seeded_head: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    """The status of every fuzzed response."""

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


def seed_world(api: Api, clock: ManualClock) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Units, a meeting with a resolution, tasks in several states, a chain, a committee."""
    s = SECRETARIAT
    now = clock.now()
    for slug, name in [("postal", "区邮政管理局"), ("commerce", "区商务局")]:
        api.post(s, "/units", {"id": slug, "name": name, "kind": "department"}, expect=201)
    api.post(s, "/units", {"id": "town-a", "name": "城关镇", "kind": "town"}, expect=201)

    meeting = api.post(
        s, "/meetings", {"title": "第一次联席会议", "held_at": now.isoformat()}, expect=201
    )
    mid = meeting["id"]
    api.post(s, f"/meetings/{mid}/attendance", {"units": UNITS})
    adopted = api.post(
        s, f"/meetings/{mid}/resolutions", {"text": "建立快递行业责任链条"}, expect=201
    )
    resolution = adopted["resolution_id"]

    def issue(lead: str, co_units: list[str], towns: list[str], **extra: Any) -> str:
        body = {
            "title": f"{lead} 牵头的任务",
            "industry": "express",
            "lead_unit": lead,
            "co_units": co_units,
            "towns": towns,
            "deadline": (now + timedelta(days=30)).isoformat(),
            **extra,
        }
        task: dict[str, Any] = api.post(s, "/tasks", body, expect=201)
        return str(task["id"])

    liaison = {"postal": LIAISON_POSTAL, "commerce": LIAISON_COMMERCE}
    # Issued, from the meeting's resolution: postal leads, commerce helps, in town-a.
    open_task = issue("postal", ["commerce"], ["town-a"], meeting_id=mid, resolution_id=resolution)
    # Signed by commerce, with an extension request pending.
    extended = issue("commerce", [], ["town-a"])
    api.post(liaison["commerce"], f"/tasks/{extended}/sign")
    requested = api.post(
        liaison["commerce"],
        f"/tasks/{extended}/extension-requests",
        {"new_deadline": (now + timedelta(days=60)).isoformat(), "reason": "需协调属地"},
        expect=201,
    )
    # Completion reported by postal: ready to verify or return.
    reported = issue("postal", [], ["town-a"])
    api.post(liaison["postal"], f"/tasks/{reported}/sign")
    api.post(liaison["postal"], f"/tasks/{reported}/completion", {"note": "已完成"})
    # Verified: nothing may change it any more.
    verified = issue("commerce", ["postal"], [])
    api.post(liaison["commerce"], f"/tasks/{verified}/sign")
    api.post(liaison["commerce"], f"/tasks/{verified}/completion", {"note": "已完成"})
    api.post(s, f"/tasks/{verified}/verify", {"note": "验收通过"})

    api.post(s, "/chains", {"industry": "express", "name": "快递行业责任链条"}, expect=201)
    added = [
        api.post(
            s,
            "/chains/express/links",
            {
                "unit": unit,
                "role": role,
                "responsible_person": person,
                "phone": phone,
                "duties": [duty],
            },
            expect=201,
        )
        for unit, role, person, phone, duty in [
            ("postal", "industry-competent", "张三", "13800000001", "行业监管"),
            ("town-a", "territorial", "李四", None, "属地管理"),
        ]
    ]
    links = [link["id"] for link in added]
    persons = [link["responsible_person"]["person_id"] for link in added]

    committee = api.post(
        s,
        "/committees",
        {"name": "快递行业党委", "industry": "express", "supervising_unit": "postal"},
        expect=201,
    )["id"]
    member = api.post(
        s, f"/committees/{committee}/members", {"name": "某快递网点党支部"}, expect=201
    )["member_id"]
    instructor = api.post(
        s,
        f"/committees/{committee}/instructors",
        {"name": "钱指导员", "enterprise": "某站点", "enterprise_party_members": 1},
        expect=201,
    )["instructor_id"]

    replay = api.post(AUDITOR, "/audit/replays", expect=202)["id"]
    wait_for_replays(api.system)

    tasks = [open_task, extended, reported, verified]
    path_values = {  # a town where a department goes and back: the 404s of the wrong kind
        "unit": UNITS,
        "town": [*TOWNS, "postal"],
        "meeting_id": [mid],
        "task_id": tasks,
        "request_id": [requested["request_id"]],
        "industry": ["express"],
        "link_id": links,
        "committee_id": [committee],
        "member_id": [member],
        "instructor_id": [instructor],
        "replay_id": [replay],
        "person_id": persons,
        "kind": ["tasks", "chains", "committees", "meetings", "units", "erasures"],
    }
    ids_by_kind = {
        "tasks": tasks,
        "chains": ["express"],
        "committees": [committee],
        "meetings": [mid],
        "units": UNITS,
        "erasures": persons,
    }
    return path_values, ids_by_kind


def wait_for_replays(system: System, timeout: float = 30.0) -> None:
    """Background replays (``POST /audit/replays``) finish before the store is checked."""
    deadline = time.monotonic() + timeout
    while any(doc.get("state") == "running" for _, doc in system.views.scan(REPLAYS_VIEW)):
        if time.monotonic() > deadline:
            raise AssertionError(f"replays still running after {timeout:g} s")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    clock = ManualClock(START)
    system = bootstrap(Settings(data_dir=tmp_path_factory.mktemp("fuzz") / "data"), clock=clock)
    api = Api(system)
    for name, (role, unit) in PRINCIPALS.items():
        api.principal(name, role, unit)
    path_values, ids_by_kind = seed_world(api, clock)
    built = World(
        system=system,
        app=create_app(system),
        tokens=dict(api.tokens),
        path_values=path_values,
        ids_by_kind=ids_by_kind,
        seeded_head=system.app.head(),
    )
    yield built
    wait_for_replays(system)
    system.close()


# ------------------------------------------------------------------ steering
INSTANTS = [
    # Hypothesis favours the first choices: instants a command accepts come first.
    "2027-03-01T00:00:00Z",
    "2026-12-31T23:59:59+08:00",
    "2027-12-01T08:00:00-05:00",
    "2026-11-20T17:30:00+08:00",
    "2026-11-02T09:00:00+08:00",  # the clock's now
    "2026-10-01T00:00:00+08:00",  # in the past
    # Where conversions to UTC or to the district's zone overflow.
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+23:59",
    "9999-12-31T20:00:00Z",
]
INSTANT_FIELDS = {"held_at", "deadline", "new_deadline", "effective_at", "at"}
KNOWN_FIELDS = {
    "lead_unit": DEPARTMENTS,
    "new_lead": ["commerce", "postal", "town-a"],
    "unit": UNITS,
    "supervising_unit": DEPARTMENTS,
    "industry": ["express", "food-delivery"],
    "town": TOWNS,
    "resolution_id": ["R1"],
}
LIST_FIELDS = {
    "co_units": DEPARTMENTS,
    "towns": TOWNS,
    "units": UNITS,
    "add": UNITS,
    "remove": UNITS,
}

BODY_HINTS: dict[str, dict[str, Any]] = {
    # Both lists are optional, but one is needed: generated bodies mostly leave both out.
    "/tasks/{task_id}/co-units": {"add": ["commerce"]},
    "/tasks/{task_id}/towns": {"add": ["town-a"]},
}


def _or_known(value: Any, known: list[str]) -> st.SearchStrategy[Any]:
    """Mostly a known value, sometimes the generated one."""
    return st.sampled_from([*known, value]) if known else st.just(value)


def _printable(text: str) -> str:
    return "".join(ch for ch in text if ch.isprintable() or ch in "\n\t").strip()


def _printable_copy(value: Any) -> Any:
    """The value without the control characters the API refuses (schemas cannot say so)."""
    if isinstance(value, str):
        return _printable(value) or "文本"
    if isinstance(value, list):
        return [_printable_copy(v) for v in value]
    return value


def _steered(name: str, value: Any, known: dict[str, list[str]]) -> st.SearchStrategy[Any]:
    """A body field or query parameter: an instant, a known id or slug, a list of units."""
    if name in INSTANT_FIELDS:
        return _or_known(value, INSTANTS)
    if name in known:
        return _or_known(value, known[name])
    if name in LIST_FIELDS and isinstance(value, list):
        units = LIST_FIELDS[name]
        some = st.lists(st.sampled_from(units), min_size=1, max_size=len(units))
        return st.one_of(some, st.just(value))
    return st.just(value)


def steer(schema: schemathesis.BaseSchema, world: World) -> None:
    """Schema hooks that aim generated values at the seeded resources and at edge values."""
    values = world.path_values
    kinds = world.ids_by_kind
    known = {
        **KNOWN_FIELDS,
        "meeting_id": values["meeting_id"],
        "person_id": values["person_id"],
    }

    def flatmap_path_parameters(context: HookContext, params: Any) -> st.SearchStrategy[Any]:
        if not isinstance(params, dict):
            return st.just(params)
        if "kind" in params and "id" in params:
            real = st.sampled_from(sorted(kinds)).flatmap(
                lambda kind: st.fixed_dictionaries(
                    {"kind": st.just(kind), "id": st.sampled_from(kinds[kind])}
                )
            )
            return st.one_of(real, st.just(params))
        return st.fixed_dictionaries(
            {name: _or_known(value, values.get(name, [])) for name, value in params.items()}
        )

    def flatmap_query(context: HookContext, query: Any) -> st.SearchStrategy[Any]:
        if not isinstance(query, dict):
            return st.just(query)
        return st.fixed_dictionaries({k: _steered(k, v, known) for k, v in query.items()})

    def flatmap_headers(context: HookContext, headers: Any) -> st.SearchStrategy[Any]:
        # A random If-Match is a 400 almost always: aim at real versions, or send none.
        if not isinstance(headers, dict) or "if-match" not in headers:
            return st.just(headers)
        rest = {k: v for k, v in headers.items() if k != "if-match"}
        versions = ['"1"', '"2"', '"3"', '"4"', '"5"', 'W/"3"', "*", headers["if-match"]]
        return st.one_of(
            st.just(rest), st.sampled_from(versions).map(lambda v: {**rest, "if-match": v})
        )

    def flatmap_body(context: HookContext, body: Any) -> st.SearchStrategy[Any]:
        if not isinstance(body, dict):
            return st.just(body)
        printable = {name: _printable_copy(value) for name, value in body.items()}
        hint = BODY_HINTS.get(context.operation.path, {}) if context.operation else {}
        variants = [printable, {**hint, **printable}, body]
        return st.sampled_from(variants).flatmap(
            lambda chosen: st.fixed_dictionaries(
                {name: _steered(name, value, known) for name, value in chosen.items()}
            )
        )

    for hook in (flatmap_path_parameters, flatmap_query, flatmap_headers, flatmap_body):
        schema.hook(hook)


# ------------------------------------------------------------------ the run
@pytest.fixture(scope="module")
def api_schema(world: World) -> schemathesis.BaseSchema:
    """The app's own /openapi.json, loaded in-process and steered at the world."""
    config = schemathesis.Config.from_dict(
        # The bearer token is the role's, sent by the test; none is generated.
        {"seed": SEED, "generation": {"with-security-parameters": False}}
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", world.app, config=config)
    steer(schema, world)
    return schema


def may_succeed(world: World, role: str, case: Case[Any]) -> bool:
    """Whether the access table lets this role be answered 2xx for this request."""
    key = (case.method.upper(), case.operation.path)
    if key in PUBLIC:
        return True
    allowed = ACCESS[key]
    kind, unit = PRINCIPALS[role]
    if kind == Role.SECRETARIAT:
        return S in allowed
    if kind == Role.AUDITOR:
        return A in allowed
    if L in allowed:
        return True
    if OWN not in allowed:
        return False
    params = case.path_parameters or {}
    if "task_id" in params:
        return world.system.app.task(UUID(str(params["task_id"]))).involves(unit)
    return unit in (params.get("unit"), params.get("town"))


def operation_seed(role: str, method: str, path: str) -> int:
    """The fixed seed, mixed with what is fuzzed, so each operation draws its own inputs."""
    return zlib.crc32(f"{SEED}:{role}:{method} {path}".encode())


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
@pytest.mark.parametrize("role", ROLES)
def test_api_conforms_for_every_role(
    api_schema: schemathesis.BaseSchema, world: World, role: str, method: str, path: str
) -> None:
    operation = api_schema[path][method]
    headers = world.headers(role)

    def check(case: Case[Any]) -> None:
        response = case.call_and_validate(headers=headers, checks=CHECKS)
        world.statuses[response.status_code] += 1
        if 200 <= response.status_code < 300:
            assert may_succeed(world, role, case), (
                f"{role} was answered {response.status_code} to "
                f"{case.method} {case.formatted_path}: {response.text[:300]}"
            )

    # Both modes in one draw, as schemathesis' own fuzzing phase does (a route with
    # nothing to negate still has valid cases), three valid to one invalid: invalid
    # bodies are often not JSON at all and never reach the domain.
    # (st.one_of would fold repeated branches into one.)
    by_mode = {mode: operation.as_strategy(generation_mode=mode) for mode in GenerationMode}
    modes = [GenerationMode.POSITIVE] * 3 + [GenerationMode.NEGATIVE]
    cases = st.sampled_from(modes).flatmap(by_mode.__getitem__)
    # The seed fixes the draws; derandomize and no database keep Hypothesis from
    # anything that depends on earlier runs.
    run = settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )(given(case=cases)(check))
    seed(operation_seed(role, method, path))(run)()


# ---------------------------------------------------------------- the store
def stored_events(system: System) -> dict[UUID, list[Any]]:
    """Every stored event, decoded, by aggregate, in store order."""
    events: dict[UUID, list[Any]] = defaultdict(list)
    position = 0
    while batch := system.app.recorder.select_notifications(start=position + 1, limit=500):
        for notification in batch:
            event = system.app.mapper.to_domain_event(notification)
            events[UUID(str(notification.originator_id))].append(event)
        position = batch[-1].id
    return events


def task_at(system: System, task_id: UUID, version: int) -> SupervisedTask:
    task = system.app.load_as_of(task_id, version=version)
    assert isinstance(task, SupervisedTask)
    return task


def invariant_breaches(system: System) -> list[str]:
    """What the store holds that the rules forbid."""
    problems: list[str] = []
    for aggregate_id, stream in stored_events(system).items():
        versions = [event.originator_version for event in stream]
        if versions != list(range(1, len(versions) + 1)):
            problems.append(f"{aggregate_id}: versions {versions} are not contiguous")
        actors = [(type(event).__name__, getattr(event, "actor", None)) for event in stream]
        problems += [
            f"{aggregate_id}: the auditor recorded {name}"
            for name, actor in actors
            if actor is not None and actor.role == Role.AUDITOR
        ]
        if not isinstance(system.app.load_as_of(aggregate_id), SupervisedTask):
            continue
        names = [name for name, _ in actors]
        if "TaskVerified" in names[:-1]:
            after = names[names.index("TaskVerified") + 1 :]
            problems.append(f"task {aggregate_id} changed after its verification: {after}")
        for version, (name, actor) in enumerate(actors, start=1):
            task = task_at(system, aggregate_id, version)
            if task.lead_unit in task.co_units:
                problems.append(f"task {aggregate_id} v{version}: its lead is a co-unit")
            if actor is None or actor.role != Role.LIAISON:
                continue
            involved = version > 1 and task_at(system, aggregate_id, version - 1).involves(
                actor.unit
            )
            if name not in LIAISON_EVENTS or not involved:
                problems.append(f"task {aggregate_id} v{version}: {actor.unit}'s liaison: {name}")
    return problems


def test_store_invariants_hold_after_fuzzing(world: World) -> None:
    """Runs after the fuzzing above (file order), over the store the fuzzer wrote to."""
    system = world.system
    wait_for_replays(system)
    problems = invariant_breaches(system)
    assert problems == [], "\n".join(problems[:20])
    drifted = list(drift(system))
    assert drifted == [], f"{len(drifted)} view documents drifted, e.g. {drifted[:3]}"
    if world.statuses:  # the fuzzing ran: it got through to the domain, not only to 4xx
        assert system.app.head() > world.seeded_head, dict(world.statuses)
