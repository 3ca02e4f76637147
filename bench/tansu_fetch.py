"""Tansu's CPU for a trickle of events to seven consumers, with an empty or a long log.

kafka-python alone, no Tiaokuai code: a producer with the relay's settings sends
``--rate`` messages a second (one per request) to a 6-partition topic that holds
``--prefill`` messages already; seven consumers, each in its own group and process, read
them with the workers' fetch wait. It prints the broker's CPU cores while the producer
runs. ``docs/performance.md`` cites it for why the broker's share of the pipeline grows
with the topic.

Run: ``.venv/bin/python -m bench.tansu_fetch [--prefill 60000] [--rate 100]``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import time

from bench.support import die_with_parent, free_port, process_cpu, tansu_command

VALUE = b"x" * 370


def _consume(address: str, group: str, wait_ms: int) -> None:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        bootstrap_servers=address,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=wait_ms,
        max_poll_records=2000,
    )
    consumer.subscribe(["t"])
    while True:
        consumer.poll(timeout_ms=100)


def main() -> int:
    from kafka import KafkaAdminClient, KafkaProducer
    from kafka.admin import NewTopic

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefill", type=int, default=60_000, help="messages in the log first")
    parser.add_argument("--rate", type=float, default=100.0, help="messages per second")
    parser.add_argument("--consumers", type=int, default=7)
    parser.add_argument("--fetch-wait-ms", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()

    port = free_port()
    address = f"127.0.0.1:{port}"
    broker = subprocess.Popen(
        [*die_with_parent(), *tansu_command(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    consumers: list[multiprocessing.Process] = []
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                admin = KafkaAdminClient(bootstrap_servers=address)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        admin.create_topics([NewTopic("t", 6, 1)])
        admin.close()
        producer = KafkaProducer(
            bootstrap_servers=address, acks="all", enable_idempotence=True, linger_ms=2
        )
        for _ in range(args.prefill):
            producer.send("t", key=os.urandom(8), value=VALUE)
        producer.flush()
        consumers = [
            multiprocessing.Process(
                target=_consume, args=(address, f"g{n}", args.fetch_wait_ms), daemon=True
            )
            for n in range(args.consumers)
        ]
        for consumer in consumers:
            consumer.start()
        time.sleep(30)  # the groups join and read the prefill
        cpu0, began, sent = process_cpu(broker.pid), time.monotonic(), 0
        while time.monotonic() - began < args.seconds:
            producer.send("t", key=os.urandom(8), value=VALUE)
            producer.flush()
            sent += 1
            time.sleep(max(0.0, sent / args.rate - (time.monotonic() - began)))
        elapsed = time.monotonic() - began
        cores = (process_cpu(broker.pid) - cpu0) / elapsed
        print(
            f"prefill {args.prefill:,}, {args.consumers} consumers (fetch wait "
            f"{args.fetch_wait_ms} ms), {sent / elapsed:.0f} messages/s: broker {cores:.3f} cores"
        )
        producer.close()
    finally:
        for consumer in consumers:
            consumer.terminate()
        broker.terminate()
        broker.wait(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
