"""kafka-python clients configured the one way Tiaokuai uses them."""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError
from kafka.partitioner.default import DefaultPartitioner, murmur2

from infra.settings import Settings


def projection_group(projection: str) -> str:
    """The consumer group of one projection: one group per projection."""
    return f"tiaokuai.projection.{projection}"


class KeyHashCache(DefaultPartitioner):  # type: ignore[misc]  # kafka-python is untyped
    """kafka-python's default partitioner, each key's murmur2 hash remembered.

    The same partition for the same key and partition count as the Java client and
    ``DefaultPartitioner``; its murmur2 is pure Python, and the relay hashed every
    aggregate id again for each of its events (a tenth of the relay's CPU).
    """

    def __init__(self, keys: int = 65_536) -> None:
        self._hash = lru_cache(maxsize=keys)(murmur2)

    def partition(
        self,
        topic: str,
        key: Any,
        serialized_key: bytes | None,
        value: Any,
        serialized_value: bytes | None,
        cluster: Any,
    ) -> int:
        if serialized_key is None:
            chosen: int = super().partition(
                topic, key, serialized_key, value, serialized_value, cluster
            )
            return chosen
        if topic not in cluster.topics():
            raise ValueError(f"Topic {topic} not found in ClusterMetadata")
        every = sorted(cluster.partitions_for_topic(topic))
        return int(every[self.partition_of(serialized_key, len(every))])

    def partition_of(self, serialized_key: bytes, partitions: int) -> int:
        """The partition of a key in a topic of partitions 0 to ``partitions - 1``."""
        return int((self._hash(serialized_key) & 0x7FFFFFFF) % partitions)


def producer(settings: Settings) -> KafkaProducer:
    """Idempotent, acks=all: each acknowledged message is in the log exactly once per send."""
    return KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        enable_idempotence=True,
        # The relay sends a whole batch, then flushes: a long linger lets its sender thread
        # sleep through the sends (it took the GIL from them in small requests) and the
        # flush ship each partition's share in one request. Flush does not wait it out.
        linger_ms=500,
        batch_size=1024 * 1024,
        allow_auto_create_topics=False,
        max_block_ms=5000,
        request_timeout_ms=10000,
        client_id="tiaokuai-relay",
        partitioner=KeyHashCache(),
    )


GROUP_METADATA_MAX_AGE_MS = 5000
"""How old a group consumer's topic metadata may get before it asks the broker again."""


def group_consumer(settings: Settings, group_id: str, client_id: str) -> KafkaConsumer:
    """A consumer in a group; offsets live in PostgreSQL, Kafka's are informative."""
    return KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        allow_auto_create_topics=False,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        # kafka-python sends this as the group's rebalance timeout. At its default (5 min)
        # a member killed with -9 during a rebalance stalled its whole group on Tansu
        # until then (the soak); a poll's batch takes seconds, far below it.
        max_poll_interval_ms=settings.kafka_max_poll_interval_ms,
        heartbeat_interval_ms=max(500, settings.kafka_session_timeout_ms // 6),
        # A group learns of a changed partition count only from fresh metadata (kafka-
        # python's default age is 5 min): after a fresh broker the relay recreates the
        # topic with more partitions (``recreate_topic``), and the events on the new
        # ones wait until every group has rebalanced onto them.
        metadata_max_age_ms=GROUP_METADATA_MAX_AGE_MS,
        **_fetching(settings),
    )


def shared_fetcher(settings: Settings, client_id: str) -> KafkaConsumer:
    """A group-less consumer fetching for every projection of a worker process."""
    return KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        allow_auto_create_topics=False,
        **_fetching(settings),
    )


MAX_POLL_RECORDS = 5000
"""The most events a projection's poll (so one view transaction) holds."""


def _fetching(settings: Settings) -> dict[str, Any]:
    """How the projections' consumers fetch: big polls, the configured wait.

    A poll is one view transaction, whose cost goes by the documents it touches more
    than by its events: an aggregate's documents are read and written once however many
    of its events the poll holds. When catching up, 5,000 events a poll cost a quarter
    less per event than 2,000 (``bench.apply`` joint transactions); a live trickle polls
    a few at a time either way.
    """
    return {
        "fetch_max_wait_ms": settings.kafka_fetch_max_wait_ms,
        "max_poll_records": MAX_POLL_RECORDS,
        "max_partition_fetch_bytes": 8 * 1024 * 1024,
    }


def offsets_reader(settings: Settings) -> KafkaConsumer:
    """A group-less consumer, only for asking the broker about offsets."""
    return KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        allow_auto_create_topics=False,
        request_timeout_ms=5000,
        client_id="tiaokuai-offsets",
        # end_offsets reads each partition's last record batch: all of it in one poll.
        max_poll_records=100_000,
        fetch_max_wait_ms=10,
    )


def admin(settings: Settings) -> KafkaAdminClient:
    return KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id="tiaokuai-admin",
        request_timeout_ms=5000,
    )


def topic_exists(settings: Settings) -> bool:
    client = admin(settings)
    try:
        return settings.kafka_topic in client.list_topics()
    finally:
        client.close()


def ensure_topic(settings: Settings) -> bool:
    """Create the events topic if it is missing; True when this call created it."""
    client = admin(settings)
    try:
        if settings.kafka_topic in client.list_topics():
            return False
        try:
            client.create_topics([_new_topic(settings)])
        except TopicAlreadyExistsError:
            return False
        return True
    finally:
        client.close()


def recreate_topic(settings: Settings, attempts: int = 5) -> None:
    """Delete the events topic and create it again with the configured partitions.

    Only for the relay, the topic's one writer, and only when nothing in the topic is
    still needed (empty, or of an epoch it is leaving). Subscribed consumers may
    recreate the topic between the delete and the create (Tansu auto-creates a topic on
    a metadata request): then it is deleted again.
    """
    client = admin(settings)
    try:
        for _ in range(attempts):
            if settings.kafka_topic in client.list_topics():
                client.delete_topics([settings.kafka_topic])
            try:
                client.create_topics([_new_topic(settings)])
            except TopicAlreadyExistsError:
                continue
            return
        raise KafkaError(f"topic {settings.kafka_topic}: recreated by others {attempts} times")
    finally:
        client.close()


def _new_topic(settings: Settings) -> NewTopic:
    return NewTopic(
        settings.kafka_topic,
        num_partitions=settings.kafka_partitions,
        replication_factor=settings.kafka_replication,
    )


def end_offsets(reader: KafkaConsumer, topic: str) -> dict[int, int]:
    """Each partition's next offset to be written (empty when the topic is missing)."""
    partitions = reader.partitions_for_topic(topic)
    if not partitions:
        return {}
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    try:
        result: dict[Any, int] = reader.end_offsets(tps)
    except KeyError as error:
        # kafka-python 3.0 raises a bare KeyError when the broker does not answer for a
        # partition its cached metadata knows, as when the topic was just recreated with
        # fewer partitions (a fresh broker auto-creating it). That is a broker-side state
        # the relay retries on with fresh clients, not a crash of the relay.
        raise KafkaError(f"end offsets: the broker does not know partition {error}") from error
    return {tp.partition: offset for tp, offset in _past_last_record(reader, result).items()}


def _past_last_record(
    reader: KafkaConsumer, ends: dict[Any, int], timeout: float = 3.0
) -> dict[Any, int]:
    """The offset after each partition's last record, from the reported end offsets.

    Tansu 0.6 answers ListOffsets (latest) with the base offset of the partition's last
    record batch plus one, not the offset after its last record: five records in one
    batch at offsets 1-5 give 2. The relay then saw fewer messages than it had
    acknowledged and started a new epoch for nothing. Reading from the reported end - 1
    returns that last batch at once (there is data there, so the broker does not make
    the fetch wait), and its last record gives the true end. On Apache Kafka this reads
    one record and changes nothing. A partition that returns nothing in time keeps the
    reported end.
    """
    probe = {tp: end for tp, end in ends.items() if end > 0}
    result = dict(ends)
    if not probe:
        return result
    reader.assign(list(probe))
    for tp, end in probe.items():
        reader.seek(tp, end - 1)
    pending = set(probe)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for tp, records in reader.poll(timeout_ms=200).items():
            if records:
                result[tp] = max(result[tp], records[-1].offset + 1)
                pending.discard(tp)
    return result
