"""A commit whose acknowledgement was lost: the command is answered as applied.

eventsourcing retries an insert on a connection error; if the first attempt had in fact
committed (the database restarted after the commit, before the client heard), the retry
meets its own rows and raises IntegrityError. The soak met it: a verify answered 412 yet
stored. Here the recorder stores the events and then raises IntegrityError, as that
retry does, on the real SQLite and PostgreSQL stores.
"""

from __future__ import annotations

from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError

from domain.errors import VersionMismatch
from infra.bootstrap import System
from tests.integration.conftest import SEC, Writers
from tests.integration.test_poison import issue


def lose_the_next_acknowledgement(system: System, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    recorder = system.app.recorder
    real = recorder.insert_events
    calls: list[int] = []

    def insert_then_fail(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        result = real(*args, **kwargs)
        if len(calls) == 1:
            raise IntegrityError("duplicate key value violates unique constraint (the retry)")
        return result

    monkeypatch.setattr(recorder, "insert_events", insert_then_fail)
    return calls


def test_an_applied_command_is_answered_as_applied(
    system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    Writers.register_units(system)
    task = issue(system)
    head = system.app.head()
    calls = lose_the_next_acknowledgement(system, monkeypatch)
    urged = system.app.urge_task(
        task_id=task.aggregate.id, note="请加快", actor=SEC, expected_version=1
    )
    assert calls == [1]
    assert urged.aggregate.version == 2
    assert urged.position == system.app.head() == head + 1
    (stored,) = system.app.recorder.select_notifications(start=urged.position, limit=1)
    assert (stored.originator_id, stored.originator_version) == (task.aggregate.id, 2)
    assert system.app.task(task.aggregate.id).urge_count == 1


def test_someone_elses_write_is_still_a_conflict(
    system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    Writers.register_units(system)
    task = issue(system)
    # Another writer stores version 2 first; ours, from version 1, must be refused.
    stale = system.app.task(task.aggregate.id)
    system.app.urge_task(task_id=task.aggregate.id, note="第一次", actor=SEC)
    stale.urge(note="第二次", actor=SEC, at=system.clock.now())
    with pytest.raises(VersionMismatch):
        system.app._write(stale, expected_version=1)
    assert system.app.task(task.aggregate.id).urge_count == 1
