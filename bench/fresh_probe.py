"""Freshness per hop, in one process: command saved → relay acknowledged → view applied.

Starts a Tansu broker, a fresh schema with one department and 50 tasks, and runs the
relay and the ``unit_views`` worker in threads of this process (one GIL: an upper bound
of the structural latency, without the bench's seven worker processes and API server).
Then urges a task ``--rate`` times a second and, after each save, polls (every 2 ms) the
relay's acknowledged position and the projection's applied version of the task.

Run: ``.venv/bin/python -m bench.fresh_probe [--rate 25] [--commands 200]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from bench.pipeline import PG_DEFAULT, _quiet_logs, _secretariat, issue_task, percentile


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=PG_DEFAULT)
    parser.add_argument("--rate", type=float, default=25.0, help="commands per second")
    parser.add_argument("--commands", type=int, default=200)
    args = parser.parse_args(argv)
    os.environ["TIAOKUAI_STORE_POOL_SIZE"] = "3"
    _quiet_logs()

    from domain.units import UnitKind
    from infra.bootstrap import bootstrap
    from infra.settings import Settings
    from infra.view_store import applied_view
    from tests.conftest import drop_schema
    from tests.integration.broker import Tansu
    from workers.projection_worker import ProjectionWorker
    from workers.relay import Relay

    with Tansu(Path(tempfile.mkdtemp(prefix="fresh-probe-"))) as broker:
        schema = f"fresh_{uuid.uuid4().hex[:8]}"
        settings = Settings(
            store=args.store, store_schema=schema, bus=broker.url, kafka_topic=schema
        )
        system = bootstrap(settings)
        try:
            app, sec = system.app, _secretariat()
            app.register_unit(slug="probe", name="probe", kind=UnitKind.DEPARTMENT, actor=sec)
            tasks = [issue_task(app, t, lead="probe", co=[], towns=[]).task_id for t in range(50)]
            relay = Relay(system)
            unit_views = next(p for p in system.projections if p.name == "unit_views")
            worker = ProjectionWorker(system, unit_views)
            threads = [threading.Thread(target=x.run, daemon=True) for x in (relay, worker)]
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 60
            while worker.applied == 0 and time.monotonic() < deadline:
                time.sleep(0.1)  # joined and caught up with the set-up events
            acked: list[float] = []
            applied: list[float] = []
            total: list[float] = []
            for n in range(args.commands):
                started = time.perf_counter()
                written = app.urge_task(task_id=tasks[n % len(tasks)], note="probe", actor=sec)
                saved = time.perf_counter()
                key, version = str(written.aggregate.id), written.aggregate.version
                relayed: float | None = None
                while time.perf_counter() - saved < 30:
                    state = relay._state
                    if relayed is None and state is not None and state.position >= written.position:
                        relayed = time.perf_counter()
                    doc = system.views.get(applied_view(unit_views.name), key)
                    if doc is not None and int(doc["version"]) >= version:
                        break
                    time.sleep(0.002)
                done = time.perf_counter()
                relayed = relayed or done
                acked.append((relayed - saved) * 1000)
                applied.append((done - relayed) * 1000)
                total.append((done - saved) * 1000)
                time.sleep(max(0.0, 1 / args.rate - (time.perf_counter() - started)))
            for name, values in (
                ("saved → relay acknowledged", acked),
                ("acknowledged → applied", applied),
                ("saved → applied", total),
            ):
                print(
                    f"{name:<28} p50 {percentile(values, 50):6.1f} ms  p90 "
                    f"{percentile(values, 90):6.1f}  p99 {percentile(values, 99):6.1f}  "
                    f"max {max(values):6.1f}"
                )
            relay.stop()
            worker.stop()
            for thread in threads:
                thread.join(10)
        finally:
            system.close()
            drop_schema(schema)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
