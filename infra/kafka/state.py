"""The bus's bookkeeping in PostgreSQL: relay position and epoch, consumer offsets, heartbeats.

PostgreSQL, not Kafka, is the record of how far everyone got: the relay advances its
position only after the broker acknowledged, and each projection worker stores its
Kafka offsets in the same transaction as the view documents they produced.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eventsourcing.postgres import PostgresDatastore
from psycopg.sql import SQL, Composed, Identifier


@dataclass(frozen=True)
class RelayState:
    """How far the relay got: the last acknowledged position, in which topic incarnation."""

    position: int
    epoch: str
    published: int


@dataclass(frozen=True)
class PartitionOffset:
    group_id: str
    topic: str
    partition: int
    epoch: str
    next_offset: int
    max_position: int


class BusState:
    """Tables ``tiaokuai_relay``, ``tiaokuai_consumer_offsets`` and ``tiaokuai_workers``."""

    def __init__(self, datastore: PostgresDatastore) -> None:
        self.datastore = datastore
        schema = Identifier(datastore.schema)
        self.relay = SQL("{0}.{1}").format(schema, Identifier("tiaokuai_relay"))
        self.offsets = SQL("{0}.{1}").format(schema, Identifier("tiaokuai_consumer_offsets"))
        self.workers = SQL("{0}.{1}").format(schema, Identifier("tiaokuai_workers"))

    def create_tables(self) -> None:
        statements: list[Composed] = [
            SQL(
                "CREATE TABLE IF NOT EXISTS {0} (name text PRIMARY KEY, position bigint NOT NULL, "
                "epoch text NOT NULL, published bigint NOT NULL, updated_at timestamptz)"
            ).format(self.relay),
            SQL(
                "CREATE TABLE IF NOT EXISTS {0} (group_id text, topic text, partition int, "
                "epoch text NOT NULL, next_offset bigint NOT NULL, max_position bigint NOT NULL, "
                "updated_at timestamptz, PRIMARY KEY (group_id, topic, partition))"
            ).format(self.offsets),
            SQL(
                "CREATE TABLE IF NOT EXISTS {0} (name text PRIMARY KEY, kind text NOT NULL, "
                "last_heartbeat timestamptz NOT NULL, info jsonb NOT NULL)"
            ).format(self.workers),
        ]
        with self.datastore.transaction(commit=True) as c:
            for statement in statements:
                c.execute(statement)

    # ---------------------------------------------------------------- relay
    def relay_state(self, name: str = "relay") -> RelayState:
        """The relay's state; a first call starts epoch one at position 0."""
        with self.datastore.transaction(commit=True) as c:
            c.execute(
                SQL(
                    "INSERT INTO {0} (name, position, epoch, published, updated_at) "
                    "VALUES (%s, 0, %s, 0, now()) ON CONFLICT (name) DO NOTHING"
                ).format(self.relay),
                (name, uuid.uuid4().hex),
            )
            c.execute(
                SQL("SELECT position, epoch, published FROM {0} WHERE name = %s").format(
                    self.relay
                ),
                (name,),
            )
            row = c.fetchone()
        assert row is not None
        return RelayState(int(row["position"]), str(row["epoch"]), int(row["published"]))

    def relay_epoch(self, name: str = "relay") -> str | None:
        """The relay's epoch now, read only (None before the relay's first start)."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(SQL("SELECT epoch FROM {0} WHERE name = %s").format(self.relay), (name,))
            row = c.fetchone()
        return None if row is None else str(row["epoch"])

    def advance_relay(
        self, *, position: int, published: int, epoch: str, name: str = "relay"
    ) -> None:
        """Record that the broker acknowledged everything up to ``position``."""
        with self.datastore.transaction(commit=True) as c:
            c.execute(
                SQL(
                    "UPDATE {0} SET position = %s, published = published + %s, updated_at = now() "
                    "WHERE name = %s AND epoch = %s AND position < %s"
                ).format(self.relay),
                (position, published, name, epoch, position),
            )

    def new_epoch(self, name: str = "relay") -> RelayState:
        """The topic's log was lost: start a new incarnation, to be republished from 0."""
        epoch = uuid.uuid4().hex
        with self.datastore.transaction(commit=True) as c:
            c.execute(
                SQL(
                    "UPDATE {0} SET position = 0, published = 0, epoch = %s, updated_at = now() "
                    "WHERE name = %s"
                ).format(self.relay),
                (epoch, name),
            )
        return RelayState(0, epoch, 0)

    # ------------------------------------------------------------ consumers
    _OFFSET_COLUMNS = "group_id, topic, partition, epoch, next_offset, max_position"

    @staticmethod
    def _offset(row: Any) -> PartitionOffset:
        return PartitionOffset(
            row["group_id"],
            row["topic"],
            int(row["partition"]),
            row["epoch"],
            int(row["next_offset"]),
            int(row["max_position"]),
        )

    def partition_offsets(self, group_id: str, topic: str) -> dict[int, PartitionOffset]:
        """One group's stored next offsets, by partition."""
        select = SQL(
            "SELECT " + self._OFFSET_COLUMNS + " FROM {0} WHERE group_id = %s AND topic = %s"
        )
        with self.datastore.transaction(commit=False) as c:
            c.execute(select.format(self.offsets), (group_id, topic))
            rows = c.fetchall()
        return {int(r["partition"]): self._offset(r) for r in rows}

    def all_offsets(self) -> list[PartitionOffset]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(SQL("SELECT " + self._OFFSET_COLUMNS + " FROM {0}").format(self.offsets))
            rows = c.fetchall()
        return [self._offset(r) for r in rows]

    def store_offsets_statement(self) -> Composed:
        """Upsert of one partition's offset, run inside the view transaction."""
        return SQL(
            "INSERT INTO {0} (group_id, topic, partition, epoch, next_offset, max_position, "
            "updated_at) VALUES (%s, %s, %s, %s, %s, %s, now()) "
            "ON CONFLICT (group_id, topic, partition) DO UPDATE SET epoch = excluded.epoch, "
            "next_offset = excluded.next_offset, "
            "max_position = GREATEST({0}.max_position, excluded.max_position), "
            "updated_at = now()"
        ).format(self.offsets)

    def forget_group(self, group_id: str) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.execute(SQL("DELETE FROM {0} WHERE group_id = %s").format(self.offsets), (group_id,))

    # ------------------------------------------------------------ heartbeats
    def heartbeat(self, name: str, kind: str, info: dict[str, Any]) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.execute(
                SQL(
                    "INSERT INTO {0} (name, kind, last_heartbeat, info) VALUES (%s, %s, %s, %s) "
                    "ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, "
                    "last_heartbeat = excluded.last_heartbeat, info = excluded.info"
                ).format(self.workers),
                (name, kind, datetime.now(UTC), json.dumps(info, ensure_ascii=False)),
            )

    def heartbeats(self) -> list[dict[str, Any]]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                SQL("SELECT name, kind, last_heartbeat, info FROM {0} ORDER BY name").format(
                    self.workers
                )
            )
            rows = c.fetchall()
        return [
            {
                "name": r["name"],
                "kind": r["kind"],
                "last_heartbeat": r["last_heartbeat"].astimezone(UTC).isoformat(),
                "info": r["info"],
            }
            for r in rows
        ]
