"""CPU and statements per event of the projection apply path, in-process, on PostgreSQL.

No broker: the bench writes ``--events`` events through ``TiaokuaiApplication`` (the
pipeline bench's workload, step-major so consecutive events touch different
aggregates) into a fresh schema, then for each projection resets its views and applies
the whole log in batches of ``--batch`` through ``PostgresViewRecorder.apply_consumed``,
the worker's transaction (with one offsets upsert per batch). It prints, per projection,
the Python CPU, the PostgreSQL backend CPU and the statements per event, and the cost of
the decodes around it (store → envelope, envelope → JSON → envelope).

Run: ``.venv/bin/python -m bench.apply [--events 3000] [--keep SCHEMA] [--profile FILE]``.
``--keep`` reuses (and does not drop) a schema of an earlier run, so a change to the
apply path can be measured again without writing the events again.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from bench.pipeline import (
    DEPARTMENTS,
    PG_DEFAULT,
    STEPS,
    TOWNS,
    TaskRun,
    _quiet_logs,
    _secretariat,
    plan,
    run_step,
)
from bench.support import backend_cpu

APP_NAME = "tiaokuai-bench-apply"


class StatementCounter:
    """Counts the statements psycopg sends (``executemany`` counts its rows)."""

    def __init__(self) -> None:
        self.count = 0
        self._saved: list[tuple[type[Any], str, Any]] = []

    def install(self) -> None:
        counter = self
        for cls in (psycopg.Cursor, psycopg.ClientCursor):
            execute, executemany = cls.execute, cls.executemany

            def counted(self: Any, *a: Any, _f: Any = execute, **k: Any) -> Any:
                counter.count += 1
                return _f(self, *a, **k)

            def counted_many(
                self: Any, q: Any, rows: Any, *a: Any, _f: Any = executemany, **k: Any
            ) -> Any:
                rows = list(rows)
                counter.count += len(rows)
                return _f(self, q, rows, *a, **k)

            self._saved += [(cls, "execute", execute), (cls, "executemany", executemany)]
            cls.execute = counted  # type: ignore[method-assign,assignment]
            cls.executemany = counted_many  # type: ignore[method-assign,assignment]


@contextmanager
def measured(store: str, counter: StatementCounter, out: dict[str, float]) -> Iterator[None]:
    cpu0, n0, wall0 = time.process_time(), counter.count, time.time()
    pg0 = backend_cpu(store, APP_NAME)
    yield
    out["cpu"] = time.process_time() - cpu0
    out["pg"] = backend_cpu(store, APP_NAME) - pg0
    out["statements"] = counter.count - n0
    out["wall"] = time.time() - wall0


def write_events(app: Any, events: int) -> None:
    from domain.units import UnitKind

    sec = _secretariat()
    for slug in DEPARTMENTS:
        app.register_unit(slug=slug, name=f"部门 {slug}", kind=UnitKind.DEPARTMENT, actor=sec)
    for slug in TOWNS:
        app.register_unit(slug=slug, name=f"街道 {slug}", kind=UnitKind.TOWN, actor=sec)
    runs: dict[int, TaskRun] = {}
    for t, s in plan(events - len(DEPARTMENTS) - len(TOWNS)):
        run_step(app, runs, t, STEPS[s])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=PG_DEFAULT)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=2000, help="events per transaction")
    parser.add_argument("--keep", metavar="SCHEMA", help="reuse this schema and keep it")
    parser.add_argument("--only", action="append", help="projection name (repeatable)")
    parser.add_argument("--profile", metavar="FILE", help="cProfile the apply phase into FILE")
    args = parser.parse_args(argv)
    os.environ["PGAPPNAME"] = APP_NAME
    os.environ["TIAOKUAI_STORE_POOL_SIZE"] = "2"
    _quiet_logs()

    from infra.bootstrap import bootstrap
    from infra.envelopes import envelope_from
    from infra.kafka.state import BusState
    from infra.settings import Settings
    from infra.view_store import PostgresViewRecorder
    from projections.envelope import EventEnvelope

    schema = args.keep or f"bench_apply_{uuid.uuid4().hex[:8]}"
    settings = Settings(
        store=args.store, store_schema=schema, bus="kafka://127.0.0.1:9", kafka_topic=schema
    )
    system = bootstrap(settings)
    try:
        app = system.app
        if app.head() == 0:
            t0 = time.time()
            write_events(app, args.events)
            print(f"wrote {app.head()} events in {time.time() - t0:.1f} s", file=sys.stderr)
        notifications = app.recorder.select_notifications(start=1, limit=app.head())
        views = system.view_recorder
        assert isinstance(views, PostgresViewRecorder)
        state = BusState(app.factory.datastore)  # type: ignore[attr-defined]
        state.create_tables()
        counter = StatementCounter()
        counter.install()
        n = len(notifications)
        rows: list[list[str]] = []

        t0 = time.process_time()
        envelopes = [envelope_from(x, app.envelope_mapper) for x in notifications]
        decode_store = time.process_time() - t0
        t0 = time.process_time()
        payloads = [e.to_json() for e in envelopes]
        encode = time.process_time() - t0
        t0 = time.process_time()
        for p in payloads:
            EventEnvelope.from_json(p)
        decode_json = time.process_time() - t0
        print(
            f"{n} events; per event: store→envelope {decode_store / n * 1e3:.3f} ms, "
            f"to_json {encode / n * 1e3:.3f} ms, from_json {decode_json / n * 1e3:.3f} ms"
        )

        offsets = state.store_offsets_statement()
        profiler = cProfile.Profile() if args.profile else None
        total = {"cpu": 0.0, "pg": 0.0, "statements": 0.0, "wall": 0.0}
        for projection in system.projections:
            if args.only and projection.name not in args.only:
                continue
            views.reset(projection)
            out: dict[str, float] = {}
            with measured(args.store, counter, out):
                if profiler:
                    profiler.enable()
                for start in range(0, n, args.batch):
                    chunk = envelopes[start : start + args.batch]
                    views.apply_consumed(
                        chunk,
                        projection,
                        offsets_statement=offsets,
                        offsets=[("bench", schema, 0, "e", start + len(chunk), chunk[-1].position)],
                    )
                if profiler:
                    profiler.disable()
            for k in total:
                total[k] += out[k]
            rows.append(
                [
                    projection.name,
                    f"{out['cpu'] / n * 1e3:.3f}",
                    f"{out['pg'] / n * 1e3:.3f}",
                    f"{out['statements'] / n:.2f}",
                    f"{n / out['wall']:.0f}",
                ]
            )
        rows.append(
            [
                "total",
                f"{total['cpu'] / n * 1e3:.3f}",
                f"{total['pg'] / n * 1e3:.3f}",
                f"{total['statements'] / n:.2f}",
                "",
            ]
        )
        print(f"{'projection':<12} {'py ms/ev':>9} {'pg ms/ev':>9} {'stmt/ev':>8} {'ev/s':>7}")
        for r in rows:
            print(f"{r[0]:<12} {r[1]:>9} {r[2]:>9} {r[3]:>8} {r[4]:>7}")
        if profiler:
            profiler.dump_stats(args.profile)
    finally:
        system.close()
        if not args.keep:
            with psycopg.connect(args.store, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {0} CASCADE").format(sql.Identifier(schema))
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
