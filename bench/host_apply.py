"""CPU or instructions per event of the projection host's work on a poll, without a broker.

Uses a schema that already holds events (``bench.apply --keep SCHEMA`` writes one). The
store's log is turned into the messages the relay would publish (its value, headers and
key, partitioned as the relay's producer does) and fed to ``ProjectionHost.process`` of
every projection (or those named) in polls of ``--poll`` messages, one partition after
the other as a fetch of a full topic returns them (``--order log``: in the order of the
log, as while the relay publishes), each poll one view transaction, the views reset
first: what the deployed worker
process does once kafka-python has parsed a fetch. The fetch and the parse are not
measured here (``bench.kafka_profile --host`` measures them with a broker); so the
polls have the same size in every run, and the count of instructions repeats.

``--instructions`` runs this under ``valgrind --tool=callgrind`` (about fifty times
slower) and counts only the polls' work, in every thread. Compare commits with it: the
timed figures of this machine vary by half from one run to the next.

Run: ``.venv/bin/python -m bench.host_apply --schema SCHEMA [--poll 5000] [--only NAME]
[--instructions] [--profile FILE]``.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from bench.pipeline import PG_DEFAULT, _quiet_logs
from bench.support import (
    add_instruction_options,
    callgrind_switch,
    count_under_callgrind,
)


def messages(system: Any, topic: str, partitions: int, epoch: str) -> list[Any]:
    """The store's log as the relay publishes it, with offsets per partition."""
    from kafka.consumer.fetcher import ConsumerRecord

    from infra.envelopes import envelope_from
    from infra.kafka.clients import KeyHashCache
    from workers.relay import message_headers

    app = system.app
    partitioner = KeyHashCache()
    next_offset = [0] * partitions
    out = []
    for notification in app.recorder.select_notifications(start=1, limit=app.head()):
        envelope = envelope_from(notification, app.envelope_mapper)
        key = envelope.aggregate_id.encode()
        partition = partitioner.partition_of(key, partitions)
        offset = next_offset[partition]
        next_offset[partition] += 1
        value = envelope.to_json()
        headers = message_headers(envelope, epoch)
        out.append(
            ConsumerRecord(
                topic,
                partition,
                -1,
                offset,
                0,
                0,
                key,
                value,
                headers,
                None,
                len(key),
                len(value),
                sum(len(k) + len(v) for k, v in headers),
            )
        )
    return out


def polls(log: list[Any], size: int, topic: str, order: str) -> list[dict[Any, list[Any]]]:
    """``log`` in polls of at most ``size`` messages, grouped by partition as a poll returns.

    ``partition``: one partition after the other, as a fetch of a topic that holds the
    whole log returns them (a poll ends with its partition's fetched records). ``log``:
    in the order of the log, as polls come while the relay publishes.
    """
    from kafka import TopicPartition

    out: list[dict[Any, list[Any]]] = []
    if order == "log":
        for start in range(0, len(log), size):
            poll: dict[Any, list[Any]] = {}
            for message in log[start : start + size]:
                poll.setdefault(TopicPartition(topic, message.partition), []).append(message)
            out.append(poll)
        return out
    by_partition: dict[int, list[Any]] = {}
    for message in log:
        by_partition.setdefault(message.partition, []).append(message)
    for partition, messages in sorted(by_partition.items()):
        tp = TopicPartition(topic, partition)
        out.extend({tp: messages[i : i + size]} for i in range(0, len(messages), size))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=PG_DEFAULT)
    parser.add_argument("--schema", required=True, help="a schema holding events")
    parser.add_argument("--poll", type=int, default=5000, help="messages per poll")
    parser.add_argument(
        "--order",
        choices=["partition", "log"],
        default="partition",
        help="polls of one partition after the other (a full topic's fetch), or in log order",
    )
    parser.add_argument("--only", action="append", help="projection name (repeatable)")
    parser.add_argument("--profile", metavar="FILE", help="cProfile the polls into FILE")
    add_instruction_options(parser)
    args = parser.parse_args(argv)
    if args.instructions:
        given = argv if argv is not None else sys.argv[1:]
        return count_under_callgrind("bench.host_apply", given, "events in", "event", 1e3, "k")
    os.environ["TIAOKUAI_STORE_POOL_SIZE"] = "2"
    _quiet_logs()

    from kafka import TopicPartition

    from infra.bootstrap import bootstrap
    from infra.collector import settle_collector
    from infra.kafka import clients
    from infra.settings import Settings
    from workers.projection_host import ProjectionHost

    topic = f"host-apply.{args.schema}"
    settings = Settings(
        store=args.store, store_schema=args.schema, bus="kafka://127.0.0.1:9", kafka_topic=topic
    )
    system = bootstrap(settings)
    try:
        state = system.bus_state
        assert state is not None
        epoch = state.relay_state().epoch
        log = messages(system, topic, settings.kafka_partitions, epoch)
        chosen = [p for p in system.projections if not args.only or p.name in args.only]
        for projection in chosen:
            system.view_recorder.reset(projection)
            state.forget_group(clients.projection_group(projection.name))
        host = ProjectionHost(system, chosen)
        every = {TopicPartition(topic, p) for p in range(settings.kafka_partitions)}
        for member in host.members:
            member.cursor.owned.update(every)
            member.worker.current_epoch = epoch
            member.worker.epochs = dict.fromkeys(range(settings.kafka_partitions), epoch)
        batches = polls(log, args.poll, topic, args.order)
        del log
        settle_collector(settings.gc_young_threshold)  # as the worker process does
        profiler = cProfile.Profile() if args.profile else None
        if args.under_callgrind:
            callgrind_switch("on")
        if profiler:
            profiler.enable()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for batch in batches:
            host.process(batch)
        host.settle()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        if profiler:
            profiler.disable()
            profiler.dump_stats(args.profile)
        if args.under_callgrind:
            callgrind_switch("off")
        n = sum(len(m) for batch in batches for m in batch.values())
        applied = {m.name: m.worker.applied for m in host.members}
        print(
            f"{n} events in {len(batches)} polls of at most {args.poll} ({args.order} order), "
            f"{len(chosen)} projections: "
            f"CPU {cpu / n * 1e3:.3f} ms/event, wall {wall:.2f} s ({n / wall:.0f}/s); "
            f"applied {applied}"
        )
    finally:
        system.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
