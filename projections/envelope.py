"""The transport-free shape of a stored event, as the read side sees it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class EventEnvelope:
    """One stored event: its position in the store's log, origin, actor and data.

    ``data`` is JSON-plain: instants are ISO-8601 strings in UTC, ids are strings.
    """

    position: int
    aggregate_id: str
    aggregate_type: str
    version: int
    type: str
    at: datetime
    actor: dict[str, str | None]
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def reason(self) -> str | None:
        value = self.data.get("reason")
        return str(value) if value is not None else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "position": self.position,
            "aggregate_id": self.aggregate_id,
            "aggregate_type": self.aggregate_type,
            "version": self.version,
            "type": self.type,
            "at": self.at.isoformat(),
            "actor": dict(self.actor),
            "data": self.data,
        }

    def to_json(self) -> bytes:
        """Compact UTF-8 JSON (orjson: the json module's output, several times faster)."""
        return orjson.dumps(self.to_dict(), option=orjson.OPT_NON_STR_KEYS)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> EventEnvelope:
        if raw.get("schema") != SCHEMA_VERSION:
            raise ValueError(f"unsupported envelope schema {raw.get('schema')!r}")
        return cls(
            position=int(raw["position"]),
            aggregate_id=str(raw["aggregate_id"]),
            aggregate_type=str(raw["aggregate_type"]),
            version=int(raw["version"]),
            type=str(raw["type"]),
            at=datetime.fromisoformat(raw["at"]),
            actor=dict(raw["actor"]),
            data=dict(raw["data"]),
        )

    @classmethod
    def from_json(cls, raw: bytes) -> EventEnvelope:
        return cls.from_dict(orjson.loads(raw))
