"""CPU or instructions per read of a department's view, through the API's ASGI app.

The freshness phase of ``bench.pipeline`` sends one ``GET /views/units/<unit>?after=``
per five urges, and a department's view is its hundreds of task rows read, ordered and
rendered: one read costs the API about three urges. This measures that read alone, in
one process, no HTTP: a fresh schema with one department leading ``--tasks`` unsigned
tasks (as the freshness phase's), its views applied by the in-process projector, and
the app of ``api.app.create_app`` in production mode (a closed broker port). The
requests are sent one at a time (``bench.api_inprocess.call``), each with ``?after=``
the store's head, as a client reading its own write asks.

``--instructions`` runs this under ``valgrind --tool=callgrind`` (about fifty times
slower) and counts only the reads, in every thread; the count repeats within a fraction
of a percent, so compare commits with it.

Run: ``.venv/bin/python -m bench.view_read [--tasks 200] [--reads 200] [--instructions]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from collections.abc import Sequence

import psycopg
from psycopg import sql

from bench.api_inprocess import call
from bench.pipeline import PG_DEFAULT, _quiet_logs, _secretariat, issue_task
from bench.support import (
    add_instruction_options,
    callgrind_switch,
    count_under_callgrind,
    free_port,
)

UNIT = "view-read-dept"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=PG_DEFAULT)
    parser.add_argument("--tasks", type=int, default=200, help="tasks the department leads")
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20, help="reads before the counted ones")
    add_instruction_options(parser)
    args = parser.parse_args(argv)
    if args.instructions:
        given = argv if argv is not None else sys.argv[1:]
        return count_under_callgrind("bench.view_read", given, "reads of", "read", 1e6, "M")
    _quiet_logs()

    from api.app import create_app
    from domain.actor import Role
    from domain.units import UnitKind
    from infra.bootstrap import bootstrap
    from infra.logging import configure_logging
    from infra.settings import Settings

    schema = f"bench_view_{uuid.uuid4().hex[:8]}"
    dead_bus = f"kafka://127.0.0.1:{free_port()}"
    system = bootstrap(Settings(store=args.store, store_schema=schema, bus=dead_bus))
    try:
        system.app.register_unit(
            slug=UNIT, name="视图读取部门", kind=UnitKind.DEPARTMENT, actor=_secretariat()
        )
        for t in range(args.tasks):
            issue_task(system.app, t, lead=UNIT, co=[], towns=[])
        position = system.catch_up()
        _principal, token = system.tokens.issue(role=Role.SECRETARIAT, unit=None, name="bench")
        configure_logging(json=True)  # the server's own logging, into the void
        quiet = open(os.devnull, "w")  # noqa: SIM115 - open for the whole run
        stderr, sys.stderr = sys.stderr, quiet
        app = create_app(system)
        headers = [(b"authorization", f"Bearer {token}".encode())]
        path = f"/views/units/{UNIT}?after={position}"

        async def reads(count: int) -> None:
            for _ in range(count):
                status = await call(app, path, b"", headers, "GET")
                if status != 200:
                    raise SystemExit(f"GET {path}: {status}")

        asyncio.run(reads(args.warmup))
        if args.under_callgrind:
            callgrind_switch("on")
        cpu0, wall0 = time.process_time(), time.perf_counter()
        asyncio.run(reads(args.reads))
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        if args.under_callgrind:
            callgrind_switch("off")
        sys.stderr = stderr
        print(
            f"{args.reads} reads of a view of {args.tasks} tasks: "
            f"CPU {cpu / args.reads * 1e3:.3f} ms/read, wall {wall / args.reads * 1e3:.3f} ms/read"
        )
    finally:
        system.close()
        with psycopg.connect(args.store, autocommit=True) as conn:
            drop = sql.SQL("DROP SCHEMA IF EXISTS {0} CASCADE")
            conn.execute(drop.format(sql.Identifier(schema)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
