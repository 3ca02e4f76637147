"""The audit benchmark of issue 4: replay rate, replay memory, ``state?at=`` latency, sealing.

One run, on the PostgreSQL at ``--store``, in two fresh schemas that are dropped at the
end: a large store of ``--events`` events and a small one of a tenth as many, with the
same shape. Phases, in order:

1. **Load.** Each store is written through ``TiaokuaiApplication``'s commands: units, the
   five responsibility chains with six links each and handovers throughout, an industry
   party committee per industry, joint meetings with resolutions, and tasks driven
   through their whole life (issue, three signatures, progress, contributions, urge, lead
   transfers and the new lead's signature, overdue spells, extension request and grant,
   completion, return, completion, verify), step by step across all tasks. One command
   per transaction runs at ~100-300 events/s here, so the loader's application defers
   its saves and stores many commands' aggregates with one ``app.save(...)`` (at most
   ``--save-batch`` events; the same domain events, snapshots and seals as one command
   at a time).
2. **Live views.** The in-process projector catches the views up (``System.catch_up``).
3. **Raw read.** The whole notification log read with ``app.recorder.select_notifications``
   in batches of 1,000; then the same with the mapper's decode of each notification into
   its domain event. Three times each before and after the replays; the median is the
   baseline.
4. **Replay.** ``infra.replay.run_replay`` (what ``tiaokuai audit replay`` runs) in a
   child process per store, which reports its wall and CPU time and peak RSS. The large
   store's rate is compared with the raw read; the two peaks are compared with each other.
5. **``state?at=``**: a task of ``--big-task`` events is added to the large store (after
   the replays, which it would otherwise skew); then its state at ``--instants`` instants,
   with snapshots and without
   (the answers must be equal), beside eventsourcing's ``Repository.get`` of the same
   aggregate with and without its snapshot store.
6. **Sealing.** ``bench/sealing.py`` in a child process (its own fresh schema).

Run: ``make bench-audit`` or ``.venv/bin/python -m bench.audit [--events 200000]``.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import logging
import os
import platform
import pstats
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.application import Repository
from psycopg import sql

from bench.support import PostgresMeter, git_state, loadavg, machine_cpu
from domain.actor import Actor, Role
from domain.chains import LinkRole
from domain.ids import INDUSTRIES, chain_id
from domain.units import UnitKind
from infra.application import TiaokuaiApplication
from infra.audit import stream_envelopes
from infra.bootstrap import bootstrap
from infra.clock import ManualClock
from infra.logging import configure_logging
from infra.settings import Settings
from projections.registry import build_projections
from projections.store import Doc, MemoryViewStore

PG_DEFAULT = os.environ.get("TIAOKUAI_BENCH_STORE", "postgresql://postgres@127.0.0.1:5432/postgres")
APP_NAME = "tiaokuai-bench-audit"
"""PGAPPNAME of this run's connections, so that its PostgreSQL backends can be metered."""
START = datetime(2025, 1, 6, 1, 0, tzinfo=UTC)
DEPARTMENTS = tuple(f"dept-{i:02d}" for i in range(1, 13))
TOWNS = tuple(f"town-{i:02d}" for i in range(1, 8))
SEC = Actor("bench-secretariat", Role.SECRETARIAT, None)
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
HANDOVER_EVERY = 100
"""One chain handover per this many task commands (spread over the 5 chains, 6 links)."""
STEPS = (
    "issue",
    "sign_lead",
    "sign_co",
    "sign_town",
    "progress",
    "contribution_co",
    "contribution_town",
    "urge",
    "transfer",
    "sign_new_lead",
    "overdue",
    "extension_request",
    "extension_grant",
    "progress",
    "completion",
    "return",
    "progress",
    "completion",
    "verify",
)
EVENTS_PER_TASK = 16.8
"""A little under what a task brings (16 steps every task takes, a transfer and signature
for a quarter, overdue for a third, a handover per 100 commands: about 17.0), so that a
store holds at least ``--events``."""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def liaison(unit: str) -> Actor:
    return Actor(f"bench-liaison-{unit}", Role.LIAISON, unit)


# ------------------------------------------------------------------------ metering
def memory_kib(field_name: str) -> int:
    """A field of /proc/self/status in KiB: VmRSS now, VmHWM the peak so far."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return 0


@dataclass
class Phase:
    """Wall time and CPU seconds of one phase: this process, PostgreSQL, the machine."""

    wall_s: float = 0.0
    cpu_s: float = 0.0
    postgres_cpu_s: float = 0.0
    machine_cpu_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        wall = max(self.wall_s, 1e-9)
        return {
            "wall_s": round(self.wall_s, 3),
            "cpu_s": round(self.cpu_s, 3),
            "postgres_cpu_s": round(self.postgres_cpu_s, 3),
            "machine_busy_cores": round(self.machine_cpu_s / wall, 2),
            **self.extra,
        }


class Meter:
    def __init__(self, postgres: PostgresMeter) -> None:
        self.postgres = postgres

    @contextlib.contextmanager
    def phase(self, child_cpu: Callable[[], float] | None = None) -> Iterator[Phase]:
        phase = Phase()
        pg0, m0, c0, t0 = (
            self.postgres.total(),
            machine_cpu(),
            time.process_time(),
            time.perf_counter(),
        )
        yield phase
        phase.wall_s = time.perf_counter() - t0
        phase.cpu_s = time.process_time() - c0 + (child_cpu() if child_cpu else 0.0)
        phase.machine_cpu_s = machine_cpu() - m0
        phase.postgres_cpu_s = self.postgres.total() - pg0


# -------------------------------------------------------------------------- loading
class LoaderApplication(TiaokuaiApplication):
    """The application, with saves deferred and many commands' aggregates saved at once.

    Every command still loads, decides and "saves" as in production; ``save`` only
    collects the aggregate while deferring, and ``flush`` hands them all to
    eventsourcing's ``Application.save`` (one transaction: events, notification log,
    seals, then the snapshots due). The repository's cache is authoritative
    (``AGGREGATE_CACHE_FASTFORWARD=n``): nothing else writes these stores meanwhile.
    """

    # eventsourcing names the tables after the application: the same tables, please.
    name = TiaokuaiApplication.name

    def __init__(self, env: dict[str, str], clock: ManualClock) -> None:
        super().__init__(
            {**env, "AGGREGATE_CACHE_MAXSIZE": "1000000", "AGGREGATE_CACHE_FASTFORWARD": "n"},
            clock=clock,
        )
        self.deferring = False
        self.pending: dict[UUID, Any] = {}
        self.pending_events = 0
        self.saves = 0

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        if not self.deferring:
            return super().save(*objs, **kwargs)
        for obj in objs:
            if obj.id in self.pending:
                raise AssertionError(f"{obj.id} saved twice in one batch (flush first)")
            self.pending[obj.id] = obj
            self.pending_events += len(obj.pending_events)
        return []

    def flush(self) -> None:
        if self.pending:
            super().save(*self.pending.values())
            self.saves += 1
        self.pending.clear()
        self.pending_events = 0


@dataclass
class TaskRun:
    task_id: UUID
    lead: str
    co: str
    town: str
    deadline: datetime
    transferred: bool = False
    request_id: str | None = None
    progress: int = 0


class Loader:
    """Writes one store of about ``events`` events through the commands (see the module doc)."""

    def __init__(self, app: LoaderApplication, clock: ManualClock, save_batch: int) -> None:
        self.app = app
        self.clock = clock
        self.save_batch = save_batch
        self.resolutions: list[tuple[UUID, str]] = []
        self.commands = 0
        self.handovers = 0

    def touch(self, aggregate_id: UUID | None) -> None:
        """Before a command on ``aggregate_id``: flush if its last change is not saved yet."""
        if aggregate_id is not None and aggregate_id in self.app.pending:
            self.app.flush()

    def after(self) -> None:
        self.commands += 1
        self.clock.advance(timedelta(seconds=1))
        if self.app.pending_events >= self.save_batch:
            self.app.flush()

    def setup(self) -> None:
        app = self.app
        for slug in DEPARTMENTS:
            app.register_unit(slug=slug, name=f"区{slug}局", kind=UnitKind.DEPARTMENT, actor=SEC)
        for slug in TOWNS:
            app.register_unit(slug=slug, name=f"{slug}街道", kind=UnitKind.TOWN, actor=SEC)
        app.flush()
        for i, industry in enumerate(INDUSTRIES):
            app.establish_chain(industry=industry, name=f"{industry} 责任链条", actor=SEC)
            app.flush()
            for j, role in enumerate(LinkRole):
                unit = TOWNS[i] if role == LinkRole.TERRITORIAL else DEPARTMENTS[(i + j) % 12]
                app.add_chain_link(
                    industry=industry,
                    unit=unit,
                    role=role,
                    responsible_person=f"{SURNAMES[j]}负责人",
                    duties=["摸清底数", "建立联络站"],
                    actor=SEC,
                )
                app.flush()
            committee = app.establish_committee(
                name=f"{industry} 行业党委",
                industry=industry,
                supervising_unit=DEPARTMENTS[i],
                actor=SEC,
            ).aggregate
            app.flush()
            cid = committee.id
            app.appoint_secretary(committee_id=cid, name="党委书记", reason="成立", actor=SEC)
            app.flush()
            for m in range(8):
                app.admit_member(
                    committee_id=cid, name=f"委员{m}", enterprise=f"企业{m}", actor=SEC
                )
                app.flush()
            for m in range(2):
                app.dispatch_instructor(
                    committee_id=cid,
                    name=f"指导员{m}",
                    enterprise=f"企业{m}",
                    enterprise_party_members=m,
                    actor=SEC,
                )
                app.flush()
            for q in (1, 2, 3, 4):
                app.report_coverage(
                    committee_id=cid,
                    period=f"2025-Q{q}",
                    enterprises=40,
                    organizations_covered=20 + q,
                    work_covered=30 + q,
                    party_members=100,
                    workers=2000,
                    actor=SEC,
                )
                app.flush()
        for k in range(10):
            meeting = app.convene_meeting(
                title=f"新就业群体党建联席会议 第{k + 1}次", held_at=app.now(), actor=SEC
            ).aggregate
            app.flush()
            app.record_attendance(
                meeting_id=meeting.id,
                units=list(DEPARTMENTS[:6]),
                actor=SEC,
                expected_version=None,
            )
            app.flush()
            for r in range(3):
                written = app.adopt_resolution(
                    meeting_id=meeting.id,
                    text=f"议定事项 {k}-{r}",
                    actor=SEC,
                    expected_version=None,
                )
                app.flush()
                assert written.created_id is not None
                self.resolutions.append((meeting.id, written.created_id))
            app.close_meeting(meeting_id=meeting.id, actor=SEC, expected_version=None)
            app.flush()

    def handover(self) -> None:
        """A responsible person of one link of one chain hands over (交接)."""
        n = self.handovers
        industry = INDUSTRIES[n % len(INDUSTRIES)]
        link_id = f"L{1 + (n // len(INDUSTRIES)) % len(LinkRole)}"
        self.touch(chain_id(industry))
        self.app.hand_over_link(
            industry=industry,
            link_id=link_id,
            responsible_person=f"{SURNAMES[n % len(SURNAMES)]}同志{n}",
            effective_at=self.app.now(),
            reason="岗位调整，工作交接。",
            actor=SEC,
        )
        self.handovers += 1
        self.after()

    def step(self, runs: dict[int, TaskRun], t: int, step: str) -> None:
        """One step of task ``t``: one command (or none, when the step does not apply)."""
        app = self.app
        if step == "issue":
            lead, co, town = DEPARTMENTS[t % 12], DEPARTMENTS[(t + 5) % 12], TOWNS[t % 7]
            meeting_id, resolution_id = (None, None)
            if t % 5 == 0:
                meeting_id, resolution_id = self.resolutions[t % len(self.resolutions)]
            # A third of the tasks have a deadline that passes before their "overdue" step.
            deadline = app.now() + timedelta(days=3 if t % 3 == 0 else 90, minutes=t % 600)
            written = app.issue_task(
                title=f"督办任务 {t:06d}：推进新就业群体党建工作",
                description="联席会议议定事项：摸清快递、外卖、网约车从业人员底数。",
                industry=INDUSTRIES[t % len(INDUSTRIES)],
                lead_unit=lead,
                co_units=[co],
                towns=[town],
                deadline=deadline,
                weight=float(1 + t % 5),
                meeting_id=meeting_id,
                resolution_id=resolution_id,
                actor=SEC,
            )
            runs[t] = TaskRun(written.aggregate.id, lead, co, town, deadline)
            self.after()
            return
        run = runs[t]
        self.touch(run.task_id)
        task_id = run.task_id
        if step == "sign_lead":
            app.sign_for(task_id=task_id, actor=liaison(run.lead))
        elif step == "sign_co":
            app.sign_for(task_id=task_id, actor=liaison(run.co))
        elif step == "sign_town":
            app.sign_for(task_id=task_id, actor=liaison(run.town))
        elif step == "progress":
            run.progress = min(95, run.progress + 25)
            app.report_progress(
                task_id=task_id,
                note=f"已走访快递网点和外卖站点，完成第 {run.progress} % 的摸底工作。",
                percent=run.progress,
                actor=liaison(run.lead),
            )
        elif step in ("contribution_co", "contribution_town"):
            unit = run.co if step == "contribution_co" else run.town
            app.report_contribution(
                task_id=task_id, note="配合开展骑手驿站建设，提供场地。", actor=liaison(unit)
            )
        elif step == "urge":
            app.urge_task(task_id=task_id, note="请加快进度，按期报结。", actor=SEC)
        elif step == "transfer":
            if t % 4:
                return
            new_lead = DEPARTMENTS[(t + 3) % 12]
            app.transfer_lead(
                task_id=task_id, new_lead=new_lead, reason="职能调整，改由该单位牵头。", actor=SEC
            )
            run.lead, run.transferred = new_lead, True
        elif step == "sign_new_lead":
            if not run.transferred:
                return
            app.sign_for(task_id=task_id, actor=liaison(run.lead))
        elif step == "overdue":
            if app.mark_overdue(task_id=task_id) is None:
                return
        elif step == "extension_request":
            new_deadline = max(run.deadline, app.now()) + timedelta(days=30)
            written = app.request_extension(
                task_id=task_id,
                new_deadline=new_deadline,
                reason="站点选址需与属地街道重新协调。",
                actor=liaison(run.lead),
            )
            run.request_id, run.deadline = written.created_id, new_deadline
        elif step == "extension_grant":
            assert run.request_id is not None
            app.grant_extension(
                task_id=task_id, request_id=run.request_id, note="同意延期。", actor=SEC
            )
        elif step == "completion":
            app.report_completion(
                task_id=task_id, note="联络站已挂牌运行，台账齐全。", actor=liaison(run.lead)
            )
        elif step == "return":
            app.return_task(task_id=task_id, reason="台账缺少骑手走访记录，请补充。", actor=SEC)
        elif step == "verify":
            app.verify_task(task_id=task_id, note="验收通过，予以销号。", actor=SEC)
        else:  # pragma: no cover - STEPS names only the steps above
            raise ValueError(step)
        self.after()
        if self.commands % HANDOVER_EVERY == 0:
            self.handover()

    def tasks(self, events: int) -> int:
        """Tasks step-major (step k on every task, then k + 1) until about ``events``."""
        count = max(1, round(events / EVENTS_PER_TASK))
        runs: dict[int, TaskRun] = {}
        for step in STEPS:
            for t in range(count):
                self.step(runs, t, step)
            self.app.flush()
            self.clock.advance(timedelta(days=1))
        return count

    def big_task(self, events: int) -> UUID:
        """One task with ``events`` events: progress reports and urges, alternately."""
        app = self.app
        app.flush()
        lead, co, town = DEPARTMENTS[0], DEPARTMENTS[1], TOWNS[0]
        task = app.issue_task(
            title="长期督办任务：新就业群体党建工作全年推进",
            industry=INDUSTRIES[0],
            lead_unit=lead,
            co_units=[co],
            towns=[town],
            deadline=app.now() + timedelta(days=3650),
            weight=5.0,
            meeting_id=None,
            resolution_id=None,
            actor=SEC,
        ).aggregate
        app.flush()
        app.sign_for(task_id=task.id, actor=liaison(lead))
        app.flush()
        for n in range(events - 2):
            self.clock.advance(timedelta(hours=1))
            if n % 2:
                app.urge_task(task_id=task.id, note=f"第 {n} 次催办。", actor=SEC)
            else:
                app.report_progress(
                    task_id=task.id,
                    note=f"第 {n} 次进度报告：持续走访。",
                    percent=n % 101,
                    actor=liaison(lead),
                )
            app.flush()
        return task.id


def settings_for(store: str, schema: str) -> Settings:
    return Settings(store=store, store_schema=schema, store_pool_size=2, store_max_overflow=2)


def drop_schema(store: str, schema: str) -> None:
    for attempt in range(5):
        try:
            with psycopg.connect(store, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {0} CASCADE").format(sql.Identifier(schema))
                )
            return
        except psycopg.Error:
            if attempt == 4:
                raise
            time.sleep(1)


def load(
    store: str, schema: str, events: int, save_batch: int, meter: Meter, live_batch: int
) -> dict[str, Any]:
    """Fill one schema, then catch its live views up; the figures of both."""
    from infra.integrity import Sealer

    clock = ManualClock(START)
    settings = settings_for(store, schema)
    system = bootstrap(settings, clock=clock)
    system.app.saved_listeners.clear()
    app = LoaderApplication(settings.eventsourcing_env(), clock)
    result: dict[str, Any] = {"schema": schema}
    try:
        loader = Loader(app, clock, save_batch)
        with meter.phase() as write:
            app.deferring = True
            loader.setup()
            app.flush()
            # ``events`` counts everything stored: the directory and the tasks.
            tasks = loader.tasks(events - (app.recorder.max_notification_id() or 0))
            app.flush()
        stored = system.app.head()
        write.extra = {"events": stored, "events_per_s": round(stored / write.wall_s, 1)}
        result.update(
            tasks=tasks,
            handovers=loader.handovers,
            saves=app.saves,
            write=write.as_dict(),
            events=stored,
            unsealed_after_load=Sealer.for_system(system).seal_pending(),
        )
        log(f"{schema}: {stored:,} events stored in {write.wall_s:.1f} s")
        # The live views are the replay's reference; larger batches only build them sooner.
        system.projector.batch_size = live_batch
        with meter.phase() as live:
            system.catch_up()
        live.extra = {"events_per_s": round(stored / live.wall_s, 1), "batch": live_batch}
        result["live_catch_up"] = live.as_dict()
        log(f"{schema}: live views caught up in {live.wall_s:.1f} s")
    finally:
        app.close()
        system.close()
    return result


def add_big_task(store: str, schema: str, events: int, save_batch: int) -> str:
    """Add the task of ``events`` events to a loaded store; its id."""
    # After every instant of the load (about three weeks), so instants stay in order.
    clock = ManualClock(START + timedelta(days=60))
    app = LoaderApplication(settings_for(store, schema).eventsourcing_env(), clock)
    try:
        app.deferring = True
        return str(Loader(app, clock, save_batch).big_task(events))
    finally:
        app.close()


# ------------------------------------------------------------------------ raw read
def raw_read(store: str, schema: str, meter: Meter, *, decode: bool) -> dict[str, Any]:
    """Read the whole notification log with the recorder (and decode it with the mapper)."""
    system = bootstrap(settings_for(store, schema))
    try:
        recorder, mapper = system.app.recorder, system.app.mapper
        count = 0
        with meter.phase() as phase:
            position = 0
            while True:
                notifications = recorder.select_notifications(start=position + 1, limit=1000)
                if not notifications:
                    break
                if decode:
                    for notification in notifications:
                        mapper.to_domain_event(notification)
                count += len(notifications)
                position = notifications[-1].id
        phase.extra = {"events": count, "events_per_s": round(count / phase.wall_s, 1)}
        return phase.as_dict()
    finally:
        system.close()


def raw_reads(store: str, schema: str, meter: Meter, repeat: int = 3) -> list[Any]:
    """``repeat`` reads without and with decoding, alternately (the machine is shared)."""
    return [
        (raw_read(store, schema, meter, decode=False), raw_read(store, schema, meter, decode=True))
        for _ in range(repeat)
    ]


class _SharingStore(MemoryViewStore):
    """A dict of documents handed out without copies: the cheapest store there is."""

    def get(self, view: str, key: str) -> Doc | None:
        return self.docs.get(view, {}).get(key)

    def put(self, view: str, key: str, doc: Doc) -> None:
        self.docs.setdefault(view, {})[key] = doc


def fold_ceiling(store: str, schema: str, meter: Meter) -> dict[str, Any]:
    """The seven projections folded over the log into dicts: no database writes, no copies.

    The ceiling of the projection code itself, beside which the replay's share of the
    raw read can be judged. It holds every view in memory, so it is a measurement, not
    a way to replay.
    """
    system = bootstrap(settings_for(store, schema))
    try:
        views = _SharingStore()
        projections = build_projections(system.tz)
        count = 0
        with meter.phase() as phase:
            for envelope in stream_envelopes(system):
                for projection in projections:
                    projection.apply(envelope, views)
                count += 1
        phase.extra = {
            "events": count,
            "events_per_s": round(count / phase.wall_s, 1),
            "documents": sum(len(docs) for docs in views.docs.values()),
        }
        return phase.as_dict()
    finally:
        system.close()


# --------------------------------------------------------------------------- replay
def replay_child(store: str, schema: str, profile: str | None, batch: int) -> int:
    """In a child process: one full replay; prints its figures as one JSON line."""
    from infra.replay import run_replay

    configure_logging(json=True, level=logging.WARNING)
    system = bootstrap(settings_for(store, schema))
    try:
        system.catch_up()
        rss_before = memory_kib("VmRSS")
        profiler = cProfile.Profile() if profile else None
        cpu0, t0 = time.process_time(), time.perf_counter()
        if profiler is not None:
            profiler.enable()
        status = run_replay(system, batch=batch)
        if profiler is not None:
            profiler.disable()
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        peak = memory_kib("VmHWM")
    finally:
        system.close()
    if profiler is not None and profile:
        profiler.dump_stats(profile)
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text)
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(40)
        Path(profile + ".txt").write_text(text.getvalue())
    print(
        json.dumps(
            {
                "events": status.processed,
                "differences": status.difference_count,
                "state": status.state,
                "wall_s": round(wall, 3),
                "cpu_s": round(cpu, 3),
                "events_per_s": round(status.processed / wall, 1),
                "rss_before_mib": round(rss_before / 1024, 1),
                "peak_rss_mib": round(peak / 1024, 1),
                "growth_mib": round((peak - rss_before) / 1024, 1),
                "profiled": bool(profile),
                "batch": batch,
            }
        )
    )
    return 0


def replay(
    store: str, schema: str, meter: Meter, batch: int, profile: str | None = None
) -> dict[str, Any]:
    argv = [sys.executable, "-m", "bench.audit", "--replay-child", schema, "--store", store]
    argv += ["--replay-batch", str(batch)]
    if profile:
        argv += ["--profile", profile]
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    with meter.phase(lambda: 0.0) as phase:
        out, _ = child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"the replay child failed with exit code {child.returncode}")
    figures: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    if figures["state"] != "finished" or figures["differences"]:
        raise AssertionError(f"the replay of a healthy store reported drift: {figures}")
    return {**figures, "phase": phase.as_dict()}


# ------------------------------------------------------------------------ state at
def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def timings(values_s: Sequence[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values_s]
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 3),
        "p99_ms": round(percentile(ms, 0.99), 3),
        "max_ms": round(max(ms), 3),
    }


def state_latency(store: str, schema: str, task: str, instants: int) -> dict[str, Any]:
    """``state_at`` of the big task at random instants, with and without snapshots."""
    from api.routes.audit import public
    from infra import audit

    system = bootstrap(settings_for(store, schema))
    try:
        events, total = audit.history(system, "tasks", task, limit=100_000)
        first = datetime.fromisoformat(events[0]["at"])
        last = datetime.fromisoformat(events[-1]["at"])
        rng = random.Random(4)
        span = (last - first).total_seconds()
        moments = [first + timedelta(seconds=rng.uniform(0, span)) for _ in range(instants)]
        moments.append(last)  # the head: the longest fold without snapshots
        # Warm up: connections and prepared statements.
        for moment in moments[:5]:
            audit.state_at(system, "tasks", task, at=moment)
            audit.state_at(system, "tasks", task, at=moment, use_snapshots=False)
        with_s: list[float] = []
        without_s: list[float] = []
        for moment in moments:
            began = time.perf_counter()
            snap = audit.state_at(system, "tasks", task, at=moment)
            answer = public(snap)
            with_s.append(time.perf_counter() - began)
            began = time.perf_counter()
            folded = audit.state_at(system, "tasks", task, at=moment, use_snapshots=False)
            plain_answer = public(folded)
            without_s.append(time.perf_counter() - began)
            if (snap.version, answer) != (folded.version, plain_answer):
                raise AssertionError(f"state_at differs with and without snapshots at {moment}")
        task_id = UUID(task)
        bare = Repository(event_store=system.app.repository.event_store)
        snapshotted = system.app.repository
        get_plain: list[float] = []
        get_snap: list[float] = []
        for _ in range(max(20, instants // 5)):
            began = time.perf_counter()
            got: Any = bare.get(task_id)
            get_plain.append(time.perf_counter() - began)
            began = time.perf_counter()
            snapshotted.get(task_id)
            get_snap.append(time.perf_counter() - began)
        assert got.version == total, (got.version, total)
        return {
            "task_events": total,
            "instants": len(moments),
            "state_at_with_snapshots": timings(with_s),
            "state_at_without_snapshots": timings(without_s),
            "repository_get_no_snapshots": timings(get_plain),
            "repository_get_with_snapshots": timings(get_snap),
            "answers_identical": True,
        }
    finally:
        system.close()


# -------------------------------------------------------------------------- sealing
def sealing(store: str, commands: int, rounds: int) -> dict[str, Any]:
    argv = [
        sys.executable,
        "-m",
        "bench.sealing",
        "--json",
        "--store",
        store,
        "--commands",
        str(commands),
        "--rounds",
        str(rounds),
    ]
    out = subprocess.run(argv, stdout=subprocess.PIPE, text=True, check=True).stdout
    result: dict[str, Any] = json.loads(out)
    return result


# ------------------------------------------------------------------------- the run


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def report(summary: dict[str, Any]) -> None:
    large, small = summary["large"], summary["small"]
    raw, rep = summary["raw_read"], summary["replay"]
    print(
        f"audit bench, commit {summary['git']}, {summary['machine']['nproc']} CPUs, load average "
        f"{summary['loadavg_before']} before, {summary['loadavg_after']} after"
    )
    for name, store in (("large", large), ("small", small)):
        w, lv = store["write"], store["live_catch_up"]
        print(
            f"load {name}: {store['events']:,} events ({store['tasks']:,} tasks, "
            f"{store['handovers']:,} handovers) in {w['wall_s']:.1f} s = {w['events_per_s']:,.0f} "
            f"ev/s ({store['saves']:,} saves, CPU {w['cpu_s']:.1f} s + PostgreSQL "
            f"{w['postgres_cpu_s']:.1f} s); live views {lv['wall_s']:.1f} s = "
            f"{lv['events_per_s']:,.0f} ev/s"
        )
    print(
        f"raw read (recorder.select_notifications, 1,000 per batch): "
        f"{raw['select']['events_per_s']:,.0f} ev/s; with the mapper's decode "
        f"{raw['select_decode']['events_per_s']:,.0f} ev/s"
    )
    rl = rep["large"]
    print(
        f"replay (run_replay, {rl['events']:,} events): {rl['events_per_s']:,.0f} ev/s "
        f"(wall {rl['wall_s']:.1f} s, CPU {rl['cpu_s']:.1f} s + PostgreSQL "
        f"{rl['phase']['postgres_cpu_s']:.1f} s)"
    )
    ratio = summary["ratios"]
    print(
        f"  ratio to the raw read: x{ratio['replay_vs_select']:.3f} (target >= 0.25: "
        f"{verdict(ratio['replay_vs_select'] >= 0.25)}); to read+decode: "
        f"x{ratio['replay_vs_select_decode']:.3f}"
    )
    fold = summary.get("fold_in_memory")
    if fold:
        print(
            f"  ceiling: the same projections folded in memory, no database writes: "
            f"{fold['events_per_s']:,.0f} ev/s (CPU {fold['cpu_s']:.1f} s, "
            f"{fold['documents']:,} documents), x"
            f"{fold['events_per_s'] / raw['select']['events_per_s']:.3f} of the raw read"
        )
    other = rep.get("large_other_batch")
    if other:
        share = other["events_per_s"] / raw["select"]["events_per_s"]
        print(
            f"  with {other['batch']:,} events per transaction: {other['events_per_s']:,.0f} ev/s "
            f"(CPU {other['cpu_s']:.1f} s), x{share:.3f} of the raw read, peak RSS "
            f"{other['peak_rss_mib']:.1f} MiB"
        )
    rs = rep["small"]
    print(
        f"replay peak RSS: {rs['events']:,} events {rs['peak_rss_mib']:.1f} MiB "
        f"(+{rs['growth_mib']:.1f} during the replay), {rl['events']:,} events "
        f"{rl['peak_rss_mib']:.1f} MiB (+{rl['growth_mib']:.1f}); "
        f"x{ratio['peak_rss_large_vs_small']:.2f} "
        f"for x{rl['events'] / max(rs['events'], 1):.1f} events (target flat: "
        f"{verdict(ratio['peak_rss_large_vs_small'] <= 1.2)})"
    )
    seal = summary.get("sealing")
    if seal:
        cps = seal["commands_per_second"]
        print(
            f"sealing ({seal['commands_per_mode']:,} commands per mode): off {cps['off']:.1f}/s, "
            f"in the insert's transaction {cps['in_txn']:.1f}/s (cost "
            f"{seal['cost_percent']['in_txn']:.1f} %, median latency "
            f"{seal['median_cost_percent']['in_txn']:+.1f} %; target < 10 %: "
            f"{verdict(seal['cost_percent']['in_txn'] < 10)})"
        )
    st = summary.get("state_at")
    if st is None:
        return
    ws, wo = st["state_at_with_snapshots"], st["state_at_without_snapshots"]
    gp, gs = st["repository_get_no_snapshots"], st["repository_get_with_snapshots"]
    print(
        f"state?at= of a {st['task_events']:,}-event task, {st['instants']} instants: with "
        f"snapshots p50 {ws['p50_ms']:.2f} ms p99 {ws['p99_ms']:.2f} ms (target < 20 ms: "
        f"{verdict(ws['p99_ms'] < 20)}); without p50 {wo['p50_ms']:.2f} ms "
        f"p99 {wo['p99_ms']:.2f} ms"
    )
    print(
        f"  eventsourcing Repository.get of it: no snapshots p50 {gp['p50_ms']:.2f} ms p99 "
        f"{gp['p99_ms']:.2f} ms; with snapshots p50 {gs['p50_ms']:.2f} ms; state?at= with "
        f"snapshots / plain get = x{ratio['state_at_vs_plain_get']:.3f}; answers identical: "
        f"{st['answers_identical']}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=PG_DEFAULT)
    parser.add_argument("--events", type=int, default=200_000, help="events of the large store")
    parser.add_argument("--big-task", type=int, default=1000, help="events of the big task")
    parser.add_argument("--save-batch", type=int, default=500, help="events per app.save")
    parser.add_argument(
        "--replay-batch", type=int, default=1000, help="events per replay transaction"
    )
    parser.add_argument(
        "--replay-batch-also",
        type=int,
        default=0,
        metavar="N",
        help="replay the large store once more with N events per transaction",
    )
    parser.add_argument(
        "--live-batch", type=int, default=5000, help="events per live catch-up transaction"
    )
    parser.add_argument("--instants", type=int, default=300, help="state?at= calls per mode")
    parser.add_argument("--sealing-commands", type=int, default=3000, help="0 skips sealing")
    parser.add_argument("--sealing-rounds", type=int, default=30)
    parser.add_argument("--profile", metavar="FILE", help="cProfile the large replay into FILE")
    parser.add_argument("--json", metavar="PATH", help="write every figure to PATH")
    parser.add_argument("--keep", action="store_true", help="keep the schemas")
    parser.add_argument("--replay-child", metavar="SCHEMA", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ["PGAPPNAME"] = APP_NAME
    if args.replay_child:
        return replay_child(args.store, args.replay_child, args.profile, args.replay_batch)
    configure_logging(json=True, level=logging.WARNING)

    run = uuid.uuid4().hex[:8]
    large_schema, small_schema = f"bench_audit_{run}_l", f"bench_audit_{run}_s"
    postgres = PostgresMeter(args.store, APP_NAME)
    postgres.start()
    meter = Meter(postgres)
    summary: dict[str, Any] = {
        "git": git_state(),
        "machine": {
            "nproc": os.cpu_count(),
            "python": platform.python_version(),
            "kernel": platform.release(),
        },
        "args": {k: v for k, v in vars(args).items() if k != "replay_child"},
        "loadavg_before": loadavg(),
        "started_at": datetime.now(UTC).isoformat(),
    }
    try:
        log(f"loading {args.events:,} events into {large_schema}")
        summary["large"] = load(
            args.store, large_schema, args.events, args.save_batch, meter, args.live_batch
        )
        log(f"loading {args.events // 10:,} events into {small_schema}")
        summary["small"] = load(
            args.store, small_schema, args.events // 10, args.save_batch, meter, args.live_batch
        )
        reads = raw_reads(args.store, large_schema, meter)
        log("raw read done; replaying the large store")
        replays = {"large": replay(args.store, large_schema, meter, args.replay_batch)}
        log(f"large replay: {replays['large']['events_per_s']:,.0f} ev/s; replaying the small one")
        replays["small"] = replay(args.store, small_schema, meter, args.replay_batch)
        if args.replay_batch_also:
            log(f"replaying the large store with batches of {args.replay_batch_also:,}")
            replays["large_other_batch"] = replay(
                args.store, large_schema, meter, args.replay_batch_also
            )
        reads += raw_reads(args.store, large_schema, meter)
        log("folding the large store's log in memory (the projections' own ceiling)")
        summary["fold_in_memory"] = fold_ceiling(args.store, large_schema, meter)
        if args.profile:
            log(f"profiling the large replay into {args.profile}")
            replays["profiled"] = replay(
                args.store, large_schema, meter, args.replay_batch, args.profile
            )
        summary["raw_read"] = {
            "select": {
                "events_per_s": round(statistics.median(r[0]["events_per_s"] for r in reads), 1),
                "runs": [r[0] for r in reads],
            },
            "select_decode": {
                "events_per_s": round(statistics.median(r[1]["events_per_s"] for r in reads), 1),
                "runs": [r[1] for r in reads],
            },
        }
        summary["replay"] = replays
        if args.big_task:
            # Added after the replays: its one large ledger document would otherwise sit
            # in the large store only and blur the memory comparison of the two stores.
            log(f"adding a task with {args.big_task:,} events; state?at= latency")
            big = add_big_task(args.store, large_schema, args.big_task, args.save_batch)
            summary["state_at"] = state_latency(args.store, large_schema, big, args.instants)
        if args.sealing_commands:
            log("sealing cost (bench/sealing.py)")
            summary["sealing"] = sealing(args.store, args.sealing_commands, args.sealing_rounds)
    finally:
        postgres.stop()
        if not args.keep:
            drop_schema(args.store, large_schema)
            drop_schema(args.store, small_schema)
    raw = summary["raw_read"]
    rl, rs = summary["replay"]["large"], summary["replay"]["small"]
    summary["ratios"] = {
        "replay_vs_select": round(rl["events_per_s"] / raw["select"]["events_per_s"], 4),
        "replay_vs_select_decode": round(
            rl["events_per_s"] / raw["select_decode"]["events_per_s"], 4
        ),
        "peak_rss_large_vs_small": round(rl["peak_rss_mib"] / rs["peak_rss_mib"], 3),
        "growth_large_vs_small_mib": round(rl["growth_mib"] - rs["growth_mib"], 1),
    }
    if "state_at" in summary:
        st = summary["state_at"]
        summary["ratios"]["state_at_vs_plain_get"] = round(
            st["state_at_with_snapshots"]["p50_ms"] / st["repository_get_no_snapshots"]["p50_ms"],
            4,
        )
    summary["loadavg_after"] = loadavg()
    summary["finished_at"] = datetime.now(UTC).isoformat()
    report(summary)
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    print(json.dumps(summary["ratios"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
