"""Per-person keys (crypto-shredding 加密粉碎): personal fields readable until erased.

Every person named in an event has a random AES-256-GCM key in ``tiaokuai_person_keys``,
beside the events but never in them. The events and snapshots hold only the person's
id and the ciphertext of their name and phone (``infra/transcodings.py``). Erasing a
person deletes the key: the stored, sealed bytes stay as they are, and every reader
from then on decodes the erased marker. The table also keeps the person's latest
name and phone encrypted under the same key, so views, which store only person ids,
resolve names at query time and show an erasure at once. See docs/audit.md.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore
from psycopg.sql import SQL, Identifier

from domain.persons import Person

TABLE = "tiaokuai_person_keys"
TOKENS_TABLE = "tiaokuai_tokens"  # owned by infra/tokens.py; erasure blanks liaison names
_NONCE = 12
_FORMAT = 1


class PersonalDataUnreadable(Exception):
    """A key exists but does not open the ciphertext: the key or the event was altered."""


@dataclass(frozen=True)
class PersonRow:
    """A row of the key table, without its key."""

    person_id: str
    registered_at: str
    erased_at: str | None


def _aad(person_id: str, purpose: str) -> bytes:
    # Binds each ciphertext to its person and use: a ciphertext copied into another
    # person's event or into the record column does not open.
    return f"tiaokuai.person:{purpose}:{person_id}".encode()


def seal_fields(key: bytes, person: Person, purpose: str) -> str:
    """AES-GCM of ``{"name", "phone"}``: base64 of nonce ‖ ciphertext ‖ tag."""
    nonce = os.urandom(_NONCE)
    plaintext = json.dumps(
        {"name": person.name, "phone": person.phone}, ensure_ascii=False
    ).encode()
    sealed = AESGCM(key).encrypt(nonce, plaintext, _aad(person.id, purpose))
    return base64.b64encode(nonce + sealed).decode("ascii")


def open_fields(key: bytes, person_id: str, token: str, purpose: str) -> Person:
    raw = base64.b64decode(token)
    try:
        plaintext = AESGCM(key).decrypt(raw[:_NONCE], raw[_NONCE:], _aad(person_id, purpose))
    except InvalidTag:
        raise PersonalDataUnreadable(
            f"the personal data of {person_id} does not open with its key"
        ) from None
    fields = json.loads(plaintext)
    return Person(person_id, str(fields["name"]), fields.get("phone"))


class PersonStore:
    """The key table: register, look up, resolve and erase persons."""

    def __init__(self, datastore: SQLiteDatastore | PostgresDatastore) -> None:
        self.datastore = datastore
        self.postgres = isinstance(datastore, PostgresDatastore)
        if isinstance(datastore, PostgresDatastore):
            self._table: Any = SQL("{0}.{1}").format(
                Identifier(datastore.schema), Identifier(TABLE)
            )
            self._tokens: Any = SQL("{0}.{1}").format(
                Identifier(datastore.schema), Identifier(TOKENS_TABLE)
            )
            blob, mark = "BYTEA", "%s"
        else:
            self._table, self._tokens, blob, mark = TABLE, TOKENS_TABLE, "BLOB", "?"
        self._mark = mark
        self._create = (
            "CREATE TABLE IF NOT EXISTS {0} (person_id TEXT PRIMARY KEY, key " + blob + ", "
            "record TEXT, registered_at TEXT NOT NULL, erased_at TEXT)"
        )

    def _sql(self, template: str) -> Any:
        text = template.replace("?", self._mark)
        if self.postgres:
            return SQL(text).format(self._table, self._tokens)  # type: ignore[arg-type]
        return text.format(self._table, self._tokens)

    def create_table(self) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.execute(self._sql(self._create))

    # ------------------------------------------------------------ reading
    def key_of(self, person_id: str) -> bytes | None:
        """The person's key; None once erased (or never registered)."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(self._sql("SELECT key FROM {0} WHERE person_id = ?"), (person_id,))
            row = c.fetchone()
        return bytes(row["key"]) if row is not None and row["key"] is not None else None

    def row(self, person_id: str) -> PersonRow | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                self._sql(
                    "SELECT person_id, registered_at, erased_at FROM {0} WHERE person_id = ?"
                ),
                (person_id,),
            )
            row = c.fetchone()
        if row is None:
            return None
        return PersonRow(row["person_id"], row["registered_at"], row["erased_at"])

    def is_principal(self, person_id: str) -> bool:
        """Whether the id is a principal of the token table (a liaison, for instance)."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(self._sql("SELECT 1 FROM {1} WHERE principal_id = ? LIMIT 1"), (person_id,))
            return c.fetchone() is not None

    def resolve(self, person_ids: Iterable[str]) -> dict[str, Person]:
        """The latest name and phone of each person, or the erased marker."""
        wanted = sorted(set(person_ids))
        found: dict[str, Person] = {pid: Person.erased_marker(pid) for pid in wanted}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            with self.datastore.transaction(commit=False) as c:
                c.execute(
                    self._sql(
                        "SELECT person_id, key, record FROM {0} WHERE person_id IN (" + marks + ")"
                    ),
                    tuple(chunk),
                )
                rows = c.fetchall()
            for row in rows:
                if row["key"] is not None and row["record"] is not None:
                    pid = row["person_id"]
                    found[pid] = open_fields(bytes(row["key"]), pid, row["record"], "record")
        return found

    def resolve_refs(self, document: Any) -> Any:
        """A copy of a view document with every ``{"person_id": …}`` reference filled in."""
        ids = _refs(document)
        if not ids:
            return document
        persons = self.resolve(ids)
        return _fill(document, persons)

    # ------------------------------------------------------------ writing
    def register(self, person: Person) -> None:
        """Give a new person a key, or update a known person's latest name and phone.

        An erased person is never given a key again: their id stays erased.
        """
        now = datetime.now(UTC).isoformat()
        key = AESGCM.generate_key(bit_length=256)
        record = seal_fields(key, person, "record")
        with self.datastore.transaction(commit=True) as c:
            c.execute(
                self._sql(
                    "INSERT INTO {0} (person_id, key, record, registered_at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (person_id) DO NOTHING"
                ),
                (person.id, key, record, now),
            )
            c.execute(self._sql("SELECT key FROM {0} WHERE person_id = ?"), (person.id,))
            row = c.fetchone()
            if row is not None and row["key"] is not None and bytes(row["key"]) != key:
                c.execute(
                    self._sql("UPDATE {0} SET record = ? WHERE person_id = ?"),
                    (seal_fields(bytes(row["key"]), person, "record"), person.id),
                )

    def register_principal(self, person_id: str) -> None:
        """Record a principal (a liaison) as a person without fields of its own here.

        Liaison names live in the token table; this row only makes the id erasable
        through the same command.
        """
        with self.datastore.transaction(commit=True) as c:
            c.execute(
                self._sql(
                    "INSERT INTO {0} (person_id, key, record, registered_at) "
                    "VALUES (?, NULL, NULL, ?) ON CONFLICT (person_id) DO NOTHING"
                ),
                (person_id, datetime.now(UTC).isoformat()),
            )

    def erase(self, person_id: str, *, at: datetime) -> None:
        """Delete the key and the record, and blank the name of a liaison's tokens.

        The row stays as a tombstone (``erased_at``) so the id is never re-keyed.
        Deleted bytes are overwritten (SQLite ``secure_delete``, PostgreSQL ``VACUUM``)
        so that the key does not linger in free pages.
        """
        with self.datastore.transaction(commit=True) as c:
            if not self.postgres:
                c.execute("PRAGMA secure_delete = ON")
            c.execute(
                self._sql(
                    "INSERT INTO {0} (person_id, key, record, registered_at, erased_at) "
                    "VALUES (?, NULL, NULL, ?, ?) ON CONFLICT (person_id) DO UPDATE SET "
                    "key = NULL, record = NULL, erased_at = excluded.erased_at"
                ),
                (person_id, at.isoformat(), at.isoformat()),
            )
            c.execute(
                self._sql("UPDATE {1} SET name = ? WHERE principal_id = ?"),
                ("[erased]", person_id),
            )
        self._scrub()

    def _scrub(self) -> None:
        if isinstance(self.datastore, PostgresDatastore):
            # VACUUM removes the dead row versions that still hold the key; it cannot
            # run in a transaction, and the pool's connections are in autocommit.
            with self.datastore.get_connection() as conn:
                conn.execute(SQL("VACUUM {0}").format(self._table))
                conn.execute(SQL("VACUUM {0}").format(self._tokens))
            return
        # The WAL may still hold the page as it was before the delete.
        # Busy readers make it fail: the next (automatic) checkpoint does it then.
        with self.datastore.get_connection(commit=True) as conn, contextlib.suppress(sqlite3.Error):
            conn.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def scan(self) -> Iterator[PersonRow]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                self._sql("SELECT person_id, registered_at, erased_at FROM {0} ORDER BY person_id")
            )
            rows = c.fetchall()
        for row in rows:
            yield PersonRow(row["person_id"], row["registered_at"], row["erased_at"])


_REF_KEY = b'"person_id":'
"""How a ``person_id`` key is rendered in JSON. Inside a string every ``"`` is escaped,
so the text occurs in a rendering only where some object has that key."""


def _refs(document: Any) -> set[str]:
    """The person ids a document references (``{"person_id": …}`` alone in an object)."""
    try:
        # A view is hundreds of objects, and most views reference nobody: one
        # rendering in C answers that faster than walking them in Python.
        if _REF_KEY not in orjson.dumps(document, option=orjson.OPT_NON_STR_KEYS):
            return set()
    except TypeError:  # not plain JSON: walk it
        pass
    found: set[str] = set()
    stack = [document]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            if _is_ref(value):
                found.add(value["person_id"])
                continue
            stack.extend(item for item in value.values() if isinstance(item, dict | list))
        elif isinstance(value, list):
            stack.extend(item for item in value if isinstance(item, dict | list))
    return found


def _is_ref(value: dict[str, Any]) -> bool:
    return len(value) == 1 and isinstance(value.get("person_id"), str)


def _fill(value: Any, persons: dict[str, Person]) -> Any:
    if isinstance(value, dict):
        if _is_ref(value):
            return persons[str(value["person_id"])].as_dict()
        return {key: _fill(item, persons) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, persons) for item in value]
    return value
