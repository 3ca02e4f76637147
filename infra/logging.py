"""structlog set-up: JSON lines in production, readable lines in development."""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson
import structlog


class _CurrentStderr:
    """Whatever ``sys.stderr`` is when a line is written, not when logging was set up.

    A command run in-process (tests capture and then close their streams, servers
    redirect them) must not leave every later log line writing to a closed file.
    """

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _orjson_text(event: dict[str, Any], **kwargs: Any) -> str:
    # orjson writes UTF-8 as is (what ensure_ascii=False asked of json) in a fraction of
    # json.dumps's time; every request logs a line or two. ``default`` is structlog's
    # fallback for values neither knows (repr).
    return orjson.dumps(event, default=kwargs.get("default")).decode()


def configure_logging(*, json: bool, level: int = logging.INFO) -> None:
    """Configure structlog once per process; request context comes from contextvars."""
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(serializer=_orjson_text)
        if json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
