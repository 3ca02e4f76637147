"""Bearer tokens → principals. Only a SHA-256 of each token is stored."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore
from psycopg.sql import SQL, Identifier

from domain.actor import Actor, Role

TABLE = "tiaokuai_tokens"


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
        self.postgres = isinstance(datastore, PostgresDatastore)
        columns = (
            "token_hash TEXT PRIMARY KEY, principal_id TEXT NOT NULL, role TEXT NOT NULL, "
            "unit TEXT, name TEXT NOT NULL, issued_at TEXT NOT NULL, revoked_at TEXT"
        )
        if self.postgres:
            assert isinstance(datastore, PostgresDatastore)
            table: Any = SQL("{0}.{1}").format(Identifier(datastore.schema), Identifier(TABLE))
            p = "%s"
            self._create: Any = SQL("CREATE TABLE IF NOT EXISTS {0} (" + columns + ")").format(
                table
            )
            self._insert: Any = SQL("INSERT INTO {0} VALUES (%s, %s, %s, %s, %s, %s, NULL)").format(
                table
            )
            self._select: Any = SQL(
                "SELECT principal_id, role, unit, name FROM {0} "
                "WHERE token_hash = %s AND revoked_at IS NULL"
            ).format(table)
            self._revoke: Any = SQL(
                "UPDATE {0} SET revoked_at = %s WHERE principal_id = %s AND revoked_at IS NULL"
            ).format(table)
        else:
            p = "?"
            self._create = f"CREATE TABLE IF NOT EXISTS {TABLE} ({columns})"
            self._insert = f"INSERT INTO {TABLE} VALUES ({', '.join([p] * 6)}, NULL)"
            self._select = (
                f"SELECT principal_id, role, unit, name FROM {TABLE} "
                f"WHERE token_hash = {p} AND revoked_at IS NULL"
            )
            self._revoke = (
                f"UPDATE {TABLE} SET revoked_at = {p} "
                f"WHERE principal_id = {p} AND revoked_at IS NULL"
            )
        with self.datastore.transaction(commit=True) as c:
            c.execute(self._create)

    def issue(self, *, role: Role, unit: str | None, name: str) -> tuple[Principal, str]:
        """A new principal and its token; the token is shown once and never stored."""
        token = "tk_" + secrets.token_urlsafe(32)
        principal = Principal(f"{role.value}-{uuid4().hex[:12]}", role, unit, name)
        with self.datastore.transaction(commit=True) as c:
            c.execute(
                self._insert,
                (
                    hash_token(token),
                    principal.principal_id,
                    role.value,
                    unit,
                    name,
                    datetime.now(UTC).isoformat(),
                ),
            )
        return principal, token

    def resolve(self, token: str) -> Principal | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(self._select, (hash_token(token),))
            row = c.fetchone()
        if row is None:
            return None
        return Principal(row["principal_id"], Role(row["role"]), row["unit"], row["name"])

    def revoke(self, principal_id: str) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.execute(self._revoke, (datetime.now(UTC).isoformat(), principal_id))
