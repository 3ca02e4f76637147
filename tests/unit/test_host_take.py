"""Which messages of a shared poll a hosted projection takes (``workers.projection_host``),
and how the poll's messages are read once for every hosted projection (``PollReads``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from kafka import TopicPartition

from projections.envelope import EventEnvelope
from workers.projection_host import Cursor, take
from workers.projection_worker import PollReads

TP = TopicPartition("events", 0)


@dataclass
class Message:
    """The fields of kafka-python's ConsumerRecord that ``take`` and ``PollReads`` read."""

    offset: int
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    partition: int = 0

    @property
    def value(self) -> bytes:
        return EventEnvelope(
            position=self.offset + 1,
            aggregate_id="a",
            aggregate_type="Unit",
            version=self.offset + 1,
            type="UnitRegistered",
            at=datetime(2026, 12, 2, tzinfo=UTC),
            actor={"id": None, "role": None},
        ).to_json()


def poll(first: int, last: int, epoch: str = "e1") -> dict[TopicPartition, list[Message]]:
    return {TP: [Message(o, [("epoch", epoch.encode())]) for o in range(first, last + 1)]}


def cursor_at(offset: int) -> Cursor:
    cursor = Cursor()
    cursor.owned.add(TP)
    cursor.seek(TP, offset)
    return cursor


def offsets(taken: dict[TopicPartition, list[Message]]) -> list[int]:
    return [m.offset for m in taken.get(TP, [])]


def test_a_projection_takes_what_it_has_not_consumed_and_moves_on() -> None:
    cursor = cursor_at(12)
    taken = take(cursor, {0: "e1"}, poll(10, 15), {0: 10})
    assert offsets(taken) == [12, 13, 14, 15]
    assert cursor.next[0] == 16


def test_a_projection_behind_the_fetch_takes_nothing_rather_than_skip() -> None:
    # Given the partition while the poll ran, from an offset before what was fetched:
    # taking 20.. would skip 12..19 for good.
    cursor = cursor_at(12)
    taken = take(cursor, {0: "e1"}, poll(20, 25), {0: 20})
    assert taken == {}
    assert cursor.next[0] == 12


def test_a_projection_takes_nothing_of_a_partition_it_does_not_own() -> None:
    cursor = cursor_at(0)
    cursor.owned.clear()
    assert take(cursor, {}, poll(0, 3), {0: 0}) == {}


def test_a_message_of_another_epoch_before_the_cursor_is_handed_to_the_worker() -> None:
    # A rebuilt topic starts again at offset 0: the worker must see its first messages
    # to notice the new epoch and read the partition again from the start.
    cursor = cursor_at(50)
    taken = take(cursor, {0: "e1"}, poll(0, 2, epoch="e2"), {0: 0})
    assert offsets(taken) == [0, 1, 2]
    assert cursor.next[0] == 50


def test_messages_of_the_same_epoch_before_the_cursor_are_left_out() -> None:
    cursor = cursor_at(50)
    assert take(cursor, {0: "e1"}, poll(40, 49), {0: 40}) == {}


def test_a_projection_with_nothing_before_its_cursor_takes_the_polled_list_itself() -> None:
    # The identity is what lets PollReads read the list once for every projection.
    records = poll(10, 15)
    taken = take(cursor_at(10), {0: "e1"}, records, {0: 10})
    assert taken[TP] is records[TP]


def test_a_polled_list_is_read_once_for_every_projection(monkeypatch: pytest.MonkeyPatch) -> None:
    records = poll(0, 4)
    decoded: list[bytes] = []
    from_json = EventEnvelope.from_json

    def counting(raw: bytes) -> EventEnvelope:
        decoded.append(raw)
        return from_json(raw)

    monkeypatch.setattr(EventEnvelope, "from_json", staticmethod(counting))
    reads = PollReads(records)
    first, second = reads.envelopes(TP, records[TP]), reads.envelopes(TP, records[TP])
    assert first is second and [e.position for e in first] == [1, 2, 3, 4, 5]
    assert len(decoded) == 5
    # A list a worker filtered is read message by message, from what was decoded.
    assert [e.position for e in reads.envelopes(TP, records[TP][2:])] == [3, 4, 5]
    assert len(decoded) == 5
    assert reads.epochs(TP, records[TP]) is reads.epochs(TP, records[TP])
    assert reads.epochs(TP, records[TP]) == ["e1"] * 5


def test_a_filtered_list_has_its_own_epochs() -> None:
    records = poll(0, 2)
    reads = PollReads(records)
    assert reads.epochs(TP, records[TP]) == ["e1"] * 3
    other = [Message(7, [("epoch", b"e2")]), Message(8)]
    assert reads.epochs(TP, other) == ["e2", None]
