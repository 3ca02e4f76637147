"""Bearer tokens → principals. Only a SHA-256 of each token is stored.

Tokens expire (90 days unless told otherwise) and can be revoked; an expired or revoked
token is refused exactly like an unknown one.

A resolved token is remembered for ``cache_seconds`` (``TIAOKUAI_TOKEN_CACHE_SECONDS``,
5 s by default), so a request needs no database round trip to authenticate. The bound:
a revocation by this process takes effect at once; one by another process (``tiaokuai
token revoke``, another server) within ``cache_seconds``. Expiry is always exact.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import structlog
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore
from psycopg.sql import SQL, Identifier

from domain.actor import Actor, Role

TABLE = "tiaokuai_tokens"
DEFAULT_LIFETIME = timedelta(days=90)
CACHE_LIMIT = 10_000
REFRESH_AHEAD = 0.25
"""A remembered token in the last quarter of its time is looked up again, in the background."""

log = structlog.get_logger(__name__)
"""Tokens remembered at most; past it the cache starts again empty (no unbounded growth)."""
_COLUMNS = (
    "token_hash TEXT PRIMARY KEY, principal_id TEXT NOT NULL, role TEXT NOT NULL, "
    "unit TEXT, name TEXT NOT NULL, issued_at TEXT NOT NULL, revoked_at TEXT, expires_at TEXT"
)


@dataclass(frozen=True)
class Principal:
    """Who a token speaks for."""

    principal_id: str
    role: Role
    unit: str | None
    name: str

    @property
    def actor(self) -> Actor:
        return Actor(self.principal_id, self.role, self.unit)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    """Issues, resolves and revokes tokens in the event store's database."""

    def __init__(
        self, datastore: SQLiteDatastore | PostgresDatastore, *, cache_seconds: float = 0.0
    ) -> None:
        self.datastore = datastore
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[Principal, float, float]] = {}
        """token hash → (principal, monotonic time until which it may be answered, time
        from which a use looks it up again in the background)."""
        self._lock = threading.Lock()
        self._refreshing: set[str] = set()
        self._forgotten = 0
        """Counts ``forget`` calls: a lookup that began before one does not remember."""
        self._refresher: ThreadPoolExecutor | None = None
        self._lookups: dict[str, tuple[Future[Principal | None], int]] = {}
        """token hash → the lookup in flight for it, and ``_forgotten`` when it began."""
        if isinstance(datastore, PostgresDatastore):
            table: Any = SQL("{0}.{1}").format(Identifier(datastore.schema), Identifier(TABLE))
            self._create: list[Any] = [
                SQL("CREATE TABLE IF NOT EXISTS {0} (" + _COLUMNS + ")").format(table),
                SQL("ALTER TABLE {0} ADD COLUMN IF NOT EXISTS expires_at TEXT").format(table),
            ]
            self._insert: Any = SQL(
                "INSERT INTO {0} (token_hash, principal_id, role, unit, name, issued_at, "
                "expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            ).format(table)
            self._select: Any = SQL(
                "SELECT principal_id, role, unit, name, expires_at FROM {0} "
                "WHERE token_hash = %s AND revoked_at IS NULL "
                "AND (expires_at IS NULL OR expires_at > %s)"
            ).format(table)
            self._revoke: Any = SQL(
                "UPDATE {0} SET revoked_at = %s WHERE principal_id = %s AND revoked_at IS NULL"
            ).format(table)
        else:
            self._create = [f"CREATE TABLE IF NOT EXISTS {TABLE} ({_COLUMNS})"]
            self._insert = (
                f"INSERT INTO {TABLE} (token_hash, principal_id, role, unit, name, issued_at, "
                "expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
            )
            self._select = (
                f"SELECT principal_id, role, unit, name, expires_at FROM {TABLE} "
                "WHERE token_hash = ? AND revoked_at IS NULL "
                "AND (expires_at IS NULL OR expires_at > ?)"
            )
            self._revoke = (
                f"UPDATE {TABLE} SET revoked_at = ? WHERE principal_id = ? AND revoked_at IS NULL"
            )
        with self.datastore.transaction(commit=True) as c:
            for statement in self._create:
                c.execute(statement)
            if isinstance(datastore, SQLiteDatastore):
                c.execute(f"PRAGMA table_info({TABLE})")
                if "expires_at" not in {row["name"] for row in c.fetchall()}:
                    c.execute(f"ALTER TABLE {TABLE} ADD COLUMN expires_at TEXT")

    def issue(
        self,
        *,
        role: Role,
        unit: str | None,
        name: str,
        lifetime: timedelta | None = DEFAULT_LIFETIME,
    ) -> tuple[Principal, str]:
        """A new principal and its token; the token is shown once and never stored."""
        token = "tk_" + secrets.token_urlsafe(32)
        principal = Principal(f"{role.value}-{uuid4().hex[:12]}", role, unit, name)
        now = datetime.now(UTC)
        expires = (now + lifetime).isoformat() if lifetime is not None else None
        with self.datastore.transaction(commit=True) as c:
            c.execute(
                self._insert,
                (
                    hash_token(token),
                    principal.principal_id,
                    role.value,
                    unit,
                    name,
                    now.isoformat(),
                    expires,
                ),
            )
        return principal, token

    def cached(self, token: str) -> Principal | None:
        """The principal of a token resolved less than ``cache_seconds`` ago; no I/O.

        In the last quarter of that time the token is looked up again in a background
        thread, once, while the remembered principal is still answered: a token in
        steady use never expires from the cache, so its requests never all wait at once
        for the lookup (every 5 s, 50 concurrent requests did, and stalled together).
        Each answer was still confirmed by the database less than ``cache_seconds`` ago.
        """
        digest = hash_token(token)
        entry = self._cache.get(digest)
        if entry is None:
            return None
        principal, until, refresh_from = entry
        now = time.monotonic()
        if now >= until:
            return None
        if now >= refresh_from:
            self._refresh_ahead(digest)
        return principal

    def resolve(self, token: str) -> Principal | None:
        """The principal of a valid token; None when unknown, revoked or expired.

        Requests that miss the cache together share one lookup: after a pause longer
        than the cache time, a burst of 50 requests of one token made 50 lookups at
        once, and each waited for all of them. A request joins a lookup only if no
        ``forget`` came since it began, so a revocation here still holds at once.
        """
        digest = hash_token(token)
        entry = self._cache.get(digest)
        if entry is not None and time.monotonic() < entry[1]:
            return entry[0]
        with self._lock:
            shared = self._lookups.get(digest)
            if shared is not None and shared[1] == self._forgotten:
                joined: Future[Principal | None] | None = shared[0]
            else:
                joined = None
                mine: Future[Principal | None] = Future()
                self._lookups[digest] = (mine, self._forgotten)
        if joined is not None:
            return joined.result()
        try:
            principal = self._look_up(digest)
        except BaseException as error:
            mine.set_exception(error)
            raise
        else:
            mine.set_result(principal)
            return principal
        finally:
            with self._lock:
                if self._lookups.get(digest, (None,))[0] is mine:
                    del self._lookups[digest]

    def _look_up(self, digest: str) -> Principal | None:
        forgotten = self._forgotten
        now = datetime.now(UTC)
        with self.datastore.transaction(commit=False) as c:
            c.execute(self._select, (digest, now.isoformat()))
            row = c.fetchone()
        if row is None:
            self._cache.pop(digest, None)
            return None
        principal = Principal(row["principal_id"], Role(row["role"]), row["unit"], row["name"])
        if self.cache_seconds > 0:
            ttl = self.cache_seconds
            if row["expires_at"]:
                ttl = min(ttl, (datetime.fromisoformat(row["expires_at"]) - now).total_seconds())
            with self._lock:
                # A revocation in this process while the row was read must stand.
                if forgotten == self._forgotten:
                    if len(self._cache) >= CACHE_LIMIT:
                        self._cache.clear()
                    since = time.monotonic()
                    self._cache[digest] = (
                        principal,
                        since + ttl,
                        since + ttl - self.cache_seconds * REFRESH_AHEAD,
                    )
        return principal

    def _refresh_ahead(self, digest: str) -> None:
        with self._lock:
            if digest in self._refreshing:
                return
            self._refreshing.add(digest)
            if self._refresher is None:
                self._refresher = ThreadPoolExecutor(1, thread_name_prefix="tiaokuai-tokens")
            refresher = self._refresher

        def refresh() -> None:
            try:
                self._look_up(digest)
            except Exception as error:  # the next use past the bound looks it up itself
                log.warning("token.refresh_failed", error=repr(error))
            finally:
                with self._lock:
                    self._refreshing.discard(digest)

        try:
            refresher.submit(refresh)
        except RuntimeError:  # closed: the entry simply runs out
            with self._lock:
                self._refreshing.discard(digest)

    def close(self) -> None:
        """Stop the background lookups (waits for one in flight)."""
        with self._lock:
            refresher, self._refresher = self._refresher, None
        if refresher is not None:
            refresher.shutdown(wait=True)

    def revoke(self, principal_id: str) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.execute(self._revoke, (datetime.now(UTC).isoformat(), principal_id))
        self.forget(principal_id)

    def forget(self, principal_id: str) -> None:
        """Drop this process's cached resolutions of a principal (revoked, or erased)."""
        with self._lock:
            self._forgotten += 1
            for digest, (principal, _, _) in list(self._cache.items()):
                if principal.principal_id == principal_id:
                    self._cache.pop(digest, None)
