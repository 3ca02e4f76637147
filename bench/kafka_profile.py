"""CPU per event of the relay and of one projection worker, in-process, on a real broker.

Uses a schema that already holds events (``bench.apply --keep SCHEMA`` writes one):
starts a Tansu broker, runs ``Relay.publish_batch`` in this process until the whole log
is on a fresh topic, then runs one ``ProjectionWorker`` per projection named (each from
offset 0 of every partition, its views reset first) until its stored offsets reach the
topic's end. Prints CPU milliseconds per event for this process and the broker, and
optionally writes a cProfile of each phase. With ``--host``, one ``ProjectionHost`` of
every projection named (the deployed worker process) reads the topic instead, and the
report splits its main loop's wall time into the fetch, the apply and the wait for
PostgreSQL, from the moment every group has its partitions.

Run: ``.venv/bin/python -m bench.kafka_profile --schema SCHEMA [--only unit_views]
[--host] [--profile DIR]``.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.pipeline import PG_DEFAULT, _quiet_logs
from bench.support import process_cpu


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=PG_DEFAULT)
    parser.add_argument("--schema", required=True, help="a schema holding events")
    parser.add_argument("--only", action="append", help="projection name (repeatable)")
    parser.add_argument("--profile", metavar="DIR", help="write relay.prof / <name>.prof here")
    parser.add_argument("--host", action="store_true", help="one ProjectionHost of them all")
    parser.add_argument("--trace", action="store_true", help="with --host: print every poll")
    args = parser.parse_args(argv)
    os.environ["TIAOKUAI_STORE_POOL_SIZE"] = "2"
    _quiet_logs()

    from infra.bootstrap import bootstrap
    from infra.collector import settle_collector
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
        settle_collector(settings.gc_young_threshold)  # as the worker processes do
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
            chosen = [p for p in system.projections if not args.only or p.name in args.only]
            for projection in chosen:
                _from_topic_start(system, projection, topic, epoch, ends)
            if args.host:
                _run_host(
                    system, chosen, topic, ends, broker.process.pid, head, profile_dir, args.trace
                )
            for projection in chosen if not args.host else ():
                group = clients.projection_group(projection.name)
                worker = ProjectionWorker(system, projection)
                worker.current_epoch = epoch

                def watch(worker: ProjectionWorker = worker, group: str = group) -> None:
                    while not _reached(state, group, topic, ends):
                        time.sleep(0.05)
                    worker.stop()

                watcher = threading.Thread(target=watch, daemon=True)
                b0, c0, w0 = process_cpu(broker.process.pid), time.process_time(), time.time()
                watcher.start()
                _profiled(worker.run, profile_dir, projection.name)
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


def _profiled(run: Callable[[], None], profile_dir: Path | None, name: str) -> None:
    """``run()``, and with ``profile_dir`` its cProfile in ``<name>.prof`` there."""
    if profile_dir is None:
        run()
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        run()
    finally:
        profiler.disable()
        profiler.dump_stats(str(profile_dir / f"{name}.prof"))


def _reached(state: Any, group: str, topic: str, ends: dict[int, int]) -> bool:
    """Whether ``group`` stored, with its views, the end offset of every partition."""
    stored = state.partition_offsets(group, topic)
    return all(p in stored and stored[p].next_offset >= end for p, end in ends.items())


def _from_topic_start(
    system: Any, projection: Any, topic: str, epoch: str, ends: dict[int, int]
) -> None:
    """Empty views, and stored offsets at 0 of the relay's epoch.

    So a worker reads the topic, not the store (a group with no offsets would catch up
    from the store).
    """
    from infra.kafka import clients

    state = system.bus_state
    system.view_recorder.reset(projection)
    group = clients.projection_group(projection.name)
    state.forget_group(group)
    with system.app.factory.datastore.transaction(commit=True) as c:
        for partition in ends:
            c.execute(state.store_offsets_statement(), (group, topic, partition, epoch, 0, 0))


def _run_host(
    system: Any,
    projections: Sequence[Any],
    topic: str,
    ends: dict[int, int],
    broker_pid: int,
    head: int,
    profile_dir: Path | None,
    trace: bool,
) -> None:
    """One ProjectionHost of ``projections`` until every group stored the topic's ends."""
    from infra.kafka import clients
    from workers.projection_host import ProjectionHost

    state = system.bus_state
    host = ProjectionHost(system, projections)
    groups = [clients.projection_group(p.name) for p in projections]
    spent = {"poll": 0.0, "process": 0.0, "settle": 0.0}
    polls: list[int] = []
    started: list[float] = []

    def timed(name: str, call: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                if started:
                    spent[name] += time.perf_counter() - t0

        return run

    host.process = timed("process", host.process)  # type: ignore[method-assign]
    host.settle = timed("settle", host.settle)  # type: ignore[method-assign]
    connect = host._connect

    def connect_timed() -> None:
        connect()
        assert host.fetcher is not None
        poll = host.fetcher.poll

        def counted(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            records = poll(*args, **kwargs)
            if started:
                polls.append(sum(map(len, records.values())))
                if trace:
                    print(
                        f"  at {time.time() - started[0]:6.2f} s: poll of {polls[-1]:5d} "
                        f"took {time.perf_counter() - t0:.3f} s"
                    )
            return records

        host.fetcher.poll = timed("poll", counted)  # type: ignore[method-assign]

    host._connect = connect_timed  # type: ignore[method-assign]
    marks: dict[str, float] = {}
    collected = {"n": 0, "s": 0.0, "at": 0.0}

    def collector(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            collected["at"] = time.perf_counter()
        elif started:
            collected["n"] += 1
            collected["s"] += time.perf_counter() - collected["at"]

    gc.callbacks.append(collector)

    def watch() -> None:
        while not all(m.cursor.owned for m in host.members):
            time.sleep(0.01)
        marks["b0"], marks["c0"] = process_cpu(broker_pid), time.process_time()
        marks["w0"] = time.time()
        started.append(marks["w0"])
        while not all(_reached(state, group, topic, ends) for group in groups):
            time.sleep(0.02)
        marks["w1"], marks["c1"] = time.time(), time.process_time()
        marks["b1"] = process_cpu(broker_pid)
        host.stop()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    _profiled(host.run, profile_dir, "host")
    gc.callbacks.remove(collector)
    wall = marks["w1"] - marks["w0"]
    cpu = marks["c1"] - marks["c0"]
    bcpu = marks["b1"] - marks["b0"]
    print(
        f"host of {len(projections)}: {wall:.2f} s ({head / wall:.0f} events/s) from every "
        f"group holding its partitions; CPU ms/event process {cpu / head * 1e3:.3f}, broker "
        f"{bcpu / head * 1e3:.3f}; {len(polls)} polls of {sum(polls) / max(1, len(polls)):.0f}"
    )
    print(
        "  main loop wall: "
        + ", ".join(f"{k} {v:.2f} s ({v / wall:.0%})" for k, v in spent.items())
        + f" (process includes the settle it begins with); garbage collector "
        f"{collected['s']:.2f} s ({collected['s'] / wall:.0%}) in {collected['n']} collections"
    )


if __name__ == "__main__":
    raise SystemExit(main())
