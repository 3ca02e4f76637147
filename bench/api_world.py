"""The world the API benchmarks serve: a fresh schema with units, tasks and a token.

Shared by ``bench.api_profile``, ``bench.api_inprocess`` and ``bench.api_instructions``:
a production-mode system over PostgreSQL pointed at a closed broker port (commands are
stored, nothing is relayed), an empty schema beside it for the bare route, both dropped
on leaving.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

from bench.pipeline import DEPARTMENTS, TOWNS, _secretariat, issue_task, task_units
from bench.support import free_port


@dataclass
class ApiWorld:
    """What a benchmark of the API needs to start its servers and send commands."""

    store: str
    schema: str
    bare_schema: str
    dead_bus: str
    system: Any
    tasks: list[UUID]
    token: str
    """A secretariat's bearer token."""

    def request(self, server: str) -> Callable[[int], tuple[str, dict[str, Any]]]:
        """The ``n``-th request (path, JSON body) each server is sent: ``bare`` or ``api``."""
        if server == "bare":
            return lambda n: ("/things", {"note": f"第 {n} 次"})
        tasks = self.tasks
        return lambda n: (f"/tasks/{tasks[n % len(tasks)]}/urge", {"note": f"第 {n} 次催办"})

    def headers(self, server: str) -> dict[str, str]:
        return {} if server == "bare" else {"Authorization": f"Bearer {self.token}"}

    def server_env(self, **extra: str) -> dict[str, str]:
        """The environment both servers run in: this world's store, a closed broker port."""
        return {
            **os.environ,
            "TIAOKUAI_STORE": self.store,
            "TIAOKUAI_STORE_SCHEMA": self.schema,
            "TIAOKUAI_BUS": self.dead_bus,
            "TIAOKUAI_LOG_JSON": "true",
            **extra,
        }

    def server_argv(self, server: str, port: int) -> tuple[list[str], str]:
        """The command that serves ``bare`` or ``api`` on ``port``, and its readiness path."""
        if server == "bare":
            argv = [sys.executable, "-m", "bench.pipeline", "--serve-bare", str(port)]
            return [*argv, "--store", self.store, "--bare-schema", self.bare_schema], "/ping"
        cli = str(Path(sys.executable).parent / "tiaokuai")
        argv = [cli, "serve", "--store", self.store, "--bus", self.dead_bus]
        return [*argv, "--port", str(port)], "/health"


@contextmanager
def api_world(store: str, tasks: int, prefix: str) -> Iterator[ApiWorld]:
    """Seed a fresh schema (12 departments, 7 towns, ``tasks`` tasks); drop it afterwards."""
    from domain.actor import Role
    from domain.units import UnitKind
    from infra.bootstrap import bootstrap
    from infra.settings import Settings

    schema = f"{prefix}_{uuid.uuid4().hex[:8]}"
    bare_schema = f"{schema}_bare"
    dead_bus = f"kafka://127.0.0.1:{free_port()}"
    with psycopg.connect(store, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {0}").format(sql.Identifier(bare_schema)))
    system = bootstrap(Settings(store=store, store_schema=schema, bus=dead_bus))
    try:
        sec = _secretariat()
        for slug in DEPARTMENTS:
            system.app.register_unit(slug=slug, name=slug, kind=UnitKind.DEPARTMENT, actor=sec)
        for slug in TOWNS:
            system.app.register_unit(slug=slug, name=slug, kind=UnitKind.TOWN, actor=sec)
        task_ids = []
        for t in range(tasks):
            lead, co, town = task_units(t)
            task_ids.append(issue_task(system.app, t, lead=lead, co=[co], towns=[town]).task_id)
        _principal, token = system.tokens.issue(role=Role.SECRETARIAT, unit=None, name="bench")
        yield ApiWorld(store, schema, bare_schema, dead_bus, system, task_ids, token)
    finally:
        system.close()
        with psycopg.connect(store, autocommit=True) as conn:
            for s in (schema, bare_schema):
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {0} CASCADE").format(sql.Identifier(s)))
