"""All settings in one pydantic-settings class (environment prefix ``TIAOKUAI_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where the store is, which bus, which port, which time zone."""

    model_config = SettingsConfigDict(env_prefix="TIAOKUAI_", extra="ignore")

    mode: Literal["development", "production"] = "development"
    data_dir: Path = Path("var")
    store: str | None = Field(
        default=None,
        description="postgresql://user@host:port/dbname; empty means SQLite in data_dir",
    )
    store_schema: str | None = Field(default=None, description="PostgreSQL schema to use")
    bus: str | None = Field(default=None, description="kafka://host:port; empty means in-process")
    host: str = "127.0.0.1"
    port: int = 8000
    timezone: str = "Asia/Shanghai"
    deadline_check_seconds: float = 30.0
    projection_poll_seconds: float = 0.5
    snapshot_interval: int = 50
    log_json: bool | None = None
    store_pool_size: int = Field(default=5, ge=1, description="PostgreSQL connections kept")
    store_max_overflow: int = Field(default=10, ge=0, description="extra connections at peaks")
    task_cache_size: int = Field(
        default=2000,
        ge=0,
        description="supervised tasks kept in memory between commands, brought up to date "
        "with one query each time (0: load every task from the store)",
    )
    token_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        description="how long a resolved token is remembered; a revocation by another "
        "process takes effect within this bound (0: look every token up)",
    )
    read_wait_seconds: float = Field(
        default=5.0, description="how long GET /views?after= waits for the views"
    )
    kafka_topic: str = "tiaokuai.events"
    kafka_partitions: int = Field(default=6, ge=1)
    kafka_replication: int = Field(default=1, ge=1)
    kafka_session_timeout_ms: int = 6000
    kafka_max_poll_interval_ms: int = Field(
        default=30000,
        description="also the rebalance timeout: how long a rebalance waits for members",
    )
    kafka_fetch_max_wait_ms: int = Field(
        default=20,
        ge=1,
        description="how long a consumer's fetch may wait for data. Tansu answers only when "
        "the wait runs out, so it is the floor of view freshness there; the idle projection "
        "host costs ~0.12 cores (with the broker's share) at 20 ms, ~0.18 at 10, ~0.07 at 40. "
        "Apache Kafka answers a waiting fetch as data arrives: raise it there (500)",
    )
    relay_batch: int = Field(default=1000, ge=1)
    relay_idle_seconds: float = 0.02
    worker_linger_ms: float = Field(
        default=5.0,
        ge=0,
        description="after a poll that brought a small batch, how long a projection worker "
        "waits before it polls again, so that a trickle of events is applied in fewer, "
        "larger transactions (each poll costs a fetch and a database transaction); 25 ms "
        "helped while the API was the bottleneck at 100 commands/s, 5 ms once it was not "
        "(0: poll at once)",
    )
    worker_kept_documents: int = Field(
        default=100_000,
        ge=0,
        description="how many view documents a projection host keeps in memory between "
        "its view transactions, so that a poll reads from PostgreSQL only the documents "
        "it has not seen (a few hundred bytes to a few kilobytes each; 0: read every "
        "poll's documents afresh)",
    )
    gc_young_threshold: int = Field(
        default=50_000,
        ge=0,
        description="allocations between collections of Python's youngest generation in "
        "the long-running processes (serve, relay, workers; Python's default is 700, at "
        "which the projection host spent 13 % of its time collecting). 0 keeps Python's",
    )
    heartbeat_seconds: float = 2.0
    shutdown_grace_seconds: float = Field(
        default=10.0,
        description="on SIGTERM, how long the server lets requests in flight finish",
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {value!r}") from error
        return value

    @field_validator("store")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if urlparse(value).scheme not in ("postgresql", "postgres"):
            raise ValueError("store must be a postgresql:// URL (or empty for SQLite)")
        return value

    @field_validator("bus")
    @classmethod
    def _kafka_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        parsed = urlparse(value)
        if parsed.scheme != "kafka" or not parsed.netloc:
            raise ValueError("bus must be kafka://host:port[,host:port] (or empty)")
        return value

    @model_validator(mode="after")
    def _production_needs_postgres(self) -> Settings:
        if self.mode == "production" and self.store is None:
            raise ValueError("production mode needs TIAOKUAI_STORE=postgresql://...")
        if self.bus is not None and self.store is None:
            raise ValueError("a Kafka bus needs the PostgreSQL store (--store postgresql://...)")
        return self

    @property
    def kafka_bootstrap(self) -> list[str]:
        """The broker addresses of ``bus``."""
        if self.bus is None:
            return []
        return [part for part in urlparse(self.bus).netloc.split(",") if part]

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def is_embedded(self) -> bool:
        return self.store is None

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "tiaokuai.sqlite"

    def eventsourcing_env(self) -> dict[str, str]:
        """The environment eventsourcing's infrastructure factory reads."""
        env = {
            "CREATE_TABLE": "y",
            "IS_SNAPSHOTTING_ENABLED": "y",
            "AGGREGATE_CACHE_MAXSIZE": str(self.task_cache_size),
        }
        if self.store is None:
            env["PERSISTENCE_MODULE"] = "eventsourcing.sqlite"
            # Seals each event into the hash chain inside the transaction that stores it.
            env["APPLICATION_RECORDER_TOPIC"] = "infra.integrity:SealingSQLiteApplicationRecorder"
            env["SQLITE_DBNAME"] = str(self.sqlite_path)
            env["SQLITE_LOCK_TIMEOUT"] = "10"
            return env
        url = urlparse(self.store)
        env.update(
            {
                "PERSISTENCE_MODULE": "eventsourcing.postgres",
                "APPLICATION_RECORDER_TOPIC": "infra.integrity:SealingPostgresApplicationRecorder",
                "POSTGRES_DBNAME": (url.path or "/postgres").lstrip("/") or "postgres",
                "POSTGRES_HOST": url.hostname or "127.0.0.1",
                "POSTGRES_PORT": str(url.port or 5432),
                "POSTGRES_USER": unquote(url.username or "postgres"),
                "POSTGRES_PASSWORD": unquote(url.password or ""),
                "POSTGRES_POOL_SIZE": str(self.store_pool_size),
                "POSTGRES_MAX_OVERFLOW": str(self.store_max_overflow),
                "POSTGRES_LOCK_TIMEOUT": "5",
            }
        )
        if self.store_schema:
            env["POSTGRES_SCHEMA"] = self.store_schema
        return env
