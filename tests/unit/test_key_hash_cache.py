"""The relay's partitioner puts every key where kafka-python's default one does."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st
from kafka.partitioner.default import DefaultPartitioner

from infra.kafka.clients import KeyHashCache


class Cluster:
    """The two questions a partitioner asks of kafka-python's cluster metadata."""

    def __init__(self, topic: str, partitions: int) -> None:
        self.topic = topic
        self.partitions = set(range(partitions))

    def topics(self) -> set[str]:
        return {self.topic}

    def partitions_for_topic(self, topic: str) -> set[int]:
        return self.partitions

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return self.partitions


@given(keys=st.lists(st.binary(max_size=64), min_size=1, max_size=30), count=st.integers(1, 64))
def test_the_same_partition_as_the_default_partitioner(keys: list[bytes], count: int) -> None:
    cluster = Cluster("t", count)
    cached, default = KeyHashCache(keys=8), DefaultPartitioner()
    for key in [*keys, *keys]:  # the second time from the cache
        expected = default.partition("t", None, key, None, None, cluster)
        assert cached.partition("t", None, key, None, None, cluster) == expected
        assert cached.partition_of(key, count) == expected  # without cluster metadata


def test_a_remembered_key_follows_a_new_partition_count() -> None:
    cached = KeyHashCache()
    keys = [str(uuid.uuid4()).encode() for _ in range(200)]
    before = [cached.partition("t", None, k, None, None, Cluster("t", 6)) for k in keys]
    after = [cached.partition("t", None, k, None, None, Cluster("t", 12)) for k in keys]
    default = DefaultPartitioner()
    assert after == [default.partition("t", None, k, None, None, Cluster("t", 12)) for k in keys]
    assert before != after
