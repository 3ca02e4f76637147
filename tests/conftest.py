"""Fixtures shared by the integration tiers: real SQLite files and the real PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import psycopg
import pytest
from psycopg import sql

from infra.bootstrap import System, bootstrap
from infra.clock import ManualClock
from infra.settings import Settings

POSTGRES_URL = os.environ.get(
    "TIAOKUAI_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
START = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # 09:00 in Asia/Shanghai


def drop_schema(schema: str) -> None:
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {0} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


SettingsFactory = Callable[[], Settings]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def make_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SettingsFactory]:
    """Settings for one fresh store per test: a SQLite file, or a PostgreSQL schema."""
    if request.param == "sqlite":
        yield lambda: Settings(data_dir=tmp_path / "data")
        return
    schema = f"t_{uuid4().hex[:12]}"
    yield lambda: Settings(store=POSTGRES_URL, store_schema=schema, data_dir=tmp_path)
    drop_schema(schema)


@pytest.fixture
def system(make_settings: SettingsFactory, clock: ManualClock) -> Iterator[System]:
    built = bootstrap(make_settings(), clock=clock)
    yield built
    built.close()
