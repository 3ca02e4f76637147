"""Tasks are cached between commands; another process's writes are still seen, and
nothing holding personal data is cached (infra/application.py, ``TaskCache``)."""

from __future__ import annotations

from copy import deepcopy
from datetime import timedelta
from typing import Any, cast
from uuid import UUID

from domain.actor import Actor, Role
from domain.chains import LinkRole
from domain.errors import DomainError, VersionMismatch
from domain.tasks import SupervisedTask
from domain.units import UnitKind
from infra.bootstrap import System, bootstrap
from infra.clock import ManualClock
from tests.conftest import SettingsFactory

SECRETARIAT = Actor("sec-1", Role.SECRETARIAT)


def _task(system: System) -> UUID:
    app = system.app
    app.register_unit(slug="postal", name="邮政管理局", kind=UnitKind.DEPARTMENT, actor=SECRETARIAT)
    written = app.issue_task(
        title="驿站",
        industry="express",
        lead_unit="postal",
        co_units=[],
        towns=[],
        deadline=app.now() + timedelta(days=9),
        weight=1.0,
        meeting_id=None,
        resolution_id=None,
        actor=SECRETARIAT,
    )
    return written.aggregate.id


def test_a_cached_task_is_brought_up_to_date_with_another_process_writes(
    make_settings: SettingsFactory, clock: ManualClock
) -> None:
    settings = make_settings()
    one, other = bootstrap(settings, clock=clock), bootstrap(settings, clock=clock)
    try:
        task_id = _task(one)
        assert one.app.task(task_id).urge_count == 0
        cache = one.app.repository.cache
        assert cache is not None
        assert cache.get(task_id).version == 1  # kept after the load

        other.app.urge_task(task_id=task_id, note="催办", actor=SECRETARIAT)
        other.app.urge_task(task_id=task_id, note="再催", actor=SECRETARIAT)
        seen = one.app.task(task_id)
        assert (seen.version, seen.urge_count) == (3, 2)

        # A command here decides on the fast-forwarded task: the version check holds.
        try:
            one.app.urge_task(task_id=task_id, note="旧版本", actor=SECRETARIAT, expected_version=1)
        except VersionMismatch:
            pass
        else:
            raise AssertionError("a stale expected version was accepted")
        written = one.app.urge_task(
            task_id=task_id, note="第三次", actor=SECRETARIAT, expected_version=3
        )
        assert written.aggregate.version == 4
        assert other.app.task(task_id).urge_count == 3
    finally:
        one.close()
        other.close()


def test_commands_decide_on_copies_of_the_cached_task(system: System) -> None:
    """A command that changes its task and then fails must not leave the change cached."""
    task_id = _task(system)
    system.app.task(task_id)
    cache = system.app.repository.cache
    assert cache is not None
    cached = cast(SupervisedTask, cache.get(task_id))
    outsider = Actor("liaison-9", Role.LIAISON, "commerce")
    try:
        system.app.sign_for(task_id=task_id, actor=outsider)
    except DomainError:
        pass
    else:
        raise AssertionError("a unit not on the task signed for it")
    assert cache.get(task_id) is cached
    assert (cached.version, cached.signatures) == (1, {})
    liaison = Actor("liaison-1", Role.LIAISON, "postal")
    written = system.app.sign_for(task_id=task_id, actor=liaison)
    assert written.aggregate.version == 2
    assert (cached.version, cached.state) == (1, "issued")  # untouched by the command
    assert written.aggregate is not cached
    # The written task is what the next command decides on.
    assert cache.get(task_id) is written.aggregate
    assert system.app.task(task_id).state == "signed"


def test_a_stale_cached_task_gives_way_to_the_stored_one(
    make_settings: SettingsFactory, clock: ManualClock
) -> None:
    """Another process wrote the task: what the cached copy decides is not the answer."""
    settings = make_settings()
    one, other = bootstrap(settings, clock=clock), bootstrap(settings, clock=clock)
    liaison = Actor("liaison-1", Role.LIAISON, "postal")
    try:
        task_id = _task(one)
        cache = one.app.repository.cache
        assert cache is not None and cache.get(task_id).version == 1
        # Behind the cache: signed (v2), urged (v3).
        other.app.sign_for(task_id=task_id, actor=liaison)
        other.app.urge_task(task_id=task_id, note="催办", actor=SECRETARIAT)

        # Refused by the cached copy (not signed yet), accepted on the stored task.
        written = one.app.report_progress(task_id=task_id, note="进行中", percent=10, actor=liaison)
        assert written.aggregate.version == 4 and written.aggregate.state == "in_progress"
        # Accepted by a copy of version 1 whose save would conflict: written after v4.
        stale: Any = deepcopy(written.aggregate)
        other.app.urge_task(task_id=task_id, note="再催", actor=SECRETARIAT)  # v5
        cache.put(task_id, stale)
        urged = one.app.urge_task(task_id=task_id, note="第三次", actor=SECRETARIAT)
        assert (urged.aggregate.version, urged.aggregate.urge_count) == (6, 3)
        assert other.app.task(task_id).urge_count == 3
        # And an error the stored task also raises is the command's answer.
        try:
            one.app.sign_for(task_id=task_id, actor=Actor("liaison-9", Role.LIAISON, "commerce"))
        except DomainError:
            pass
        else:
            raise AssertionError("a unit not on the task signed for it")
        assert [e.originator_version for e in one.app.events.get(task_id)] == [1, 2, 3, 4, 5, 6]
    finally:
        one.close()
        other.close()


def test_chains_holding_personal_data_are_never_cached(system: System) -> None:
    app = system.app
    _task(system)
    app.establish_chain(industry="express", name="快递行业责任链条", actor=SECRETARIAT)
    app.add_chain_link(
        industry="express",
        unit="postal",
        role=LinkRole.INDUSTRY_COMPETENT,
        responsible_person="张三",
        duties=["行业监管"],
        actor=SECRETARIAT,
    )
    chain = app.chain("express")
    cache = app.repository.cache
    assert cache is not None
    try:
        cache.get(chain.id)
    except KeyError:
        pass
    else:
        raise AssertionError("a chain (with a responsible person's name) was cached")


def test_a_cache_size_of_zero_means_no_cache(
    make_settings: SettingsFactory, clock: ManualClock
) -> None:
    settings = make_settings()
    settings.task_cache_size = 0
    built = bootstrap(settings, clock=clock)
    try:
        assert built.app.repository.cache is None
        task_id = _task(built)
        assert built.app.task(task_id).version == 1
    finally:
        built.close()
