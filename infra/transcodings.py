"""How domain value types are stored by eventsourcing's JSON transcoder."""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import Transcoding

from domain.actor import Actor
from domain.persons import Person
from infra.persons import PersonStore, open_fields, seal_fields


class ActorAsDict(Transcoding):
    """Stores an ``Actor`` as ``{"id", "role", "unit"}``."""

    type = Actor
    name = "actor"

    def encode(self, obj: Actor) -> dict[str, str | None]:
        return obj.as_dict()

    def decode(self, data: Any) -> Actor:
        return Actor.from_dict(data)


class PersonAsCiphertext(Transcoding):
    """Stores a ``Person`` as its id and the AES-GCM ciphertext of its name and phone.

    Every stored form (events and snapshots) goes through here, so no stored byte holds
    a name in clear. Once the person's key is erased, decoding gives the erased marker
    instead of failing, so aggregates, history, replays and rebuilds keep working.
    """

    type = Person
    name = "person"

    def __init__(self, persons: PersonStore) -> None:
        self.persons = persons

    def encode(self, obj: Person) -> dict[str, Any]:
        if obj.erased:
            return {"id": obj.id, "erased": True}
        key = self.persons.key_of(obj.id)
        if key is None:
            if self.persons.row(obj.id) is not None:
                # Erased while this command was in flight: never write the name again.
                return {"id": obj.id, "erased": True}
            self.persons.register(obj)
            key = self.persons.key_of(obj.id)
            assert key is not None
        return {"id": obj.id, "v": 1, "c": seal_fields(key, obj, "event")}

    def decode(self, data: Any) -> Person:
        person_id = str(data["id"])
        if data.get("erased"):
            return Person.erased_marker(person_id)
        key = self.persons.key_of(person_id)
        if key is None:
            return Person.erased_marker(person_id)
        return open_fields(key, person_id, str(data["c"]), "event")


class PersonAsReference(Transcoding):
    """Reads a stored ``Person`` as its id alone, without its key: for envelopes.

    Envelopes (and so Kafka and the views) carry person ids, never names, so the relay,
    the projector and the audit streams need not read a key and decrypt a name per
    person field only to drop it. Read-only: nothing is ever stored through it.
    """

    type = Person
    name = "person"

    def encode(self, obj: Person) -> dict[str, Any]:
        raise TypeError("PersonAsReference only reads; persons are stored encrypted")

    def decode(self, data: Any) -> Person:
        # The name is not read: only the id travels on (``plain(..., persons=False)``).
        return Person(str(data["id"]), "", None, erased=bool(data.get("erased")))
