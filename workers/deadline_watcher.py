"""The deadline watcher: records ``TaskBecameOverdue`` once when a deadline passes.

Candidates come from the task list view; the aggregate decides (it refuses a second
overdue for the same deadline), and optimistic concurrency stops two watchers from
recording it twice.
"""

from __future__ import annotations

import threading
from uuid import UUID

import structlog

from infra.bootstrap import System
from projections.tasks import tasks_due_for_overdue

log = structlog.get_logger(__name__)


class DeadlineWatcher:
    """Looks for passed deadlines at each tick; the clock is the system's."""

    def __init__(self, system: System) -> None:
        self.system = system
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> list[str]:
        """Record every overdue that is due now; return the task ids it recorded."""
        system = self.system
        if system.settings.bus is None:
            system.catch_up()
        recorded: list[str] = []
        for task_id in tasks_due_for_overdue(system.views, system.clock.now()):
            outcome = system.app.mark_overdue(task_id=UUID(task_id))
            if outcome is not None:
                log.info("task.became_overdue", task_id=task_id, position=outcome.position)
                recorded.append(task_id)
        return recorded

    def run(self, interval: float) -> None:
        """Tick every ``interval`` seconds until stopped."""
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception as error:  # a passing store error must not end the watcher
                log.warning("deadline_watcher.tick_failed", error=repr(error))
            self._stop.wait(interval)
        log.info("worker.stopped", kind="deadlines")

    def start(self, interval: float) -> None:
        self._thread = threading.Thread(
            target=self.run, args=(interval,), name="deadline-watcher", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
