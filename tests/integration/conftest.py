"""Fixtures and helpers of the Kafka-path tests: a real Tansu broker and the real PostgreSQL.

Every test gets its own broker (in memory, on a free port), its own PostgreSQL schema
and its own topic. ``KafkaBed`` builds systems for those settings, runs the relay and
projection workers in threads or as ``tiaokuai worker`` processes, and stops everything
it started when the test ends. ``Writers`` drive tasks, a responsibility chain and an
industry party committee through their life by calling the application services from
several threads. The checks compare what the workers built with the store:

* every projection's applied version of every aggregate equals the aggregate's version
  in the store (nothing lost, nothing applied beyond the store);
* ``drift`` at the store head is empty (the live views equal an in-memory rebuild from
  the store by the same projection code, so nothing was applied twice either);
* counters of the task, ledger and linkage views equal figures computed from the
  aggregates themselves (a check that does not trust the projection code).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from eventsourcing.postgres import PostgresDatastore
from psycopg import sql

from domain.actor import Actor, Role
from domain.chains import LinkRole
from domain.ids import INDUSTRIES
from domain.tasks import TaskState
from domain.units import UnitKind
from infra.application import Written
from infra.bootstrap import System, bootstrap
from infra.clock import ManualClock
from infra.envelopes import topic_names
from infra.kafka import clients
from infra.kafka.state import BusState
from infra.observability import status
from infra.rebuild import Drift, drift
from infra.settings import Settings
from infra.view_store import applied_view
from projections.ledger import TASKS_VIEW as LEDGER_TASKS
from projections.linkage import CELLS_VIEW as LINKAGE_CELLS
from projections.registry import build_projections
from projections.tasks import TASKS_VIEW
from tests.conftest import POSTGRES_URL, START
from tests.integration.broker import Tansu, die_with_parent
from workers.projection_host import ProjectionHost
from workers.projection_worker import ProjectionWorker
from workers.relay import Relay

PROJECTIONS: tuple[str, ...] = tuple(p.name for p in build_projections())
DEPARTMENTS: tuple[str, ...] = (
    "postal",
    "commerce",
    "market-supervision",
    "transport",
    "cyberspace",
)
TOWNS: tuple[str, ...] = ("town-chengguan", "town-xinqiao", "town-dongcheng")
SEC = Actor("secretariat:kafka-tests", Role.SECRETARIAT)
CATCH_UP_SECONDS = 120.0
"""The longest any test waits for the views; normally they are there in seconds."""


def liaison(unit: str) -> Actor:
    return Actor(f"liaison:{unit}", Role.LIAISON, unit)


def tiaokuai_command() -> str:
    """The ``tiaokuai`` entry point of this venv (the package is installed editable)."""
    path = Path(sys.executable).parent / "tiaokuai"
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"{path} is missing: pip install -e '.[dev]'")
    return str(path)


# --------------------------------------------------------------------- threads
class Runner:
    """A relay or projection worker running in a thread of the test process."""

    def __init__(self, name: str, run: Callable[[], None], stop: Callable[[], None]) -> None:
        self.name = name
        self._run = run
        self._stop = stop
        self.stopping = False
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, name=name, daemon=True)

    def _main(self) -> None:
        try:
            self._run()
        except BaseException as error:  # reported by check() in the test's thread
            self.error = error

    def start(self) -> None:
        self.thread.start()

    def check(self) -> None:
        """Fail if the thread died (a projection error, a crash), with its cause."""
        if self.error is not None:
            raise AssertionError(f"{self.name} failed: {self.error!r}") from self.error
        if not self.stopping and self.thread.ident is not None and not self.thread.is_alive():
            raise AssertionError(f"{self.name} stopped on its own")

    def signal_stop(self) -> None:
        self.stopping = True
        self._stop()

    def stop(self, timeout: float = 20.0) -> None:
        """Stop and join; fails if the thread does not end or ended with an error."""
        self.signal_stop()
        if self.thread.ident is not None:
            self.thread.join(timeout)
        if self.thread.is_alive():
            raise AssertionError(f"{self.name} did not stop within {timeout:g} s")
        if self.error is not None:
            raise AssertionError(f"{self.name} failed: {self.error!r}") from self.error


class RelayRunner(Runner):
    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        super().__init__("relay", relay.run, relay.stop)


class WorkerRunner(Runner):
    def __init__(self, worker: ProjectionWorker) -> None:
        self.worker = worker
        super().__init__(worker.name, worker.run, worker.stop)

    def assignment(self) -> list[int]:
        """The partitions the worker's consumer holds right now (empty between joins)."""
        consumer = self.worker.consumer
        if consumer is None:
            return []
        try:
            return sorted(tp.partition for tp in (consumer.assignment() or ()))
        except Exception:  # the consumer may be closing or rejoining under us
            return []


class HostRunner(Runner):
    def __init__(self, host: ProjectionHost, name: str) -> None:
        self.host = host
        super().__init__(name, host.run, host.stop)


def stop_all(*stoppables: Runner | CliProcess | Writers | None) -> None:
    """Stop every one of them (threads, processes, writers), then report the first failure."""
    failures: list[AssertionError] = []
    for item in stoppables:
        if item is None:
            continue
        try:
            item.stop()
        except AssertionError as error:
            failures.append(error)
    if failures:
        raise failures[0]


# ------------------------------------------------------------------- processes
class CliProcess:
    """``tiaokuai worker relay|project`` as a real process, logging to a file."""

    def __init__(self, label: str, args: Sequence[str], env: dict[str, str], log: Path) -> None:
        self.label = label
        self.command = [tiaokuai_command(), *args]
        self.args = [*die_with_parent(), *self.command]
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    def start(self) -> CliProcess:
        with self.log.open("ab") as log:
            log.write(f"==== start {' '.join(self.command[1:3])} at {time.time():.3f}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                self.args,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.started_at = time.monotonic()
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 80) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def check(self) -> None:
        """Fail if the process exited on its own (a killed or stopped one is forgotten)."""
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(
                f"{self.label} (pid {self.pid}) exited with {self.process.returncode}:\n"
                f"{self.log_tail()}"
            )

    def kill(self) -> None:
        """SIGKILL: no clean-up at all, as if the machine lost the process."""
        process, self.process = self.process, None
        assert process is not None, f"{self.label} is not running"
        assert process.poll() is None, f"{self.label} died before the kill:\n{self.log_tail()}"
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=10) == -signal.SIGKILL

    def terminate(self, timeout: float = 30.0) -> tuple[int | None, float]:
        """SIGTERM (how supervisors stop it); its exit code (None: killed) and seconds taken."""
        process, self.process = self.process, None
        assert process is not None, f"{self.label} is not running"
        assert process.poll() is None, f"{self.label} died before SIGTERM:\n{self.log_tail()}"
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        try:
            code: int | None = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
            code = None
        return code, time.monotonic() - started

    def stop(self, timeout: float = 20.0) -> int | None:
        """Ctrl-C (the CLI's clean stop), then SIGKILL; the exit code of the clean stop."""
        process, self.process = self.process, None
        if process is None:
            return None
        if process.poll() is not None:
            return process.returncode
        process.send_signal(signal.SIGINT)
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            # Where it hangs, into the log that the failing assertion shows.
            process.send_signal(signal.SIGUSR1)
            time.sleep(1.0)
            process.kill()
            process.wait(timeout=10)
            return None


# --------------------------------------------------------------------- the bed
class KafkaBed:
    """One test's world: broker, schema, topic; everything started here is stopped here."""

    def __init__(self, tansu: Tansu, work_dir: Path) -> None:
        self.tansu = tansu
        self.work_dir = work_dir
        tag = uuid4().hex[:12]
        self.schema = f"k_{tag}"
        self.topic = f"tiaokuai.test.{tag}"
        self.clock = ManualClock(START)
        self.systems: list[System] = []
        self.runners: list[Runner] = []
        self.processes: list[CliProcess] = []
        self.settings = self.make_settings()
        # Create the topic first: Tansu would auto-create a missing one with 4 partitions.
        assert clients.ensure_topic(self.settings), f"topic {self.topic} existed already"

    def make_settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "store": POSTGRES_URL,
            "store_schema": self.schema,
            "bus": self.tansu.url,
            "kafka_topic": self.topic,
            "kafka_partitions": 6,
            "heartbeat_seconds": 0.2,
            "read_wait_seconds": 30.0,
            # Few connections kept per system: the PostgreSQL is shared (max_connections).
            "store_pool_size": 1,
            "store_max_overflow": 9,
            "data_dir": self.work_dir / "data",
        }
        values.update(overrides)
        return Settings(**values)

    def system(self) -> System:
        """A system of its own (its own connection pool), as a separate process has."""
        built = bootstrap(self.settings, clock=self.clock)
        self.systems.append(built)
        return built

    def bus_state(self, system: System) -> BusState:
        datastore = system.app.factory.datastore  # type: ignore[attr-defined]
        assert isinstance(datastore, PostgresDatastore)
        state = BusState(datastore)
        state.create_tables()
        return state

    # ------------------------------------------------------------ threads
    def relay_thread(self, system: System) -> RelayRunner:
        runner = RelayRunner(Relay(system))
        self.runners.append(runner)
        runner.start()
        return runner

    def worker_thread(
        self, system: System, projection: str, *, name: str | None = None
    ) -> WorkerRunner:
        by_name = {p.name: p for p in system.projections}
        worker = ProjectionWorker(system, by_name[projection], name=name)
        runner = WorkerRunner(worker)
        self.runners.append(runner)
        runner.start()
        return runner

    def host_thread(self, system: System, projections: Iterable[str], name: str) -> HostRunner:
        """A projection host (what ``tiaokuai worker project`` runs) in a thread."""
        by_name = {p.name: p for p in system.projections}
        host = ProjectionHost(system, [by_name[p] for p in projections], name=name)
        runner = HostRunner(host, name)
        self.runners.append(runner)
        runner.start()
        return runner

    def worker_threads(self, system: System, projections: Iterable[str]) -> list[WorkerRunner]:
        return [self.worker_thread(system, name) for name in projections]

    # ---------------------------------------------------------- processes
    def env(self) -> dict[str, str]:
        """The environment of a worker process: schema and topic by TIAOKUAI_ variables."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("TIAOKUAI_")}
        env.update(
            {
                "TIAOKUAI_STORE_SCHEMA": self.schema,
                "TIAOKUAI_KAFKA_TOPIC": self.topic,
                "TIAOKUAI_KAFKA_PARTITIONS": str(self.settings.kafka_partitions),
                "TIAOKUAI_HEARTBEAT_SECONDS": str(self.settings.heartbeat_seconds),
                "TIAOKUAI_STORE_POOL_SIZE": "1",
                "TIAOKUAI_STORE_MAX_OVERFLOW": "9",
                "TIAOKUAI_DATA_DIR": str(self.work_dir / "data"),
                "TIAOKUAI_LOG_JSON": "true",
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    def cli(self, label: str, *args: str) -> CliProcess:
        """``tiaokuai worker <args> --store ... --bus ...`` started now."""
        process = CliProcess(
            label,
            ["worker", *args, "--store", POSTGRES_URL, "--bus", self.tansu.url],
            self.env(),
            self.work_dir / f"{label}.log",
        )
        self.processes.append(process)
        return process.start()

    def check_alive(self) -> None:
        """Fail at once if a worker thread or process died on its own."""
        for runner in self.runners:
            runner.check()
        for process in self.processes:
            process.check()

    # --------------------------------------------------------------- end
    def close(self) -> None:
        """Stop every process and thread started here, close the systems, drop the schema."""
        problems: list[str] = []
        for process in self.processes:
            process.stop()
        for runner in self.runners:
            runner.signal_stop()
        for runner in self.runners:
            try:
                runner.stop()
            except AssertionError as error:
                problems.append(str(error))
        for built in self.systems:
            built.close()
        drop_schema_bounded(self.schema)
        if problems:
            raise AssertionError("; ".join(problems))


def drop_schema_bounded(schema: str, lock_timeout: str = "30s", attempts: int = 5) -> None:
    """Drop the test's schema, failing (not hanging) if something still holds its locks.

    Retried a few times: the PostgreSQL is shared and may briefly refuse connections.
    """
    for attempt in range(attempts):
        try:
            with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as conn:
                conn.execute(sql.SQL("SET lock_timeout = {0}").format(sql.Literal(lock_timeout)))
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {0} CASCADE").format(sql.Identifier(schema))
                )
            return
        except psycopg.OperationalError:
            if attempt == attempts - 1:
                raise
            time.sleep(2.0)


@pytest.fixture(scope="session")
def postgres() -> str:
    """The PostgreSQL of the tests; a test fails (never skips) when it is not there."""
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as error:
        raise RuntimeError(f"PostgreSQL at {POSTGRES_URL} is not available: {error}") from error
    return POSTGRES_URL


@pytest.fixture
def tansu(tmp_path: Path) -> Iterator[Tansu]:
    """A fresh in-memory Tansu broker on a free loopback port, for this test only."""
    broker = Tansu(tmp_path / "tansu").start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def bed(postgres: str, tansu: Tansu, tmp_path: Path) -> Iterator[KafkaBed]:
    made = KafkaBed(tansu, tmp_path)
    try:
        yield made
    finally:
        made.close()


# ---------------------------------------------------------------------- checks
def store_versions(system: System) -> dict[str, tuple[str, int]]:
    """Every aggregate's type and version in the store, read from the notification log."""
    versions: dict[str, tuple[str, int]] = {}
    position = 0
    while True:
        notifications = system.app.recorder.select_notifications(start=position + 1, limit=5000)
        if not notifications:
            return versions
        for n in notifications:
            key = str(n.originator_id)
            kind = topic_names(n.topic)[0]
            versions[key] = (kind, max(versions.get(key, (kind, 0))[1], n.originator_version))
        position = notifications[-1].id


def applied_versions(system: System, projection: str) -> dict[str, int]:
    """The last version of each aggregate the projection applied (``applied:<name>``)."""
    return {key: int(doc["version"]) for key, doc in system.views.scan(applied_view(projection))}


def behind(
    system: System,
    projections: Iterable[str],
    versions: dict[str, tuple[str, int]] | None = None,
) -> dict[str, dict[str, tuple[int, int]]]:
    """Per projection, the aggregates whose applied version differs: (applied, stored)."""
    every = store_versions(system) if versions is None else versions
    by_name = {p.name: p for p in system.projections}
    result: dict[str, dict[str, tuple[int, int]]] = {}
    for name in projections:
        applied = applied_versions(system, name)
        # Only the aggregates of the types it takes: it records no others.
        taken = {k: v for k, (kind, v) in every.items() if by_name[name].takes(kind)}
        off = {
            key: (applied.get(key, 0), taken.get(key, 0))
            for key in taken.keys() | applied.keys()
            if applied.get(key, 0) != taken.get(key, 0)
        }
        if off:
            result[name] = off
    return result


def wait_caught_up(
    bed: KafkaBed,
    system: System,
    projections: Iterable[str] = PROJECTIONS,
    *,
    timeout: float = CATCH_UP_SECONDS,
) -> float:
    """Wait until each projection applied exactly the store's version of every aggregate
    of the types it takes, and consumed up to the store's head (lag 0 in ``/health``).

    Returns the seconds it took; fails with the laggards when ``timeout`` passes, and at
    once when a worker died.
    """
    names = list(projections)
    started = time.monotonic()
    deadline = started + timeout
    head, versions = -1, dict[str, tuple[str, int]]()
    while True:
        bed.check_alive()
        if system.app.head() != head:
            head = system.app.head()
            versions = store_versions(system)
        off = behind(system, names, versions)
        # A projection that takes none of the latest events records nothing for them:
        # only its position shows it has consumed them.
        lagging = {
            name: p["lag"] for name, p in status(system)["projections"].items() if name in names
        }
        lagging = {name: lag for name, lag in lagging.items() if lag}
        if not off and not lagging:
            return time.monotonic() - started
        if time.monotonic() >= deadline:
            summary = {name: (len(keys), sorted(keys.items())[:3]) for name, keys in off.items()}
            raise AssertionError(
                f"the views did not catch up within {timeout:g} s: {summary}; lag: {lagging}"
            )
        time.sleep(0.2)


def describe(found: Sequence[Drift]) -> str:
    return "; ".join(f"{d.view}/{d.key}: live={d.live} rebuilt={d.rebuilt}" for d in found[:5])


def assert_no_drift(system: System) -> None:
    """The live views equal a from-scratch rebuild of the store (same projection code)."""
    found = list(drift(system, upto=system.app.head()))
    assert found == [], f"{len(found)} documents drifted: {describe(found)}"


def assert_exactly_once(bed: KafkaBed, system: System) -> None:
    """Caught up, applied versions equal the store's, no drift at head."""
    wait_caught_up(bed, system)
    assert behind(system, PROJECTIONS) == {}
    assert_no_drift(system)


def assert_counts_match_aggregates(system: System, task_ids: Iterable[UUID]) -> None:
    """Views against the aggregates themselves: an event applied twice would show here."""
    joint: Counter[str] = Counter()
    open_: Counter[str] = Counter()
    for task_id in task_ids:
        task = system.app.task(task_id)
        doc = system.views.get(TASKS_VIEW, str(task_id))
        assert doc is not None, f"task {task_id} is missing from the task list"
        assert (doc["state"], doc["version"], doc["urge_count"], doc["lead_unit"]) == (
            task.state.value,
            task.version,
            task.urge_count,
            task.lead_unit,
        ), task_id
        ledger = system.views.get(LEDGER_TASKS, str(task_id))
        assert ledger is not None and len(ledger["urges"]) == task.urge_count, task_id
        for unit in [task.lead_unit, *task.co_units]:
            for town in task.towns:
                joint[f"{unit}/{town}"] += 1
                open_[f"{unit}/{town}"] += int(task.state != TaskState.VERIFIED)
    cells = dict(system.views.scan(LINKAGE_CELLS))
    assert {key: cell["joint"] for key, cell in cells.items()} == dict(joint)
    assert {key: cell["open"] for key, cell in cells.items() if cell["open"]} == {
        key: n for key, n in open_.items() if n
    }


# --------------------------------------------------------------------- writers
class TaskPlan:
    """One task and the commands still to run on it, each valid when its turn comes."""

    def __init__(self, task_id: UUID, lead: str, deadline: datetime) -> None:
        self.task_id = task_id
        self.lead = lead
        self.deadline = deadline
        self.request_id: str | None = None
        self.steps: deque[Callable[[], Written[Any] | None]] = deque()


class Writers:
    """Writer threads calling the application services directly, as the API would.

    Each thread owns its tasks (so writes never race for one aggregate) and interleaves
    their commands at random (seeded); thread 0 also keeps a responsibility chain and an
    industry party committee busy. ``commands`` is the budget of all threads together;
    ``keep_going`` lets a test keep the stream flowing past it (until its faults ran).
    """

    def __init__(
        self,
        system: System,
        clock: ManualClock,
        *,
        seed: int,
        commands: int,
        threads: int = 4,
        keep_going: Callable[[], bool] | None = None,
    ) -> None:
        self.system = system
        self.app = system.app
        self.clock = clock
        self.seed = seed
        self.budget = commands
        self.keep_going = keep_going or (lambda: False)
        self.done = 0
        self.last_position = 0
        self.task_ids: list[UUID] = []
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._main, args=(i,), name=f"writer-{i}", daemon=True)
            for i in range(threads)
        ]
        self._committee: UUID | None = None
        self._committee_steps = 0

    # ------------------------------------------------------------ set-up
    @staticmethod
    def register_units(system: System) -> int:
        """The departments and towns of the tests, a chain; returns the last position."""
        app = system.app
        last = 0
        for slug in DEPARTMENTS:
            last = app.register_unit(
                slug=slug, name=slug, kind=UnitKind.DEPARTMENT, actor=SEC
            ).position
        for slug in TOWNS:
            last = app.register_unit(slug=slug, name=slug, kind=UnitKind.TOWN, actor=SEC).position
        app.establish_chain(industry="express", name="快递行业责任链条", actor=SEC)
        app.add_chain_link(
            industry="express",
            unit="postal",
            role=LinkRole.INDUSTRY_COMPETENT,
            responsible_person="张三",
            duties=["行业监管"],
            actor=SEC,
        )
        last = app.add_chain_link(
            industry="express",
            unit="town-chengguan",
            role=LinkRole.TERRITORIAL,
            responsible_person="李四",
            duties=["属地管理"],
            actor=SEC,
        ).position
        return last

    # ----------------------------------------------------------- running
    def start(self) -> Writers:
        for thread in self._threads:
            thread.start()
        return self

    def _take(self) -> bool:
        with self._lock:
            if self._stop.is_set():
                return False
            if self.done >= self.budget and not self.keep_going():
                return False
            self.done += 1
            return True

    def _main(self, index: int) -> None:
        rng = random.Random(self.seed * 1009 + index)
        plans: list[TaskPlan] = []
        try:
            while self._take():
                self.clock.advance(timedelta(minutes=1))
                if index == 0 and rng.random() < 0.06:
                    written: Written[Any] | None = self._committee_step(rng)
                elif len(plans) < 4 or rng.random() < 0.05:
                    plan = self._issue(rng)
                    plans.append(plan)
                    written = None
                else:
                    plan = rng.choice(plans)
                    written = plan.steps.popleft()()
                    if not plan.steps:
                        plans.remove(plan)
                if written is not None:
                    with self._lock:
                        self.last_position = max(self.last_position, written.position)
        except BaseException as error:  # surfaced by join() in the test's thread
            self.errors.append(error)

    def _issue(self, rng: random.Random) -> TaskPlan:
        app = self.app
        lead = rng.choice(DEPARTMENTS)
        co_units = rng.sample([d for d in DEPARTMENTS if d != lead], rng.randint(0, 2))
        towns = rng.sample(TOWNS, rng.randint(1, 2))
        deadline = self.clock.now() + timedelta(days=rng.choice([1, 2, 10, 30]))
        written = app.issue_task(
            title=f"任务 {rng.randrange(10**6)}",
            industry=rng.choice(INDUSTRIES[:3]),
            lead_unit=lead,
            co_units=co_units,
            towns=towns,
            deadline=deadline,
            weight=float(rng.choice([1, 2, 3])),
            meeting_id=None,
            resolution_id=None,
            actor=SEC,
        )
        with self._lock:
            self.last_position = max(self.last_position, written.position)
            self.task_ids.append(written.aggregate.id)
        plan = TaskPlan(written.aggregate.id, lead, deadline)
        tid = plan.task_id
        steps = plan.steps

        def sign(unit: str) -> Callable[[], Written[Any]]:
            return lambda: app.sign_for(task_id=tid, actor=liaison(unit))

        def progress(percent: int) -> Callable[[], Written[Any]]:
            return lambda: app.report_progress(
                task_id=tid, note=f"进度 {percent}%", percent=percent, actor=liaison(plan.lead)
            )

        def contribute(unit: str) -> Callable[[], Written[Any]]:
            return lambda: app.report_contribution(task_id=tid, note="配合", actor=liaison(unit))

        def complete() -> Written[Any]:
            return app.report_completion(task_id=tid, note="已完成", actor=liaison(plan.lead))

        def transfer(new_lead: str) -> Callable[[], Written[Any]]:
            def run() -> Written[Any]:
                written = app.transfer_lead(
                    task_id=tid, new_lead=new_lead, reason="职责调整", actor=SEC
                )
                plan.lead = new_lead
                return written

            return run

        granted = rng.random() < 0.5

        def request_extension() -> Written[Any]:
            new_deadline = max(plan.deadline, self.clock.now()) + timedelta(days=5)
            written = app.request_extension(
                task_id=tid, new_deadline=new_deadline, reason="需要协调", actor=liaison(plan.lead)
            )
            plan.request_id = written.created_id
            if granted:
                plan.deadline = new_deadline
            return written

        def decide_extension() -> Written[Any]:
            assert plan.request_id is not None
            if granted:
                return app.grant_extension(
                    task_id=tid, request_id=plan.request_id, note="同意", actor=SEC
                )
            return app.deny_extension(
                task_id=tid, request_id=plan.request_id, reason="理由不足", actor=SEC
            )

        steps.append(sign(lead))
        steps.extend(sign(unit) for unit in [*co_units, *towns])
        steps.append(progress(30))
        if co_units:
            steps.append(contribute(co_units[0]))
        steps.append(contribute(towns[0]))
        steps.append(lambda: app.urge_task(task_id=tid, note="请加快", actor=SEC))
        if rng.random() < 0.25:
            new_lead = rng.choice([d for d in DEPARTMENTS if d != lead and d not in co_units])
            steps.append(transfer(new_lead))
            steps.append(sign(new_lead))
        if rng.random() < 0.35:
            steps.append(request_extension)
            steps.append(decide_extension)
        steps.append(lambda: app.mark_overdue(task_id=tid))
        steps.append(progress(80))
        steps.append(complete)
        if rng.random() < 0.3:
            steps.append(lambda: app.return_task(task_id=tid, reason="材料不全", actor=SEC))
            steps.append(progress(90))
            steps.append(complete)
        if rng.random() < 0.85:
            steps.append(lambda: app.verify_task(task_id=tid, note="验收通过", actor=SEC))
        return plan

    def _committee_step(self, rng: random.Random) -> Written[Any]:
        app = self.app
        self._committee_steps += 1
        n = f"{self.seed}-{self._committee_steps}"  # unique across writer groups too
        choice = self._committee_steps % 4
        if self._committee is None:
            written = app.establish_committee(
                name="快递行业党委", industry="express", supervising_unit="postal", actor=SEC
            )
            self._committee = written.aggregate.id
            return written
        committee = self._committee
        if choice == 0:
            return app.admit_member(
                committee_id=committee, name=f"快递网点党支部{n}", enterprise=f"企业{n}", actor=SEC
            )
        if choice == 1:
            return app.dispatch_instructor(
                committee_id=committee,
                name=f"指导员{n}",
                enterprise=f"小微企业{n}",
                enterprise_party_members=rng.randint(0, 2),
                actor=SEC,
            )
        if choice == 2:
            enterprises = rng.randint(5, 50)
            return app.report_coverage(
                committee_id=committee,
                period=f"2026-P{n}",
                enterprises=enterprises,
                organizations_covered=rng.randint(0, enterprises),
                work_covered=rng.randint(0, enterprises),
                party_members=rng.randint(0, 100),
                workers=rng.randint(100, 1000),
                actor=SEC,
            )
        return app.hand_over_link(
            industry="express",
            link_id="L1",
            responsible_person=f"负责人{n}",
            effective_at=self.clock.now(),
            reason="岗位调整",
            actor=SEC,
        )

    def extend(self, extra: int) -> None:
        """Write ``extra`` more commands than written so far (after the faults, say)."""
        with self._lock:
            self.budget = max(self.budget, self.done + extra)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop writing; each thread ends after the command it is in."""
        self._stop.set()
        for thread in self._threads:
            if thread.ident is not None:
                thread.join(timeout)
        if self.alive():
            raise AssertionError(f"the writers did not stop within {timeout:g} s")

    def alive(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def join(self, timeout: float) -> None:
        """Wait for the budget to be written; fail on any refused command."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self.alive():
            self.stop()
            raise AssertionError(f"the writers did not finish within {timeout:g} s")
        if self.errors:
            raise AssertionError(f"{len(self.errors)} commands failed: {self.errors[:3]!r}")
