"""How domain value types are stored by eventsourcing's JSON transcoder."""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import Transcoding

from domain.actor import Actor


class ActorAsDict(Transcoding):
    """Stores an ``Actor`` as ``{"id", "role", "unit"}``."""

    type = Actor
    name = "actor"

    def encode(self, obj: Actor) -> dict[str, str | None]:
        return obj.as_dict()

    def decode(self, data: Any) -> Actor:
        return Actor.from_dict(data)
