"""CPU per request of ``POST /tasks/{id}/urge`` beside the bare save route, no broker needed.

Prepares a fresh schema (units, ``--tasks`` tasks, a secretariat token), then serves,
one after the other, the bare route of ``bench.pipeline --serve-bare`` and
``tiaokuai serve --store ... --bus kafka://<a closed port>`` (production mode, API only:
commands are stored, nothing is relayed), each under ``--requests`` requests from
``--clients`` keep-alive connections. Prints requests/s, p50/p99 and the CPU
milliseconds per request of the server process and of its PostgreSQL backends.
``--py-spy DIR`` records each server's stacks (py-spy must be installed).

Run: ``.venv/bin/python -m bench.api_profile [--requests 3000] [--py-spy DIR]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from bench.api_world import api_world
from bench.pipeline import (
    PG_DEFAULT,
    Child,
    _quiet_logs,
    closed_loop,
    percentile,
)
from bench.support import backend_cpu, free_port, process_cpu

APP_NAME = "tiaokuai-bench-api"


def start(name: str, argv: list[str], env: dict[str, str], port: int, path: str) -> Child:
    child = Child(name, argv, env, Path(tempfile.mkdtemp(prefix=f"api-{name}-")))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not child.running():
            raise RuntimeError(f"{name} exited:\n{child.tail()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2).status_code < 500:
                return child
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{name} did not answer")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=PG_DEFAULT)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--only", choices=["bare", "api"])
    parser.add_argument("--py-spy", metavar="DIR", help="record each server's stacks here")
    parser.add_argument(
        "--gil", action="store_true", help="with --py-spy: only samples holding the GIL"
    )
    args = parser.parse_args(argv)
    os.environ["PGAPPNAME"] = APP_NAME
    _quiet_logs()

    children: list[Child] = []
    with api_world(args.store, args.tasks, "bench_api") as world:
        tasks = world.tasks
        try:
            env = world.server_env()
            rows: list[str] = []
            for name in ("bare", "api"):
                if args.only and name != args.only:
                    continue
                port = free_port()
                argv_, ready = world.server_argv(name, port)
                child = start(name, argv_, env, port, ready)
                request, headers = world.request(name), world.headers(name)
                children.append(child)
                url = f"http://127.0.0.1:{port}"
                # Every task once (the first touch reads it from the store), as the
                # pipeline bench does, so that the run measures the steady state.
                warmup = max(200, len(tasks))
                asyncio.run(closed_loop("warm-up", url, warmup, args.clients, request, headers, 60))
                spy = None
                if args.py_spy and shutil.which("py-spy", path=str(Path(sys.executable).parent)):
                    out = Path(args.py_spy) / f"{name}.txt"
                    out.parent.mkdir(parents=True, exist_ok=True)
                    spy = subprocess.Popen(
                        [str(Path(sys.executable).parent / "py-spy"), "record", "--pid",
                         str(child.pid), "--rate", "200", "--format", "raw", "--nonblocking",
                         "--output", str(out), *(["--gil"] if args.gil else [])],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )  # fmt: skip
                cpu0, pg0 = process_cpu(child.pid), backend_cpu(args.store, APP_NAME)
                result = asyncio.run(
                    closed_loop(
                        name, url, args.requests, args.clients, request, headers, 240, warmup
                    )
                )
                cpu, pg = process_cpu(child.pid) - cpu0, backend_cpu(args.store, APP_NAME) - pg0
                if spy is not None:
                    spy.send_signal(2)
                    spy.wait(timeout=30)
                n = max(1, result.ok)
                lat = result.latencies_ms
                rows.append(
                    f"{name:<5} ok {result.ok:>5} errors {dict(result.errors)} "
                    f"{result.ok / result.seconds:>6.0f}/s p50 {percentile(lat, 50):7.1f} ms "
                    f"p99 {percentile(lat, 99):7.1f} ms; CPU ms/request server "
                    f"{cpu / n * 1e3:.2f}, postgres {pg / n * 1e3:.2f}"
                )
                child.stop()
            print("\n".join(rows))
        finally:
            for child in children:
                child.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
