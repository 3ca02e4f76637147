"""Read models in the event store's own database, with eventsourcing's tracking table.

A batch of events is applied by every projection inside one transaction that also
advances each projection's tracking row, so a crash leaves either both or neither,
and a replayed event is refused by the tracking row (nothing applied twice).
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from itertools import islice
from typing import Any, Protocol

import orjson
import psycopg
import structlog
from eventsourcing.persistence import PersistenceError, Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteDatastore, SQLiteTrackingRecorder
from psycopg.sql import SQL, Identifier

from projections.base import Projection
from projections.envelope import EventEnvelope
from projections.store import Doc

log = structlog.get_logger(__name__)


class _Cursor(Protocol):
    def execute(self, *args: Any, **kwargs: Any) -> Any: ...
    def executemany(self, *args: Any, **kwargs: Any) -> Any: ...
    def fetchall(self) -> Any: ...
    def fetchone(self) -> Any: ...


def _dumps(doc: Doc) -> bytes:
    # orjson: the same compact UTF-8 JSON as the json module, ~10x faster; serialising
    # and parsing documents was a fifth of a projection worker's CPU. PostgreSQL takes
    # the bytes as they are (bytea, converted to jsonb by the server); SQLite a str.
    return orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS)


def _loads(raw: str | bytes) -> Doc:
    # Every read fetches documents as JSON text, never as jsonb: PostgreSQL sends it as
    # UTF-8 bytes (``_as_utf8``), which orjson parses as they are; SQLite as str.
    result: Doc = orjson.loads(raw)
    return result


class ViewRecorder(Protocol):
    """Dialect-specific storage of view documents and projection positions."""

    def position(self, projection: str) -> int: ...
    def apply(
        self, envelopes: Sequence[EventEnvelope], projections: Sequence[Projection]
    ) -> None: ...
    def read_get(self, view: str, key: str) -> Doc | None: ...
    def read_scan(self, view: str, prefix: str) -> list[tuple[str, Doc]]: ...
    def read_page(self, view: str, after: str, limit: int) -> list[tuple[str, Doc]]: ...
    def reset(self, projection: Projection) -> None: ...
    def apply_scratch(
        self, envelopes: Sequence[EventEnvelope], projections: Sequence[Projection], prefix: str
    ) -> None: ...
    def drop_prefix(self, prefix: str) -> None: ...
    def put_doc(self, view: str, key: str, doc: Doc) -> None: ...
    def apply_consumed(
        self,
        envelopes: Sequence[EventEnvelope],
        projection: Projection,
        *,
        offsets_statement: Any,
        offsets: Sequence[tuple[Any, ...]],
    ) -> int: ...


Pair = tuple[str, str]
"""A document's address: (view, key)."""

_CHUNK = 1000
"""Documents per bulk statement: bounded parameter lists, few round trips."""


class _Sql:
    """One SQL dialect: single-row statements (named parameters) and bulk operations."""

    def __init__(
        self,
        *,
        get: Any,
        scan: Any,
        page: Any,
        reset: Any,
        reset_tracking: Any,
        drop_prefix: Any,
        load: Callable[[_Cursor, Sequence[Pair]], Iterable[tuple[str, str, Any]]],
        write: Callable[[_Cursor, Sequence[tuple[str, str, bytes]]], None],
        remove: Callable[[_Cursor, Sequence[Pair]], None],
    ) -> None:
        self.get = get
        self.scan = scan
        self.page = page
        self.reset = reset
        self.reset_tracking = reset_tracking
        self.drop_prefix = drop_prefix
        self.load = load
        self.write = write
        self.remove = remove


class _Batch:
    """A ViewStore over one open transaction, writing back only what changed.

    Each document is parsed once when first read and serialised once, at ``flush``, however
    often the batch's events touch it: ``get`` hands out the cached document itself and
    ``put`` keeps the one it is given, so a projection that changes a document it got
    puts (or deletes) it, as the ``ViewStore`` protocol asks. ``prefetch`` loads many
    documents in one round trip; ``flush`` writes every changed document with one upsert
    and one delete statement.
    """

    def __init__(self, cursor: _Cursor, sql: _Sql, kept: KeptDocuments | None = None) -> None:
        self.cursor = cursor
        self.sql = sql
        self.cache: dict[Pair, Doc | None] = kept.docs if kept is not None else {}
        """What the batch read or wrote: with ``kept``, the documents kept between batches."""
        self.dirty: set[Pair] = set()

    def _load(self, pairs: Sequence[Pair]) -> None:
        for start in range(0, len(pairs), _CHUNK):
            chunk = pairs[start : start + _CHUNK]
            found = {(v, k): _loads(d) for v, k, d in self.sql.load(self.cursor, chunk)}
            for pair in chunk:
                self.cache[pair] = found.get(pair)

    def get(self, view: str, key: str) -> Doc | None:
        pair = (view, key)
        try:
            return self.cache[pair]  # a document known missing is cached as None
        except KeyError:
            self._load([pair])
            return self.cache[pair]

    def put(self, view: str, key: str, doc: Doc) -> None:
        pair = (view, key)
        self.cache[pair] = doc
        self.dirty.add(pair)

    def peek(self, view: str, key: str) -> Doc | None:
        """A document this batch has loaded or written (None otherwise): never reads."""
        return self.cache.get((view, key))

    def delete(self, view: str, key: str) -> None:
        self.cache[(view, key)] = None
        self.dirty.add((view, key))

    def scan(self, view: str, prefix: str = "") -> Iterator[tuple[str, Doc]]:
        raise NotImplementedError("projections never scan: one event does O(1) work")

    def prefetch(self, pairs: Iterable[Pair]) -> None:
        """Load every listed document not cached yet, in one round trip per chunk."""
        # In C: most of a poll's pairs repeat, and a host has most documents cached.
        wanted = sorted(set(pairs).difference(self.cache))
        if wanted:
            self._load(wanted)

    def flush(self) -> None:
        # Sorted, so concurrent writers of one view lock its rows in the same order.
        upserts: list[tuple[str, str, bytes]] = []
        deletes: list[Pair] = []
        for view, key in sorted(self.dirty):
            doc = self.cache[(view, key)]
            if doc is None:
                deletes.append((view, key))
            else:
                upserts.append((view, key, _dumps(doc)))
        for start in range(0, len(upserts), _CHUNK):
            self.sql.write(self.cursor, upserts[start : start + _CHUNK])
        for start in range(0, len(deletes), _CHUNK):
            self.sql.remove(self.cursor, deletes[start : start + _CHUNK])
        self.dirty.clear()


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

    def prefetch(self, pairs: Iterable[Pair]) -> None:
        self.inner.prefetch((self.prefix + view, key) for view, key in pairs)

    def peek(self, view: str, key: str) -> Doc | None:
        return self.inner.peek(self.prefix + view, key)


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


def stamp_of(projection: str) -> Pair:
    """Where a projection's writer stamp lives: a token, new with each transaction.

    Every transaction that applies events to a projection writes a fresh one, so a writer
    that finds the stamp it wrote last knows nobody else wrote the projection's documents
    since (``KeptDocuments``).
    """
    return (f"writer:{projection}", "stamp")


def reads_of(envelopes: Sequence[EventEnvelope], projection: Projection) -> list[Pair]:
    """The documents applying ``envelopes`` will read that are known in advance."""
    seen_view = applied_view(projection.name)
    pairs = [stamp_of(projection.name)]
    taken = [e for e in envelopes if projection.takes(e.aggregate_type)]
    pairs.extend((seen_view, a) for a in dict.fromkeys(e.aggregate_id for e in taken))
    reads = projection.reads
    for envelope in taken:
        pairs.extend(reads(envelope))
    return pairs


def prefetch_for(
    batch: _Batch | PrefixedStore, work: Sequence[tuple[Sequence[EventEnvelope], Projection]]
) -> None:
    """Load what applying ``work`` will read: ``reads``, then ``reads_next`` of those.

    At most two round trips for the whole batch, however many projections and events.
    """
    batch.prefetch([pair for envelopes, p in work for pair in reads_of(envelopes, p)])
    found: list[Pair] = []
    for envelopes, projection in work:
        for envelope in envelopes:
            if not projection.takes(envelope.aggregate_type):
                continue
            try:
                found.extend(projection.reads_next(envelope, batch.peek))
            except Exception:  # a hint only: a poison event fails in ``apply``, named
                continue
    batch.prefetch(found)


def apply_events(
    batch: _Batch | PrefixedStore, envelopes: Sequence[EventEnvelope], projection: Projection
) -> int:
    """Apply each event not applied yet, in order; return the highest position applied.

    The caller has loaded what it can (``prefetch_for``); a document it did not is read
    when asked for. An event whose aggregate version the projection has already applied
    is a duplicate (a redelivery, or the relay publishing twice after a crash) and
    changes nothing. Events of aggregate types the projection does not take are passed
    over (``Projection.aggregate_types``).
    """
    seen_view = applied_view(projection.name)
    takes, apply = projection.takes, projection.apply
    highest = 0
    # The versions this batch applied, written once per aggregate at the end: a poll
    # holds several events of most aggregates it touches. On a failure the transaction
    # is rolled back, so none of them stands anyway.
    applied: dict[str, int] = {}
    for envelope in envelopes:
        if not takes(envelope.aggregate_type):
            continue
        aggregate_id = envelope.aggregate_id
        last = applied.get(aggregate_id)
        if last is None:
            seen = batch.get(seen_view, aggregate_id)
            last = int(seen["version"]) if seen else 0
        version = envelope.version
        if version <= last:
            continue
        if version != last + 1:
            raise ProjectionGap(
                f"{projection.name}: {envelope.aggregate_type} {aggregate_id} jumps "
                f"from version {last} to {version} at position {envelope.position}"
            )
        try:
            apply(envelope, batch)
        except STORE_ERRORS:
            raise
        except Exception as error:
            raise EventFailed(projection.name, envelope, error) from error
        applied[aggregate_id] = version
        if envelope.position > highest:
            highest = envelope.position
    for aggregate_id, version in applied.items():
        batch.put(seen_view, aggregate_id, {"version": version})
    if highest:
        batch.put(*stamp_of(projection.name), {"token": uuid.uuid4().hex})
    return highest


class KeptDocuments:
    """The view documents a projection host keeps between its view transactions.

    A poll's transaction reads from PostgreSQL only what is not kept, and everything it
    reads or writes is kept for the next: when catching up, consecutive polls touch
    mostly the same aggregates, and a live trickle touches the same unit and matrix
    documents over and over. What is kept is the committed state of documents nobody else
    has written since: each transaction checks its projections' stamps (``stamp_of``,
    read afresh every time, after the view lock) against the ones it wrote last and, if
    another writer has been there (another member of the group, a lone worker after a
    batch split, a reset), forgets everything and reads again. A transaction that fails,
    or whose outcome is unknown, forgets everything too: its documents are changed in
    place. At most ``limit`` documents are kept, the oldest dropped first.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.docs: dict[Pair, Doc | None] = {}

    def __len__(self) -> int:
        return len(self.docs)

    def clear(self) -> None:
        self.docs.clear()

    def take_stamps(self, projections: Iterable[Projection]) -> dict[Pair, Doc | None] | None:
        """Before a transaction: the stamps last seen, taken out to be read afresh.

        None when nothing is kept (nothing to check).
        """
        if len(self.docs) > self.limit:
            # Oldest first; down to half the limit, so that trimming is rare.
            excess = len(self.docs) - self.limit // 2
            for pair in list(islice(self.docs, excess)):
                del self.docs[pair]
        if not self.docs:
            return None
        missing: Doc = {}  # equals no stamp read: one not kept fails the check
        return {
            pair: self.docs.pop(pair, missing) for pair in (stamp_of(p.name) for p in projections)
        }

    def confirmed(self, stamps: dict[Pair, Doc | None] | None) -> bool:
        """After the reads: whether every stamp is the one this host wrote (or saw) last."""
        return stamps is None or all(self.docs.get(pair) == seen for pair, seen in stamps.items())


class _ViewsMixin:
    """What both dialects' view recorders do alike; only their ``sql`` differs.

    Mixed in before the eventsourcing tracking recorder, whose tracking methods it uses.
    """

    datastore: Any
    sql: _Sql
    max_tracking_id: Callable[[str], int | None]
    _max_tracking_id: Callable[[str, Any], int | None]
    _insert_tracking: Callable[[Any, Tracking], None]

    def position(self, projection: str) -> int:
        return self.max_tracking_id(projection) or 0

    def apply(self, envelopes: Sequence[EventEnvelope], projections: Sequence[Projection]) -> None:
        """Apply a batch to every projection and advance their tracking, in one transaction."""
        with self.datastore.transaction(commit=True) as c:
            batch = _Batch(c, self.sql)
            work: list[tuple[Projection, list[EventEnvelope]]] = []
            for projection in projections:
                start = self._max_tracking_id(projection.name, c) or 0
                fresh = [e for e in envelopes if e.position > start]
                if fresh:
                    work.append((projection, fresh))
            # Every projection's documents at once, before any is applied.
            prefetch_for(batch, [(fresh, p) for p, fresh in work])
            for projection, fresh in work:
                apply_events(batch, fresh, projection)
                self._insert_tracking(c, Tracking(projection.name, fresh[-1].position))
            batch.flush()

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
            prefetch_for(batch, [(envelopes, projection)])
            highest = apply_events(batch, envelopes, projection)
            batch.flush()
            if offsets:
                c.executemany(offsets_statement, offsets)
        return highest

    def _select(self, statement: Any, params: dict[str, Any]) -> list[Any]:
        """The rows of one read-only statement."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(statement, params)
            return list(c.fetchall())

    def read_get(self, view: str, key: str) -> Doc | None:
        rows = self._select(self.sql.get, {"view": view, "key": key})
        return _loads(rows[0]["doc"]) if rows else None

    def read_scan(self, view: str, prefix: str) -> list[tuple[str, Doc]]:
        rows = self._select(self.sql.scan, {"view": view, "prefix": prefix})
        return [(row["key"], _loads(row["doc"])) for row in rows]

    def read_page(self, view: str, after: str, limit: int) -> list[tuple[str, Doc]]:
        """Up to ``limit`` documents of ``view`` with keys after ``after``, in key order."""
        rows = self._select(self.sql.page, {"view": view, "after": after, "limit": limit})
        return [(row["key"], _loads(row["doc"])) for row in rows]

    def reset(self, projection: Projection) -> None:
        with self.datastore.transaction(commit=True) as c:
            name = projection.name
            for view in (*projection.views, applied_view(name), stamp_of(name)[0]):
                c.execute(self.sql.reset, {"view": view})
            c.execute(self.sql.reset_tracking, {"name": projection.name})

    # ------------------------------------------------- rebuilds and plain documents
    def apply_scratch(
        self, envelopes: Sequence[EventEnvelope], projections: Sequence[Projection], prefix: str
    ) -> None:
        """Apply to prefixed view names (a scratch area beside the live views)."""
        with self.datastore.transaction(commit=True) as c:
            batch = _Batch(c, self.sql)
            store = PrefixedStore(batch, prefix)
            # Every projection's documents at once, as ``apply`` does.
            prefetch_for(store, [(envelopes, p) for p in projections])
            for projection in projections:
                apply_events(store, envelopes, projection)
            batch.flush()

    def drop_prefix(self, prefix: str) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.execute(self.sql.drop_prefix, {"prefix": prefix})

    def put_doc(self, view: str, key: str, doc: Doc) -> None:
        with self.datastore.transaction(commit=True) as c:
            self.sql.write(c, [(view, key, _dumps(doc))])


class SQLiteViewRecorder(_ViewsMixin, SQLiteTrackingRecorder):
    """View documents in the SQLite file of the embedded default."""

    table = "tiaokuai_views"

    def __init__(self, datastore: SQLiteDatastore) -> None:
        super().__init__(datastore)
        t = self.table

        def load(c: _Cursor, pairs: Sequence[Pair]) -> Iterable[tuple[str, str, Any]]:
            marks = ", ".join(["(?, ?)"] * len(pairs))
            c.execute(
                f"SELECT view, key, doc FROM {t} WHERE (view, key) IN (VALUES {marks})",
                [part for pair in pairs for part in pair],
            )
            return [(row["view"], row["key"], row["doc"]) for row in c.fetchall()]

        upsert = (
            f"INSERT INTO {t} (view, key, doc) VALUES (:view, :key, :doc) "
            "ON CONFLICT (view, key) DO UPDATE SET doc = excluded.doc"
        )

        def write(c: _Cursor, rows: Sequence[tuple[str, str, bytes]]) -> None:
            # In-process: executemany costs no round trips.
            c.executemany(upsert, [{"view": v, "key": k, "doc": d.decode()} for v, k, d in rows])

        def remove(c: _Cursor, pairs: Sequence[Pair]) -> None:
            c.executemany(f"DELETE FROM {t} WHERE view = ? AND key = ?", pairs)

        self.sql = _Sql(
            get=f"SELECT doc FROM {t} WHERE view = :view AND key = :key",
            scan=(
                f"SELECT key, doc FROM {t} WHERE view = :view "
                "AND substr(key, 1, length(:prefix)) = :prefix ORDER BY key"
            ),
            page=(
                f"SELECT key, doc FROM {t} WHERE view = :view AND key > :after "
                "ORDER BY key LIMIT :limit"
            ),
            reset=f"DELETE FROM {t} WHERE view = :view",
            reset_tracking="DELETE FROM tracking WHERE application_name = :name",
            drop_prefix=f"DELETE FROM {t} WHERE substr(view, 1, length(:prefix)) = :prefix",
            load=load,
            write=write,
            remove=remove,
        )

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {self.table} ("
            "view TEXT NOT NULL, key TEXT NOT NULL, doc TEXT NOT NULL, "
            "PRIMARY KEY (view, key)) WITHOUT ROWID",
        ]


class PendingCommit:
    """A view transaction whose COMMIT is on its way to PostgreSQL."""

    def __init__(self, stack: ExitStack, highest: int, kept: KeptDocuments | None = None) -> None:
        self._stack: ExitStack | None = stack
        self.highest = highest
        """The highest position the transaction applies."""
        self._kept = kept

    def settle(self) -> int:
        """Wait for the transaction's outcome; raise if it failed. The highest position."""
        stack, self._stack = self._stack, None
        if stack is not None:
            try:
                stack.close()  # the pipeline's end: every result, the first error raised
            except BaseException:
                if self._kept is not None:
                    self._kept.clear()  # they hold what was not committed
                raise
        return self.highest


def _as_utf8(column: str) -> str:
    """A jsonb column as the UTF-8 bytes of its JSON text (bytea).

    Fetched in binary format, the bytes reach Python as they are and orjson parses
    them: as text, psycopg decoded every document into a str and orjson encoded it
    back to UTF-8 (the documents hold Chinese text: neither was the cheap ASCII copy).
    """
    return f"convert_to({column}::text, 'UTF8')"


class PostgresViewRecorder(_ViewsMixin, PostgresTrackingRecorder):
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
        # Bulk statements take arrays, so a batch is one statement whatever its size.
        # The documents travel as the UTF-8 bytes of their JSON text both ways (bytea,
        # converted by the server): psycopg then neither parses jsonb into Python nor
        # adapts dicts, nor decodes or encodes text; orjson reads and writes UTF-8.
        load_sql = SQL(
            "SELECT t.view, t.key, " + _as_utf8("t.doc") + " AS doc "
            "FROM unnest(%b::text[], %b::text[]) AS u(view, key) "
            "JOIN {0}.{1} t ON t.view = u.view AND t.key = u.key"
        ).format(schema, table)
        write_sql = SQL(
            "INSERT INTO {0}.{1} (view, key, doc) "
            "SELECT u.view, u.key, convert_from(u.doc, 'UTF8')::jsonb "
            "FROM unnest(%b::text[], %b::text[], %b::bytea[]) AS u(view, key, doc) "
            "ON CONFLICT (view, key) DO UPDATE SET doc = excluded.doc"
        ).format(schema, table)
        remove_sql = SQL(
            "DELETE FROM {0}.{1} t USING unnest(%b::text[], %b::text[]) AS u(view, key) "
            "WHERE t.view = u.view AND t.key = u.key"
        ).format(schema, table)

        def load(c: _Cursor, pairs: Sequence[Pair]) -> Iterable[tuple[str, str, Any]]:
            c.execute(load_sql, ([v for v, _ in pairs], [k for _, k in pairs]), binary=True)
            return [(row["view"], row["key"], row["doc"]) for row in c.fetchall()]

        def write(c: _Cursor, rows: Sequence[tuple[str, str, bytes]]) -> None:
            c.execute(write_sql, ([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]))

        def remove(c: _Cursor, pairs: Sequence[Pair]) -> None:
            c.execute(remove_sql, ([v for v, _ in pairs], [k for _, k in pairs]))

        self.sql = _Sql(
            # The reads fetch documents as text too, parsed by ``_loads`` (orjson): psycopg
            # parses jsonb with the json module, most of a large view's read (a
            # department's view is hundreds of rows).
            get=SQL(
                "SELECT " + _as_utf8("doc") + " AS doc FROM {0}.{1} "
                "WHERE view = %(view)s AND key = %(key)s"
            ).format(schema, table),
            scan=SQL(
                "SELECT key, " + _as_utf8("doc") + " AS doc FROM {0}.{1} WHERE view = %(view)s "
                "AND starts_with(key, %(prefix)s) ORDER BY key"
            ).format(schema, table),
            page=SQL(
                "SELECT key, " + _as_utf8("doc") + " AS doc FROM {0}.{1} WHERE view = %(view)s "
                "AND key > %(after)s ORDER BY key LIMIT %(limit)s"
            ).format(schema, table),
            reset=SQL("DELETE FROM {0}.{1} WHERE view = %(view)s").format(schema, table),
            reset_tracking=SQL("DELETE FROM {0}.{1} WHERE application_name = %(name)s").format(
                schema, Identifier(self.tracking_table_name)
            ),
            drop_prefix=SQL("DELETE FROM {0}.{1} WHERE starts_with(view, %(prefix)s)").format(
                schema, table
            ),
            load=load,
            write=write,
            remove=remove,
        )

    def _select(self, statement: Any, params: dict[str, Any]) -> list[Any]:
        # One statement on an autocommit connection is its own snapshot: the BEGIN and
        # ROLLBACK of ``transaction`` around it were two more round trips per read.
        with self.datastore.get_connection() as conn:
            rows: list[Any] = conn.execute(statement, params, binary=True).fetchall()
            return rows

    def apply_consumed(
        self,
        envelopes: Sequence[EventEnvelope],
        projection: Projection,
        *,
        offsets_statement: Any,
        offsets: Sequence[tuple[Any, ...]],
        lock: tuple[int, str] | None = None,
    ) -> int:
        """Apply consumed events and store the consumer's offsets in one transaction.

        ``lock`` (two advisory lock keys, the second hashed) is taken first, inside the
        transaction, and released by its commit: the view transactions of one
        projection take turns. In pipeline mode the whole transaction is two or three
        round trips: BEGIN, the lock and the prefetch (and the documents found from those,
        ``reads_next``); then the writes, the offsets and COMMIT.
        """
        return self.apply_consumed_together(
            [(envelopes, projection)],
            offsets_statement=offsets_statement,
            offsets=offsets,
            locks=[lock] if lock is not None else [],
        )

    def apply_consumed_together(
        self,
        batches: Sequence[tuple[Sequence[EventEnvelope], Projection]],
        *,
        offsets_statement: Any,
        offsets: Sequence[tuple[Any, ...]],
        locks: Sequence[tuple[int, str]],
    ) -> int:
        """Several projections' consumed events and all their offsets in one transaction.

        Each projection's view lock is taken first, in the order given (callers sort
        them by projection, so two processes never wait on each other in a cycle), and
        every projection's documents are prefetched together (``prefetch_for``). Any failure
        leaves nothing applied. Returns the highest position applied.
        """
        return self.begin_consumed_together(
            batches, offsets_statement=offsets_statement, offsets=offsets, locks=locks
        ).settle()

    def begin_consumed_together(
        self,
        batches: Sequence[tuple[Sequence[EventEnvelope], Projection]],
        *,
        offsets_statement: Any,
        offsets: Sequence[tuple[Any, ...]],
        locks: Sequence[tuple[int, str]],
        kept: KeptDocuments | None = None,
    ) -> PendingCommit:
        """``apply_consumed_together`` up to its COMMIT, sent but not waited for.

        The caller does other work (the next fetch) while PostgreSQL writes and commits,
        then calls ``settle`` on what this returns: it raises if the transaction failed
        (nothing of it is then stored). A failure before the COMMIT raises here, after
        a rollback. With ``kept``, documents kept from the caller's last transactions
        are not read again, unless another writer was there since.
        """
        with ExitStack() as stack:
            conn = stack.enter_context(self.datastore.get_connection())
            stack.enter_context(conn.pipeline())
            # The pool's connections are in autocommit mode: BEGIN and COMMIT are plain
            # statements, each sent as it is executed; the pipeline's end reads the results.
            c = conn.cursor()
            try:
                c.execute("BEGIN")
                for lock in locks:
                    c.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", lock)
                stamps = kept.take_stamps(p for _, p in batches) if kept is not None else None
                batch = _Batch(c, self.sql, kept)
                prefetch_for(batch, batches)
                if kept is not None and not kept.confirmed(stamps):
                    log.debug("views.kept_documents_stale", kept=len(kept))
                    kept.clear()  # the batch's cache too: read everything afresh
                    prefetch_for(batch, batches)
                highest = 0
                for envelopes, projection in batches:
                    highest = max(highest, apply_events(batch, envelopes, projection))
                batch.flush()
                if offsets:
                    c.executemany(offsets_statement, offsets)
                c.execute("COMMIT")
            except BaseException:
                if kept is not None:
                    kept.clear()  # changed in place by what is rolled back
                try:
                    c.execute("ROLLBACK")
                except Exception as rollback_error:  # a broken connection: the pool drops it
                    log.debug("views.rollback_failed", error=repr(rollback_error))
                raise  # leaving the stack ends the pipeline and returns the connection
            # Held open past this call: ``settle`` ends them.
            return PendingCommit(stack.pop_all(), highest, kept)


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
