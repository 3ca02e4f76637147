"""Instructions per HTTP request of ``tiaokuai serve`` beside the bare route, under valgrind.

The HTTP benchmarks (``bench.pipeline``, ``bench.api_profile``) measure time, and on a
shared two-core machine one run of the bare route differs from the next by a third.
This counts instead: each server runs under ``valgrind --tool=callgrind`` twice, once
serving ``--warmup`` requests (at least one per task) and once ``--requests`` more; the
difference of the two instruction totals, divided by ``--requests``, is what one request costs the
server process (uvicorn, FastAPI, the app; PostgreSQL's side is not counted). The
count repeats to a fraction of a percent from run to run, so a change of a few percent
shows. The servers are those of ``bench.api_profile``: the bare route of
``bench.pipeline --serve-bare`` and ``POST /tasks/{id}/urge`` in production mode.

Needs valgrind. Run: ``.venv/bin/python -m bench.api_instructions [--requests 300]``
(about five minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.api_world import api_world
from bench.pipeline import (
    PG_DEFAULT,
    Child,
    _quiet_logs,
    closed_loop,
)
from bench.support import callgrind_total, free_port

STARTUP_S = 300
"""How long a server may take to answer under valgrind (about fifty times slower)."""

Request = Callable[[int], tuple[str, dict[str, Any]]]


def _served(
    argv: list[str], env: dict[str, str], port: int, count: int, request: Request,
    headers: dict[str, str],
) -> int:  # fmt: skip
    """The instructions a server under callgrind executed, having served ``count`` requests."""
    valgrind = ["valgrind", "--tool=callgrind", "--cache-sim=no", "--callgrind-out-file=/dev/null"]
    child = Child("server", [*valgrind, *argv], env, Path(tempfile.mkdtemp(prefix="api-ir-")))
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            if not child.running():
                raise RuntimeError(f"the server exited:\n{child.tail()}")
            # A connection only, no request: the requests served must be the counted ones.
            try:
                socket.create_connection(("127.0.0.1", port), timeout=5).close()
                break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not answer:\n{child.tail()}")
            time.sleep(1)
        url = f"http://127.0.0.1:{port}"
        result = asyncio.run(closed_loop("ir", url, count, 5, request, headers, STARTUP_S, 0))
        if result.ok != count:
            raise RuntimeError(f"{count - result.ok} requests failed: {dict(result.errors)}")
    finally:
        child.stop(timeout=120)
    total = callgrind_total(child.log_path.read_text(errors="replace"))
    if total is None:
        raise RuntimeError(f"no instruction count in the server's log:\n{child.tail()}")
    return total


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=PG_DEFAULT)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--only", choices=["bare", "api"])
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed")
    _quiet_logs()

    with api_world(args.store, args.tasks, "bench_ir") as world:
        # The same dict and set layouts in every run.
        env = world.server_env(PYTHONHASHSEED="0")
        per_request: dict[str, float] = {}
        for name in ("bare", "api"):
            if args.only and name != args.only:
                continue
            port = free_port()
            server, _ready = world.server_argv(name, port)
            request, headers = world.request(name), world.headers(name)
            # The first run touches every task once: the first touch reads the task from
            # the store, a cost of start-up that the difference must not count.
            warmup = max(args.warmup, args.tasks)
            low = _served(server, env, port, warmup, request, headers)
            high = _served(server, env, port, warmup + args.requests, request, headers)
            per_request[name] = (high - low) / args.requests
            print(f"{name:<5} {per_request[name] / 1e6:.3f} M instructions per request", flush=True)
        if len(per_request) == 2:
            print(f"api ÷ bare: {per_request['api'] / per_request['bare']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
