"""Read models in the event store's own database, with eventsourcing's tracking table.

A batch of events is applied by every projection inside one transaction that also
advances each projection's tracking row, so a crash leaves either both or neither,
and a replayed event is refused by the tracking row (nothing applied twice).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteDatastore, SQLiteTrackingRecorder
from psycopg.sql import SQL, Identifier

from projections.base import Projection
from projections.envelope import EventEnvelope
from projections.store import Doc

_MISSING = object()


class _Cursor(Protocol):
    def execute(self, *args: Any, **kwargs: Any) -> Any: ...
    def fetchall(self) -> Any: ...
    def fetchone(self) -> Any: ...


def _dumps(doc: Doc) -> str:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _loads(raw: Any) -> Doc:
    if isinstance(raw, dict):
        return raw
    result: Doc = json.loads(raw)
    return result


class ViewRecorder(Protocol):
    """Dialect-specific storage of view documents and projection positions."""

    def position(self, projection: str) -> int: ...
    def apply(
        self, envelopes: Sequence[EventEnvelope], projections: Sequence[Projection]
    ) -> None: ...
    def read_get(self, view: str, key: str) -> Doc | None: ...
    def read_scan(self, view: str, prefix: str) -> list[tuple[str, Doc]]: ...
    def reset(self, projection: Projection) -> None: ...


class _Batch:
    """A ViewStore over one open transaction, writing back only what changed."""

    def __init__(self, cursor: _Cursor, sql: _Sql) -> None:
        self.cursor = cursor
        self.sql = sql
        self.cache: dict[tuple[str, str], Any] = {}
        self.dirty: set[tuple[str, str]] = set()

    def get(self, view: str, key: str) -> Doc | None:
        cached = self.cache.get((view, key), _MISSING)
        if cached is _MISSING:
            self.cursor.execute(self.sql.get, (view, key))
            row = self.cursor.fetchone()
            cached = _loads(row["doc"]) if row else None
            self.cache[(view, key)] = cached
        return json.loads(_dumps(cached)) if cached is not None else None

    def put(self, view: str, key: str, doc: Doc) -> None:
        self.cache[(view, key)] = json.loads(_dumps(doc))
        self.dirty.add((view, key))

    def delete(self, view: str, key: str) -> None:
        self.cache[(view, key)] = None
        self.dirty.add((view, key))

    def scan(self, view: str, prefix: str = "") -> Iterator[tuple[str, Doc]]:
        raise NotImplementedError("projections never scan: one event does O(1) work")

    def flush(self) -> None:
        for view, key in sorted(self.dirty):
            doc = self.cache[(view, key)]
            if doc is None:
                self.cursor.execute(self.sql.delete, (view, key))
            else:
                self.cursor.execute(self.sql.upsert, (view, key, _dumps(doc)))


class _Sql:
    def __init__(self, get: Any, upsert: Any, delete: Any, scan: Any, reset: Any) -> None:
        self.get = get
        self.upsert = upsert
        self.delete = delete
        self.scan = scan
        self.reset = reset


def _apply(
    cursor: _Cursor,
    sql: _Sql,
    envelopes: Sequence[EventEnvelope],
    projections: Sequence[Projection],
    tracked: Any,
    insert_tracking: Any,
) -> None:
    batch = _Batch(cursor, sql)
    for projection in projections:
        start = tracked(projection.name, cursor) or 0
        fresh = [e for e in envelopes if e.position > start]
        if not fresh:
            continue
        for envelope in fresh:
            projection.apply(envelope, batch)
        insert_tracking(cursor, Tracking(projection.name, fresh[-1].position))
    batch.flush()


class SQLiteViewRecorder(SQLiteTrackingRecorder):
    """View documents in the SQLite file of the embedded default."""

    table = "tiaokuai_views"

    def __init__(self, datastore: SQLiteDatastore) -> None:
        super().__init__(datastore)
        t = self.table
        self.sql = _Sql(
            get=f"SELECT doc FROM {t} WHERE view = ? AND key = ?",
            upsert=(
                f"INSERT INTO {t} (view, key, doc) VALUES (?, ?, ?) "
                "ON CONFLICT (view, key) DO UPDATE SET doc = excluded.doc"
            ),
            delete=f"DELETE FROM {t} WHERE view = ? AND key = ?",
            scan=(
                f"SELECT key, doc FROM {t} WHERE view = ? AND substr(key, 1, length(?)) = ? "
                "ORDER BY key"
            ),
            reset=f"DELETE FROM {t} WHERE view = ?",
        )

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {self.table} ("
            "view TEXT NOT NULL, key TEXT NOT NULL, doc TEXT NOT NULL, "
            "PRIMARY KEY (view, key)) WITHOUT ROWID",
        ]

    def position(self, projection: str) -> int:
        return self.max_tracking_id(projection) or 0

    def apply(self, envelopes: Sequence[EventEnvelope], projections: Sequence[Projection]) -> None:
        with self.datastore.transaction(commit=True) as c:
            _apply(
                c, self.sql, envelopes, projections, self._max_tracking_id, self._insert_tracking
            )

    def read_get(self, view: str, key: str) -> Doc | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(self.sql.get, (view, key))
            row = c.fetchone()
            return _loads(row["doc"]) if row else None

    def read_scan(self, view: str, prefix: str) -> list[tuple[str, Doc]]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(self.sql.scan, (view, prefix, prefix))
            return [(row["key"], _loads(row["doc"])) for row in c.fetchall()]

    def reset(self, projection: Projection) -> None:
        with self.datastore.transaction(commit=True) as c:
            for view in projection.views:
                c.execute(self.sql.reset, (view,))
            c.execute("DELETE FROM tracking WHERE application_name = ?", (projection.name,))


class PostgresViewRecorder(PostgresTrackingRecorder):
    """View documents (jsonb) in the PostgreSQL database of the events."""

    table = "tiaokuai_views"

    def __init__(self, datastore: PostgresDatastore) -> None:
        super().__init__(datastore, tracking_table_name="tiaokuai_view_tracking")
        schema = Identifier(datastore.schema)
        table = Identifier(self.table)
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {0}.{1} ("
                'view text NOT NULL, key text COLLATE "C" NOT NULL, doc jsonb NOT NULL, '
                "PRIMARY KEY (view, key))"
            ).format(schema, table)
        )
        self.sql = _Sql(
            get=SQL("SELECT doc FROM {0}.{1} WHERE view = %s AND key = %s").format(schema, table),
            upsert=SQL(
                "INSERT INTO {0}.{1} (view, key, doc) VALUES (%s, %s, %s::jsonb) "
                "ON CONFLICT (view, key) DO UPDATE SET doc = excluded.doc"
            ).format(schema, table),
            delete=SQL("DELETE FROM {0}.{1} WHERE view = %s AND key = %s").format(schema, table),
            scan=SQL(
                "SELECT key, doc FROM {0}.{1} WHERE view = %s AND starts_with(key, %s) ORDER BY key"
            ).format(schema, table),
            reset=SQL("DELETE FROM {0}.{1} WHERE view = %s").format(schema, table),
        )
        self.reset_tracking = SQL("DELETE FROM {0}.{1} WHERE application_name = %s").format(
            schema, Identifier(self.tracking_table_name)
        )

    def position(self, projection: str) -> int:
        return self.max_tracking_id(projection) or 0

    def apply(self, envelopes: Sequence[EventEnvelope], projections: Sequence[Projection]) -> None:
        with self.datastore.transaction(commit=True) as c:
            _apply(
                c, self.sql, envelopes, projections, self._max_tracking_id, self._insert_tracking
            )

    def read_get(self, view: str, key: str) -> Doc | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(self.sql.get, (view, key))
            row = c.fetchone()
            return _loads(row["doc"]) if row else None

    def read_scan(self, view: str, prefix: str) -> list[tuple[str, Doc]]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(self.sql.scan, (view, prefix))
            return [(row["key"], _loads(row["doc"])) for row in c.fetchall()]

    def reset(self, projection: Projection) -> None:
        with self.datastore.transaction(commit=True) as c:
            for view in projection.views:
                c.execute(self.sql.reset, (view,))
            c.execute(self.reset_tracking, (projection.name,))


class LiveViewStore:
    """The ViewStore that queries read: each call sees the latest committed documents."""

    def __init__(self, recorder: ViewRecorder) -> None:
        self.recorder = recorder

    def get(self, view: str, key: str) -> Doc | None:
        return self.recorder.read_get(view, key)

    def put(self, view: str, key: str, doc: Doc) -> None:
        raise TypeError("the live views are written only by projections")

    def delete(self, view: str, key: str) -> None:
        raise TypeError("the live views are written only by projections")

    def scan(self, view: str, prefix: str = "") -> Iterator[tuple[str, Doc]]:
        yield from self.recorder.read_scan(view, prefix)
