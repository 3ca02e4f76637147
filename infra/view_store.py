"""Read models in the event store's own database, with eventsourcing's tracking table.

A batch of events is applied by every projection inside one transaction that also
advances each projection's tracking row, so a crash leaves either both or neither,
and a replayed event is refused by the tracking row (nothing applied twice).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

import psycopg
from eventsourcing.persistence import PersistenceError, Tracking
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
    def apply_scratch(
        self, envelopes: Sequence[EventEnvelope], projections: Sequence[Projection], prefix: str
    ) -> None: ...
    def drop_prefix(self, prefix: str) -> None: ...
    def put_doc(self, view: str, key: str, doc: Doc) -> None: ...


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

    def prefetch(self, view: str, keys: Sequence[str]) -> None:
        """Load many documents of one view in one round trip."""
        wanted = sorted({k for k in keys if (view, k) not in self.cache})
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            statement, params = self.sql.get_many(view, chunk)
            self.cursor.execute(statement, params)
            found = {row["key"]: _loads(row["doc"]) for row in self.cursor.fetchall()}
            for key in chunk:
                self.cache[(view, key)] = found.get(key)

    def flush(self) -> None:
        for view, key in sorted(self.dirty):
            doc = self.cache[(view, key)]
            if doc is None:
                self.cursor.execute(self.sql.delete, (view, key))
            else:
                self.cursor.execute(self.sql.upsert, (view, key, _dumps(doc)))


class PrefixedStore:
    """A view store whose view names all carry a prefix: a scratch area beside the live one."""

    def __init__(self, inner: _Batch, prefix: str) -> None:
        self.inner = inner
        self.prefix = prefix

    def get(self, view: str, key: str) -> Doc | None:
        return self.inner.get(self.prefix + view, key)

    def put(self, view: str, key: str, doc: Doc) -> None:
        self.inner.put(self.prefix + view, key, doc)

    def delete(self, view: str, key: str) -> None:
        self.inner.delete(self.prefix + view, key)

    def scan(self, view: str, prefix: str = "") -> Iterator[tuple[str, Doc]]:
        raise NotImplementedError("projections never scan: one event does O(1) work")

    def prefetch(self, view: str, keys: Sequence[str]) -> None:
        self.inner.prefetch(self.prefix + view, keys)


class _Sql:
    def __init__(
        self,
        *,
        get: Any,
        get_many: Callable[[str, list[str]], tuple[Any, Any]],
        upsert: Any,
        delete: Any,
        scan: Any,
        reset: Any,
    ) -> None:
        self.get = get
        self.get_many = get_many
        self.upsert = upsert
        self.delete = delete
        self.scan = scan
        self.reset = reset


class _ScratchMixin:
    """Rebuilds into prefixed view names, and plain documents for operations data."""

    datastore: Any
    sql: _Sql
    drop_prefix_sql: Any

    def apply_scratch(
        self, envelopes: Sequence[EventEnvelope], projections: Sequence[Projection], prefix: str
    ) -> None:
        with self.datastore.transaction(commit=True) as c:
            batch = _Batch(c, self.sql)
            store = PrefixedStore(batch, prefix)
            for projection in projections:
                apply_events(store, envelopes, projection)
            batch.flush()

    def drop_prefix(self, prefix: str) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.execute(self.drop_prefix_sql, {"prefix": prefix})

    def put_doc(self, view: str, key: str, doc: Doc) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.execute(self.sql.upsert, (view, key, _dumps(doc)))

    def put_doc_raw(self, view: str, key: str, doc: Doc) -> None:
        """Overwrite one document in place (tests use it to simulate a corrupted row)."""
        self.put_doc(view, key, doc)


class ProjectionGap(Exception):
    """An aggregate's next event is missing: applying later ones would corrupt the view."""


class EventFailed(Exception):
    """A projection raised on one event: the poison event, named for logs and /health."""

    def __init__(self, projection: str, envelope: EventEnvelope, error: Exception) -> None:
        self.projection = projection
        self.envelope = envelope
        self.error = error
        super().__init__(
            f"{projection} cannot apply {envelope.type} of {envelope.aggregate_type} "
            f"{envelope.aggregate_id} v{envelope.version} at position {envelope.position}: "
            f"{error!r}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "projection": self.projection,
            "position": self.envelope.position,
            "event_type": self.envelope.type,
            "aggregate_type": self.envelope.aggregate_type,
            "aggregate_id": self.envelope.aggregate_id,
            "version": self.envelope.version,
            "error": repr(self.error),
        }


STORE_ERRORS = (psycopg.Error, sqlite3.Error, PersistenceError)
"""Errors of the database under a projection: passing, never the event's fault."""


def applied_view(projection: str) -> str:
    """The namespace that records, per aggregate, the last version a projection applied."""
    return f"applied:{projection}"


def apply_events(
    batch: _Batch | PrefixedStore, envelopes: Sequence[EventEnvelope], projection: Projection
) -> int:
    """Apply each event not applied yet, in order; return the highest position applied.

    An event whose aggregate version the projection has already applied is a duplicate
    (a redelivery, or the relay publishing twice after a crash) and changes nothing.
    """
    seen_view = applied_view(projection.name)
    batch.prefetch(seen_view, [e.aggregate_id for e in envelopes])
    highest = 0
    for envelope in envelopes:
        seen = batch.get(seen_view, envelope.aggregate_id)
        last = int(seen["version"]) if seen else 0
        if envelope.version <= last:
            continue
        if envelope.version != last + 1:
            raise ProjectionGap(
                f"{projection.name}: {envelope.aggregate_type} {envelope.aggregate_id} jumps "
                f"from version {last} to {envelope.version} at position {envelope.position}"
            )
        try:
            projection.apply(envelope, batch)
        except STORE_ERRORS:
            raise
        except Exception as error:
            raise EventFailed(projection.name, envelope, error) from error
        batch.put(seen_view, envelope.aggregate_id, {"version": envelope.version})
        highest = max(highest, envelope.position)
    return highest


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
        apply_events(batch, fresh, projection)
        insert_tracking(cursor, Tracking(projection.name, fresh[-1].position))
    batch.flush()


class SQLiteViewRecorder(_ScratchMixin, SQLiteTrackingRecorder):
    """View documents in the SQLite file of the embedded default."""

    table = "tiaokuai_views"

    def __init__(self, datastore: SQLiteDatastore) -> None:
        super().__init__(datastore)
        t = self.table

        def get_many(view: str, keys: list[str]) -> tuple[str, list[str]]:
            marks = ", ".join("?" * len(keys))
            return f"SELECT key, doc FROM {t} WHERE view = ? AND key IN ({marks})", [view, *keys]

        self.sql = _Sql(
            get=f"SELECT doc FROM {t} WHERE view = ? AND key = ?",
            get_many=get_many,
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
        self.drop_prefix_sql = f"DELETE FROM {t} WHERE substr(view, 1, length(:prefix)) = :prefix"

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
            for view in (*projection.views, applied_view(projection.name)):
                c.execute(self.sql.reset, (view,))
            c.execute("DELETE FROM tracking WHERE application_name = ?", (projection.name,))


class PostgresViewRecorder(_ScratchMixin, PostgresTrackingRecorder):
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
        get_many_sql = SQL("SELECT key, doc FROM {0}.{1} WHERE view = %s AND key = ANY(%s)").format(
            schema, table
        )

        def get_many(view: str, keys: list[str]) -> tuple[Any, tuple[str, list[str]]]:
            return get_many_sql, (view, keys)

        self.sql = _Sql(
            get=SQL("SELECT doc FROM {0}.{1} WHERE view = %s AND key = %s").format(schema, table),
            get_many=get_many,
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
        self.drop_prefix_sql = SQL(
            "DELETE FROM {0}.{1} WHERE starts_with(view, %(prefix)s)"
        ).format(schema, table)
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

    def apply_consumed(
        self,
        envelopes: Sequence[EventEnvelope],
        projection: Projection,
        *,
        offsets_statement: Any,
        offsets: Sequence[tuple[Any, ...]],
    ) -> int:
        """Apply consumed events and store the consumer's offsets in one transaction."""
        with self.datastore.transaction(commit=True) as c:
            batch = _Batch(c, self.sql)
            highest = apply_events(batch, envelopes, projection)
            batch.flush()
            for row in offsets:
                c.execute(offsets_statement, row)
        return highest

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
            for view in (*projection.views, applied_view(projection.name)):
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
