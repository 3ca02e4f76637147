"""Tiaokuai's benchmark: the event pipeline, its raw ceilings, the API and view freshness.

One run uses one Tansu broker (started here on a free loopback port, memory storage) and
the PostgreSQL at ``--store``, in a fresh schema and fresh topics that are dropped at the
end. Phases, in order:

1. **Pipeline.** Projection workers (``tiaokuai worker project``: by default one process
   hosting every projection, each in its own consumer group over one shared fetch;
   ``--workers``) join their consumer groups on an empty store; ``--events``
   events are written through ``TiaokuaiApplication`` (units, then tasks driven through
   sign / progress / contribution / urge / extension / completion / return / verify,
   step by step across all tasks so the keys spread); then the relay
   (``tiaokuai worker relay``) is started on that backlog and the clock runs until every
   consumer group has stored, with its views, the end offset of every partition. Finally
   every projection's ``applied:<name>`` documents are checked against the store's
   versions of every aggregate of the types it takes.
2. **Raw ceilings**, with the relay and workers stopped: kafka-python producing as many
   messages of the pipeline's average size (acks=all, the relay's producer settings), and
   kafka-python consuming them with one PostgreSQL upsert per message and the partition
   offsets upserted in the same transaction, one transaction per poll.
3. **API.** A bare FastAPI route (this module, ``--serve-bare``; one eventsourcing save
   of a one-event aggregate) and ``tiaokuai serve --store ... --bus ...``
   (``POST /tasks/{id}/urge``), each under ``--api-requests`` requests from
   ``--api-clients`` concurrent keep-alive connections (``Connection``: a minimal asyncio
   HTTP/1.1 client; httpx would be the bottleneck). Each server runs alone, the relay and
   workers stopped (nobody relays or projects the bare route's events; the API's are
   stored, as during a broker outage), and the two take turns (``API_TURNS`` blocks
   each, in ABBA order, so the machine's drifting speed weighs on both alike): the
   ratios compare these. Then the relay and
   workers are restarted, catch up, and the API runs once more with them live on the
   same cores, reported beside.
4. **Freshness.** ``POST /tasks/{id}/urge`` at a steady ``--fresh-rate`` per second for
   ``--fresh-seconds``; from each response, the time until the projections' ``applied``
   documents show the new version (polled every 2 ms), and the time a client waits for
   ``GET /views/units/<unit>?after=<position>``. Meanwhile ``DiskProbe`` times a small
   durable write every 10 ms: a stall of the disk holds up every commit at once.

Run: ``make bench`` or ``.venv/bin/python -m bench.pipeline [--events 50000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import platform
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import IO, Any
from uuid import UUID

import httpx
import psycopg
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from psycopg import sql
from pydantic import BaseModel

from bench.http import Answer, HttpError, read_response
from bench.support import (
    DiskProbe,
    PostgresMeter,
    free_port,
    git_state,
    loadavg,
    machine_cpu,
    process_cpu,
    tansu_command,
)

PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"
DEPARTMENTS = tuple(f"dept-{i:02d}" for i in range(1, 13))
TOWNS = tuple(f"town-{i:02d}" for i in range(1, 8))
FRESH_UNIT = "fresh-dept"
FRESH_TASKS = 200
READ_EVERY = 5
"""Every fifth freshness command is followed by a ``GET ...?after=`` (the rest only poll)."""
STEPS = (
    "issue",
    "sign_lead",
    "sign_co",
    "sign_town",
    "progress",
    "contribution_co",
    "contribution_town",
    "urge",
    "progress",
    "extension_request",
    "extension_grant",
    "progress",
    "completion",
    "return",
    "progress",
    "completion",
    "verify",
)
"""One task's life, one event per step; the write phase runs step k on every task, then
step k + 1, so consecutive events belong to different aggregates."""

DRAIN_LIMIT_S = 420.0
LOAD_LIMIT_S = 240.0
API_TURNS = 6
"""The bare route and the API take turns at a burst this many times each (ABBA order)."""
RAW_LIMIT_S = 180.0
JOIN_LIMIT_S = 60.0
START_LIMIT_S = 30.0
RACE = b"tuple concurrently updated"
"""PostgreSQL's error when processes run eventsourcing's CREATE OR REPLACE FUNCTION at once."""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- processes


def port_accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Child:
    """A subprocess of the bench, its output in a log file, stopped by its own pid."""

    def __init__(self, name: str, argv: Sequence[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self._log: IO[bytes] = self.log_path.open("wb")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            self.argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def log_contains(self, needle: bytes) -> bool:
        try:
            return needle in self.log_path.read_bytes()
        except OSError:
            return False

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, sig: int = signal.SIGINT, timeout: float = 15.0) -> None:
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
        self._log.close()


# ------------------------------------------------------------------------ CPU meter
APP_NAME = "tiaokuai-bench"
"""PGAPPNAME of every process of the run, so its PostgreSQL backends can be told apart."""


class CpuMeter:
    """CPU seconds per role (bench, broker, relay, workers, api, postgres) over a phase.

    ``other`` is the machine's busy time that none of them used: anything else running
    on the machine during the phase shows there.
    """

    def __init__(self, postgres: PostgresMeter) -> None:
        self.roles: dict[str, list[Child]] = {}
        self.postgres = postgres

    def sample(self) -> dict[str, float]:
        sample = {
            "machine": machine_cpu(),
            "bench": process_cpu(os.getpid()),
            "postgres": self.postgres.total(),
        }
        for role, children in self.roles.items():
            sample[role] = 0.0
            for child in children:
                if child.running():
                    cpu = process_cpu(child.pid)
                    sample[role] += cpu
                    if len(children) > 1:
                        sample[f"{role}:{child.name}"] = cpu
        return sample

    @contextlib.contextmanager
    def phase(self, name: str, into: dict[str, dict[str, float]]) -> Iterator[None]:
        before, started = self.sample(), time.monotonic()
        try:
            yield
        finally:
            after, wall = self.sample(), time.monotonic() - started
            cores = {
                role: (after.get(role, 0.0) - before.get(role, 0.0)) / wall
                for role in after
                if wall > 0
            }
            ours = sum(v for k, v in cores.items() if k != "machine" and ":" not in k)
            cores["other"] = max(0.0, cores["machine"] - ours)
            cores["wall_s"] = wall
            into[name] = cores


# ----------------------------------------------------------------------- statistics
def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (NaN for no values)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class LoadResult:
    name: str
    sent: int = 0
    ok: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def summary(self) -> dict[str, Any]:
        lat = self.latencies_ms
        return {
            "requests": self.sent,
            "ok": self.ok,
            "errors": dict(self.errors),
            "seconds": round(self.seconds, 3),
            "per_s": round(self.rate, 1),
            "p50_ms": round(percentile(lat, 50), 2),
            "p90_ms": round(percentile(lat, 90), 2),
            "p99_ms": round(percentile(lat, 99), 2),
            "max_ms": round(max(lat), 2) if lat else math.nan,
        }


def merged(turns: Sequence[LoadResult]) -> LoadResult:
    """One server's turns of a burst as one result: their requests, time and latencies."""
    result = LoadResult(turns[0].name)
    for part in turns:
        result.sent += part.sent
        result.ok += part.ok
        result.seconds += part.seconds
        result.latencies_ms.extend(part.latencies_ms)
        result.errors.update(part.errors)
    return result


def merged_cores(phases: Sequence[dict[str, float]]) -> dict[str, float]:
    """The CPU cores of several measured phases as one: weighted by their wall time."""
    wall = sum(p["wall_s"] for p in phases)
    roles = {role for p in phases for role in p if role != "wall_s"}
    cores = {role: sum(p.get(role, 0.0) * p["wall_s"] for p in phases) / wall for role in roles}
    cores["wall_s"] = wall
    return cores


# ------------------------------------------------------------------------- workload
def task_units(t: int) -> tuple[str, str, str]:
    """The lead unit, co-unit and town of task number ``t``."""
    return DEPARTMENTS[t % 12], DEPARTMENTS[(t + 5) % 12], TOWNS[t % 7]


def plan(task_events: int) -> list[tuple[int, int]]:
    """(task number, step index) of each task event, step-major."""
    tasks = math.ceil(task_events / len(STEPS))
    commands = [(t, s) for s in range(len(STEPS)) for t in range(tasks)]
    return commands[:task_events]


@dataclass
class TaskRun:
    task_id: UUID
    deadline: datetime
    request_id: str | None = None
    progress: int = 0


def _liaison(unit: str) -> Any:
    from domain.actor import Actor, Role

    return Actor(f"bench-liaison-{unit}", Role.LIAISON, unit)


def _secretariat() -> Any:
    from domain.actor import Actor, Role

    return Actor("bench-secretariat", Role.SECRETARIAT, None)


def issue_task(app: Any, t: int, *, lead: str, co: list[str], towns: list[str]) -> TaskRun:
    from domain.ids import INDUSTRIES

    deadline = app.now() + timedelta(days=60, minutes=t)
    written = app.issue_task(
        title=f"督办任务 {t:05d}：推进新就业群体党建工作",
        description="联席会议议定事项：摸清快递、外卖、网约车从业人员底数，建立党建联络站。",
        industry=INDUSTRIES[t % len(INDUSTRIES)],
        lead_unit=lead,
        co_units=co,
        towns=towns,
        deadline=deadline,
        weight=float(1 + t % 5),
        meeting_id=None,
        resolution_id=None,
        actor=_secretariat(),
    )
    return TaskRun(written.aggregate.id, deadline)


def run_step(app: Any, runs: dict[int, TaskRun], t: int, step: str) -> None:
    """One command of the write phase: exactly one event."""
    lead, co, town = task_units(t)
    if step == "issue":
        runs[t] = issue_task(app, t, lead=lead, co=[co], towns=[town])
        return
    run = runs[t]
    sec = _secretariat()
    if step == "sign_lead":
        app.sign_for(task_id=run.task_id, actor=_liaison(lead))
    elif step == "sign_co":
        app.sign_for(task_id=run.task_id, actor=_liaison(co))
    elif step == "sign_town":
        app.sign_for(task_id=run.task_id, actor=_liaison(town))
    elif step == "progress":
        run.progress = min(95, run.progress + 25)
        app.report_progress(
            task_id=run.task_id,
            note=f"已走访快递网点和外卖站点，完成第 {run.progress} % 的摸底工作。",
            percent=run.progress,
            actor=_liaison(lead),
        )
    elif step in ("contribution_co", "contribution_town"):
        unit = co if step == "contribution_co" else town
        app.report_contribution(
            task_id=run.task_id,
            note="配合开展骑手驿站建设，提供场地和政策宣传。",
            actor=_liaison(unit),
        )
    elif step == "urge":
        app.urge_task(task_id=run.task_id, note="请加快进度，按期报结。", actor=sec)
    elif step == "extension_request":
        written = app.request_extension(
            task_id=run.task_id,
            new_deadline=run.deadline + timedelta(days=30),
            reason="站点选址需与属地街道重新协调。",
            actor=_liaison(lead),
        )
        run.request_id = written.created_id
    elif step == "extension_grant":
        assert run.request_id is not None
        app.grant_extension(
            task_id=run.task_id, request_id=run.request_id, note="同意延期。", actor=sec
        )
    elif step == "completion":
        app.report_completion(
            task_id=run.task_id, note="联络站已挂牌运行，台账齐全。", actor=_liaison(lead)
        )
    elif step == "return":
        app.return_task(task_id=run.task_id, reason="台账缺少骑手走访记录，请补充。", actor=sec)
    elif step == "verify":
        app.verify_task(task_id=run.task_id, note="验收通过，予以销号。", actor=sec)
    else:  # pragma: no cover - the plan names only the steps above
        raise ValueError(step)


def _quiet_logs() -> None:
    from infra.logging import configure_logging

    configure_logging(json=True, level=logging.WARNING)


def write_share(
    store: str, schema: str, bus: str, topic: str, writer: int, writers: int, task_events: int
) -> tuple[int, float, float, float, int]:
    """A writer process: its share of the plan; (events, start, end, CPU s, start-up races)."""
    from infra.bootstrap import bootstrap
    from infra.settings import Settings

    _quiet_logs()
    os.environ["TIAOKUAI_STORE_POOL_SIZE"] = "2"  # one thread; PostgreSQL allows 100
    settings = Settings(store=store, store_schema=schema, bus=bus, kafka_topic=topic)
    time.sleep(0.3 * writer)  # fewer simultaneous start-ups (see ``Bench.revive``)
    races = 0
    for attempt in range(5):
        try:
            system = bootstrap(settings)
            break
        except Exception as error:  # eventsourcing wraps PostgreSQL's error in its own
            if RACE.decode() not in str(error) or attempt == 4:
                raise
            races += 1
            time.sleep(0.2)
    runs: dict[int, TaskRun] = {}
    mine = [(t, s) for t, s in plan(task_events) if t % writers == writer]
    cpu0, started = time.process_time(), time.time()
    try:
        for t, s in mine:
            run_step(system.app, runs, t, STEPS[s])
    finally:
        system.close()
    return len(mine), started, time.time(), time.process_time() - cpu0, races


# ---------------------------------------------------------------- the bare route
class BenchThing(Aggregate):
    """The bare route's aggregate: created by one event, saved once."""

    @event("Created")
    def __init__(self, note: str) -> None:
        self.note = note


class BareNote(BaseModel):
    note: str


class BareApplication(Application[UUID]):
    name = "bare"


def bare_app(store: str, schema: str) -> Any:
    """The bare FastAPI app: ``POST /things`` saves one one-event aggregate (a sync route)."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    from infra.settings import Settings

    env = Settings(store=store, store_schema=schema).eventsourcing_env()
    application = BareApplication(env=env)
    app = FastAPI()

    @app.get("/ping")
    def ping() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/things", status_code=201)
    def create(body: BareNote) -> JSONResponse:
        thing = BenchThing(note=body.note)
        recordings = application.save(thing)
        position = max(r.notification.id for r in recordings)
        return JSONResponse(
            {"id": str(thing.id), "version": thing.version, "position": position},
            status_code=201,
            headers={"ETag": f'"{thing.version}"'},
        )

    return app


def serve_bare(port: int, store: str, schema: str) -> None:
    """Serve ``bare_app`` with uvicorn."""
    import uvicorn

    uvicorn.run(bare_app(store, schema), host="127.0.0.1", port=port, log_level="warning")


# -------------------------------------------------------------------- HTTP load
class Connection:
    """One keep-alive HTTP/1.1 connection over asyncio streams: the load generator's client.

    httpx's AsyncClient spends about 6 ms of CPU per request with 50 connections open
    (measured on this machine: one core for 160 requests/s), which would make the client,
    not the server, the bottleneck. This sends prepared bytes and reads a
    ``Content-Length`` (or chunked) answer, for well under a millisecond.
    """

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.host, self.port = host, port
        self.fixed = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def request(self, method: str, path: str, body: Any = None) -> Answer:
        try:
            return await self._request(method, path, body)
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as error:
            await self.close()
            raise HttpError(repr(error)) from error

    async def _request(self, method: str, path: str, body: Any) -> Answer:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        payload = b"" if body is None else json.dumps(body, ensure_ascii=False).encode()
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{self.fixed}"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        )
        self.writer.write(head.encode() + payload)
        status, headers, content = await read_response(self.reader)
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return Answer(status, headers, content)


def _address(base_url: str) -> tuple[str, int]:
    host, _, port = base_url.removeprefix("http://").rstrip("/").rpartition(":")
    return host, int(port)


async def closed_loop(
    name: str,
    base_url: str,
    requests: int,
    clients: int,
    request: Callable[[int], tuple[str, dict[str, Any]]],
    headers: dict[str, str],
    time_limit: float,
    offset: int = 0,
) -> LoadResult:
    """``requests`` POSTs from ``clients`` concurrent connections, each awaiting its answer."""
    result = LoadResult(name)
    numbers = iter(range(offset, offset + requests))
    host, port = _address(base_url)
    deadline = time.monotonic() + time_limit

    async def one_client() -> None:
        connection = Connection(host, port, headers)
        try:
            for number in numbers:
                if time.monotonic() > deadline:
                    result.errors["time limit"] += 1
                    return
                path, body = request(number)
                result.sent += 1
                started = time.perf_counter()
                try:
                    answer = await asyncio.wait_for(connection.request("POST", path, body), 30)
                except (HttpError, TimeoutError) as error:
                    result.errors[type(error).__name__] += 1
                    await connection.close()
                    continue
                elapsed = (time.perf_counter() - started) * 1000
                if answer.status // 100 == 2:
                    result.ok += 1
                    result.latencies_ms.append(elapsed)
                else:
                    result.errors[str(answer.status)] += 1
        finally:
            await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(clients)))
    result.seconds = time.perf_counter() - started
    return result


KEEP_IDLE_S = 4.0
"""How long the pool keeps an idle connection: less than uvicorn's keep-alive (5 s), after
which the server closes it and a request sent on it would fail without an answer."""


class ConnectionPool:
    """Idle connections to one server, opened as needed (open-loop load), at most ``limit``."""

    def __init__(self, base_url: str, headers: dict[str, str], limit: int) -> None:
        self.host, self.port = _address(base_url)
        self.headers = headers
        self.idle: list[tuple[float, Connection]] = []
        self.opened = 0
        self.slots = asyncio.Semaphore(limit)

    async def request(self, method: str, path: str, body: Any = None) -> Answer:
        async with self.slots:
            connection = None
            while self.idle and connection is None:
                since, connection = self.idle.pop()
                if time.monotonic() - since > KEEP_IDLE_S:
                    await connection.close()
                    connection = None
            if connection is None:
                connection = Connection(self.host, self.port, self.headers)
                self.opened += 1
            try:
                answer = await asyncio.wait_for(connection.request(method, path, body), 30)
            except BaseException:
                await connection.close()
                raise
            self.idle.append((time.monotonic(), connection))
            return answer

    async def close(self) -> None:
        for _, connection in self.idle:
            await connection.close()
        self.idle.clear()


@dataclass
class Waiter:
    key: str
    version: int
    responded: float
    unit_seen: float | None = None
    all_seen: float | None = None


@dataclass
class FreshResult:
    commands: LoadResult
    unit_views_ms: list[float] = field(default_factory=list)
    all_views_ms: list[float] = field(default_factory=list)
    read_after_ms: list[float] = field(default_factory=list)
    read_errors: Counter[str] = field(default_factory=Counter)
    unseen: int = 0
    unanswered: int = 0
    achieved_rate: float = 0.0
    connections: int = 0


async def freshness(
    base_url: str,
    token: str,
    tasks: Sequence[UUID],
    unit: str,
    rate: float,
    seconds: float,
    store: str,
    schema: str,
    projections: Sequence[str],
) -> FreshResult:
    """Open-loop commands at ``rate``/s; from each response, until its effect is visible."""
    result = FreshResult(LoadResult("freshness commands"))
    total = int(rate * seconds)
    views = [f"applied:{name}" for name in projections]
    pending: dict[str, list[Waiter]] = {}
    stop = asyncio.Event()
    query = sql.SQL(
        "SELECT view, key, (doc->>'version')::bigint AS v FROM {0}.tiaokuai_views "
        "WHERE view = ANY(%s) AND key = ANY(%s)"
    ).format(sql.Identifier(schema))

    async def poller() -> None:
        async with await psycopg.AsyncConnection.connect(store, autocommit=True) as conn:
            while not (stop.is_set() and not pending):
                if pending:
                    cursor = await conn.execute(query, (views, list(pending)))
                    rows = await cursor.fetchall()
                    now = time.perf_counter()
                    seen: dict[str, dict[str, int]] = {}
                    for view, key, version in rows:
                        seen.setdefault(key, {})[view] = int(version)
                    for key in list(pending):
                        applied = seen.get(key, {})
                        left = []
                        for waiter in pending[key]:
                            if waiter.unit_seen is None and (
                                applied.get("applied:unit_views", 0) >= waiter.version
                            ):
                                waiter.unit_seen = now
                            if waiter.all_seen is None and all(
                                applied.get(v, 0) >= waiter.version for v in views
                            ):
                                waiter.all_seen = now
                            if waiter.all_seen is None or waiter.unit_seen is None:
                                left.append(waiter)
                            else:
                                result.unit_views_ms.append(
                                    (waiter.unit_seen - waiter.responded) * 1000
                                )
                                result.all_views_ms.append(
                                    (waiter.all_seen - waiter.responded) * 1000
                                )
                        if left:
                            pending[key] = left
                        else:
                            del pending[key]
                await asyncio.sleep(0.002)

    pool = ConnectionPool(base_url, {"Authorization": f"Bearer {token}"}, limit=200)

    async def read_after(position: int, responded: float) -> None:
        try:
            answer = await pool.request("GET", f"/views/units/{unit}?after={position}")
        except (HttpError, TimeoutError) as error:
            result.read_errors[type(error).__name__] += 1
            return
        if answer.status == 200:
            result.read_after_ms.append((time.perf_counter() - responded) * 1000)
        else:
            result.read_errors[str(answer.status)] += 1

    async def command(number: int) -> None:
        task_id = tasks[number % len(tasks)]
        result.commands.sent += 1
        started = time.perf_counter()
        try:
            answer = await pool.request(
                "POST", f"/tasks/{task_id}/urge", {"note": f"第 {number} 次催办"}
            )
        except (HttpError, TimeoutError) as error:
            result.commands.errors[type(error).__name__] += 1
            return
        responded = time.perf_counter()
        if answer.status // 100 != 2:
            result.commands.errors[str(answer.status)] += 1
            return
        result.commands.ok += 1
        result.commands.latencies_ms.append((responded - started) * 1000)
        version = int(answer.headers["etag"].strip('"'))
        position = int(answer.headers["x-tiaokuai-position"])
        pending.setdefault(str(task_id), []).append(Waiter(str(task_id), version, responded))
        if number % READ_EVERY == 0:
            await read_after(position, responded)

    polling = asyncio.create_task(poller())
    in_flight: list[asyncio.Task[None]] = []
    started = time.perf_counter()
    for number in range(total):
        delay = started + number / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        in_flight.append(asyncio.create_task(command(number)))
    sent_for = time.perf_counter() - started
    _done, late = await asyncio.wait(in_flight, timeout=30)
    for task in late:  # not answered within 30 s of the last send: given up on
        task.cancel()
    result.unanswered = len(late)
    result.commands.seconds = time.perf_counter() - started
    result.achieved_rate = total / sent_for if sent_for else 0.0
    stop.set()
    try:
        await asyncio.wait_for(polling, timeout=10)
    except TimeoutError:
        result.unseen = sum(len(w) for w in pending.values())
        polling.cancel()
    await pool.close()
    result.connections = pool.opened
    return result


# --------------------------------------------------------------------- reporting
class Report:
    """Tables through rich when it is installed, plain text otherwise."""

    def __init__(self) -> None:
        self.console: Any = None
        try:
            from rich.console import Console

            self.console = Console(width=120)
        except ImportError:
            pass

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        if self.console is not None:
            from rich.table import Table

            table = Table(title=title, title_justify="left")
            for i, column in enumerate(columns):
                table.add_column(column, justify="left" if i == 0 else "right")
            for row in rows:
                table.add_row(*row)
            self.console.print(table)
            return
        widths = [max(len(str(c)), *(len(str(r[i])) for r in rows)) for i, c in enumerate(columns)]
        print(f"\n{title}")
        print("  ".join(str(c).ljust(w) for c, w in zip(columns, widths, strict=True)))
        print("  ".join("-" * w for w in widths))
        for row in rows:
            print("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)))

    def line(self, text: str = "") -> None:
        if self.console is not None:
            self.console.print(text, highlight=False, markup=False)
        else:
            print(text)


def f0(value: float) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:,.0f}"


def f1(value: float) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:,.1f}"


def f2(value: float) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:,.2f}"


def machine() -> dict[str, Any]:
    mem_kb = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    cpu_model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "cpu": cpu_model,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


# ------------------------------------------------------------------------ the run
@dataclass
class Drain:
    relay_s: float | None = None
    groups_s: dict[str, float] = field(default_factory=dict)
    total_s: float | None = None


# ------------------------------------------------------------- the raw consume loop
def raw_consume(
    store: str, schema: str, settings: Any, topic: str, table: str, events: int
) -> tuple[float, int]:
    """Consume ``events`` messages: one upsert per message, offsets in each poll's transaction.

    The raw ceiling of a consumer writing to PostgreSQL; returns (seconds, polls).
    """
    from kafka import TopicPartition

    from infra.kafka import clients

    scratch = sql.Identifier(schema, table)
    offsets = sql.Identifier(schema, f"{table}_offsets")
    with psycopg.connect(store, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE TABLE {0} (key text PRIMARY KEY, doc jsonb NOT NULL)").format(scratch)
        )
        conn.execute(
            sql.SQL(
                "CREATE TABLE {0} (topic text, partition int, next_offset bigint NOT NULL, "
                "updated_at timestamptz, PRIMARY KEY (topic, partition))"
            ).format(offsets)
        )
    upsert = sql.SQL(
        "INSERT INTO {0} (key, doc) VALUES (%s, %s::jsonb) "
        "ON CONFLICT (key) DO UPDATE SET doc = excluded.doc"
    ).format(scratch)
    offset_upsert = sql.SQL(
        "INSERT INTO {0} (topic, partition, next_offset, updated_at) "
        "VALUES (%s, %s, %s, now()) ON CONFLICT (topic, partition) "
        "DO UPDATE SET next_offset = excluded.next_offset, updated_at = now()"
    ).format(offsets)
    consumer = clients.group_consumer(settings, f"tiaokuai.bench.{table}", f"tiaokuai-{table}")
    partitions = [
        TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
    ]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    consumed = polls = 0
    with psycopg.connect(store) as conn:
        started = time.perf_counter()
        while consumed < events and time.perf_counter() - started < RAW_LIMIT_S:
            records = consumer.poll(timeout_ms=100)
            if not records:
                continue
            polls += 1
            with conn.transaction(), conn.cursor() as cursor:
                for tp, messages in records.items():
                    for message in messages:
                        cursor.execute(upsert, (message.key.decode(), message.value.decode()))
                    cursor.execute(offset_upsert, (tp.topic, tp.partition, messages[-1].offset + 1))
                    consumed += len(messages)
        consume_s = time.perf_counter() - started
    consumer.close(autocommit=False)
    if consumed < events:
        raise RuntimeError(f"the raw consumer got {consumed} of {events} in {consume_s:.0f} s")
    return consume_s, polls


def raw_consume_child(args: argparse.Namespace) -> None:
    """One of the simultaneous raw consumers (``--raw-consume-child``): waits, runs, reports."""
    from infra.settings import Settings

    settings = Settings(
        store=args.store, store_schema=args.raw_schema, bus=args.raw_bus, mode="production"
    )
    # Import, connect and create the table first, then start together with the others.
    time.sleep(max(0.0, args.raw_start_at - time.time()))
    began = time.time()
    seconds, polls = raw_consume(
        args.store, args.raw_schema, settings, args.raw_topic, args.raw_consume_child,
        args.raw_events,
    )  # fmt: skip
    print(json.dumps({"began": began, "ended": time.time(), "seconds": seconds, "polls": polls}))


class Bench:
    """One run: broker, schema, topics, children; every phase; the teardown."""

    def __init__(self, args: argparse.Namespace) -> None:
        from projections.registry import build_projections

        self.args = args
        self.store: str = args.store
        run = uuid.uuid4().hex[:8]
        self.schema = f"bench_{run}"
        self.bare_schema = f"bench_{run}_bare"
        self.topic = f"tiaokuai.bench.{run}"
        self.raw_topic = f"tiaokuai.bench.{run}.raw"
        self.log_dir = Path(args.log_dir or tempfile.mkdtemp(prefix="tiaokuai-bench-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.projections = [p.name for p in build_projections()]
        self.groups = {name: f"tiaokuai.projection.{name}" for name in self.projections}
        self.pg_meter = PostgresMeter(self.store, APP_NAME)
        self.meter = CpuMeter(self.pg_meter)
        self.cpu: dict[str, dict[str, float]] = {}
        self.results: dict[str, Any] = {
            "machine": machine(),
            "git": git_state(),
            "loadavg_before": loadavg(),
        }
        self.broker: Child | None = None
        self.relay: Child | None = None
        self.workers: list[Child] = []
        self.servers: list[Child] = []
        self.profilers: list[subprocess.Popen[bytes]] = []
        self.port = 0
        self.races = 0
        self.api_url, self.token, self.fresh_tasks = "", "", list[UUID]()
        self.system: Any = None
        self.conn: psycopg.Connection[Any] | None = None
        bin_dir = Path(sys.executable).parent
        tiaokuai = bin_dir / "tiaokuai"
        self.cli = [str(tiaokuai)] if tiaokuai.exists() else [sys.executable, "-m", "workers.cli"]
        self.py_spy = shutil.which("py-spy") or (
            str(bin_dir / "py-spy") if (bin_dir / "py-spy").exists() else None
        )

    # ------------------------------------------------------------ plumbing
    @property
    def bus(self) -> str:
        return f"kafka://127.0.0.1:{self.port}"

    def settings(self, topic: str | None = None) -> Any:
        from infra.settings import Settings

        return Settings(
            store=self.store,
            store_schema=self.schema,
            bus=self.bus,
            kafka_topic=topic or self.topic,
            mode="production",
        )

    def child_env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIAOKUAI_")}
        env.update(
            {
                "TIAOKUAI_MODE": "production",
                "TIAOKUAI_STORE": self.store,
                "TIAOKUAI_BUS": self.bus,
                "TIAOKUAI_STORE_SCHEMA": self.schema,
                "TIAOKUAI_KAFKA_TOPIC": self.topic,
                "PYTHONUNBUFFERED": "1",
            }
        )
        if self.args.worker_pool:
            env["TIAOKUAI_STORE_POOL_SIZE"] = str(self.args.worker_pool)
        if self.args.worker_linger_ms is not None:
            env["TIAOKUAI_WORKER_LINGER_MS"] = str(self.args.worker_linger_ms)
        if self.args.fetch_wait_ms is not None:
            env["TIAOKUAI_KAFKA_FETCH_MAX_WAIT_MS"] = str(self.args.fetch_wait_ms)
        if self.args.relay_idle_ms is not None:
            env["TIAOKUAI_RELAY_IDLE_SECONDS"] = str(self.args.relay_idle_ms / 1000)
        env.update(extra)
        return env

    def db(self) -> psycopg.Connection[Any]:
        if self.conn is None or self.conn.closed:
            self.conn = psycopg.connect(self.store, autocommit=True)
        return self.conn

    def q(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        statement = sql.SQL(query).format(s=sql.Identifier(self.schema))
        return self.db().execute(statement, params).fetchall()

    # --------------------------------------------------------------- broker
    def start_broker(self) -> None:
        from kafka import KafkaAdminClient

        self.port = free_port()
        command = tansu_command(self.port)
        self.broker = Child("broker", command, dict(os.environ), self.log_dir)
        self.meter.roles["broker"] = [self.broker]
        self.results["broker"] = Path(command[0]).name
        deadline = time.monotonic() + START_LIMIT_S
        while time.monotonic() < deadline:
            if not self.broker.running():
                raise RuntimeError(f"the broker exited:\n{self.broker.tail()}")
            if port_accepts(self.port):
                try:
                    admin = KafkaAdminClient(
                        bootstrap_servers=[f"127.0.0.1:{self.port}"], request_timeout_ms=3000
                    )
                    admin.list_topics()
                    admin.close()
                    return
                except Exception:
                    pass
            time.sleep(0.1)
        raise RuntimeError("the broker did not answer within 30 s")

    def create_topics(self) -> None:
        from infra.kafka import clients

        for topic in (self.topic, self.raw_topic):
            clients.ensure_topic(self.settings(topic))

    # ------------------------------------------------------------- children
    def start_workers(self) -> None:
        base = [*self.cli, "worker", "project", "--store", self.store, "--bus", self.bus]
        if self.args.workers == "single":
            self.workers = [Child("worker-all", base, self.child_env(), self.log_dir)]
        elif self.args.workers.isdigit():
            # N processes hosting every projection: each group's partitions split N ways.
            self.workers = []
            for n in range(int(self.args.workers)):
                self.workers.append(Child(f"worker-all-{n}", base, self.child_env(), self.log_dir))
                time.sleep(0.2)
        else:
            self.workers = []
            for name in self.projections:
                argv = [*base, "--projection", name]
                self.workers.append(Child(f"worker-{name}", argv, self.child_env(), self.log_dir))
                time.sleep(0.2)  # fewer simultaneous start-ups (see ``revive``)
        self.meter.roles["workers"] = self.workers

    def revive(self, child: Child) -> Child:
        """A child dead of the start-up race (``RACE``) runs again; any other exit is fatal.

        Every process bootstraps eventsourcing's recorders, which run ``CREATE OR REPLACE
        FUNCTION`` even when the tables exist; two at the same instant fail one of them.
        """
        if child.running():
            return child
        if child.log_contains(RACE) and self.races < 20:
            self.races += 1
            log(f"{child.name} died of the start-up race ({RACE.decode()!r}); starting it again")
            return Child(f"{child.name}.{self.races}", child.argv, child.env, self.log_dir)
        raise RuntimeError(f"{child.name} exited:\n{child.tail()}")

    def check_pipeline(self) -> None:
        self.workers[:] = [self.revive(w) for w in self.workers]
        if self.relay is not None:
            self.relay = self.revive(self.relay)
            self.meter.roles["relay"] = [self.relay]

    def wait_joined(self, since: datetime) -> float:
        """Until every projection's consumers hold all partitions (from their heartbeats)."""
        started = time.monotonic()
        partitions = self.settings().kafka_partitions
        while time.monotonic() - started < JOIN_LIMIT_S:
            self.check_pipeline()
            rows = self.q(
                "SELECT info FROM {s}.tiaokuai_workers "
                "WHERE kind = 'projection' AND last_heartbeat >= %s",
                (since,),
            )
            held: dict[str, set[int]] = {}
            for (info,) in rows:
                held.setdefault(info["projection"], set()).update(info["partitions"])
            if all(len(held.get(name, set())) == partitions for name in self.projections):
                return time.monotonic() - started
            time.sleep(0.1)
        raise RuntimeError("the projection workers did not join their groups within 60 s")

    def start_relay(self) -> Child:
        argv = [*self.cli, "worker", "relay", "--store", self.store, "--bus", self.bus]
        self.relay = Child("relay", argv, self.child_env(), self.log_dir)
        self.meter.roles["relay"] = [self.relay]
        return self.relay

    def stop_pipeline(self) -> None:
        for child in [*self.workers, *([self.relay] if self.relay else [])]:
            child.stop()
        self.workers = []
        self.relay = None
        self.meter.roles["workers"] = []
        self.meter.roles["relay"] = []

    def start_server(self, name: str, argv: Sequence[str], ready_path: str, port: int) -> Child:
        env = self.child_env(TIAOKUAI_PORT=str(port))
        env.pop("TIAOKUAI_STORE_POOL_SIZE", None)  # servers keep the default pool
        server = Child(name, argv, env, self.log_dir)
        self.servers.append(server)
        deadline = time.monotonic() + START_LIMIT_S
        while time.monotonic() < deadline:
            if not server.running():
                raise RuntimeError(f"{name} exited:\n{server.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}{ready_path}", timeout=2).status_code == 200:
                    return server
            time.sleep(0.1)
        raise RuntimeError(f"{name} did not answer within 30 s")

    def profile(self, name: str, child: Child, seconds: float) -> None:
        """py-spy (when --profile is given) records collapsed stacks of one child."""
        if not self.args.profile or self.py_spy is None:
            return
        out = Path(self.args.profile) / f"{name}.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        argv = [self.py_spy, "record", "--pid", str(child.pid), "--duration", str(int(seconds))]
        argv += ["--rate", "100", "--format", "raw", "--nonblocking", "--output", str(out)]
        if self.args.profile_idle:  # waits too, per thread: where the wall time goes
            argv += ["--idle", "--threads"]
        self.profilers.append(
            subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        )

    # --------------------------------------------------------------- progress
    def connections(self) -> int:
        """Client connections to the PostgreSQL server (every database, every process)."""
        rows = self.q("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'")
        return int(rows[0][0])

    def positions(self) -> tuple[int, dict[str, dict[int, int]]]:
        relay = self.q("SELECT position FROM {s}.tiaokuai_relay WHERE name = 'relay'")
        offsets: dict[str, dict[int, int]] = {}
        for group, partition, next_offset in self.q(
            "SELECT group_id, partition, next_offset FROM {s}.tiaokuai_consumer_offsets "
            "WHERE topic = %s",
            (self.topic,),
        ):
            offsets.setdefault(group, {})[int(partition)] = int(next_offset)
        return (int(relay[0][0]) if relay else 0), offsets

    def wait_drained(self, head: int, started: float, limit: float = DRAIN_LIMIT_S) -> Drain:
        """Until the relay reached ``head`` and every group stored every partition's end."""
        from infra.kafka import clients

        drain = Drain()
        reader = clients.offsets_reader(self.settings())
        ends: dict[int, int] | None = None
        try:
            while time.monotonic() - started < limit:
                self.check_pipeline()
                relay_at, offsets = self.positions()
                now = time.monotonic()
                if ends is None and relay_at >= head:
                    drain.relay_s = now - started
                    ends = clients.end_offsets(reader, self.topic)
                if ends is not None:
                    for name, group in self.groups.items():
                        if name in drain.groups_s:
                            continue
                        mine = offsets.get(group, {})
                        if all(mine.get(p, 0) >= end for p, end in ends.items() if end > 0):
                            drain.groups_s[name] = now - started
                    if len(drain.groups_s) == len(self.groups):
                        drain.total_s = max(drain.groups_s.values())
                        return drain
                time.sleep(0.02)
        finally:
            reader.close()
        raise RuntimeError(f"the pipeline did not drain within {limit:g} s: {drain}")

    def stale_aggregates(self) -> dict[str, int]:
        """Per projection, how many aggregates its ``applied`` docs show behind the store.

        Only the aggregates of the types it takes: it records no others.
        """
        from infra.envelopes import topic_names
        from projections.registry import build_projections

        stored = [
            (str(key), int(version), topic_names(str(topic))[0])
            for key, version, topic in self.q(
                "SELECT originator_id::text, max(originator_version), min(topic) "
                "FROM {s}.tiaokuai_events GROUP BY 1"
            )
        ]
        applied: dict[str, dict[str, int]] = {}
        for view, key, version in self.q(
            "SELECT view, key, (doc->>'version')::bigint FROM {s}.tiaokuai_views "
            "WHERE starts_with(view, 'applied:')"
        ):
            applied.setdefault(str(view).removeprefix("applied:"), {})[str(key)] = int(version)
        stale: dict[str, int] = {}
        for projection in build_projections():
            mine = applied.get(projection.name, {})
            stale[projection.name] = sum(
                1
                for key, version, kind in stored
                if projection.takes(kind) and mine.get(key, 0) < version
            )
        return stale

    # ---------------------------------------------------------------- phases
    def phase_pipeline(self) -> None:
        from domain.units import UnitKind
        from infra.bootstrap import bootstrap

        events = self.args.events
        from infra.kafka.state import BusState

        self.system = bootstrap(self.settings())
        BusState(self.system.app.factory.datastore).create_tables()
        app = self.system.app
        since = datetime.now().astimezone()
        self.start_workers()
        log(
            f"started {len(self.workers)} projection worker process(es) "
            f"for {len(self.projections)} projections"
        )
        joined = self.wait_joined(since)
        log(f"workers joined their groups in {joined:.1f} s")
        sec = _secretariat()
        for slug in DEPARTMENTS:
            app.register_unit(slug=slug, name=f"部门 {slug}", kind=UnitKind.DEPARTMENT, actor=sec)
        for slug in TOWNS:
            app.register_unit(slug=slug, name=f"街道 {slug}", kind=UnitKind.TOWN, actor=sec)
        task_events = events - len(DEPARTMENTS) - len(TOWNS)
        writers = self.args.writers
        log(f"writing {events} events through TiaokuaiApplication ({writers} writer processes)")
        from bench import pipeline  # by its name, so the spawned writers can import it

        with (
            self.meter.phase("write", self.cpu),
            ProcessPoolExecutor(writers, mp_context=get_context("spawn")) as pool,
        ):
            futures = [
                pool.submit(
                    pipeline.write_share,
                    self.store,
                    self.schema,
                    self.bus,
                    self.topic,
                    w,
                    writers,
                    task_events,
                )
                for w in range(writers)
            ]
            shares = [f.result() for f in futures]
        self.races += sum(s[4] for s in shares)
        head = app.head()
        written = sum(s[0] for s in shares) + len(DEPARTMENTS) + len(TOWNS)
        write_s = max(s[2] for s in shares) - min(s[1] for s in shares)
        self.cpu["write"]["writers"] = sum(s[3] for s in shares) / self.cpu["write"]["wall_s"]
        if head != events or written != events:
            raise RuntimeError(f"expected {events} events, the store holds {head}")
        log(f"wrote {events} events in {write_s:.1f} s; starting the relay on the backlog")
        with self.meter.phase("drain", self.cpu):
            started = time.monotonic()
            relay = self.start_relay()
            for worker in self.workers:
                if worker.name in PROFILED_WORKERS:
                    self.profile(worker.name, worker, 20)
            self.profile("relay", relay, 20)
            ready: float | None = None
            while ready is None and time.monotonic() - started < START_LIMIT_S:
                if relay.log_contains(b"relay.started"):
                    ready = time.monotonic() - started
                else:
                    self.check_pipeline()
                    relay = self.relay or relay
                    time.sleep(0.01)
            drain = self.wait_drained(head, started)
        assert drain.total_s is not None and drain.relay_s is not None
        self.results["pg_connections"]["pipeline"] = self.connections()
        stale = self.stale_aggregates()
        tasks = math.ceil(task_events / len(STEPS))
        self.results["pipeline"] = {
            "events": events,
            "aggregates": tasks + len(DEPARTMENTS) + len(TOWNS),
            "writers": writers,
            "write_s": write_s,
            "write_per_s": events / write_s,
            "relay_startup_s": ready,
            "relay_s": drain.relay_s,
            "relay_per_s": events / drain.relay_s,
            "groups_s": drain.groups_s,
            "e2e_s": drain.total_s,
            "e2e_per_s": events / drain.total_s,
            "e2e_after_startup_per_s": events / (drain.total_s - (ready or 0.0)),
            "stale_aggregates": stale,
            "worker_layout": self.args.workers,
        }
        log(f"drained in {drain.total_s:.1f} s ({events / drain.total_s:,.0f} events/s)")

    def message_shape(self) -> tuple[int, int, list[tuple[str, bytes]]]:
        """Average value and header bytes of the relay's messages (from a sample of events)."""
        from infra.envelopes import envelope_from
        from workers.relay import message_headers

        app = self.system.app
        head = app.head()
        step = max(1, head // 2000)
        values = headers = count = 0
        sample: list[tuple[str, bytes]] = []
        for start in range(1, head + 1, step):
            found = app.recorder.select_notifications(start=start, limit=1)
            if not found:
                continue
            envelope = envelope_from(found[0], app.envelope_mapper)
            values += len(envelope.to_json())
            sample = message_headers(envelope, uuid.uuid4().hex)
            headers += sum(len(k) + len(v) for k, v in sample)
            count += 1
        return values // count, headers // count, sample

    def phase_raw(self) -> None:
        from infra.kafka import clients

        events = self.args.events
        value_size, header_size, headers = self.message_shape()
        padding = max(0, value_size - len(json.dumps({"schema": 1, "pad": ""})))
        value = json.dumps({"schema": 1, "pad": "x" * padding}).encode()
        keys = [str(uuid.uuid4()).encode() for _ in range(self.results["pipeline"]["aggregates"])]
        settings = self.settings(self.raw_topic)
        log(f"raw producer: {events} messages of {len(value)} + {header_size} header bytes")
        producer = clients.producer(settings)
        with self.meter.phase("raw_produce", self.cpu):
            started = time.perf_counter()
            futures = [
                producer.send(self.raw_topic, key=keys[i % len(keys)], value=value, headers=headers)
                for i in range(events)
            ]
            producer.flush(timeout=RAW_LIMIT_S)
            for future in futures:
                future.get(timeout=30)
            produce_s = time.perf_counter() - started
        producer.close(timeout=5)

        log("raw consumer: one upsert per message, offsets in the same transaction per poll")
        with self.meter.phase("raw_consume", self.cpu):
            consume_s, polls = raw_consume(
                self.store, self.schema, settings, self.raw_topic, "bench_scratch", events
            )
        seven = self.raw_consume_groups(events, len(self.projections))
        self.results["raw"] = {
            "messages": events,
            "value_bytes": len(value),
            "header_bytes": header_size,
            "produce_s": produce_s,
            "produce_per_s": events / produce_s,
            "consume_s": consume_s,
            "consume_per_s": events / consume_s,
            "consume_polls": polls,
            "groups": seven,
        }

    def raw_consume_groups(self, events: int, groups: int) -> dict[str, Any]:
        """``groups`` raw consumers at once, each reading every message, in its own process.

        The topology issue 3 asks for (one consumer group per projection) with nothing but
        the raw loop in each: the ceiling of the pipeline's consumption on this machine.
        """
        log(f"raw consumers: {groups} at once, each reading all {events} messages")
        start_at = time.time() + 5.0
        children = [
            Child(
                f"raw-consumer-{n}",
                [
                    sys.executable,
                    "-m",
                    "bench.pipeline",
                    "--store",
                    self.store,
                    "--raw-consume-child",
                    f"bench_scratch_{n}",
                    "--raw-schema",
                    self.schema,
                    "--raw-bus",
                    self.bus,
                    "--raw-topic",
                    self.raw_topic,
                    "--raw-events",
                    str(events),
                    "--raw-start-at",
                    str(start_at),
                ],
                dict(os.environ),
                self.log_dir,
            )
            for n in range(groups)
        ]
        time.sleep(max(0.0, start_at - time.time()))
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        with self.meter.phase("raw_consume_groups", self.cpu):
            for child in children:
                child.proc.wait(RAW_LIMIT_S + 30)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        # They exited inside the phase, out of the meter's sight: their CPU counts as the
        # bench's (which only waits meanwhile).
        cores = self.cpu["raw_consume_groups"]
        spent = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        cores["bench"] += spent / cores["wall_s"]
        cores["other"] = max(0.0, cores["other"] - spent / cores["wall_s"])
        reports = []
        for child in children:
            child.stop()
            if child.proc.returncode != 0:
                raise RuntimeError(f"{child.name} failed:\n{child.tail()}")
            reports.append(json.loads(child.log_path.read_text().strip().splitlines()[-1]))
        wall = max(r["ended"] for r in reports) - min(r["began"] for r in reports)
        return {
            "groups": groups,
            "wall_s": wall,
            "per_s": events / wall,
            "seconds": [round(r["seconds"], 2) for r in reports],
        }

    def setup_api(self) -> tuple[str, list[UUID], list[UUID]]:
        from domain.actor import Role
        from domain.units import UnitKind

        app = self.system.app
        sec = _secretariat()
        _principal, token = self.system.tokens.issue(role=Role.SECRETARIAT, unit=None, name="bench")
        app.register_unit(
            slug=FRESH_UNIT, name="新鲜度测试部门", kind=UnitKind.DEPARTMENT, actor=sec
        )
        api_tasks = []
        for t in range(self.args.api_tasks):
            lead, co, town = task_units(t)
            api_tasks.append(issue_task(app, t, lead=lead, co=[co], towns=[town]).task_id)
        fresh_tasks = [
            issue_task(app, t, lead=FRESH_UNIT, co=[], towns=[]).task_id for t in range(FRESH_TASKS)
        ]
        return token, api_tasks, fresh_tasks

    def phase_api(self) -> None:
        log("restarting the relay and the projection workers")
        since = datetime.now().astimezone()
        self.start_workers()
        self.start_relay()
        self.wait_joined(since)
        token, api_tasks, fresh_tasks = self.setup_api()
        self.wait_drained(self.system.app.head(), time.monotonic())
        log("idle: relay and workers running, nothing to do, for 5 s")
        with self.meter.phase("idle", self.cpu):
            time.sleep(5)
        requests, clients = self.args.api_requests, self.args.api_clients
        # Every task the burst urges is touched once before it: a task not yet in the
        # server's cache is read from the store first, once per process, and 300 of
        # those within the burst made a tail the steady state does not have.
        warmup = max(min(200, requests), len(api_tasks))
        # Like for like: nobody relays or projects the bare route's events (its schema is
        # its own), so both servers first run alone, the relay and workers stopped;
        # commands are stored meanwhile, as during a broker outage. Then the API once
        # more with the pipeline live, sharing the cores with it (reported beside).
        log("stopping the relay and the workers: each server alone on the machine")
        self.stop_pipeline()

        # The bare route: same PostgreSQL, its own schema so the relay never sees it.
        self.db().execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {0}").format(sql.Identifier(self.bare_schema))
        )
        bare_port = free_port()
        bare = self.start_server(
            "bare",
            [
                sys.executable,
                "-m",
                "bench.pipeline",
                "--serve-bare",
                str(bare_port),
                "--store",
                self.store,
                "--bare-schema",
                self.bare_schema,
            ],
            "/ping",
            bare_port,
        )
        bare_url = f"http://127.0.0.1:{bare_port}"

        def bare_request(n: int) -> tuple[str, dict[str, Any]]:
            return "/things", {"note": f"第 {n} 次"}

        api_port = free_port()
        argv = [*self.cli, "serve", "--store", self.store, "--bus", self.bus]
        server = self.start_server("api", [*argv, "--port", str(api_port)], "/health", api_port)
        api_url = f"http://127.0.0.1:{api_port}"
        headers = {"Authorization": f"Bearer {token}"}

        def urge(n: int) -> tuple[str, dict[str, Any]]:
            return f"/tasks/{api_tasks[n % len(api_tasks)]}/urge", {"note": f"第 {n} 次催办"}

        def burst(name: str) -> LoadResult:
            return asyncio.run(
                closed_loop(name, api_url, requests, clients, urge, headers, LOAD_LIMIT_S, warmup)
            )

        asyncio.run(closed_loop("warm-up", bare_url, warmup, clients, bare_request, {}, 60))
        asyncio.run(closed_loop("warm-up", api_url, warmup, clients, urge, headers, 60))
        # In turns (bare, api, api, bare, ...): this machine's speed drifts within a minute,
        # and one server's whole burst after the other's measured the drift as much as
        # the servers (API ratios of 0.75 and 0.93 in two runs of the same API code).
        log(
            f"bare route and tiaokuai serve (POST /tasks/{{id}}/urge): {requests} requests "
            f"each from {clients} clients, in {API_TURNS} turns each, alone"
        )
        # name → (its server, base URL, request, headers)
        loads = {
            "bare": (bare, bare_url, bare_request, {}),
            "api": (server, api_url, urge, headers),
        }
        results: dict[str, list[LoadResult]] = {"bare": [], "api": []}
        cores: dict[str, list[dict[str, float]]] = {"bare": [], "api": []}
        block = max(1, requests // API_TURNS)
        for turn in range(API_TURNS):
            for which in ("bare", "api") if turn % 2 == 0 else ("api", "bare"):
                child, url, request, sent_headers = loads[which]
                self.meter.roles["api"] = [child]
                if which == "api" and turn == 0:
                    self.profile("api", server, min(20, requests / 150))
                spent: dict[str, dict[str, float]] = {}
                load = closed_loop(
                    which, url, block, clients, request, sent_headers, LOAD_LIMIT_S,
                    warmup + turn * block,
                )  # fmt: skip
                with self.meter.phase(which, spent):
                    results[which].append(asyncio.run(load))
                cores[which].append(spent[which])
        bare_result, api_result = merged(results["bare"]), merged(results["api"])
        self.cpu["api_bare"] = merged_cores(cores["bare"])
        self.cpu["api"] = merged_cores(cores["api"])
        bare.stop()
        self.servers.remove(bare)
        self.meter.roles["api"] = [server]

        log("restarting the relay and the projection workers on what the API stored")
        since, restarted = datetime.now().astimezone(), time.monotonic()
        self.start_workers()
        self.start_relay()
        self.wait_joined(since)
        caught_up = self.wait_drained(self.system.app.head(), restarted)
        self.results["pg_connections"]["pipeline_and_api"] = self.connections()
        # The relay and the workers at a trickle of single commands: their cost per event
        # there is many times the drain's, and it is CPU the API does not get.
        if self.relay is not None:
            self.profile("relay-api", self.relay, min(20, requests / 150))
        for worker in self.workers:
            if worker.name in PROFILED_WORKERS:
                self.profile(f"{worker.name}-api", worker, min(20, requests / 150))
        log(f"tiaokuai serve: {requests} POST /tasks/{{id}}/urge, relay and workers live")
        with self.meter.phase("api_live", self.cpu):
            live_result = burst("api live")
        # How far behind the views were when the burst ended.
        after = self.wait_drained(self.system.app.head(), time.monotonic())
        self.results["api"] = {
            "clients": clients,
            "bare": bare_result.summary(),
            "tiaokuai": api_result.summary(),
            "tiaokuai_live": live_result.summary(),
            "catch_up_after_restart_s": caught_up.total_s,
            "views_behind_after_burst_s": after.total_s,
        }

        self.api_url, self.token, self.fresh_tasks = api_url, token, fresh_tasks

    def phase_freshness(self) -> None:
        self.results["freshness"] = self.fresh_run("freshness", self.args.fresh_rate)
        if self.args.fresh_low_rate:
            low = self.fresh_run("freshness_low", self.args.fresh_low_rate)
            self.results["freshness_low"] = low

    def fresh_run(self, phase: str, rate: float) -> dict[str, Any]:
        from projections.registry import build_projections
        from projections.tasks import TASK_AGGREGATE

        seconds = self.args.fresh_seconds
        log(f"{phase}: {rate:g} commands/s for {seconds:g} s")
        with self.meter.phase(phase, self.cpu), DiskProbe() as disk:
            fresh = asyncio.run(
                freshness(
                    self.api_url,
                    self.token,
                    self.fresh_tasks,
                    FRESH_UNIT,
                    rate,
                    seconds,
                    self.store,
                    self.schema,
                    # The commands are task events: the projections that take them.
                    [p.name for p in build_projections() if p.takes(TASK_AGGREGATE)],
                )
            )
        return {
            "target_rate": rate,
            "achieved_rate": fresh.achieved_rate,
            "commands": fresh.commands.summary(),
            "unit_views_ms": _dist(fresh.unit_views_ms),
            "all_views_ms": _dist(fresh.all_views_ms),
            "read_after_ms": _dist(fresh.read_after_ms),
            "read_errors": dict(fresh.read_errors),
            "unseen": fresh.unseen,
            "unanswered": fresh.unanswered,
            "connections": fresh.connections,
            "disk": disk.summary(),
        }

    # --------------------------------------------------------------- teardown
    def teardown(self) -> None:
        for profiler in self.profilers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                profiler.wait(30)
        for server in self.servers:
            server.stop()
        self.stop_pipeline()
        if self.system is not None:
            with contextlib.suppress(Exception):
                self.system.close()
        if self.broker is not None and self.port:
            with contextlib.suppress(Exception):
                from kafka import KafkaAdminClient

                admin = KafkaAdminClient(
                    bootstrap_servers=[f"127.0.0.1:{self.port}"], request_timeout_ms=3000
                )
                admin.delete_topics([self.topic, self.raw_topic])
                admin.close()
        if self.broker is not None:
            self.broker.stop(signal.SIGTERM, timeout=5)
        if self.args.keep:
            log(f"kept schemas {self.schema}, {self.bare_schema}")
        else:
            with contextlib.suppress(Exception):
                for schema in (self.schema, self.bare_schema):
                    self.db().execute(
                        sql.SQL("DROP SCHEMA IF EXISTS {0} CASCADE").format(sql.Identifier(schema))
                    )
        if self.conn is not None:
            self.conn.close()
        self.pg_meter.stop()

    def run(self) -> None:
        started = time.monotonic()
        self.pg_meter.start()
        try:
            log(f"broker, schema {self.schema}, topics {self.topic}(.raw); logs in {self.log_dir}")
            self.start_broker()
            self.create_topics()
            self.results["postgres"] = self.q("SELECT version()")[0][0].split(",")[0]
            self.results["pg_connections"] = {"before": self.connections()}
            for name, phase in (
                ("pipeline", self.phase_pipeline),
                ("raw", self.phase_raw),
                ("api", self.phase_api),
                ("freshness", self.phase_freshness),
            ):
                try:
                    phase()
                except Exception as error:  # report what was measured, then stop
                    log(f"phase {name} failed: {error!r}")
                    self.results["failed"] = {"phase": name, "error": repr(error)}
                    break
                if name == "pipeline":
                    log("stopping the relay and the workers for the raw ceilings")
                    self.stop_pipeline()
        finally:
            self.teardown()
        self.results["total_s"] = time.monotonic() - started
        self.results["loadavg_after"] = loadavg()
        self.results["startup_races"] = self.races
        self.results["cpu_cores"] = self.cpu


def _dist(values: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": max(values) if values else math.nan,
    }


# ----------------------------------------------------------------------- output
def targets(results: dict[str, Any]) -> list[tuple[str, float, str, bool]]:
    """(what, measured, target, met) of each target whose phases were measured."""
    found: list[tuple[str, float, str, bool]] = []
    pipe, raw = results.get("pipeline"), results.get("raw")
    if pipe and raw:
        ratio = pipe["e2e_per_s"] / min(raw["produce_per_s"], raw["consume_per_s"])
        found.append(("pipeline end to end ÷ slower raw loop", ratio, "≥ 0.5", ratio >= 0.5))
    api = results.get("api")
    if api:
        rate = api["tiaokuai"]["per_s"] / api["bare"]["per_s"]
        p99 = api["tiaokuai"]["p99_ms"] / api["bare"]["p99_ms"]
        found.append(("API commands/s ÷ bare route", rate, "≥ 0.8", rate >= 0.8))
        found.append(("API p99 ÷ bare route p99", p99, "≤ 1.2", p99 <= 1.2))
    fresh = results.get("freshness")
    if fresh:
        p99 = fresh["unit_views_ms"]["p99"]
        met = p99 < 100 and not fresh["unanswered"] and not fresh["unseen"]
        found.append(("freshness p99, unit_views (ms)", p99, "< 100", met))
    low = results.get("freshness_low")
    if low:
        p99 = low["unit_views_ms"]["p99"]
        met = p99 < 100 and not low["unanswered"] and not low["unseen"]
        label = f"  (the same at {low['target_rate']:g}/s, below capacity)"
        found.append((label, p99, "< 100", met))
    return found


def _pipeline_table(out: Report, pipe: dict[str, Any]) -> None:
    rows = [
        [
            f"write: TiaokuaiApplication, {pipe['writers']} writer processes",
            f"{pipe['write_s']:.1f}",
            f0(pipe["write_per_s"]),
        ],
        [
            "relay: store → Kafka (from relay start, incl. start-up "
            f"{(pipe['relay_startup_s'] or 0):.1f} s)",
            f"{pipe['relay_s']:.1f}",
            f0(pipe["relay_per_s"]),
        ],
    ]
    for name, seconds in sorted(pipe["groups_s"].items(), key=lambda kv: kv[1]):
        rows.append([f"  view {name}: every partition applied", f"{seconds:.1f}", ""])
    rows.append(["end to end: store → every view", f"{pipe['e2e_s']:.1f}", f0(pipe["e2e_per_s"])])
    rows.append(["  the same, less the relay's start-up", "", f0(pipe["e2e_after_startup_per_s"])])
    out.table(
        f"1. Pipeline: {pipe['events']:,} events, {pipe['aggregates']:,} aggregates, "
        f"workers: {pipe['worker_layout']}",
        ["stage", "seconds", "events/s"],
        rows,
    )
    stale = sum(pipe["stale_aggregates"].values())
    out.line(
        "   check: every projection's applied docs at the store's versions: "
        + ("yes" if stale == 0 else f"NO, {pipe['stale_aggregates']}")
    )


def _raw_table(out: Report, raw: dict[str, Any]) -> None:
    out.table(
        f"2. Raw ceilings: {raw['messages']:,} messages, {raw['value_bytes']} B value "
        f"+ {raw['header_bytes']} B headers",
        ["loop", "seconds", "msgs/s"],
        [
            [
                "kafka-python producer, acks=all (relay's settings)",
                f"{raw['produce_s']:.1f}",
                f0(raw["produce_per_s"]),
            ],
            [
                f"consumer → 1 upsert/msg + offsets, 1 txn/poll ({raw['consume_polls']} polls)",
                f"{raw['consume_s']:.1f}",
                f0(raw["consume_per_s"]),
            ],
            *(
                [
                    [
                        f"the same, {raw['groups']['groups']} consumers (one group each) at "
                        "once, each reading every message: the topology of issue 3",
                        f"{raw['groups']['wall_s']:.1f}",
                        f0(raw["groups"]["per_s"]),
                    ]
                ]
                if raw.get("groups")
                else []
            ),
        ],
    )


def _api_table(out: Report, api: dict[str, Any]) -> None:
    rows = []
    for label, key in (
        ("bare route: 1 eventsourcing save", "bare"),
        ("tiaokuai serve: POST /tasks/{id}/urge", "tiaokuai"),
        ("  the same, relay and workers live", "tiaokuai_live"),
    ):
        if key not in api:
            continue
        r = api[key]
        errors = sum(r["errors"].values())
        rows.append(
            [
                label,
                f"{r['ok']:,}" + (f" ({errors} errors)" if errors else ""),
                f0(r["per_s"]),
                f1(r["p50_ms"]),
                f1(r["p90_ms"]),
                f1(r["p99_ms"]),
                f1(r["max_ms"]),
            ]
        )
    out.table(
        f"3. API: {api['clients']} concurrent clients",
        ["route", "ok", "per s", "p50 ms", "p90 ms", "p99 ms", "max ms"],
        rows,
    )
    behind = api["views_behind_after_burst_s"]
    if "catch_up_after_restart_s" in api:
        out.line(
            f"   each server alone first, in {API_TURNS} turns each (relay and workers stopped, "
            "as nobody relays the bare route's events); restarted, they had every view "
            "caught up "
            f"{api['catch_up_after_restart_s']:.1f} s later, joining their groups included"
        )
    out.line(f"   live: views caught up {behind:.2f} s after the burst's last response")


def _fresh_table(out: Report, fresh: dict[str, Any], title: str = "4. Freshness") -> None:
    rows = []
    for label, key in (
        ("applied:unit_views shows the version", "unit_views_ms"),
        ("every projection's applied doc (of those taking tasks)", "all_views_ms"),
        ("GET /views/units/<unit>?after= answered", "read_after_ms"),
    ):
        d = fresh[key]
        rows.append([label, str(d["n"]), f1(d["p50"]), f1(d["p90"]), f1(d["p99"]), f1(d["max"])])
    c = fresh["commands"]
    out.table(
        f"{title}: sent at {fresh['achieved_rate']:.0f}/s, answered {c['per_s']:.0f}/s "
        f"(POST p50 {c['p50_ms']:.1f} ms, p99 {c['p99_ms']:.1f} ms); from each response",
        ["until", "n", "p50 ms", "p90 ms", "p99 ms", "max ms"],
        rows,
    )
    disk = fresh.get("disk")
    if disk and disk["writes"]:
        out.line(
            f"   disk meanwhile (8 KiB + fdatasync every 10 ms, bench's temp directory): "
            f"p50 {disk['p50_ms']:.2f} ms, max {disk['max_ms']:.0f} ms, "
            f"{disk['stalls']} over {disk['stall_ms']:.0f} ms"
            + (
                " (every commit waits for the disk: a stall holds up every write)"
                if disk["stalls"]
                else ""
            )
        )
    if fresh["unseen"] or fresh["unanswered"] or fresh["read_errors"] or c["errors"]:
        out.line(
            f"   unanswered within 30 s: {fresh['unanswered']}, never seen: {fresh['unseen']}, "
            f"read errors: {fresh['read_errors']}, command errors: {c['errors']}"
        )


def _cpu_tables(out: Report, results: dict[str, Any]) -> None:
    cpu = results["cpu_cores"]
    pipe, raw, api = (results.get(k) for k in ("pipeline", "raw", "api"))
    units: dict[str, int] = {}
    if pipe:
        units.update(write=pipe["events"], drain=pipe["events"])
    if raw:
        units.update(raw_produce=raw["messages"], raw_consume=raw["messages"])
        if raw.get("groups"):
            units.update(raw_consume_groups=raw["messages"])
    if api:
        units.update(api_bare=api["bare"]["requests"], api=api["tiaokuai"]["requests"])
        if "tiaokuai_live" in api:
            units.update(api_live=api["tiaokuai_live"]["requests"])
    parts = ["writers", "relay", "workers", "api", "broker", "postgres", "bench"]
    counted = {
        "write": {"writers", "postgres"},
        "drain": {"relay", "workers", "broker", "postgres"},
        "raw_produce": {"bench", "broker", "postgres"},
        "raw_consume": {"bench", "broker", "postgres"},
        "raw_consume_groups": {"bench", "broker", "postgres"},
        "api_bare": {"api", "postgres"},
        "api": {"api", "postgres"},
        "api_live": {"api", "relay", "workers", "broker", "postgres"},
    }
    nproc = results["machine"]["nproc"] or 1
    rows = []
    for phase, count in units.items():
        cores = cpu.get(phase)
        if not cores or not count:
            continue
        per = {r: cores.get(r, 0.0) * cores["wall_s"] * 1000 / count for r in counted[phase]}
        total = sum(per.values())
        bound = nproc * 1000 / total if total else math.nan
        cells = [f2(per[r]) if r in per else "·" for r in parts]
        rows.append([phase, f"{count:,}", *cells, f2(total), f0(bound)])
    if rows:
        out.table(
            "CPU ms per event / message / request, and the rate that cost allows on this "
            "machine if nothing else ran (CPUs × 1000 ÷ total)",
            ["phase", "units", *parts, "total", "bound/s"],
            rows,
        )
    workers = {k.split(":", 1)[1]: v for k, v in cpu.get("drain", {}).items() if ":" in k}
    if workers and pipe:
        wall = cpu["drain"]["wall_s"]
        out.line(
            "   drain, CPU ms per event by worker: "
            + ", ".join(
                f"{name.removeprefix('worker-')} {v * wall * 1000 / pipe['events']:.2f}"
                for name, v in sorted(workers.items(), key=lambda kv: -kv[1])
            )
        )
    roles = ["bench", "writers", "relay", "workers", "api", "broker", "postgres", "other"]
    rows = [
        [phase, f"{cores['wall_s']:.1f}", *(f2(cores.get(r, 0.0)) for r in roles)]
        for phase, cores in cpu.items()
    ]
    out.table("CPU cores used per phase (CPU seconds ÷ wall seconds)", ["phase", "s", *roles], rows)


def print_report(results: dict[str, Any], command: str) -> None:
    out = Report()
    m = results["machine"]
    out.line(
        f"Tiaokuai benchmark — {m['nproc']} CPUs ({m['cpu']}), {m['memory_gib']} GiB, "
        f"Python {m['python']}, {results.get('postgres', '?')}, "
        f"broker {results.get('broker', '?')}"
    )
    for key, table in (
        ("pipeline", _pipeline_table),
        ("raw", _raw_table),
        ("api", _api_table),
        ("freshness", _fresh_table),
    ):
        if key in results:
            table(out, results[key])
    if "freshness_low" in results:
        _fresh_table(out, results["freshness_low"], "4b. Freshness below capacity")
    conns = results.get("pg_connections", {})
    out.line(
        f"PostgreSQL client connections (whole server): {conns.get('before', '—')} before the "
        f"run, {conns.get('pipeline', '—')} with relay + workers, "
        f"{conns.get('pipeline_and_api', '—')} with the API too (relay/worker pool: "
        f"{results['args']['worker_pool'] or 'default'}); start-up races survived: "
        f"{results['startup_races']}"
    )
    _cpu_tables(out, results)
    rows = [
        [what, f2(value), target, "met" if met else "NOT met"]
        for what, value, target, met in targets(results)
    ]
    out.table("Ratios and targets", ["ratio", "measured", "target", ""], rows)
    pipe, raw = results.get("pipeline"), results.get("raw")
    if pipe and raw and raw.get("groups"):
        groups = raw["groups"]
        out.line(
            f"   context: end to end ÷ {groups['groups']} raw consumers at once (one group each, "
            f"as the projections): {pipe['e2e_per_s'] / groups['per_s']:.2f}"
        )
    api = results.get("api")
    if api and "tiaokuai_live" in api:
        live, bare = api["tiaokuai_live"], api["bare"]
        out.line(
            "   context: the API with the relay and workers live on the same cores: "
            f"{live['per_s'] / bare['per_s']:.2f} of the bare route's rate, "
            f"p99 {live['p99_ms'] / bare['p99_ms']:.2f}×"
        )
    if "failed" in results:
        out.line(f"FAILED in phase {results['failed']['phase']}: {results['failed']['error']}")
    out.line(
        f"Load average before {results['loadavg_before']}, after {results['loadavg_after']}; "
        f"code: {results['git']}"
    )
    out.line(f"Total {results['total_s']:.0f} s. Command: {command}")


PROFILED_WORKERS = ("worker-unit_views", "worker-ledger", "worker-all", "worker-all-0")
"""The worker processes ``--profile`` samples."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline", description=__doc__)
    parser.add_argument("--events", type=int, default=50_000, help="events of the pipeline")
    parser.add_argument("--writers", type=int, default=2, help="writer processes")
    parser.add_argument(
        "--workers",
        default="single",
        help="`tiaokuai worker project` processes: 'single' (one hosting every projection, "
        "the default deployment), 'per-projection' (seven), or a number N (N processes "
        "hosting every projection, sharing each group's partitions)",
    )
    parser.add_argument(
        "--worker-pool",
        type=int,
        default=2,
        help="TIAOKUAI_STORE_POOL_SIZE of the relay and the workers (0: the default, 10)",
    )
    parser.add_argument(
        "--worker-linger-ms",
        type=float,
        help="TIAOKUAI_WORKER_LINGER_MS of the workers (default: theirs, 5)",
    )
    parser.add_argument(
        "--fetch-wait-ms",
        type=int,
        help="TIAOKUAI_KAFKA_FETCH_MAX_WAIT_MS of the workers (default: theirs, 20)",
    )
    parser.add_argument(
        "--relay-idle-ms",
        type=float,
        help="TIAOKUAI_RELAY_IDLE_SECONDS of the relay, in ms (default: its own, 20)",
    )
    parser.add_argument("--api-requests", type=int, default=5_000)
    parser.add_argument("--api-clients", type=int, default=50)
    parser.add_argument("--api-tasks", type=int, default=500, help="tasks the API urges")
    parser.add_argument("--fresh-rate", type=float, default=100.0, help="commands per second")
    parser.add_argument("--fresh-seconds", type=float, default=10.0)
    parser.add_argument(
        "--fresh-low-rate",
        type=float,
        default=25.0,
        help="a second freshness run at this rate, below the API's capacity (0: none)",
    )
    parser.add_argument("--store", default=os.environ.get("TIAOKUAI_BENCH_STORE", PG_DEFAULT))
    parser.add_argument("--log-dir", help="where the children's logs go (default: a temp dir)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--profile", help="py-spy collapsed stacks of the children into DIR")
    parser.add_argument(
        "--profile-idle", action="store_true", help="with --profile: idle samples too, by thread"
    )
    parser.add_argument("--keep", action="store_true", help="keep the schemas (debugging)")
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--bare-schema", help=argparse.SUPPRESS)
    parser.add_argument("--raw-consume-child", metavar="TABLE", help=argparse.SUPPRESS)
    parser.add_argument("--raw-schema", help=argparse.SUPPRESS)
    parser.add_argument("--raw-bus", help=argparse.SUPPRESS)
    parser.add_argument("--raw-topic", help=argparse.SUPPRESS)
    parser.add_argument("--raw-events", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--raw-start-at", type=float, default=0.0, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.serve_bare:
        from bench import pipeline  # this module by its name: stable event topics

        pipeline.serve_bare(args.serve_bare, args.store, args.bare_schema)
        return 0
    if args.raw_consume_child:
        _quiet_logs()
        raw_consume_child(args)
        return 0
    if args.events < 1_000:
        print("--events: at least 1000", file=sys.stderr)
        return 2
    _quiet_logs()
    os.environ["PGAPPNAME"] = APP_NAME  # inherited by the writers and every child
    shown = list(sys.argv[1:] if argv is None else argv)
    command = shlex.join([os.path.relpath(sys.executable), "-m", "bench.pipeline", *shown])
    bench = Bench(args)
    bench.run()
    results = bench.results
    results["command"] = command
    results["args"] = vars(args)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str, ensure_ascii=False))
    print_report(results, command)
    return 1 if "failed" in results else 0


if __name__ == "__main__":
    sys.exit(main())
