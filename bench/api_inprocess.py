"""CPU per request of the API's ASGI app beside the bare route's, in one process, no HTTP.

Both apps are called as ASGI applications by this process (no uvicorn, no sockets), in
alternating blocks so that the machine's drift falls on both alike: the bare route of
``bench.pipeline`` and ``POST /tasks/{id}/urge`` of ``api.app.create_app`` over a
PostgreSQL store in a fresh schema (production mode, a closed broker port: commands are
stored, nothing is relayed). ``--concurrency`` requests are in flight at once (1: the
cost of one request alone; 50: with the thread pool and the store's pool contended, as
under the HTTP benchmark). Prints, per app, CPU milliseconds per request (this process,
so the app's side only) and requests/s.

Run: ``.venv/bin/python -m bench.api_inprocess [--blocks 6] [--block 300] [--concurrency 50]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from bench.api_world import api_world
from bench.pipeline import (
    PG_DEFAULT,
    _quiet_logs,
    bare_app,
)

ASGIApp = Callable[..., Any]


async def call(
    app: ASGIApp,
    path: str,
    body: bytes,
    headers: list[tuple[bytes, bytes]],
    method: str = "POST",
) -> int:
    """One request through the ASGI app (a GET when ``body`` is empty); its status."""
    path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method if body else "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [
            (b"host", b"bench"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *headers,
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)  # a disconnect would only come if the app waited
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def block(
    app: ASGIApp,
    requests: int,
    concurrency: int,
    request: Callable[[int], tuple[str, bytes]],
    headers: list[tuple[bytes, bytes]],
    start: int,
) -> tuple[float, float, int]:
    """``requests`` requests, ``concurrency`` at a time: (CPU s, wall s, failures)."""
    queue = iter(range(start, start + requests))
    failures = 0

    async def client() -> None:
        nonlocal failures
        for n in queue:
            path, body = request(n)
            if await call(app, path, body, headers) >= 300:
                failures += 1

    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return time.process_time() - cpu0, time.perf_counter() - wall0, failures


def _encoded(
    request: Callable[[int], tuple[str, dict[str, Any]]],
) -> Callable[[int], tuple[str, bytes]]:
    def encoded(n: int) -> tuple[str, bytes]:
        path, body = request(n)
        return path, json.dumps(body).encode()

    return encoded


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=PG_DEFAULT)
    parser.add_argument("--blocks", type=int, default=6, help="blocks per app, alternating")
    parser.add_argument("--block", type=int, default=300, help="requests per block")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--only", choices=["bare", "api"], help="run one app (for a profiler)")
    args = parser.parse_args(argv)
    _quiet_logs()

    from api.app import create_app
    from infra.logging import configure_logging

    with api_world(args.store, args.tasks, "bench_inproc") as world:
        # The server's own logging: JSON lines, here into the void.
        configure_logging(json=True)
        quiet = open(os.devnull, "w")  # noqa: SIM115 - open for the whole run
        stderr, sys.stderr = sys.stderr, quiet
        built = {"bare": bare_app(args.store, world.bare_schema), "api": create_app(world.system)}
        apps: dict[str, tuple[ASGIApp, Callable[[int], tuple[str, bytes]], list[Any]]] = {
            name: (
                app,
                _encoded(world.request(name)),
                [(k.lower().encode(), v.encode()) for k, v in world.headers(name).items()],
            )
            for name, app in built.items()
        }
        if args.only:
            apps = {args.only: apps[args.only]}
        figures: dict[str, list[tuple[float, float]]] = {name: [] for name in apps}
        n = 0
        for index in range(args.blocks + 1):  # the first round warms up, uncounted
            for name, (app, request, headers) in apps.items():
                cpu, wall, failures = asyncio.run(
                    block(app, args.block, args.concurrency, request, headers, n)
                )
                n += args.block
                if failures:
                    raise SystemExit(f"{name}: {failures} requests failed")
                if index:
                    figures[name].append((cpu / args.block * 1e3, args.block / wall))
        for name, rows in figures.items():
            cpu_ms = statistics.median(r[0] for r in rows)
            rate = statistics.median(r[1] for r in rows)
            print(f"{name:<5} CPU {cpu_ms:.3f} ms/request, {rate:.0f} requests/s (medians)")
        if len(figures) == 2:
            bare_cpu = statistics.median(r[0] for r in figures["bare"])
            api_cpu = statistics.median(r[0] for r in figures["api"])
            print(f"api ÷ bare: CPU {api_cpu / bare_cpu:.2f}, extra {api_cpu - bare_cpu:.3f} ms")
        sys.stderr = stderr
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
