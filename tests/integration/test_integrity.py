"""The hash chain over the stored events, on SQLite and on PostgreSQL.

A real history is written through the application services; then the tables are
tampered with directly in SQL, around the application, as an insider with database
access would: an event's bytes edited, an event deleted, two swapped, one forged into
a free position. Each time ``verify`` must name the first bad position and what
happened there. A rewrite of the whole chain (events and seals recomputed consistently)
passes a plain verify and fails only against a checkpoint kept from before.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
import struct
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from psycopg import sql

from api.errors import install_error_handlers
from api.routes.integrity import router
from domain.actor import Actor, Role
from domain.chains import LinkRole
from domain.errors import AlreadyExists
from domain.units import UnitKind
from infra.bootstrap import System, bootstrap
from infra.clock import ManualClock
from infra.integrity import (
    GENESIS,
    Checkpoint,
    Sealer,
    chain_hash,
    sealing_recorder_topic,
    state_digest,
    system_sealer,
)
from tests.conftest import POSTGRES_URL, SettingsFactory
from workers.audit_cli import add_integrity_commands
from workers.cli import _common

SEC = Actor("test:secretariat", Role.SECRETARIAT)


def liaison(unit: str) -> Actor:
    return Actor(f"test:{unit}", Role.LIAISON, unit)


@pytest.fixture
def system(
    make_settings: SettingsFactory, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> Iterator[System]:
    """A fresh store whose recorder seals every event in the transaction that stores it."""
    settings = make_settings()
    module = settings.eventsourcing_env()["PERSISTENCE_MODULE"]
    monkeypatch.setenv("APPLICATION_RECORDER_TOPIC", sealing_recorder_topic(module))
    built = bootstrap(settings, clock=clock)
    yield built
    built.close()


def write_history(system: System, clock: ManualClock) -> None:
    """A morning of the joint conference: units, a meeting, a task, a chain, a committee."""
    app = system.app
    for slug, kind in [
        ("postal", UnitKind.DEPARTMENT),
        ("commerce", UnitKind.DEPARTMENT),
        ("transport", UnitKind.DEPARTMENT),
        ("town-chengguan", UnitKind.TOWN),
        ("town-xinqiao", UnitKind.TOWN),
    ]:
        app.register_unit(slug=slug, name=f"单位 {slug}", kind=kind, actor=SEC)
    meeting = app.convene_meeting(title="联席会议（第一次）", held_at=app.now(), actor=SEC)
    meeting_id = meeting.aggregate.id
    app.adopt_resolution(
        meeting_id=meeting_id, text="建立快递员权益保障机制", actor=SEC, expected_version=None
    )
    task = app.issue_task(
        title="快递员权益保障：建立“小哥驿站”",
        industry="express",
        lead_unit="postal",
        co_units=["commerce"],
        towns=["town-chengguan"],
        deadline=app.now() + timedelta(days=5),
        weight=2.0,
        meeting_id=meeting_id,
        resolution_id="R1",
        actor=SEC,
    ).aggregate
    clock.advance(timedelta(hours=1))
    app.sign_for(task_id=task.id, actor=liaison("postal"))
    app.sign_for(task_id=task.id, actor=liaison("commerce"))
    app.report_progress(task_id=task.id, note="站点选址完成", percent=40, actor=liaison("postal"))
    app.urge_task(task_id=task.id, note="请加快进度", actor=SEC)
    app.establish_chain(industry="express", name="快递行业责任链", actor=SEC)
    app.add_chain_link(
        industry="express",
        unit="postal",
        role=LinkRole.INDUSTRY_COMPETENT,
        responsible_person="张三",
        duties=["行业监管"],
        actor=SEC,
    )
    app.establish_committee(
        name="快递行业党委", industry="express", supervising_unit="postal", actor=SEC
    )


def more_units(system: System, *slugs: str) -> None:
    for slug in slugs:
        system.app.register_unit(slug=slug, name=slug, kind=UnitKind.DEPARTMENT, actor=SEC)


# ------------------------------------------------------------ the tamperer
class RawStore:
    """The store's tables reached around the application, in SQL."""

    def __init__(self, system: System) -> None:
        self.settings = system.settings
        self.postgres = system.settings.store is not None
        table = system.app.recorder.events_table_name  # type: ignore[attr-defined]
        if self.postgres:
            schema = system.settings.store_schema or "public"
            self.events = sql.Identifier(schema, table).as_string(None)
            self.seals = sql.Identifier(schema, "tiaokuai_seals").as_string(None)
            self.id = "notification_id"
        else:
            self.events, self.seals, self.id = table, "tiaokuai_seals", "rowid"

    def run(self, *statements: tuple[str, tuple[Any, ...]]) -> list[Any]:
        """Run the statements in one transaction; the rows of the last."""
        names = {"events": self.events, "seals": self.seals, "id": self.id}
        rows: list[Any] = []
        if self.postgres:
            with psycopg.connect(POSTGRES_URL) as conn:
                for text, params in statements:
                    cursor = conn.execute(text.format(**names).replace("?", "%s"), params)
                    rows = cursor.fetchall() if cursor.description else []
            return rows
        lite = sqlite3.connect(self.settings.sqlite_path)
        try:
            with lite:
                for text, params in statements:
                    rows = lite.execute(text.format(**names), params).fetchall()
        finally:
            lite.close()
        return rows

    def positions(self) -> list[int]:
        return [int(r[0]) for r in self.run(("SELECT {id} FROM {events} ORDER BY {id}", ()))]

    def sealed_positions(self) -> list[int]:
        return [int(r[0]) for r in self.run(("SELECT position FROM {seals} ORDER BY position", ()))]

    def row(self, position: int) -> tuple[Any, int, str, bytes]:
        found = self.run(
            (
                "SELECT originator_id, originator_version, topic, state FROM {events} "
                "WHERE {id} = ?",
                (position,),
            )
        )
        originator_id, version, topic, state = found[0]
        return originator_id, int(version), str(topic), bytes(state)

    def set_state(self, position: int, state: bytes) -> None:
        self.run(("UPDATE {events} SET state = ? WHERE {id} = ?", (state, position)))

    def flip_a_byte(self, position: int) -> None:
        state = bytearray(self.row(position)[3])
        state[len(state) // 2] ^= 0x01
        self.set_state(position, bytes(state))

    def set_topic(self, position: int, topic: str) -> None:
        self.run(("UPDATE {events} SET topic = ? WHERE {id} = ?", (topic, position)))

    def delete(self, position: int) -> None:
        self.run(("DELETE FROM {events} WHERE {id} = ?", (position,)))

    def swap_rows(self, a: int, b: int) -> None:
        """Two events change places in the log (their positions swapped)."""
        self.run(
            ("UPDATE {events} SET {id} = -1 WHERE {id} = ?", (a,)),
            ("UPDATE {events} SET {id} = ? WHERE {id} = ?", (a, b)),
            ("UPDATE {events} SET {id} = ? WHERE {id} = -1", (b,)),
        )

    def swap_states(self, a: int, b: int) -> None:
        state_a, state_b = self.row(a)[3], self.row(b)[3]
        self.run(
            ("UPDATE {events} SET state = ? WHERE {id} = ?", (state_b, a)),
            ("UPDATE {events} SET state = ? WHERE {id} = ?", (state_a, b)),
        )

    def insert_copy(self, source: int, position: int) -> None:
        """Forge an event at a free ``position``: another event's row, a new aggregate id."""
        _, version, topic, state = self.row(source)
        forged = uuid.uuid4()
        originator: Any = forged if self.postgres else forged.hex
        self.run(
            (
                "INSERT INTO {events} ({id}, originator_id, originator_version, topic, state) "
                "VALUES (?, ?, ?, ?, ?)",
                (position, originator, version, topic, state),
            )
        )

    def move_up(self, position: int) -> int:
        """Move an event one position up, leaving a hole (like a rolled-back insert)."""
        self.run(("UPDATE {events} SET {id} = {id} + 1 WHERE {id} = ?", (position,)))
        return position + 1

    def edit_seal(self, position: int) -> None:
        self.run(("UPDATE {seals} SET hash = ? WHERE position = ?", (bytes(32), position)))

    def delete_seal(self, position: int) -> None:
        self.run(("DELETE FROM {seals} WHERE position = ?", (position,)))

    def rewrite_chain_from(self, position: int) -> None:
        """What a careful insider does: recompute every seal from ``position`` on."""
        before = self.run(
            (
                "SELECT hash FROM {seals} WHERE position < ? ORDER BY position DESC LIMIT 1",
                (position,),
            )
        )
        previous = bytes(before[0][0]) if before else GENESIS
        rows = self.run(
            (
                "SELECT {id}, originator_id, originator_version, topic, state FROM {events} "
                "WHERE {id} >= ? ORDER BY {id}",
                (position,),
            )
        )
        updates = []
        for at, originator_id, version, topic, state in rows:
            text = str(originator_id) if self.postgres else str(uuid.UUID(originator_id))
            previous = chain_hash(previous, int(at), text, int(version), topic, bytes(state))
            updates.append(
                (
                    "UPDATE {seals} SET hash = ?, state_digest = ? WHERE position = ?",
                    (previous, state_digest(bytes(state)), int(at)),
                )
            )
        self.run(*updates)

    def cut_after(self, position: int) -> None:
        """Delete every event and seal after ``position``: a consistent truncation."""
        self.run(
            ("DELETE FROM {events} WHERE {id} > ?", (position,)),
            ("DELETE FROM {seals} WHERE position > ?", (position,)),
        )


def leave_gap(system: System, raw: RawStore) -> int:
    """A free position below the head, as PostgreSQL leaves after a rolled-back insert."""
    head = system.app.head()
    if raw.postgres:
        # A refused duplicate still spends a value of the notification id sequence.
        with pytest.raises(AlreadyExists):
            system.app.register_unit(
                slug="postal", name="again", kind=UnitKind.DEPARTMENT, actor=SEC
            )
        more_units(system, "gap-after")
        assert raw.positions()[-1] > head + 1
        return head + 1
    # SQLite never leaves holes itself: store one event unsealed and move it up by one.
    recorder: Any = system.app.recorder
    listeners = list(system.app.saved_listeners)
    system.app.saved_listeners.clear()
    recorder.seal_on_insert = False
    try:
        more_units(system, "gap-after")
        raw.move_up(head + 1)
    finally:
        recorder.seal_on_insert = True
        system.app.saved_listeners.extend(listeners)
    system_sealer(system).seal_pending()
    return head + 1


# ------------------------------------------------------------- construction
def test_the_hash_construction_has_a_known_vector() -> None:
    originator = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
    topic = "domain.units:Unit.Registered"
    state = '{"name":"邮政"}'.encode()
    h1 = chain_hash(GENESIS, 1, originator, 1, topic, state)
    # The same bytes assembled by hand, as docs/audit.md writes them down.
    u64 = struct.Struct(">Q").pack
    by_hand = hashlib.sha256(
        bytes(32)
        + u64(1)
        + u64(len(originator))
        + originator.encode()
        + u64(1)
        + u64(len(topic))
        + topic.encode()
        + u64(len(state))
        + state
    ).digest()
    assert h1 == by_hand
    assert h1.hex() == "6cba344ac5c77614c737d6bc348d5efb744701cc1e7298cce188af8c6b4ed9f7"
    h2 = chain_hash(h1, 3, originator, 2, "domain.units:Unit.Renamed", b"")
    assert h2.hex() == "1460e92b570ae562f46cc7efdc27cde1ded55ecb2d0c9711c4f3afae3732ab18"
    # Every field counts, and the length prefixes keep fields from sliding into each other.
    assert chain_hash(GENESIS, 2, originator, 1, topic, state) != h1
    assert chain_hash(GENESIS, 1, originator, 2, topic, state) != h1
    assert chain_hash(GENESIS, 1, originator, 1, topic + "x", state[1:]) != h1
    assert chain_hash(h2, 1, originator, 1, topic, state) != h1


def test_a_checkpoint_prints_and_parses() -> None:
    checkpoint = Checkpoint(42, "ab" * 32)
    assert str(checkpoint) == "tiaokuai-checkpoint:42:" + "ab" * 32
    assert Checkpoint.parse(f"  {checkpoint}\n") == checkpoint
    assert Checkpoint.parse(str(checkpoint).upper().replace("TIAOKUAI", "tiaokuai")) == checkpoint
    for bad in ["", "tiaokuai-checkpoint:42", "tiaokuai-checkpoint:x:" + "ab" * 32,
                "tiaokuai-checkpoint:42:" + "ab" * 31, "other:42:" + "ab" * 32,
                "tiaokuai-checkpoint:-1:" + "ab" * 32]:  # fmt: skip
        with pytest.raises(ValueError):
            Checkpoint.parse(bad)


# ------------------------------------------------------------ verification
def test_a_real_history_is_sealed_as_it_is_stored(system: System, clock: ManualClock) -> None:
    write_history(system, clock)
    raw = RawStore(system)
    positions = raw.positions()
    assert len(positions) >= 15
    # Sealed in the transactions that stored them: nothing is pending.
    assert raw.sealed_positions() == positions
    sealer = system_sealer(system)
    assert sealer.seal_pending() == 0
    report = sealer.verify()
    assert report.ok, report.summary()
    assert report.checked == len(positions)
    assert report.head_position == report.sealed_head == positions[-1]
    assert report.unsealed == 0 and report.first_failure is None
    assert report.head_hash == sealer.head().hash
    # Small batches walk the same chain.
    assert sealer.verify(batch=3).as_dict() == report.as_dict()


Tamper = Callable[[RawStore, list[int]], tuple[int, str]]


def edit_state(raw: RawStore, p: list[int]) -> tuple[int, str]:
    raw.flip_a_byte(p[6])
    return p[6], "edited"


def edit_topic(raw: RawStore, p: list[int]) -> tuple[int, str]:
    raw.set_topic(p[4], raw.row(p[5])[2])
    return p[4], "edited"


def delete_one(raw: RawStore, p: list[int]) -> tuple[int, str]:
    raw.delete(p[3])
    return p[3], "deleted"


def delete_the_last(raw: RawStore, p: list[int]) -> tuple[int, str]:
    raw.delete(p[-1])
    return p[-1], "deleted"


def swap_rows(raw: RawStore, p: list[int]) -> tuple[int, str]:
    raw.swap_rows(p[2], p[7])
    return p[2], "reordered"


def swap_states(raw: RawStore, p: list[int]) -> tuple[int, str]:
    raw.swap_states(p[5], p[9])
    return p[5], "reordered"


def two_at_once(raw: RawStore, p: list[int]) -> tuple[int, str]:
    raw.delete(p[8])
    raw.flip_a_byte(p[4])
    return p[4], "edited"


def edit_a_seal(raw: RawStore, p: list[int]) -> tuple[int, str]:
    raw.edit_seal(p[5])
    return p[5], "edited"


def remove_a_seal(raw: RawStore, p: list[int]) -> tuple[int, str]:
    raw.delete_seal(p[5])
    return p[5], "inserted"


@pytest.mark.parametrize(
    "tamper",
    [
        edit_state,
        edit_topic,
        delete_one,
        delete_the_last,
        swap_rows,
        swap_states,
        two_at_once,
        edit_a_seal,
        remove_a_seal,
    ],
)
def test_verify_names_the_first_bad_position(
    system: System, clock: ManualClock, tamper: Tamper
) -> None:
    write_history(system, clock)
    raw = RawStore(system)
    positions = raw.positions()
    sealer = system_sealer(system)
    assert sealer.verify().ok

    position, kind = tamper(raw, positions)

    report = sealer.verify()
    assert not report.ok
    assert report.first_failure is not None, report.summary()
    assert (report.first_failure.position, report.first_failure.kind) == (position, kind), (
        report.summary()
    )
    assert report.checked == positions.index(position)
    assert f"position {position}" in report.first_failure.detail
    if tamper is edit_topic:
        assert "state bytes are the sealed ones" in report.first_failure.detail
    if tamper in (swap_rows, swap_states):
        moved = {swap_rows: positions[7], swap_states: positions[9]}[tamper]
        assert f"sealed at position {moved}" in report.first_failure.detail


def test_an_inserted_event_is_named(system: System, clock: ManualClock) -> None:
    write_history(system, clock)
    raw = RawStore(system)
    gap = leave_gap(system, raw)
    more_units(system, "after-gap-1", "after-gap-2")
    sealer = system_sealer(system)
    report = sealer.verify()
    assert report.ok, report.summary()  # a gap is not tampering
    assert gap not in raw.positions() and gap < report.sealed_head

    raw.insert_copy(source=raw.positions()[3], position=gap)

    report = sealer.verify()
    assert report.first_failure is not None
    assert (report.first_failure.position, report.first_failure.kind) == (gap, "inserted")
    assert "never sealed" in report.first_failure.detail


def test_events_stored_unsealed_are_counted_then_sealed(system: System, clock: ManualClock) -> None:
    """Events the sealing recorder did not seal (switched off here) wait, counted."""
    write_history(system, clock)
    recorder: Any = system.app.recorder
    recorder.seal_on_insert = False
    more_units(system, "late-1", "late-2")
    sealer = system_sealer(system)
    report = sealer.verify()
    assert report.ok and report.unsealed == 2, report.summary()
    assert sealer.seal_pending() == 2
    report = sealer.verify()
    assert report.ok and report.unsealed == 0
    assert report.sealed_head == RawStore(system).positions()[-1]
    # A backlog left unsealed is sealed by the next write's own transaction.
    more_units(system, "late-3")
    recorder.seal_on_insert = True
    more_units(system, "late-4")
    raw = RawStore(system)
    assert raw.sealed_positions() == raw.positions()
    assert sealer.seal_pending() == 0 and sealer.verify().ok


def test_a_plain_recorder_is_sealed_by_seal_pending(
    make_settings: SettingsFactory, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the sealing recorder: ``after_save`` and ``seal_pending`` seal the same chain."""
    monkeypatch.delenv("APPLICATION_RECORDER_TOPIC", raising=False)
    plain = bootstrap(make_settings(), clock=clock)
    try:
        recorder: Any = plain.app.recorder
        if hasattr(recorder, "seal_on_insert"):  # the sealing recorder is wired by default
            recorder.seal_on_insert = False
        sealer = Sealer.for_system(plain)
        plain.app.saved_listeners.append(sealer.after_save)
        write_history(plain, clock)
        raw = RawStore(plain)
        assert raw.sealed_positions() == raw.positions()
        plain.app.saved_listeners.remove(sealer.after_save)
        more_units(plain, "late-1")
        assert sealer.verify().unsealed == 1
        assert sealer.seal_pending() == 1
        report = sealer.verify()
        assert report.ok and report.checked == len(raw.positions()), report.summary()
        raw.flip_a_byte(raw.positions()[2])
        failure = sealer.verify().first_failure
        assert failure is not None and failure.position == raw.positions()[2]
    finally:
        plain.close()


def test_the_database_and_python_agree_on_unusual_rows(system: System, clock: ManualClock) -> None:
    """Rows the application never writes (empty state, no topic, non-ASCII) seal alike."""
    more_units(system, "first")
    raw = RawStore(system)
    head = raw.positions()[-1]
    originator = uuid.uuid4()
    raw.run(
        (
            "INSERT INTO {events} ({id}, originator_id, originator_version, topic, state) "
            "VALUES (?, ?, ?, ?, ?)",
            (head + 1, originator if raw.postgres else originator.hex, 7, "主题:事件", b""),
        ),
        (
            "INSERT INTO {events} ({id}, originator_id, originator_version, topic, state) "
            "VALUES (?, ?, ?, ?, ?)",
            (head + 2, uuid.uuid4() if raw.postgres else uuid.uuid4().hex, 1, "", b"\x00\xff"),
        ),
    )
    sealer = system_sealer(system)
    assert sealer.seal_pending() == 2
    report = sealer.verify()
    assert report.ok and report.checked == 3, report.summary()


# ------------------------------------------------------------- checkpoints
def test_a_whole_chain_rewrite_fails_only_against_an_earlier_checkpoint(
    system: System, clock: ManualClock
) -> None:
    write_history(system, clock)
    sealer = system_sealer(system)
    early = sealer.checkpoint()
    more_units(system, "later-1", "later-2", "later-3")
    kept = sealer.checkpoint()
    more_units(system, "latest")
    assert sealer.verify(against=early).ok and sealer.verify(against=kept).ok
    assert [c.checkpoint for c in sealer.recorded_checkpoints()] == [kept, early]

    raw = RawStore(system)
    target = raw.positions()[raw.positions().index(early.position) + 2]  # after early
    raw.flip_a_byte(target)
    assert sealer.verify().first_failure is not None  # edited, as long as seals are intact
    raw.rewrite_chain_from(target)

    plain = sealer.verify()
    assert plain.ok, plain.summary()  # events and seals agree again
    report = sealer.verify(against=kept)
    assert not report.ok and report.first_failure is not None
    assert (report.first_failure.position, report.first_failure.kind) == (
        kept.position,
        "checkpoint_mismatch",
    )
    assert kept.hash in report.first_failure.detail
    # What the docs say it does not protect: a rewrite after the last external checkpoint.
    assert sealer.verify(against=early).ok


def test_a_consistent_truncation_fails_against_a_later_checkpoint(
    system: System, clock: ManualClock
) -> None:
    write_history(system, clock)
    sealer = system_sealer(system)
    kept = sealer.checkpoint()
    raw = RawStore(system)
    raw.cut_after(raw.positions()[-4])
    assert sealer.verify().ok
    failure = sealer.verify(against=kept).first_failure
    assert failure is not None
    assert (failure.position, failure.kind) == (kept.position, "checkpoint_mismatch")
    assert "beyond the sealed head" in failure.detail


def test_a_checkpoint_position_missing_from_a_rewritten_chain_fails(
    system: System, clock: ManualClock
) -> None:
    write_history(system, clock)
    sealer = system_sealer(system)
    raw = RawStore(system)
    position = raw.positions()[5]
    at_five = Checkpoint(position, sealer.verify().head_hash)  # any hash: its position goes
    raw.run(
        ("DELETE FROM {events} WHERE {id} = ?", (position,)),
        ("DELETE FROM {seals} WHERE position = ?", (position,)),
    )
    raw.rewrite_chain_from(position)
    assert sealer.verify().ok
    failure = sealer.verify(against=at_five).first_failure
    assert failure is not None
    assert (failure.position, failure.kind) == (position, "checkpoint_mismatch")
    assert "not in the sealed chain" in failure.detail


def test_a_checkpoint_of_an_empty_store_and_a_foreign_one(system: System) -> None:
    sealer = system_sealer(system)
    empty = sealer.checkpoint()
    assert empty == Checkpoint(0, "00" * 32)
    more_units(system, "first")
    assert sealer.verify(against=empty).ok
    foreign = Checkpoint(RawStore(system).positions()[0], "ab" * 32)
    failure = sealer.verify(against=foreign).first_failure
    assert failure is not None and failure.kind == "checkpoint_mismatch"


# ------------------------------------------------------------- concurrency
@pytest.mark.parametrize("in_transaction", [True, False], ids=["in-txn", "after-save"])
def test_concurrent_sealers_keep_one_unbroken_chain(
    system: System,
    clock: ManualClock,
    make_settings: SettingsFactory,
    in_transaction: bool,
) -> None:
    """Writers in four threads; two other "processes" sealing all the while."""
    recorder: Any = system.app.recorder
    recorder.seal_on_insert = in_transaction
    sealer = system_sealer(system)
    if not in_transaction:
        system.app.saved_listeners.append(sealer.after_save)
    more_units(system, "postal", "commerce")
    system.app.register_unit(slug="town-chengguan", name="城关", kind=UnitKind.TOWN, actor=SEC)
    tasks = [
        system.app.issue_task(
            title=f"task {n}",
            industry="express",
            lead_unit="postal",
            co_units=["commerce"],
            towns=["town-chengguan"],
            deadline=clock.now() + timedelta(days=3),
            weight=1.0,
            meeting_id=None,
            resolution_id=None,
            actor=SEC,
        ).aggregate.id
        for n in range(4)
    ]
    others = [bootstrap(make_settings(), clock=clock) for _ in range(2)]
    stop = threading.Event()
    errors: list[BaseException] = []
    sealed = [0, 0]

    def write(task_id: uuid.UUID) -> None:
        try:
            for n in range(15):
                system.app.urge_task(task_id=task_id, note=f"urge {n}", actor=SEC)
        except BaseException as error:
            errors.append(error)

    def seal(n: int) -> None:
        other = Sealer.for_system(others[n])
        try:
            while not stop.is_set():
                sealed[n] += other.seal_pending(batch=7)
        except BaseException as error:
            errors.append(error)

    writers = [threading.Thread(target=write, args=(t,)) for t in tasks]
    sealers = [threading.Thread(target=seal, args=(n,)) for n in range(2)]
    try:
        for thread in [*sealers, *writers]:
            thread.start()
        for thread in writers:
            thread.join(timeout=120)
        stop.set()
        for thread in sealers:
            thread.join(timeout=30)
    finally:
        for other in others:
            other.close()
    assert not errors, errors
    sealer.seal_pending()
    raw = RawStore(system)
    positions = raw.positions()
    assert len(positions) == 3 + 4 + 4 * 15
    assert raw.sealed_positions() == positions
    report = sealer.verify()
    assert report.ok and report.checked == len(positions) and report.unsealed == 0, report.summary()


# ------------------------------------------------------------ HTTP and CLI
def test_get_audit_integrity(system: System, clock: ManualClock) -> None:
    write_history(system, clock)
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(router)
    app.state.system = system
    client = TestClient(app)

    def bearer(role: Role, unit: str | None = None) -> dict[str, str]:
        _, token = system.tokens.issue(role=role, unit=unit, name=f"test {role.value}")
        return {"Authorization": f"Bearer {token}"}

    auditor, secretariat = bearer(Role.AUDITOR), bearer(Role.SECRETARIAT)
    raw = RawStore(system)
    body = client.get("/audit/integrity", headers=auditor).json()
    assert body["ok"] is True and body["checked"] == len(raw.positions())
    assert body["first_failure"] is None and body["unsealed"] == 0
    assert body["head"]["position"] == raw.positions()[-1]
    assert body["snapshots"]["ok"] is True and body["snapshots"]["mismatches"] == []
    assert client.get("/audit/integrity", headers=secretariat).status_code == 200
    assert client.get("/audit/integrity", headers=bearer(Role.LIAISON, "postal")).status_code == 403
    assert client.get("/audit/integrity").status_code == 401

    malformed = client.get("/audit/integrity", params={"against": "nope"}, headers=auditor)
    assert malformed.status_code == 422
    assert malformed.json()["error"] == "validation_error"
    assert malformed.json()["detail"].startswith("against: ")

    checkpoint = str(system_sealer(system).checkpoint())
    matching = client.get("/audit/integrity", params={"against": checkpoint}, headers=auditor)
    assert matching.json()["ok"] is True and matching.json()["against"] == checkpoint

    raw.delete(raw.positions()[4])
    failed = client.get("/audit/integrity", headers=auditor)
    assert failed.status_code == 200
    assert failed.json()["ok"] is False
    assert failed.json()["first_failure"]["kind"] == "deleted"


def test_cli_checkpoint_then_verify(
    system: System,
    clock: ManualClock,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_history(system, clock)
    # The CLI configures logging for its process; here that would bind capsys's stream.
    monkeypatch.setattr("workers.cli.configure_logging", lambda **_: None)
    parser = argparse.ArgumentParser(prog="tiaokuai")
    commands = parser.add_subparsers(dest="command", required=True)
    audit = commands.add_parser("audit").add_subparsers(dest="audit_command", required=True)
    add_integrity_commands(audit, _common)
    settings = system.settings
    if settings.store is not None:
        store = ["--store", settings.store]
        monkeypatch.setenv("TIAOKUAI_STORE_SCHEMA", settings.store_schema or "public")
    else:
        store = ["--data-dir", str(settings.data_dir)]

    def run(*argv: str) -> tuple[int, list[str]]:
        args = parser.parse_args(["audit", *argv, *store])
        code: int = args.func(args)
        return code, capsys.readouterr().out.strip().splitlines()

    code, out = run("checkpoint")
    assert code == 0
    checkpoint = Checkpoint.parse(out[-1])
    assert checkpoint.position == RawStore(system).positions()[-1]

    code, out = run("verify")
    assert code == 0 and out[-1] == "integrity: ok"
    code, out = run("verify", "--against", str(checkpoint))
    assert code == 0 and f"matches {checkpoint}" in out

    raw = RawStore(system)
    bad = raw.positions()[3]
    raw.flip_a_byte(bad)
    code, out = run("verify", "--against", str(checkpoint))
    assert code == 1
    assert out[-1].startswith(f"integrity: FAILED at position {bad} (edited)")

    with pytest.raises(SystemExit) as exited:
        parser.parse_args(["audit", "verify", "--against", "tiaokuai-checkpoint:1:zz", *store])
    assert exited.value.code == 2


def test_verify_names_a_tampered_snapshot(
    make_settings: SettingsFactory,
    clock: ManualClock,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Snapshots are outside the chain; verify folds the events and names a changed one."""
    from infra.audit import state_at

    settings = make_settings()
    settings.snapshot_interval = 2  # the task of write_history gets snapshots at v2 and v4
    module = settings.eventsourcing_env()["PERSISTENCE_MODULE"]
    monkeypatch.setenv("APPLICATION_RECORDER_TOPIC", sealing_recorder_topic(module))
    monkeypatch.setattr("workers.cli.configure_logging", lambda **_: None)
    system = bootstrap(settings, clock=clock)
    try:
        write_history(system, clock)
        task_id = next(
            UUID(str(r[0]))
            for r in RawStore(system).run(("SELECT originator_id, topic FROM {events}", ()))
            if str(r[1]).endswith(":SupervisedTask.TaskIssued")
        )
        parser = argparse.ArgumentParser(prog="tiaokuai")
        commands = parser.add_subparsers(dest="command", required=True)
        audit = commands.add_parser("audit").add_subparsers(dest="audit_command", required=True)
        add_integrity_commands(audit, _common)
        if settings.store is not None:
            store = ["--store", settings.store]
            monkeypatch.setenv("TIAOKUAI_STORE_SCHEMA", settings.store_schema or "public")
        else:
            store = ["--data-dir", str(settings.data_dir)]

        def verify() -> tuple[int, list[str]]:
            args = parser.parse_args(["audit", "verify", *store])
            code: int = args.func(args)
            return code, capsys.readouterr().out.strip().splitlines()

        code, out = verify()
        assert code == 0 and out[-1] == "integrity: ok", out
        checked = next(line for line in out if line.startswith("snapshots: "))
        assert not checked.startswith("snapshots: 0 ") and checked.endswith("; 0 differ")

        # An insider edits the v4 snapshot: the lead unit becomes another one.
        table = system.app.snapshots.recorder.events_table_name  # type: ignore[union-attr]
        # eventsourcing keeps ids as uuid in PostgreSQL, as their hex in SQLite.
        key: Any = task_id if settings.store is not None else task_id.hex
        if settings.store is not None:
            name = sql.Identifier(settings.store_schema or "public", table).as_string(None)
        else:
            name = table
        raw = RawStore(system)
        select = f"SELECT state FROM {name} WHERE originator_id = ? AND originator_version = ?"
        state = bytes(raw.run((select, (key, 4)))[0][0])
        assert b'"lead_unit":"postal"' in state
        edited = state.replace(b'"lead_unit":"postal"', b'"lead_unit":"commerce"')
        update = f"UPDATE {name} SET state = ? WHERE originator_id = ? AND originator_version = ?"
        raw.run((update, (edited, key, 4)))
        # The tampered snapshot is what a snapshot-based state_at trusts ...
        trusted = state_at(system, "tasks", str(task_id), version=4)
        folded = state_at(system, "tasks", str(task_id), version=4, use_snapshots=False)
        assert (trusted.lead_unit, folded.lead_unit) == ("commerce", "postal")  # type: ignore[attr-defined]

        # ... and verify names it, though every event still matches its seal.
        code, out = verify()
        assert code == 1
        assert out[-1] == "integrity: events ok, snapshots FAILED", out
        assert f"snapshot: FAILED: SupervisedTask {task_id} version 4: " in "\n".join(out)
        assert [line for line in out if line.startswith("snapshot: FAILED")] == [
            f"snapshot: FAILED: SupervisedTask {task_id} version 4: "
            "it differs from the events' state in lead_unit"
        ]

        # The REST answer and --json carry the same finding, and one ``ok`` for both.
        args = parser.parse_args(["audit", "verify", *store, "--json"])
        assert args.func(args) == 1
        as_json = json.loads(capsys.readouterr().out)
        api = FastAPI()
        install_error_handlers(api)
        api.include_router(router)
        api.state.system = system
        _, token = system.tokens.issue(role=Role.AUDITOR, unit=None, name="test auditor")
        client = TestClient(api)
        auditor = {"Authorization": f"Bearer {token}"}
        body = client.get("/audit/integrity", headers=auditor).json()
        for answer in (as_json, body):
            assert answer["ok"] is False and answer["first_failure"] is None
            assert answer["snapshots"]["ok"] is False
            (mismatch,) = answer["snapshots"]["mismatches"]
            assert (mismatch["aggregate_id"], mismatch["version"]) == (str(task_id), 4)
            assert mismatch["detail"] == "it differs from the events' state in lead_unit"
        chain_only = client.get("/audit/integrity", params={"snapshots": "false"}, headers=auditor)
        assert chain_only.json()["ok"] is True and chain_only.json()["snapshots"] is None
    finally:
        system.close()
