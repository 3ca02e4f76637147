"""Processes of one deployment starting at once on a fresh PostgreSQL schema."""

from __future__ import annotations

import multiprocessing
from uuid import uuid4

import pytest

from infra.bootstrap import bootstrap
from infra.settings import Settings
from tests.conftest import POSTGRES_URL, drop_schema

pytestmark = pytest.mark.postgres


def _start(schema: str, bus: bool, barrier: multiprocessing.synchronize.Barrier) -> None:
    settings = Settings(
        store=POSTGRES_URL, store_schema=schema, bus="kafka://127.0.0.1:9" if bus else None
    )
    barrier.wait(timeout=30)
    system = bootstrap(settings)
    system.close()


def test_processes_bootstrapping_together_all_start() -> None:
    """The API and every worker create their tables at once: none of them fails.

    Without the start-up lock, concurrent ``CREATE ... IF NOT EXISTS`` in one schema
    collide in the catalogue ("tuple concurrently updated", or a duplicate key in
    pg_type) and a process dies as it starts.
    """
    context = multiprocessing.get_context("spawn")
    for _attempt in range(3):
        schema = f"t_{uuid4().hex[:12]}"
        barrier = context.Barrier(6)
        processes = [
            context.Process(target=_start, args=(schema, n % 2 == 0, barrier)) for n in range(6)
        ]
        try:
            for process in processes:
                process.start()
            for process in processes:
                process.join(timeout=60)
            assert [p.exitcode for p in processes] == [0] * 6
        finally:
            for process in processes:
                if process.is_alive():
                    process.kill()
            drop_schema(schema)
