"""structlog set-up: JSON lines in production, readable lines in development."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
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


stderr_logger = structlog.WriteLoggerFactory(_CurrentStderr())  # type: ignore[arg-type]
"""structlog's ``WriteLogger`` on the stderr of the moment: one write and a flush per
line, under its lock. (``PrintLogger`` prints: two writes and a flush; every request
logs a line.) One file object, so every logger shares the lock."""


class UtcTimestamp:
    """structlog's ``TimeStamper(fmt="iso", utc=True)``, the seconds rendered once a second.

    ``2026-12-02T17:13:22.926589Z``: always six digits of the second, where
    ``isoformat`` drops them at a whole second. ``datetime.now().isoformat()`` was most
    of the stamp's cost, paid on every line.
    """

    def __init__(self) -> None:
        self._second: tuple[int, str] = (-1, "")

    def __call__(
        self, _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        now = time.time()
        second = int(now)
        cached = self._second
        if cached[0] != second:
            # One tuple, swapped whole: a thread never pairs one second with another's text.
            text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            cached = self._second = (second, text)
        event_dict["timestamp"] = f"{cached[1]}.{int((now - second) * 1_000_000):06d}Z"
        return event_dict


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
            UtcTimestamp(),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=stderr_logger,
        cache_logger_on_first_use=True,
    )


_saved_in_request: ContextVar[list[dict[str, Any]] | None] = ContextVar(
    "tiaokuai_saved_in_request", default=None
)


@contextmanager
def request_line() -> Iterator[list[dict[str, Any]]]:
    """Gather the commands saved while a request is served, for its one log line.

    A request logs one line (a canonical log line) that names what it saved, instead of
    a line per command beside the request's own: half the lines, and each line at its
    cost was a twentieth of what the API spends on a command beyond the bare save. The
    list is shared with the worker thread that runs the route (it copies the context,
    and with it this reference).
    """
    saved: list[dict[str, Any]] = []
    token = _saved_in_request.set(saved)
    try:
        yield saved
    finally:
        _saved_in_request.reset(token)


def log_saved(logger: Any, **fields: Any) -> None:
    """``command.saved``: onto the request's line when serving one, else its own line."""
    saved = _saved_in_request.get()
    if saved is None:
        logger.info("command.saved", **fields)
    else:
        saved.append(fields)
