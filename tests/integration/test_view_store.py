"""The batched apply path of the view recorders (SQLite and PostgreSQL).

A batch prefetches the documents it will read, applies in memory and writes every
changed document back with bulk statements. These tests pin what must not change with
that: the documents equal those of a plain in-memory application of the same events,
whatever the batch size; a redelivered or duplicated event changes nothing; a gap in an
aggregate's versions raises and leaves nothing behind.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from psycopg import sql

from domain.actor import Actor, Role
from domain.units import UnitKind
from infra import view_store
from infra.bootstrap import System, bootstrap
from infra.clock import ManualClock
from infra.kafka.state import BusState
from infra.settings import Settings
from infra.view_store import (
    STORE_ERRORS,
    KeptDocuments,
    PendingCommit,
    PostgresViewRecorder,
    ProjectionGap,
    applied_view,
)
from projections.envelope import EventEnvelope
from projections.store import MemoryViewStore
from tests.conftest import POSTGRES_URL, drop_schema
from tests.unit.envelopes import rich_history as history


def every_view(system: System) -> dict[str, dict[str, Any]]:
    views: dict[str, dict[str, Any]] = {}
    for projection in system.projections:
        for view in (*projection.views, applied_view(projection.name)):
            views[view] = dict(system.view_recorder.read_scan(view, ""))
    return views


def in_memory(system: System, log: Sequence[EventEnvelope]) -> dict[str, dict[str, Any]]:
    store = MemoryViewStore()
    views: dict[str, dict[str, Any]] = {}
    for projection in system.projections:
        for envelope in log:
            projection.apply(envelope, store)
        for view in projection.views:
            views[view] = dict(store.scan(view))
        latest: dict[str, Any] = {}
        for envelope in log:
            if projection.takes(envelope.aggregate_type):
                latest[envelope.aggregate_id] = {"version": envelope.version}
        views[applied_view(projection.name)] = latest
    return views


def consume(system: System, log: Sequence[EventEnvelope], size: int) -> int:
    """Apply ``log`` in batches of ``size`` as a worker would; the highest position applied."""
    highest = 0
    for projection in system.projections:
        for start in range(0, len(log), size):
            highest = max(
                highest,
                system.view_recorder.apply_consumed(
                    log[start : start + size], projection, offsets_statement=None, offsets=[]
                ),
            )
    return highest


def begin_all(
    system: System,
    events: Sequence[EventEnvelope],
    offsets_statement: Any = None,
    offsets: Sequence[tuple[Any, ...]] = (),
    kept: KeptDocuments | None = None,
) -> PendingCommit:
    """The projection host's transaction: every projection over ``events``, one batch."""
    views = system.view_recorder
    assert isinstance(views, PostgresViewRecorder)
    return views.begin_consumed_together(
        [(events, p) for p in system.projections],
        offsets_statement=offsets_statement,
        offsets=offsets,
        locks=[],
        kept=kept,
    )


@pytest.mark.parametrize("size", [1, 7, 1000])
def test_batches_of_any_size_give_the_in_memory_documents(system: System, size: int) -> None:
    log = history().log
    assert consume(system, log, size) == log[-1].position
    expected = in_memory(system, log)
    assert every_view(system) == expected
    # The history really exercises deletes and several documents per event.
    assert expected["unit_views_rows"] and expected["linkage_cells"]


def test_redelivered_and_duplicated_events_change_nothing(system: System) -> None:
    log = history().log
    consume(system, log, 50)
    before = every_view(system)
    # A whole redelivery, and a batch holding the same events twice over.
    assert consume(system, log, 1000) == 0
    doubled = [e for pair in zip(log[-30:], log[-30:], strict=True) for e in pair]
    assert consume(system, doubled, 1000) == 0
    assert every_view(system) == before


def test_a_batch_holding_each_new_event_twice_applies_it_once(system: System) -> None:
    # As after a relay crash: its republished batch lands in the same poll as the first.
    log = history().log
    doubled = [e for pair in zip(log, log, strict=True) for e in pair]
    assert consume(system, doubled, 1000) == log[-1].position
    assert every_view(system) == in_memory(system, log)


def test_in_process_apply_tracks_positions_once(system: System) -> None:
    log = history().log
    recorder = system.view_recorder
    recorder.apply(log[:40], system.projections)
    recorder.apply(log[:60], system.projections)  # overlaps the first batch
    recorder.apply(log, system.projections)
    assert {recorder.position(p.name) for p in system.projections} == {log[-1].position}
    assert every_view(system) == in_memory(system, log)


def test_a_gap_raises_and_the_batch_leaves_nothing(system: System) -> None:
    log = history().log
    task_events = [e for e in log if e.aggregate_type == "SupervisedTask"]
    first = task_events[0]
    third = next(e for e in task_events if e.aggregate_id == first.aggregate_id and e.version == 3)
    others = [e for e in log if e.aggregate_type == "Unit"]
    projection = next(p for p in system.projections if p.name == "tasks")
    with pytest.raises(ProjectionGap):
        system.view_recorder.apply_consumed(
            [*others, first, third], projection, offsets_statement=None, offsets=[]
        )
    assert every_view(system)[applied_view("tasks")] == {}
    assert every_view(system)[projection.views[0]] == {}


@pytest.fixture
def pg_system(clock: ManualClock) -> Iterator[System]:
    schema = f"t_{uuid4().hex[:12]}"
    built = bootstrap(Settings(store=POSTGRES_URL, store_schema=schema), clock=clock)
    try:
        yield built
    finally:
        built.close()
        drop_schema(schema)


def test_a_batch_reads_its_documents_in_two_round_trips(
    system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    # reads, then reads_next (the cells found from the task documents): no document of
    # the history is read on its own while the batch applies.
    loads: list[int] = []
    original = view_store._Batch._load

    def counted(self: view_store._Batch, pairs: Sequence[tuple[str, str]]) -> None:
        loads.append(len(pairs))
        original(self, pairs)

    log = history().log
    # A chain established in the batch itself has no document to find its persons from.
    first_link = next(i for i, e in enumerate(log) if e.type == "ChainLinkAdded")
    system.view_recorder.apply(log[:first_link], system.projections)
    monkeypatch.setattr(view_store._Batch, "_load", counted)
    system.view_recorder.apply(log[first_link:], system.projections)
    assert len(loads) == 2, loads
    assert every_view(system) == in_memory(system, log)


@pytest.mark.postgres
@pytest.mark.parametrize("size", [7, 1000])
def test_every_projection_in_one_transaction_gives_the_in_memory_documents(
    pg_system: System, size: int
) -> None:
    # The projection host's path: one batch (one document cache) for all seven.
    log = history().log
    for start in range(0, len(log), size):
        begin_all(pg_system, log[start : start + size]).settle()
    assert every_view(pg_system) == in_memory(pg_system, log)


@pytest.mark.postgres
def test_a_commit_that_fails_after_it_was_sent_leaves_nothing(pg_system: System) -> None:
    """The projection host sends a poll's COMMIT and hears its outcome at the next poll."""
    state = BusState(pg_system.app.factory.datastore)  # type: ignore[attr-defined]
    state.create_tables()
    log = history().log
    statement = state.store_offsets_statement()
    kept = KeptDocuments(10_000)  # the host's: what it holds must not outlive the failure
    begin_all(pg_system, log[:30], statement, [("g", "topic", 0, "e1", 30, 30)], kept).settle()
    before = every_view(pg_system)
    schema = pg_system.settings.store_schema
    assert schema
    with psycopg.connect(POSTGRES_URL, autocommit=True) as other:
        # Another transaction holds the offsets row: the next one's upsert waits on it,
        # after begin_consumed_together has returned, until its backend is terminated.
        other.execute("BEGIN")
        other.execute(
            sql.SQL("SELECT * FROM {0}.tiaokuai_consumer_offsets FOR UPDATE").format(
                sql.Identifier(schema)
            )
        )
        rest = [("g", "topic", 0, "e1", len(log), len(log))]
        pending = begin_all(pg_system, log[30:], statement, rest, kept)
        with psycopg.connect(POSTGRES_URL, autocommit=True) as killer:
            for _ in range(100):
                row = killer.execute(
                    "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE %s",
                    ("%tiaokuai_consumer_offsets%",),
                ).fetchone()
                if row:
                    break
                time.sleep(0.05)
            assert row, "the view transaction never waited on the offsets row"
            killer.execute("SELECT pg_terminate_backend(%s)", (row[0],))
        other.execute("ROLLBACK")
    with pytest.raises(STORE_ERRORS):
        pending.settle()
    assert len(kept) == 0
    assert state.partition_offsets("g", "topic")[0].next_offset == 30
    assert every_view(pg_system) == before
    # The pool goes on with a good connection; the poll applies on the next try.
    begin_all(pg_system, log[30:], statement, rest, kept).settle()
    assert every_view(pg_system) == in_memory(pg_system, log)


@pytest.mark.postgres
def test_offsets_commit_with_the_documents_or_not_at_all(pg_system: System) -> None:
    state = BusState(pg_system.app.factory.datastore)  # type: ignore[attr-defined]
    state.create_tables()
    log = history().log
    projection = next(p for p in pg_system.projections if p.name == "linkage")
    statement = state.store_offsets_statement()
    offsets = [("g", "topic", 0, "e1", 10, 5), ("g", "topic", 1, "e1", 20, 9)]
    applied_to = [e for e in log if e.aggregate_id != "task-0" or e.version <= 2]
    pg_system.view_recorder.apply_consumed(
        applied_to[:40], projection, offsets_statement=statement, offsets=offsets
    )
    stored = state.partition_offsets("g", "topic")
    assert {p: (o.next_offset, o.max_position) for p, o in stored.items()} == {
        0: (10, 5),
        1: (20, 9),
    }
    before = every_view(pg_system)
    # task-0 stands at version 2 (at most): its version 4 is a gap.
    gap = next(e for e in log if e.aggregate_id == "task-0" and e.version == 4)
    with pytest.raises(ProjectionGap):
        pg_system.view_recorder.apply_consumed(
            [*applied_to[40:50], gap],
            projection,
            offsets_statement=statement,
            offsets=[("g", "topic", 0, "e1", 99, 99)],
        )
    assert state.partition_offsets("g", "topic")[0].next_offset == 10
    assert every_view(pg_system) == before


TRICKY_TEXT = '督办任务：快递🚚 𠀀 "引号" \\ 反斜杠\n换行 \u2028 ☃'
"""Chinese, characters beyond the BMP, quotes, a backslash, a newline, U+2028."""


def test_documents_round_trip_as_utf8_whatever_their_text(system: System) -> None:
    recorder = system.view_recorder
    doc = {"title": TRICKY_TEXT, "weight": 1.5, "rows": [{"none": None, "flag": True}]}
    recorder.put_doc("probe_view", "unit/1", doc)
    recorder.put_doc("probe_view", "unit/2", {**doc, "weight": 2})
    assert recorder.read_get("probe_view", "unit/1") == doc
    assert [key for key, _ in recorder.read_scan("probe_view", "unit/")] == ["unit/1", "unit/2"]
    assert recorder.read_page("probe_view", "unit/1", 10) == [("unit/2", {**doc, "weight": 2})]
    if isinstance(recorder, PostgresViewRecorder):
        # Stored as jsonb the server can read, not as the text of some bytes.
        schema = recorder.datastore.schema
        with psycopg.connect(POSTGRES_URL) as conn:
            row = conn.execute(
                sql.SQL(
                    "SELECT doc->>'title', jsonb_typeof(doc->'weight') FROM {0}.tiaokuai_views "
                    "WHERE view = 'probe_view' AND key = 'unit/1'"
                ).format(sql.Identifier(schema))
            ).fetchone()
        assert row == (TRICKY_TEXT, "number")


def test_a_view_read_page_by_page_is_every_document_once_in_key_order(system: System) -> None:
    """The replay compares views page by page (keyset paging): no document lost or doubled."""
    from infra.replay import _pages

    keys = [f"k{n:03d}" for n in (7, 1, 12, 3, 10, 5, 2)]
    for key in keys:
        system.view_recorder.put_doc("paged", key, {"key": key})
    system.view_recorder.put_doc("paged-other", "k000", {"other": True})
    assert system.view_recorder.read_page("paged", "k003", 2) == [
        ("k005", {"key": "k005"}),
        ("k007", {"key": "k007"}),
    ]
    for page in (1, 2, 3, 7, 100):
        assert list(_pages(system, "paged", page)) == [(k, {"key": k}) for k in sorted(keys)]


# ------------------------------------------------ documents kept between transactions
def counting_loads(monkeypatch: pytest.MonkeyPatch) -> Counter[tuple[str, str]]:
    """Every document pair the view batches read from the database, with how often."""
    loads: Counter[tuple[str, str]] = Counter()
    original = view_store._Batch._load

    def counted(self: view_store._Batch, pairs: Sequence[tuple[str, str]]) -> None:
        loads.update(pairs)
        original(self, pairs)

    monkeypatch.setattr(view_store._Batch, "_load", counted)
    return loads


def documents_read(loads: Counter[tuple[str, str]]) -> Counter[tuple[str, str]]:
    """The reads of view documents, without the writer stamps (read every transaction)."""
    return Counter({pair: n for pair, n in loads.items() if not pair[0].startswith("writer:")})


@pytest.mark.postgres
@pytest.mark.parametrize("keep", [False, True])
def test_kept_documents_are_read_once_and_give_the_in_memory_documents(
    pg_system: System, monkeypatch: pytest.MonkeyPatch, keep: bool
) -> None:
    loads = counting_loads(monkeypatch)
    log = history().log
    kept = KeptDocuments(10_000) if keep else None
    for start in range(0, len(log), 7):
        begin_all(pg_system, log[start : start + 7], kept=kept).settle()
    most = max(documents_read(loads).values())
    # Without them, a document many batches touch is read by each of those batches.
    assert most == 1 if keep else most > 1
    assert every_view(pg_system) == in_memory(pg_system, log)


@pytest.mark.postgres
def test_another_writer_between_two_transactions_is_noticed(pg_system: System) -> None:
    # Another member of the group (or a lone worker after a batch split) applies the
    # middle of the log: the host's kept documents are stale, and its stamps show it.
    log = history().log
    kept = KeptDocuments(10_000)
    begin_all(pg_system, log[:40], kept=kept).settle()
    begin_all(pg_system, log[40:80]).settle()
    begin_all(pg_system, log[80:], kept=kept).settle()
    assert every_view(pg_system) == in_memory(pg_system, log)


@pytest.mark.postgres
def test_a_reset_projection_is_noticed(pg_system: System) -> None:
    log = history().log
    kept = KeptDocuments(10_000)
    begin_all(pg_system, log[:60], kept=kept).settle()
    tasks = next(p for p in pg_system.projections if p.name == "tasks")
    pg_system.view_recorder.reset(tasks)
    # From the start again: the reset projection applies all, the others skip what they had.
    begin_all(pg_system, log, kept=kept).settle()
    assert every_view(pg_system) == in_memory(pg_system, log)


@pytest.mark.postgres
def test_a_failed_transaction_forgets_the_kept_documents(pg_system: System) -> None:
    log = history().log
    kept = KeptDocuments(10_000)
    begin_all(pg_system, log[:30], kept=kept).settle()
    assert len(kept) > 0
    task_events = [e for e in log[30:] if e.aggregate_type == "SupervisedTask"]
    # Documents are changed in place before the gap is met: none of them may stay kept.
    with pytest.raises(ProjectionGap):
        begin_all(pg_system, [*log[30:60], task_events[-1]], kept=kept)
    assert len(kept) == 0
    begin_all(pg_system, log[30:], kept=kept).settle()
    assert every_view(pg_system) == in_memory(pg_system, log)


@pytest.mark.postgres
def test_kept_documents_stay_within_their_limit(pg_system: System) -> None:
    log = history().log
    kept = KeptDocuments(40)
    biggest = 0
    for start in range(0, len(log), 5):
        begin_all(pg_system, log[start : start + 5], kept=kept).settle()
        biggest = max(biggest, len(kept))
    # Trimmed before each transaction; one transaction of five events adds a few dozen.
    assert 0 < biggest < 40 + 100
    assert every_view(pg_system) == in_memory(pg_system, log)


# ------------------------------------------------ aggregate types a projection takes
def test_a_projection_records_only_the_aggregate_types_it_takes(system: System) -> None:
    log = history().log
    consume(system, log, 50)
    kinds = {e.aggregate_type for e in log}
    for projection in system.projections:
        recorded = dict(system.view_recorder.read_scan(applied_view(projection.name), ""))
        assert set(recorded) == {e.aggregate_id for e in log if projection.takes(e.aggregate_type)}
    # The history holds events that some projection passes over.
    assert any(not p.takes(kind) for p in system.projections for kind in kinds)


def issue_one_task(system: System) -> int:
    """Two units and a task between them; the task's position in the store."""
    secretariat = Actor("sec-test", Role.SECRETARIAT, None)
    for slug, kind in (("postal", UnitKind.DEPARTMENT), ("town-a", UnitKind.TOWN)):
        system.app.register_unit(slug=slug, name=slug, kind=kind, actor=secretariat)
    return system.app.issue_task(
        title="驿站",
        industry="express",
        lead_unit="postal",
        co_units=[],
        towns=["town-a"],
        deadline=system.app.now() + timedelta(days=5),
        weight=1.0,
        meeting_id=None,
        resolution_id=None,
        actor=secretariat,
    ).position


@pytest.mark.postgres
def test_read_your_writes_waits_only_on_projections_taking_the_write(clock: ManualClock) -> None:
    schema = f"t_{uuid4().hex[:12]}"
    # A bus nobody listens on: no worker applies anything, and nothing needs the broker.
    settings = Settings(store=POSTGRES_URL, store_schema=schema, bus="kafka://127.0.0.1:9")
    built = bootstrap(settings, clock=clock)
    try:
        task = issue_one_task(built)
        # The directory takes only unit events: the task cannot change it, nothing to wait
        # for. The task list takes it and no worker runs: that read is not fresh.
        assert built.wait_for(task, ["directory"], timeout=5)
        assert not built.wait_for(task, ["tasks"], timeout=0.2)
    finally:
        built.close()
        drop_schema(schema)
