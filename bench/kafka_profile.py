"""CPU per event of the relay and of one projection worker, in-process, on a real broker.

Uses a schema that already holds events (``bench.apply --keep SCHEMA`` writes one):
starts a Tansu broker, runs ``Relay.publish_batch`` in this process until the whole log
is on a fresh topic, then runs one ``ProjectionWorker`` per projection named (each from
offset 0 of every partition, its views reset first) until its stored offsets reach the
topic's end. Prints CPU milliseconds per event for this process and the broker, and
optionally writes a cProfile of each phase.

Run: ``.venv/bin/python -m bench.kafka_profile --schema SCHEMA [--only unit_views]
[--profile DIR]``.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from bench.pipeline import PG_DEFAULT, _quiet_logs
from bench.support import process_cpu


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=PG_DEFAULT)
    parser.add_argument("--schema", required=True, help="a schema holding events")
    parser.add_argument("--only", action="append", help="projection name (repeatable)")
    parser.add_argument("--profile", metavar="DIR", help="write relay.prof / <name>.prof here")
    args = parser.parse_args(argv)
    os.environ["TIAOKUAI_STORE_POOL_SIZE"] = "2"
    _quiet_logs()

    from infra.bootstrap import bootstrap
    from infra.kafka import clients
    from infra.settings import Settings
    from tests.integration.broker import Tansu
    from workers.projection_worker import ProjectionWorker
    from workers.relay import Relay

    profile_dir = Path(args.profile) if args.profile else None
    if profile_dir:
        profile_dir.mkdir(parents=True, exist_ok=True)
    with Tansu(Path(tempfile.mkdtemp(prefix="kafka-profile-"))) as broker:
        topic = f"profile.{uuid.uuid4().hex[:8]}"
        settings = Settings(
            store=args.store, store_schema=args.schema, bus=broker.url, kafka_topic=topic
        )
        system = bootstrap(settings)
        try:
            head = system.app.head()
            assert system.bus_state is not None
            state = system.bus_state
            relay = Relay(system)  # the name workers ask for the epoch
            profiler = cProfile.Profile() if profile_dir else None
            assert broker.process is not None
            b0, c0, w0 = process_cpu(broker.process.pid), time.process_time(), time.time()
            if profiler:
                profiler.enable()
            published = 0
            while published < head:
                published += relay.publish_batch()
            if profiler:
                profiler.disable()
                assert profile_dir is not None
                profiler.dump_stats(str(profile_dir / "relay.prof"))
            cpu, wall = time.process_time() - c0, time.time() - w0
            bcpu = process_cpu(broker.process.pid) - b0
            print(
                f"relay: {head} events in {wall:.1f} s ({head / wall:.0f}/s); CPU ms/event "
                f"relay {cpu / head * 1e3:.3f}, broker {bcpu / head * 1e3:.3f}"
            )
            epoch = state.relay_state(relay.name).epoch
            ends = clients.end_offsets(relay._reader, topic)  # type: ignore[arg-type]
            relay._disconnect()
            for projection in system.projections:
                if args.only and projection.name not in args.only:
                    continue
                system.view_recorder.reset(projection)
                group = clients.projection_group(projection.name)
                state.forget_group(group)
                # Stored offsets at 0 of the relay's epoch: the worker reads the topic,
                # not the store (a group with no offsets would catch up from the store).
                with system.app.factory.datastore.transaction(commit=True) as c:  # type: ignore[attr-defined]
                    for partition in ends:
                        c.execute(
                            state.store_offsets_statement(),
                            (group, topic, partition, epoch, 0, 0),
                        )
                worker = ProjectionWorker(system, projection)
                worker.current_epoch = epoch

                def watch(worker: ProjectionWorker = worker, group: str = group) -> None:
                    while True:
                        stored = state.partition_offsets(group, topic)
                        if all(
                            p in stored and stored[p].next_offset >= end for p, end in ends.items()
                        ):
                            worker.stop()
                            return
                        time.sleep(0.05)

                watcher = threading.Thread(target=watch, daemon=True)
                profiler = cProfile.Profile() if profile_dir else None
                b0, c0, w0 = process_cpu(broker.process.pid), time.process_time(), time.time()
                watcher.start()
                if profiler:
                    profiler.enable()
                worker.run()
                if profiler:
                    profiler.disable()
                    assert profile_dir is not None
                    profiler.dump_stats(str(profile_dir / f"{projection.name}.prof"))
                cpu, wall = time.process_time() - c0, time.time() - w0
                bcpu = process_cpu(broker.process.pid) - b0
                print(
                    f"worker {projection.name}: {wall:.1f} s ({head / wall:.0f}/s); CPU ms/event "
                    f"process {cpu / head * 1e3:.3f}, broker {bcpu / head * 1e3:.3f}"
                )
                state.forget_group(group)
        finally:
            system.close()
    print("done", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
