"""What sealing costs the write path: commands/s with sealing vs without, in one run.

One run, one fresh PostgreSQL schema (dropped at the end; ``--sqlite`` uses a temporary
SQLite file instead), one ``System`` built by ``infra.bootstrap`` with the sealing
recorder (``APPLICATION_RECORDER_TOPIC``, see ``infra/integrity.py``). Its in-process
projector is detached (``--with-projector`` keeps it), so what is measured is the bare
write path of a deployment with a bus: load the aggregate, decide, save. Commands go
through ``TiaokuaiApplication``: tasks are issued and signed for beforehand, then each
command is a progress report by the lead unit or an urge by the secretariat, spread over
the tasks. Three modes alternate in rounds (``--rounds``), so drift in the machine's load
hits them alike; each runs ``--commands`` commands in total:

- ``off``: no sealing (the recorder's ``seal_on_insert`` switched off);
- ``in_txn``: sealed in the transaction that stores the events (the default wiring);
- ``after_save``: the plain path, ``Sealer.after_save`` as a saved listener (a second
  transaction after every save).

At the end the whole chain is verified, and the time that takes is reported too.

Run: ``.venv/bin/python -m bench.sealing [--commands 3000] [--store postgresql://...]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

from domain.actor import Actor, Role
from domain.units import UnitKind
from infra.bootstrap import System, bootstrap
from infra.clock import ManualClock
from infra.integrity import Sealer, sealing_recorder_topic
from infra.logging import configure_logging
from infra.settings import Settings

PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"
SEC = Actor("bench:secretariat", Role.SECRETARIAT)
DEPARTMENTS = tuple(f"dept-{i:02d}" for i in range(1, 9))
TOWNS = tuple(f"town-{i:02d}" for i in range(1, 5))


def drop_schema(store: str, schema: str) -> None:
    with psycopg.connect(store, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {0} CASCADE").format(sql.Identifier(schema)))


def prepare(system: System, tasks: int) -> list[tuple[UUID, str]]:
    """Units, then ``tasks`` tasks signed for by their lead units: (task id, lead)."""
    app = system.app
    for slug in DEPARTMENTS:
        app.register_unit(slug=slug, name=slug, kind=UnitKind.DEPARTMENT, actor=SEC)
    for slug in TOWNS:
        app.register_unit(slug=slug, name=slug, kind=UnitKind.TOWN, actor=SEC)
    issued: list[tuple[UUID, str]] = []
    deadline = app.now() + timedelta(days=365)
    for n in range(tasks):
        lead = DEPARTMENTS[n % len(DEPARTMENTS)]
        co = DEPARTMENTS[(n + 1) % len(DEPARTMENTS)]
        town = TOWNS[n % len(TOWNS)]
        written = app.issue_task(
            title=f"bench task {n}",
            industry="express",
            lead_unit=lead,
            co_units=[co],
            towns=[town],
            deadline=deadline,
            weight=1.0,
            meeting_id=None,
            resolution_id=None,
            actor=SEC,
        )
        task_id = written.aggregate.id
        app.sign_for(task_id=task_id, actor=Actor(f"bench:{lead}", Role.LIAISON, lead))
        issued.append((task_id, lead))
    return issued


def command(system: System, tasks: list[tuple[UUID, str]], n: int) -> None:
    task_id, lead = tasks[n % len(tasks)]
    if n % 2:
        system.app.urge_task(task_id=task_id, note=f"urge {n}", actor=SEC)
    else:
        system.app.report_progress(
            task_id=task_id,
            note=f"progress {n}",
            percent=n % 100,
            actor=Actor(f"bench:{lead}", Role.LIAISON, lead),
        )


def run_round(system: System, tasks: list[tuple[UUID, str]], start: int, count: int) -> list[float]:
    """Run ``count`` commands; the latency of each, in seconds."""
    latencies = []
    for n in range(start, start + count):
        began = time.perf_counter()
        command(system, tasks, n)
        latencies.append(time.perf_counter() - began)
    return latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


MODES = ("off", "in_txn", "after_save")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=PG_DEFAULT)
    parser.add_argument("--sqlite", action="store_true", help="measure the SQLite store")
    parser.add_argument("--commands", type=int, default=3000, help="per mode")
    parser.add_argument("--rounds", type=int, default=30, help="rounds per mode")
    parser.add_argument("--tasks", type=int, default=60)
    parser.add_argument("--with-projector", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON only")
    args = parser.parse_args()
    configure_logging(json=False, level=logging.WARNING)

    schema = f"bench_seal_{uuid.uuid4().hex[:10]}"
    with TemporaryDirectory() as tmp:
        if args.sqlite:
            settings = Settings(data_dir=Path(tmp))
        else:
            settings = Settings(store=args.store, store_schema=schema, data_dir=Path(tmp))
        module = settings.eventsourcing_env()["PERSISTENCE_MODULE"]
        os.environ["APPLICATION_RECORDER_TOPIC"] = sealing_recorder_topic(module)
        clock = ManualClock(datetime(2026, 11, 2, 1, 0, tzinfo=UTC))
        system = bootstrap(settings, clock=clock)
        recorder = system.app.recorder
        try:
            if not args.with_projector:
                system.app.saved_listeners.clear()
            sealer = Sealer.for_system(system)
            tasks = prepare(system, args.tasks)
            sealer.seal_pending()

            seal_times: list[float] = []

            def timed_seal(position: int) -> None:
                began = time.perf_counter()
                sealer.after_save(position)
                seal_times.append(time.perf_counter() - began)

            per_round = max(1, args.commands // args.rounds)
            latencies: dict[str, list[float]] = {mode: [] for mode in MODES}
            elapsed: dict[str, float] = dict.fromkeys(MODES, 0.0)
            n = 0
            run_round(system, tasks, n, 100)  # warm up: connections, prepared statements
            n += 100
            for round_no in range(args.rounds):
                # Rotate the order so that each mode goes first equally often.
                order = MODES[round_no % 3 :] + MODES[: round_no % 3]
                for mode in order:
                    sealer.seal_pending()
                    recorder.seal_on_insert = mode == "in_txn"  # type: ignore[attr-defined]
                    listener: Callable[[int], None] = timed_seal
                    if mode == "after_save":
                        system.app.saved_listeners.append(listener)
                    began = time.perf_counter()
                    latencies[mode] += run_round(system, tasks, n, per_round)
                    elapsed[mode] += time.perf_counter() - began
                    if mode == "after_save":
                        system.app.saved_listeners.remove(listener)
                    n += per_round

            recorder.seal_on_insert = True  # type: ignore[attr-defined]
            sealer.seal_pending()
            began = time.perf_counter()
            report = sealer.verify()
            verify_seconds = time.perf_counter() - began
            assert report.ok, report.summary()
            assert report.unsealed == 0, report.summary()
        finally:
            system.close()
            if not args.sqlite:
                drop_schema(args.store, schema)

    rate = {mode: len(latencies[mode]) / elapsed[mode] for mode in MODES}
    cost = {mode: elapsed[mode] / elapsed["off"] - 1.0 for mode in MODES if mode != "off"}
    median_ms = {mode: statistics.median(values) * 1000 for mode, values in latencies.items()}
    p99_ms = {mode: percentile(values, 0.99) * 1000 for mode, values in latencies.items()}
    verify_rate = round(report.checked / verify_seconds)
    summary: dict[str, Any] = {
        "store": "sqlite" if args.sqlite else "postgresql",
        "projector_in_process": bool(args.with_projector),
        "commands_per_mode": len(latencies["off"]),
        "commands_per_second": {mode: round(value, 1) for mode, value in rate.items()},
        "median_ms": {mode: round(value, 3) for mode, value in median_ms.items()},
        "p99_ms": {mode: round(value, 3) for mode, value in p99_ms.items()},
        "after_save_seal_ms": {
            "median": round(statistics.median(seal_times) * 1000, 3),
            "p99": round(percentile(seal_times, 0.99) * 1000, 3),
        },
        "throughput_ratio": {mode: round(rate[mode] / rate["off"], 4) for mode in cost},
        "cost_percent": {mode: round(value * 100, 2) for mode, value in cost.items()},
        "median_cost_percent": {
            mode: round((median_ms[mode] / median_ms["off"] - 1) * 100, 2) for mode in cost
        },
        "verify": {
            "events": report.checked,
            "seconds": round(verify_seconds, 3),
            "events_per_second": verify_rate,
        },
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(
        f"{summary['store']}: {summary['commands_per_mode']} commands per mode, "
        f"{args.rounds} rounds, projector {'on' if args.with_projector else 'detached'}"
    )
    for mode in MODES:
        extra = ""
        if mode != "off":
            extra = (
                f", throughput x{rate[mode] / rate['off']:.3f}: sealing costs "
                f"{cost[mode] * 100:.1f} % (median latency "
                f"{summary['median_cost_percent'][mode]:+.1f} %)"
            )
        print(
            f"  {mode:>10}: {rate[mode]:7.1f} commands/s, median "
            f"{median_ms[mode]:.3f} ms, p99 {p99_ms[mode]:.3f} ms{extra}"
        )
    print(f"verify: {report.checked} events in {verify_seconds:.2f} s ({verify_rate:,} events/s)")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
