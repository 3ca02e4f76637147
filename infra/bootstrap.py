"""The one wiring module: settings in, a running ``System`` out.

Entry points (API, workers, CLI) and tests all build the system here, choosing only
the settings and the clock.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import psycopg
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore
from psycopg import sql

from infra.application import TiaokuaiApplication
from infra.clock import Clock, SystemClock
from infra.envelopes import topic_names
from infra.kafka.state import BusState
from infra.projector import InProcessProjector, ProjectionFailed
from infra.settings import Settings
from infra.tokens import TokenStore
from infra.view_store import (
    LiveViewStore,
    PostgresViewRecorder,
    SQLiteViewRecorder,
    ViewRecorder,
    applied_view,
)
from projections.base import Projection
from projections.registry import build_projections


@dataclass
class System:
    """Everything a process of Tiaokuai uses, built once."""

    settings: Settings
    clock: Clock
    app: TiaokuaiApplication
    view_recorder: ViewRecorder
    views: LiveViewStore
    projector: InProcessProjector
    tokens: TokenStore
    projections: list[Projection] = field(default_factory=list)
    bus_state: BusState | None = None

    @property
    def tz(self) -> ZoneInfo:
        return self.settings.tz

    def catch_up(self) -> int:
        """Bring the in-process views up to the store's head."""
        return self.projector.catch_up()

    def wait_for(self, position: int, projections: Sequence[str], timeout: float) -> bool:
        """Wait until the named projections have applied the event at ``position``.

        In-process, the views are simply caught up. With a bus, the event's aggregate
        and version are looked up in the store and each projection's applied version
        of that aggregate is polled, for at most ``timeout`` seconds.
        """
        if self.settings.bus is None:
            self.catch_up()
            # A projection stopped by a poison event never reaches it: not fresh.
            return not any(name in self.projector.failures for name in projections)
        found = self.app.event_at(position)
        if found is None:
            return False
        aggregate_id, version, topic = found
        aggregate_type, _ = topic_names(topic)
        deadline = time.monotonic() + timeout
        # A projection that does not take the event's aggregate type shows it as it is:
        # it records nothing for that aggregate to wait for.
        by_name = {p.name: p for p in self.projections}
        pending = [n for n in projections if n not in by_name or by_name[n].takes(aggregate_type)]
        # Short first (a worker often has it already), then backing off: a read waiting
        # on a slow view must not keep the database busy for the others.
        pause = 0.002
        while pending:
            pending = [
                name
                for name in pending
                if int((self.views.get(applied_view(name), aggregate_id) or {}).get("version", 0))
                < version
            ]
            if not pending:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 1.5, 0.025)
        return True

    def close(self) -> None:
        self.projector.stop()
        self.tokens.close()
        self.app.close()


def _ddl_lock_key(schema: str) -> int:
    digest = hashlib.sha256(f"tiaokuai.ddl:{schema}".encode()).digest()[:8]
    return int.from_bytes(digest, "big", signed=True)


@contextlib.contextmanager
def _schema_lock(settings: Settings) -> Iterator[None]:
    """Serialise the start-up DDL of every process sharing one PostgreSQL schema.

    eventsourcing, the view store, the seals and the bus tables all run ``CREATE ...
    IF NOT EXISTS`` as a process starts. Two processes doing so at once can collide in
    the catalogue ("tuple concurrently updated"), so the API and the workers of one
    deployment, started together, take turns here. The schema itself is created under
    the same lock.
    """
    if settings.store is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        yield
        return
    schema = settings.store_schema or "public"
    with psycopg.connect(settings.store, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_ddl_lock_key(schema),))
        try:
            if settings.store_schema:
                conn.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {0}").format(
                        sql.Identifier(settings.store_schema)
                    )
                )
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_ddl_lock_key(schema),))


def bootstrap(settings: Settings | None = None, *, clock: Clock | None = None) -> System:
    """Build the application, views, projector and token store for these settings."""
    settings = settings or Settings()
    clock = clock or SystemClock()
    with _schema_lock(settings):
        return _build(settings, clock)


def _build(settings: Settings, clock: Clock) -> System:
    app = TiaokuaiApplication(env=settings.eventsourcing_env(), clock=clock)
    app.snapshotting_intervals = {  # type: ignore[misc]
        cls: settings.snapshot_interval for cls in TiaokuaiApplication.snapshotting_intervals
    }
    datastore = app.factory.datastore  # type: ignore[attr-defined]
    recorder: ViewRecorder
    if isinstance(datastore, PostgresDatastore):
        recorder = PostgresViewRecorder(datastore)
    else:
        assert isinstance(datastore, SQLiteDatastore)
        recorder = SQLiteViewRecorder(datastore)
    recorder.create_table()  # type: ignore[attr-defined]
    bus_state: BusState | None = None
    if settings.bus is not None and isinstance(datastore, PostgresDatastore):
        bus_state = BusState(datastore)
        bus_state.create_tables()
    projections = build_projections(settings.tz)
    projector = InProcessProjector(
        recorder=app.recorder, mapper=app.envelope_mapper, views=recorder, projections=projections
    )
    system = System(
        settings=settings,
        clock=clock,
        app=app,
        view_recorder=recorder,
        views=LiveViewStore(recorder),
        projector=projector,
        tokens=TokenStore(datastore, cache_seconds=settings.token_cache_seconds),
        projections=projections,
        bus_state=bus_state,
    )
    app.erased_listeners.append(system.tokens.forget)
    if settings.bus is None:
        # No bus: the views run in this process and every write catches them up
        # before it returns (read-your-writes for the caller).
        app.saved_listeners.append(lambda _position: _catch_up_after_write(projector))
    return system


def _catch_up_after_write(projector: InProcessProjector) -> None:
    # The write is stored; a projection failure is logged with its position and the
    # views stay behind until the projection is fixed. The command itself succeeded.
    with contextlib.suppress(ProjectionFailed):
        projector.catch_up()
