"""The tamper-evident record: every stored event sealed into a SHA-256 hash chain.

A seal is written for each position of the notification log, in position order::

    h_0 = 32 zero bytes
    h_n = SHA-256( h_prev
                 ‖ u64(position)
                 ‖ u64(len(originator_id)) ‖ originator_id   (UTF-8 of the canonical UUID text)
                 ‖ u64(originator_version)
                 ‖ u64(len(topic)) ‖ topic                   (UTF-8)
                 ‖ u64(len(state)) ‖ state )                 (the stored bytes, as stored)

``u64`` is 8 bytes, unsigned, big-endian; ``h_prev`` is the hash of the previous sealed
position (positions may have gaps: PostgreSQL spends sequence values on rolled-back
inserts). ``docs/audit.md`` ("Integrity") writes the construction down for auditors.

Where seals are written:

- **In the transaction that stores the events** (``SealingSQLiteApplicationRecorder``,
  ``SealingPostgresApplicationRecorder``, chosen with eventsourcing's
  ``APPLICATION_RECORDER_TOPIC``): an event is never committed unsealed. On PostgreSQL
  the chain is computed by one SQL statement queued in the insert's own pipeline, so it
  adds no round trip; on SQLite it is computed here, inside the write transaction.
- **By ``Sealer.seal_pending``**, for whatever is stored but not sealed (events written
  by a plain recorder, a backlog): run it in the relay's loop, at start-up, or after
  every save (``Sealer.after_save``) when the plain recorders are used.

Concurrent sealers never fork the chain: on PostgreSQL every sealing transaction holds
the EXCLUSIVE lock on the events table that eventsourcing's writers take (a writer
sealing its own events holds it already) before it reads the last seal; on SQLite the
write lock does the same. The seals' primary key on the position refuses a fork even if
that were bypassed. The seal SQL of PostgreSQL and the Python of ``verify`` are two
independent implementations of the construction; the tests hold them to each other.

``Sealer.verify`` re-reads the events and the seals in position order, in lockstep and in
batches, recomputes the chain in Python and names the first position that fails.
``Sealer.checkpoint`` returns the head position and hash, to be kept outside the
system; ``verify(against=...)`` then detects even a consistent rewrite of the whole
chain up to that position.
"""

from __future__ import annotations

import hashlib
import re
import struct
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol
from uuid import UUID

import structlog
from eventsourcing.persistence import ApplicationRecorder, IntegrityError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteDatastore
from psycopg import Connection, Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

if TYPE_CHECKING:
    from infra.bootstrap import System

log = structlog.get_logger(__name__)

GENESIS = bytes(32)
"""h_0: the hash "before" the first sealed position."""

CHECKPOINT_PREFIX = "tiaokuai-checkpoint"
SEALS_TABLE = "tiaokuai_seals"
CHECKPOINTS_TABLE = "tiaokuai_checkpoints"
SEAL_BATCH = 1000
"""At most this many events are sealed per transaction (a backlog takes several)."""

SQLITE_RECORDER_TOPIC = "infra.integrity:SealingSQLiteApplicationRecorder"
POSTGRES_RECORDER_TOPIC = "infra.integrity:SealingPostgresApplicationRecorder"

FailureKind = Literal["edited", "reordered", "deleted", "inserted", "checkpoint_mismatch"]

_U64 = struct.Struct(">Q")
_CHECKPOINT_RE = re.compile(rf"^{CHECKPOINT_PREFIX}:(\d+):([0-9a-f]{{64}})$")
_NO_LIMIT = 2**63 - 1


def sealing_recorder_topic(persistence_module: str) -> str:
    """The ``APPLICATION_RECORDER_TOPIC`` that seals in the insert's own transaction."""
    if persistence_module == "eventsourcing.postgres":
        return POSTGRES_RECORDER_TOPIC
    if persistence_module == "eventsourcing.sqlite":
        return SQLITE_RECORDER_TOPIC
    raise ValueError(f"no sealing recorder for {persistence_module!r}")


# --------------------------------------------------------------- the construction
def _field(data: bytes) -> bytes:
    return _U64.pack(len(data)) + data


def chain_hash(
    previous: bytes,
    position: int,
    originator_id: str,
    originator_version: int,
    topic: str,
    state: bytes,
) -> bytes:
    """h_n from h_prev and the stored event at ``position`` (see the module docstring)."""
    if len(previous) != 32:
        raise ValueError("the previous hash must be 32 bytes")
    digest = hashlib.sha256(previous)
    digest.update(_U64.pack(position))
    digest.update(_field(originator_id.encode("utf-8")))
    digest.update(_U64.pack(originator_version))
    digest.update(_field(topic.encode("utf-8")))
    digest.update(_field(state))
    return digest.digest()


def state_digest(state: bytes) -> bytes:
    """SHA-256 of the stored bytes alone: kept with each seal to tell a move from an edit."""
    return hashlib.sha256(state).digest()


@dataclass(frozen=True)
class StoredRecord:
    """One row of the events table, canonicalised the same way on both backends."""

    position: int
    originator_id: str
    originator_version: int
    topic: str
    state: bytes

    def hash_after(self, previous: bytes) -> bytes:
        return chain_hash(
            previous,
            self.position,
            self.originator_id,
            self.originator_version,
            self.topic,
            self.state,
        )


def _originator_text(value: Any) -> str:
    if isinstance(value, UUID):
        return str(value)
    text = str(value)
    try:
        return str(UUID(text))  # SQLite stores the UUID's hex; hash its canonical text
    except ValueError:
        return text  # not a UUID (a tampered id): hash what is there


def _as_bytes(value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, str):
        return value.encode("utf-8")
    return bytes(value)


def _record(row: Any) -> StoredRecord:
    return StoredRecord(
        position=int(row["position"]),
        originator_id=_originator_text(row["originator_id"]),
        originator_version=int(row["originator_version"]),
        topic=str(row["topic"] or ""),
        state=_as_bytes(row["state"]),
    )


# ------------------------------------------------------------------ the results
@dataclass(frozen=True)
class Seal:
    position: int
    hash: bytes
    state_digest: bytes


@dataclass(frozen=True)
class Checkpoint:
    """The chain's hash at a position, printable as ``tiaokuai-checkpoint:<position>:<hex>``."""

    position: int
    hash: str  # 64 lower-case hex digits

    def __post_init__(self) -> None:
        if self.position < 0:
            raise ValueError("a checkpoint's position is never negative")
        if not re.fullmatch(r"[0-9a-f]{64}", self.hash):
            raise ValueError("a checkpoint's hash is 64 lower-case hex digits")

    def __str__(self) -> str:
        return f"{CHECKPOINT_PREFIX}:{self.position}:{self.hash}"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """The checkpoint printed by ``tiaokuai audit checkpoint`` (ValueError if malformed)."""
        found = _CHECKPOINT_RE.fullmatch(text.strip().lower())
        if found is None:
            raise ValueError(
                f"a checkpoint looks like {CHECKPOINT_PREFIX}:<position>:<64 hex digits>"
            )
        return cls(int(found.group(1)), found.group(2))


@dataclass(frozen=True)
class RecordedCheckpoint:
    checkpoint: Checkpoint
    taken_at: str


@dataclass(frozen=True)
class Failure:
    """The first position at which the store and its seals disagree."""

    position: int
    kind: FailureKind
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"position": self.position, "kind": self.kind, "detail": self.detail}


@dataclass
class IntegrityReport:
    """What ``verify`` found. ``unsealed`` events (after the last seal) are not a failure."""

    ok: bool
    checked: int
    head_position: int
    head_hash: str
    sealed_head: int
    unsealed: int
    first_failure: Failure | None = None
    against: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "head": {"position": self.head_position, "hash": self.head_hash},
            "sealed_head": self.sealed_head,
            "unsealed": self.unsealed,
            "first_failure": self.first_failure.as_dict() if self.first_failure else None,
            "against": self.against,
        }

    def summary(self) -> str:
        if self.first_failure is not None:
            failure = self.first_failure
            return (
                f"FAILED at position {failure.position}: {failure.kind}: {failure.detail} "
                f"({self.checked} events verified before it)"
            )
        against = f", matching {self.against}" if self.against else ""
        return (
            f"ok: {self.checked} events verified, head position {self.head_position} "
            f"hash {self.head_hash}{against}; {self.unsealed} stored after the last seal"
        )


# ------------------------------------------------------------ the dialects
class _Cursor(Protocol):
    def execute(self, *args: Any, **kwargs: Any) -> Any: ...
    def executemany(self, *args: Any, **kwargs: Any) -> Any: ...
    def fetchall(self) -> Any: ...
    def fetchone(self) -> Any: ...


def _now_text() -> str:
    return datetime.now(UTC).isoformat()


def _instant_text(value: Any) -> str:
    return value if isinstance(value, str) else str(value.isoformat())


class _SQLite:
    """SQLite, the embedded default: BLOB hashes, ISO text instants, the chain in Python."""

    def __init__(self, datastore: SQLiteDatastore, events_table: str) -> None:
        self.datastore = datastore
        s, c, e = SEALS_TABLE, CHECKPOINTS_TABLE, events_table
        self.create = self.create_statements()
        # The first statement of a standalone sealing transaction is a write, so it
        # takes SQLite's write lock (waiting for it) before it reads anything.
        self.lock = f"UPDATE {s} SET position = position WHERE 0"
        self.last_seal = f"SELECT position, hash FROM {s} ORDER BY position DESC LIMIT 1"
        self.events_after = (
            "SELECT rowid AS position, originator_id, originator_version, topic, state "
            f"FROM {e} WHERE rowid > ? AND rowid <= ? ORDER BY rowid LIMIT ?"
        )
        self.seals_after = (
            f"SELECT position, hash, state_digest FROM {s} "
            "WHERE position > ? AND position <= ? ORDER BY position LIMIT ?"
        )
        self.insert_seal = (
            f"INSERT INTO {s} (position, hash, state_digest, sealed_at) VALUES (?, ?, ?, ?)"
        )
        self.count_after = f"SELECT COUNT(*) AS n FROM {e} WHERE rowid > ?"
        self.seal_with_digest = (
            f"SELECT position FROM {s} WHERE state_digest = ? AND position <> ? "
            "ORDER BY position LIMIT 1"
        )
        self.insert_checkpoint = f"INSERT INTO {c} (position, hash, taken_at) VALUES (?, ?, ?)"
        self.select_checkpoints = (
            f"SELECT position, hash, taken_at FROM {c} ORDER BY id DESC LIMIT ?"
        )

    @staticmethod
    def create_statements() -> list[str]:
        return [
            f"CREATE TABLE IF NOT EXISTS {SEALS_TABLE} (position INTEGER PRIMARY KEY, "
            "hash BLOB NOT NULL, state_digest BLOB NOT NULL, sealed_at TEXT NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {CHECKPOINTS_TABLE} ("
            "id INTEGER PRIMARY KEY AUTOINCREMENT, position INTEGER NOT NULL, "
            "hash BLOB NOT NULL, taken_at TEXT NOT NULL)",
        ]

    def create_tables(self) -> None:
        with self.datastore.transaction(commit=True) as cursor:
            for statement in self.create:
                cursor.execute(statement)

    def seal_in(self, cursor: _Cursor, batch: int) -> int:
        """Seal up to ``batch`` events after the last seal; the write lock is held."""
        cursor.execute(self.last_seal)
        row = cursor.fetchone()
        position, previous = (int(row["position"]), bytes(row["hash"])) if row else (0, GENESIS)
        cursor.execute(self.events_after, (position, _NO_LIMIT, batch))
        records = [_record(r) for r in cursor.fetchall()]
        if not records:
            return 0
        at = _now_text()
        rows = []
        for record in records:
            previous = record.hash_after(previous)
            rows.append((record.position, previous, state_digest(record.state), at))
        cursor.executemany(self.insert_seal, rows)
        return len(rows)

    def seal_new(self, cursor: _Cursor, records: Sequence[StoredRecord]) -> int:
        """Seal events just inserted in this write transaction (known, so not re-read).

        Falls back to ``seal_in`` when anything before them is still unsealed.
        """
        cursor.execute(self.last_seal)
        row = cursor.fetchone()
        position, previous = (int(row["position"]), bytes(row["hash"])) if row else (0, GENESIS)
        expected = list(range(position + 1, position + 1 + len(records)))
        if [r.position for r in records] != expected:
            return self.seal_in(cursor, SEAL_BATCH)
        at = _now_text()
        rows = []
        for record in records:
            previous = record.hash_after(previous)
            rows.append((record.position, previous, state_digest(record.state), at))
        cursor.executemany(self.insert_seal, rows)
        return len(rows)

    def seal_batch(self, batch: int) -> int:
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(self.lock)
            return self.seal_in(cursor, batch)

    @contextmanager
    def reading(self) -> Iterator[_Cursor]:
        with self.datastore.transaction(commit=False) as cursor:
            yield cursor

    def record_checkpoint(self, position: int, hash_: bytes) -> None:
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(self.insert_checkpoint, (position, hash_, _now_text()))


class _Postgres:
    """PostgreSQL: tables in the datastore's schema, the chain computed by one statement."""

    def __init__(self, datastore: PostgresDatastore, events_table: str) -> None:
        self.datastore = datastore
        schema = Identifier(datastore.schema)
        s, c, e = Identifier(SEALS_TABLE), Identifier(CHECKPOINTS_TABLE), Identifier(events_table)
        key = hashlib.sha256(f"tiaokuai.seals:{datastore.schema}".encode()).digest()[:8]
        self.lock_key = int.from_bytes(key, "big", signed=True)
        self.create: list[Composed] = [
            SQL(
                "CREATE TABLE IF NOT EXISTS {0}.{1} (position bigint PRIMARY KEY, "
                "hash bytea NOT NULL, state_digest bytea NOT NULL, "
                "sealed_at timestamptz NOT NULL)"
            ).format(schema, s),
            SQL(
                "CREATE TABLE IF NOT EXISTS {0}.{1} (id bigserial PRIMARY KEY, "
                "position bigint NOT NULL, hash bytea NOT NULL, taken_at timestamptz NOT NULL)"
            ).format(schema, c),
        ]
        self.lock = SQL("SELECT pg_advisory_xact_lock(%s)")  # for the DDL only
        # Sealing is serialised by the lock eventsourcing's writers take on the events
        # table (it keeps notification ids in commit order): a writer sealing its own
        # events holds it already, a standalone sealer takes it, briefly, when there is
        # something to seal.
        self.lock_events = [
            SQL("SET LOCAL lock_timeout = '{0}s'").format(datastore.lock_timeout),
            SQL("LOCK TABLE {0}.{1} IN EXCLUSIVE MODE").format(schema, e),
        ]
        self.pending = SQL(
            "SELECT (SELECT COALESCE(MAX(notification_id), 0) FROM {0}.{2})"
            " > (SELECT COALESCE(MAX(position), 0) FROM {0}.{1}) AS pending"
        ).format(schema, s, e)
        # The chain computed by the database, the same construction as chain_hash():
        # int8send() is 8 bytes big-endian (positions, versions and lengths are never
        # negative), uuid::text is the canonical lower-case form. Each step is one
        # index lookup of the next position. verify() recomputes it all in Python.
        self.seal = SQL(
            "WITH RECURSIVE chain(n, position, hash, state_digest) AS ("
            " SELECT 0, last.position, last.hash, NULL::bytea FROM ("
            "  (SELECT position, hash FROM {0}.{1} ORDER BY position DESC LIMIT 1)"
            "  UNION ALL SELECT 0, decode(repeat('00', 32), 'hex')"
            "  LIMIT 1) last"
            " UNION ALL"
            " SELECT c.n + 1, e.position, sha256("
            "   c.hash || int8send(e.position)"
            "   || int8send(octet_length(e.oid)::bigint) || e.oid"
            "   || int8send(e.version)"
            "   || int8send(octet_length(e.topic)::bigint) || e.topic"
            "   || int8send(octet_length(e.state)::bigint) || e.state),"
            "  sha256(e.state)"
            " FROM chain c CROSS JOIN LATERAL ("
            "  SELECT notification_id AS position,"
            "   convert_to(originator_id::text, 'UTF8') AS oid,"
            "   originator_version AS version,"
            "   convert_to(COALESCE(topic, ''), 'UTF8') AS topic,"
            "   COALESCE(state, ''::bytea) AS state"
            "  FROM {0}.{2} WHERE notification_id > c.position"
            "  ORDER BY notification_id LIMIT 1) e"
            " WHERE c.n < %s"
            "), sealed AS ("
            " INSERT INTO {0}.{1} (position, hash, state_digest, sealed_at)"
            " SELECT position, hash, state_digest, clock_timestamp() FROM chain WHERE n > 0"
            " RETURNING 1"
            ") SELECT COUNT(*) AS n FROM sealed"
        ).format(schema, s, e)
        self.last_seal = SQL(
            "SELECT position, hash FROM {0}.{1} ORDER BY position DESC LIMIT 1"
        ).format(schema, s)
        self.events_after = SQL(
            "SELECT notification_id AS position, originator_id, originator_version, topic, "
            "state FROM {0}.{1} WHERE notification_id > %s AND notification_id <= %s "
            "ORDER BY notification_id LIMIT %s"
        ).format(schema, e)
        self.seals_after = SQL(
            "SELECT position, hash, state_digest FROM {0}.{1} "
            "WHERE position > %s AND position <= %s ORDER BY position LIMIT %s"
        ).format(schema, s)
        self.count_after = SQL(
            "SELECT COUNT(*) AS n FROM {0}.{1} WHERE notification_id > %s"
        ).format(schema, e)
        self.seal_with_digest = SQL(
            "SELECT position FROM {0}.{1} WHERE state_digest = %s AND position <> %s "
            "ORDER BY position LIMIT 1"
        ).format(schema, s)
        self.insert_checkpoint = SQL(
            "INSERT INTO {0}.{1} (position, hash, taken_at) VALUES (%s, %s, clock_timestamp())"
        ).format(schema, c)
        self.select_checkpoints = SQL(
            "SELECT position, hash, taken_at FROM {0}.{1} ORDER BY id DESC LIMIT %s"
        ).format(schema, c)

    def create_tables(self) -> None:
        with self.datastore.transaction(commit=True) as cursor:
            # Serialised: concurrent CREATE TABLE IF NOT EXISTS can collide in pg_type.
            cursor.execute(self.lock, (self.lock_key,))
            for statement in self.create:
                cursor.execute(statement)

    def queue_seal(self, conn: Connection[DictRow], batch: int) -> Cursor[DictRow]:
        """Seal up to ``batch`` events in ``conn``'s open transaction, which holds the lock.

        In pipeline mode the statement is only queued: it travels with the transaction's
        other statements and adds no round trip.
        """
        cursor = conn.cursor()
        cursor.execute(self.seal, (batch,), prepare=True)
        return cursor

    def seal_batch(self, batch: int) -> int:
        with self.datastore.get_connection() as conn:
            found = conn.execute(self.pending, prepare=True).fetchone()
            if not found or not found["pending"]:
                return 0  # the usual case with the sealing recorder: no lock taken
            with conn.pipeline(), conn.transaction():
                for statement in self.lock_events:
                    conn.execute(statement, prepare=True)
                cursor = self.queue_seal(conn, batch)
            row = cursor.fetchone()
        return int(row["n"]) if row else 0

    @contextmanager
    def reading(self) -> Iterator[_Cursor]:
        with self.datastore.transaction(commit=False) as cursor:
            yield cursor

    def record_checkpoint(self, position: int, hash_: bytes) -> None:
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(self.insert_checkpoint, (position, hash_))


def _dialect(recorder: ApplicationRecorder) -> _SQLite | _Postgres:
    datastore = getattr(recorder, "datastore", None)
    table = str(getattr(recorder, "events_table_name", ""))
    if isinstance(datastore, PostgresDatastore):
        return _Postgres(datastore, table)
    if isinstance(datastore, SQLiteDatastore):
        return _SQLite(datastore, table)
    raise TypeError(f"no sealing for a {type(recorder).__name__}")


# ------------------------------------------------- sealing as events are stored
class SealingSQLiteApplicationRecorder(SQLiteApplicationRecorder):
    """eventsourcing's SQLite recorder, sealing new events in their own write transaction."""

    seal_on_insert: bool = True

    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name)
        self.sealing = _SQLite(datastore, events_table_name)

    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(), *_SQLite.create_statements()]

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        notification_ids = super()._insert_events(c, stored_events, **kwargs)
        if self.seal_on_insert and stored_events:
            if notification_ids is None or len(notification_ids) != len(stored_events):
                self.sealing.seal_in(c, SEAL_BATCH)
            else:
                records = [
                    StoredRecord(
                        position=int(position),
                        originator_id=_originator_text(event.originator_id),
                        originator_version=int(event.originator_version),
                        topic=event.topic,
                        state=_as_bytes(event.state),
                    )
                    for position, event in zip(notification_ids, stored_events, strict=True)
                ]
                self.sealing.seal_new(c, records)
        return notification_ids


class SealingPostgresApplicationRecorder(PostgresApplicationRecorder):
    """eventsourcing's PostgreSQL recorder, sealing new events in the inserting transaction.

    The seal statement is queued right after the insert, inside eventsourcing's pipeline
    and under its table lock (which serialises it with every other sealer), so it
    reaches the server in the same round trip. If it
    failed, the insert would be rolled back with it: nothing is stored unsealed.
    """

    seal_on_insert: bool = True

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        self.sealing = _Postgres(datastore, events_table_name)
        self.sql_create_statements.extend(self.sealing.create)
        if datastore.enable_db_functions:
            # Inserts then go through a database function, past the hook below: events
            # are stored unsealed until Sealer.seal_pending() runs.
            log.warning("integrity.no_seal_on_insert", reason="POSTGRES_ENABLE_DB_FUNCTIONS")

    def _insert_stored_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        super()._insert_stored_events(curs, stored_events, **kwargs)
        if self.seal_on_insert and stored_events:
            self.sealing.queue_seal(curs.connection, SEAL_BATCH)


# ---------------------------------------------------------------- the sealer
class Sealer:
    """Seals the store's pending events; verifies and checkpoints the chain."""

    def __init__(self, recorder: ApplicationRecorder, *, create_tables: bool = True) -> None:
        self.dialect = _dialect(recorder)
        if create_tables:
            self.dialect.create_tables()

    @classmethod
    def for_system(cls, system: System) -> Sealer:
        return cls(system.app.recorder)

    # ------------------------------------------------------------- sealing
    def seal_pending(self, batch: int = SEAL_BATCH) -> int:
        """Seal every event stored after the last seal, ``batch`` per transaction."""
        total = 0
        while True:
            sealed = self._seal_batch(batch)
            total += sealed
            if sealed < batch:
                return total

    def after_save(self, _position: int = 0) -> None:
        """A saved-listener: seal what was just stored; a failure never fails the command.

        The command's events are stored already; if sealing fails (say the database
        went away) they stay unsealed and the next ``seal_pending`` seals them.
        """
        try:
            self.seal_pending()
        except Exception as error:  # sealing is retried by the next call
            log.warning("integrity.seal_failed", error=repr(error))

    def _seal_batch(self, batch: int) -> int:
        for attempt in range(5):
            try:
                return self.dialect.seal_batch(batch)
            except IntegrityError:
                # Another sealer got there first (the locks make this rare): re-read.
                log.info("integrity.seal_conflict", attempt=attempt)
        raise RuntimeError("could not seal: the seals table keeps changing under this sealer")

    # ----------------------------------------------------------- checkpoint
    def head(self) -> Checkpoint:
        """The last seal's position and hash (position 0 and h_0 before any seal)."""
        with self.dialect.reading() as cursor:
            cursor.execute(self.dialect.last_seal)
            row = cursor.fetchone()
        if row is None:
            return Checkpoint(0, GENESIS.hex())
        return Checkpoint(int(row["position"]), bytes(row["hash"]).hex())

    def checkpoint(self) -> Checkpoint:
        """Seal what is pending, record the head and return it (to be kept outside)."""
        self.seal_pending()
        checkpoint = self.head()
        self.dialect.record_checkpoint(checkpoint.position, bytes.fromhex(checkpoint.hash))
        log.info("integrity.checkpoint", position=checkpoint.position, hash=checkpoint.hash)
        return checkpoint

    def recorded_checkpoints(self, limit: int = 20) -> list[RecordedCheckpoint]:
        """The checkpoints taken here, newest first (a convenience: keep them outside)."""
        with self.dialect.reading() as cursor:
            cursor.execute(self.dialect.select_checkpoints, (limit,))
            rows = cursor.fetchall()
        return [
            RecordedCheckpoint(
                Checkpoint(int(row["position"]), bytes(row["hash"]).hex()),
                _instant_text(row["taken_at"]),
            )
            for row in rows
        ]

    # --------------------------------------------------------------- verify
    def _events(self, upto: int, batch: int) -> Iterator[StoredRecord]:
        after = 0
        while True:
            with self.dialect.reading() as cursor:
                cursor.execute(self.dialect.events_after, (after, upto, batch))
                rows = cursor.fetchall()
            for row in rows:
                yield _record(row)
            if len(rows) < batch:
                return
            after = int(rows[-1]["position"])

    def _seals(self, upto: int, batch: int) -> Iterator[Seal]:
        after = 0
        while True:
            with self.dialect.reading() as cursor:
                cursor.execute(self.dialect.seals_after, (after, upto, batch))
                rows = cursor.fetchall()
            for row in rows:
                yield Seal(int(row["position"]), bytes(row["hash"]), bytes(row["state_digest"]))
            if len(rows) < batch:
                return
            after = int(rows[-1]["position"])

    def _scalar(self, statement: Any, params: Sequence[Any], column: str) -> Any:
        with self.dialect.reading() as cursor:
            cursor.execute(statement, params)
            row = cursor.fetchone()
        return row[column] if row else None

    def _diagnose(self, record: StoredRecord, seal: Seal) -> Failure:
        """Tell an edit from a move, for the hash mismatch at ``record.position``."""
        p = record.position
        digest = state_digest(record.state)
        if digest == seal.state_digest:
            return Failure(
                p,
                "edited",
                f"the stored event at position {p} does not hash to its seal; its state "
                "bytes are the sealed ones, so its originator id, version or topic was "
                "changed (or the seal itself was)",
            )
        moved_from = self._scalar(self.dialect.seal_with_digest, (digest, p), "position")
        if moved_from is not None:
            return Failure(
                p,
                "reordered",
                f"the stored event at position {p} carries the bytes sealed at position "
                f"{int(moved_from)}: events were moved or swapped",
            )
        return Failure(
            p,
            "edited",
            f"the stored bytes of the event at position {p} "
            f"({record.originator_id} v{record.originator_version}) differ from the sealed ones",
        )

    def verify(
        self, against: Checkpoint | None = None, *, batch: int = SEAL_BATCH
    ) -> IntegrityReport:
        """Recompute the chain from the stored events and compare it with the seals.

        Streams both, in position order, ``batch`` rows at a time (bounded memory), up to
        the last seal as it was when verification began. The first disagreement is
        reported: a changed event (``edited``), an event carrying another position's
        sealed bytes (``reordered``), a sealed position missing from the store
        (``deleted``), a stored position below the last seal that was never sealed
        (``inserted``), and with ``against`` the recomputed hash at the checkpoint's
        position differing from it, or that position missing (``checkpoint_mismatch``).
        """
        sealed_head = self.head().position
        walk = _Walk(against)
        seals = self._seals(sealed_head, batch)
        events = self._events(sealed_head, batch)
        seal, record = next(seals, None), next(events, None)
        walk.reached(0)
        while seal is not None and walk.failure is None:
            here = seal.position if record is None else min(seal.position, record.position)
            if walk.passed(here):
                break
            if record is None or seal.position < record.position:
                walk.failure = Failure(
                    seal.position,
                    "deleted",
                    f"position {seal.position} was sealed but no event is stored there",
                )
            elif record.position < seal.position:
                walk.failure = Failure(
                    record.position,
                    "inserted",
                    f"the event stored at position {record.position} "
                    f"({record.originator_id} v{record.originator_version}) was never sealed, "
                    f"yet later positions were (up to {sealed_head}): it was inserted "
                    "afterwards, or its seal was removed",
                )
            else:
                computed = record.hash_after(walk.previous)
                if computed != seal.hash:
                    walk.failure = self._diagnose(record, seal)
                else:
                    walk.previous, walk.position = computed, record.position
                    walk.checked += 1
                    walk.reached(record.position)
                    seal, record = next(seals, None), next(events, None)
        if walk.failure is None:
            walk.ended(sealed_head)
        unsealed = int(self._scalar(self.dialect.count_after, (sealed_head,), "n") or 0)
        report = IntegrityReport(
            ok=walk.failure is None,
            checked=walk.checked,
            head_position=walk.position,
            head_hash=walk.previous.hex(),
            sealed_head=sealed_head,
            unsealed=unsealed,
            first_failure=walk.failure,
            against=str(against) if against else None,
        )
        if walk.failure is not None:
            log.warning("integrity.failed", **walk.failure.as_dict())
        return report


class _Walk:
    """The verifier's progress along the chain, and the checkpoint it must meet."""

    def __init__(self, against: Checkpoint | None) -> None:
        self.against = against
        self.pending = against is not None
        self.previous = GENESIS
        self.position = 0
        self.checked = 0
        self.failure: Failure | None = None

    def reached(self, position: int) -> None:
        """The chain's hash at ``position`` is ``previous``: compare with the checkpoint."""
        if not self.pending or self.against is None or self.against.position != position:
            return
        self.pending = False
        if self.previous.hex() != self.against.hash:
            self.failure = Failure(
                position,
                "checkpoint_mismatch",
                f"the chain's hash at position {position} is {self.previous.hex()}, the "
                f"checkpoint says {self.against.hash}: the history up to it was rewritten",
            )

    def passed(self, here: int) -> bool:
        """The walk moves on to ``here``: was the checkpoint's position skipped?"""
        if not self.pending or self.against is None or self.against.position >= here:
            return False
        self.pending = False
        self.failure = Failure(
            self.against.position,
            "checkpoint_mismatch",
            f"position {self.against.position} of the checkpoint is not in the sealed chain "
            f"(it goes from {self.position} to {here}): events and seals were rewritten, "
            "or the checkpoint belongs to another store",
        )
        return True

    def ended(self, sealed_head: int) -> None:
        if not self.pending or self.against is None:
            return
        self.pending = False
        self.failure = Failure(
            self.against.position,
            "checkpoint_mismatch",
            f"position {self.against.position} of the checkpoint is beyond the sealed head "
            f"{sealed_head}: seals were removed or the chain was cut short",
        )


# ----------------------------------------------------------- one per system
_sealers: weakref.WeakKeyDictionary[object, Sealer] = weakref.WeakKeyDictionary()
_sealers_lock = threading.Lock()


def system_sealer(system: System) -> Sealer:
    """The system's sealer, built (and its tables created) on first use."""
    with _sealers_lock:
        sealer = _sealers.get(system.app)
        if sealer is None:
            sealer = Sealer.for_system(system)
            _sealers[system.app] = sealer
        return sealer
