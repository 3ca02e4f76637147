"""Runs the projections in-process, from the store's notification log.

Used by the embedded default (and by PostgreSQL until a bus is configured): after each
write the caller's thread catches the views up before the response returns, and a
background thread picks up events written by other processes (CLI, demo, other servers).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import structlog
from eventsourcing.persistence import (
    ApplicationRecorder,
    IntegrityError,
    Mapper,
    Notification,
    OperationalError,
)

from infra.envelopes import envelope_from
from infra.view_store import EventFailed, ViewRecorder
from projections.base import Projection

log = structlog.get_logger(__name__)


class ProjectionFailed(Exception):
    """A projection raised on an event; the views stop at the position before it."""


def log_failure(failure: EventFailed) -> None:
    """The one log line of a poison event: projection, position, type, aggregate, error."""
    log.error("projection.failed", **failure.as_dict())


class InProcessProjector:
    """Feeds the store's events, in order, to every projection; exactly once in effect."""

    def __init__(
        self,
        *,
        recorder: ApplicationRecorder,
        mapper: Mapper[UUID],
        views: ViewRecorder,
        projections: Sequence[Projection],
        batch_size: int = 500,
    ) -> None:
        self.store = recorder
        self.mapper = mapper
        self.views = views
        self.projections = list(projections)
        self.batch_size = batch_size
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.failures: dict[str, dict[str, Any]] = {}
        """Projections stopped by an event they cannot apply, with that event (for /health)."""

    def healthy(self) -> list[Projection]:
        return [p for p in self.projections if p.name not in self.failures]

    def positions(self) -> dict[str, int]:
        return {p.name: self.views.position(p.name) for p in self.projections}

    def position(self) -> int:
        """The position every projection still running has reached."""
        return min((self.views.position(p.name) for p in self.healthy()), default=0)

    def _select(self, start: int) -> Sequence[Notification]:
        return self.store.select_notifications(start=start, limit=self.batch_size)

    def catch_up(self) -> int:
        """Apply everything stored so far; return the position reached."""
        with self._lock:
            position = self.position()
            while True:
                notifications = self._select(position + 1)
                if not notifications:
                    return position
                envelopes = [envelope_from(n, self.mapper) for n in notifications]
                healthy = self.healthy()
                if not healthy:
                    return position
                try:
                    self.views.apply(envelopes, healthy)
                except (IntegrityError, OperationalError):
                    # Another process advanced the same tracking rows first (or held the
                    # SQLite write lock); its work stands, re-read where we are.
                    log.info("projector.contended", at=position)
                    position = self.position()
                    continue
                except EventFailed as failure:
                    # A poison event: that projection stops before it (never skips it, so
                    # its views and tracking stay at the position before); the batch was
                    # rolled back as a whole, so the others apply it again without it.
                    log_failure(failure)
                    self.failures[failure.projection] = failure.as_dict()
                    position = self.position()
                    continue
                except Exception as error:
                    log.error(
                        "projection.failed",
                        first_position=envelopes[0].position,
                        last_position=envelopes[-1].position,
                        error=repr(error),
                    )
                    raise ProjectionFailed(
                        f"a projection failed between positions {envelopes[0].position} "
                        f"and {envelopes[-1].position}: {error!r}"
                    ) from error
                position = envelopes[-1].position

    def rebuild(self, projection: Projection) -> None:
        """Forget one projection's documents and position; the next catch-up refills them."""
        with self._lock:
            self.views.reset(projection)
            self.failures.pop(projection.name, None)

    # ------------------------------------------------------------ polling
    def start(self, interval: float) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._poll, args=(interval,), name="projector", daemon=True
        )
        self._thread.start()

    def _poll(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.catch_up()
            except ProjectionFailed:
                pass  # logged; retried on the next tick so an operator sees it repeat
            except Exception as error:  # the poller must outlive a passing database error
                log.warning("projector.poll_failed", error=repr(error))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
