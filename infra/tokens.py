"""Bearer tokens → principals. Only a SHA-256 of each token is stored.

Tokens expire (90 days unless told otherwise) and can be revoked; an expired or revoked
token is refused exactly like an unknown one.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore
from psycopg.sql import SQL, Identifier

from domain.actor import Actor, Role

TABLE = "tiaokuai_tokens"
DEFAULT_LIFETIME = timedelta(days=90)
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

    def __init__(self, datastore: SQLiteDatastore | PostgresDatastore) -> None:
        self.datastore = datastore
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
                "SELECT principal_id, role, unit, name FROM {0} WHERE token_hash = %s "
                "AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > %s)"
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
                f"SELECT principal_id, role, unit, name FROM {TABLE} WHERE token_hash = ? "
                "AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)"
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

    def resolve(self, token: str) -> Principal | None:
        """The principal of a valid token; None when unknown, revoked or expired."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(self._select, (hash_token(token), datetime.now(UTC).isoformat()))
            row = c.fetchone()
        if row is None:
            return None
        return Principal(row["principal_id"], Role(row["role"]), row["unit"], row["name"])

    def revoke(self, principal_id: str) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.execute(self._revoke, (datetime.now(UTC).isoformat(), principal_id))
