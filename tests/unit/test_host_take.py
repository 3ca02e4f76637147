"""Which messages of a shared poll a hosted projection takes (``workers.projection_host``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from kafka import TopicPartition

from workers.projection_host import Cursor, take

TP = TopicPartition("events", 0)


@dataclass
class Message:
    """The fields of kafka-python's ConsumerRecord that ``take`` reads."""

    offset: int
    headers: list[tuple[str, bytes]] = field(default_factory=list)


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
