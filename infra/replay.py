"""Replay: rebuild every view from the store into a scratch area, compare with the live ones.

The rebuild streams the notification log in batches into prefixed view names in the
same database (``scratch:<id>:<view>``), so memory stays flat however long the log; the
live views are only read. Differences are re-checked once after the scratch area has
caught up with the live position, so writes arriving during a replay are not reported
as drift.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from infra.audit import stream_envelopes
from infra.bootstrap import System
from infra.rebuild import Drift, compare
from projections.envelope import EventEnvelope
from projections.registry import build_projections
from projections.store import Doc

REPLAYS_VIEW = "audit:replays"
MAX_REPORTED = 1000


@dataclass
class ReplayStatus:
    """Progress and outcome of one replay, as ``GET /audit/replays/{id}`` shows it."""

    id: str
    state: str = "running"  # running | finished | failed
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    finished_at: str | None = None
    total: int = 0
    processed: int = 0
    events_per_second: float = 0.0
    eta_seconds: float | None = None
    differences: list[dict[str, Any]] = field(default_factory=list)
    difference_count: int = 0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


Progress = Callable[[ReplayStatus], None]


def new_replay_id() -> str:
    return uuid.uuid4().hex[:16]


def _rebuild(
    system: System,
    prefix: str,
    status: ReplayStatus,
    progress: Progress,
    *,
    start_after: int,
    upto: int,
    batch: int,
) -> int:
    projections = build_projections(system.tz)
    started = time.monotonic()
    pending: list[EventEnvelope] = []
    last = start_after

    def flush() -> int:
        system.view_recorder.apply_scratch(pending, projections, prefix)
        status.processed += len(pending)
        elapsed = max(time.monotonic() - started, 1e-6)
        status.events_per_second = round(status.processed / elapsed, 1)
        remaining = max(status.total - status.processed, 0)
        status.eta_seconds = round(remaining / max(status.events_per_second, 1e-6), 1)
        progress(status)
        return pending[-1].position

    for envelope in stream_envelopes(system, upto=upto, after=start_after, batch=batch):
        pending.append(envelope)
        if len(pending) >= batch:
            last = flush()
            pending = []
    if pending:
        last = flush()
    return last


PAGE = 1000
"""Documents per read when comparing a live view with its rebuilt copy."""


def _pages(system: System, view: str, page: int = PAGE) -> Iterator[tuple[str, Doc]]:
    """Every document of one view in key order, ``page`` at a time (keyset paging).

    ``LiveViewStore.scan`` reads a whole view at once; the replay's comparison must hold
    only a page of each side, so that memory stays flat however large the views grow.
    """
    after = ""
    while True:
        rows = system.view_recorder.read_page(view, after, page)
        yield from rows
        if len(rows) < page:
            return
        after = rows[-1][0]


def _differences(
    system: System, prefix: str, only: set[tuple[str, str]] | None = None
) -> Iterator[Drift]:
    """Every document that differs between a live view and its copy under ``prefix``."""
    for projection in system.projections:
        for view in projection.views:
            for found in compare(view, _pages(system, view), _pages(system, prefix + view)):
                if only is None or (found.view, found.key) in only:
                    yield found


def live_position(system: System) -> int:
    """How far the live views got: the projector's position, or the head with a bus."""
    if system.settings.bus is None:
        return system.catch_up()
    return system.app.head()


def run_replay(
    system: System,
    *,
    replay_id: str | None = None,
    progress: Progress | None = None,
    batch: int = 1000,
) -> ReplayStatus:
    """Rebuild, compare, report; the scratch area is dropped afterwards."""
    status = ReplayStatus(id=replay_id or new_replay_id())
    report = progress or (lambda _s: None)
    prefix = f"scratch:{status.id}:"
    try:
        upto = live_position(system)
        status.total = upto
        report(status)
        reached = _rebuild(system, prefix, status, report, start_after=0, upto=upto, batch=batch)
        # Only the keys are kept from the first look: memory follows the drift, not
        # the size of the views.
        first = {(found.view, found.key) for found in _differences(system, prefix)}
        if first:
            # Writes may have moved the live views on meanwhile: catch the scratch up to
            # where they are now and look at the differing documents once more.
            upto = live_position(system)
            status.total += max(upto - reached, 0)
            _rebuild(system, prefix, status, report, start_after=reached, upto=upto, batch=batch)
            for found in _differences(system, prefix, first):
                status.difference_count += 1
                if len(status.differences) < MAX_REPORTED:
                    status.differences.append(asdict(found))
        status.state = "finished"
    except Exception as error:
        status.state = "failed"
        status.error = repr(error)
        raise
    finally:
        status.finished_at = datetime.now(UTC).isoformat()
        status.eta_seconds = 0.0 if status.state == "finished" else status.eta_seconds
        try:
            system.view_recorder.drop_prefix(prefix)
        finally:
            report(status)
    return status


def record_status(system: System, status: ReplayStatus) -> None:
    """Keep the status in the database, so any API instance can answer for it."""
    system.view_recorder.put_doc(REPLAYS_VIEW, status.id, status.as_dict())


def replay_status(system: System, replay_id: str) -> dict[str, Any] | None:
    return system.views.get(REPLAYS_VIEW, replay_id)


class ReplayCancelled(Exception):
    """The server is shutting down: a background replay stops and drops its scratch area."""


_background: list[threading.Thread] = []
_shutting_down = threading.Event()


def stop_background_replays(timeout: float = 10.0) -> None:
    """Cancel the running background replays (at their next batch) and wait for them."""
    _shutting_down.set()
    deadline = time.monotonic() + timeout
    for thread in list(_background):
        thread.join(max(0.0, deadline - time.monotonic()))


def start_background_replay(system: System) -> str:
    """Run a replay in a thread, recording its status every half second; return its id."""
    replay_id = new_replay_id()
    last = [0.0]

    def progress(status: ReplayStatus) -> None:
        if _shutting_down.is_set() and status.state == "running":
            raise ReplayCancelled("cancelled: the server shut down; start it again")
        now = time.monotonic()
        if status.state != "running" or now - last[0] > 0.5:
            record_status(system, status)
            last[0] = now

    def work() -> None:
        # A failure is recorded in the status (state "failed", error) by run_replay.
        try:
            with contextlib.suppress(Exception):
                run_replay(system, replay_id=replay_id, progress=progress)
        finally:
            _background.remove(thread)

    record_status(system, ReplayStatus(id=replay_id))
    thread = threading.Thread(target=work, name=f"replay-{replay_id}", daemon=True)
    _background.append(thread)
    thread.start()
    return replay_id
