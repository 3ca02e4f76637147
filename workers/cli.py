"""The ``tiaokuai`` command: serve, demo, token, worker, audit, person, kafka."""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import io
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import timedelta
from types import FrameType
from typing import Any

import structlog

from domain.actor import Role
from domain.errors import NotFound
from infra.bootstrap import System, bootstrap
from infra.collector import settle_collector
from infra.logging import configure_logging
from infra.settings import Settings
from workers.audit_cli import add_integrity_commands
from workers.person_cli import add_person_commands

log = structlog.get_logger(__name__)


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "store", None):
        overrides["store"] = args.store
    if getattr(args, "bus", None):
        overrides["bus"] = args.bus
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = args.data_dir
    if getattr(args, "port", None):
        overrides["port"] = args.port
    if getattr(args, "host", None):
        overrides["host"] = args.host
    return Settings(**overrides)


def _system(args: argparse.Namespace, *, quiet: bool = False) -> System:
    """Settings, logging and the system; ``quiet`` keeps a one-shot command's output clean."""
    settings = _settings(args)
    json_logs = (
        settings.log_json if settings.log_json is not None else settings.mode == "production"
    )
    configure_logging(json=json_logs, level=logging.WARNING if quiet else logging.INFO)
    return bootstrap(settings)


def stop_on_signals(stop: Callable[[], None]) -> None:
    """SIGTERM and SIGINT ask a worker loop to stop; it finishes the batch in flight.

    The stop runs in a thread of its own: the handler interrupts the main thread between
    two bytecodes, possibly while it holds the very lock ``stop`` needs (an Event's), and
    logging from the handler could re-enter the output stream's writer.
    """

    def stopping(signum: int) -> None:
        log.info("worker.stopping", signal=signal.Signals(signum).name)
        stop()

    def handler(signum: int, _frame: FrameType | None) -> None:
        threading.Thread(target=stopping, args=(signum,), name="stop", daemon=True).start()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app
    from infra.replay import stop_background_replays
    from workers.deadline_watcher import DeadlineWatcher

    system = _system(args)
    settings = system.settings
    watcher = DeadlineWatcher(system)
    if settings.bus is None:
        system.catch_up()
        system.projector.start(settings.projection_poll_seconds)
        watcher.start(settings.deadline_check_seconds)
    # uvicorn restores the handlers it found and re-raises the signal it shut down on;
    # with the default handler that would kill the process before the clean-up below.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda _signum, _frame: None)
    app = create_app(system)
    # Full collections walking start-up's objects stalled every request in flight at once.
    settle_collector(settings.gc_young_threshold)
    try:
        # On SIGTERM uvicorn stops accepting, lets the requests in flight finish (at most
        # the grace period) and only then returns here.
        uvicorn.run(
            app,
            host=settings.host,
            port=settings.port,
            log_level="warning",
            timeout_graceful_shutdown=max(1, round(settings.shutdown_grace_seconds)),
        )
    finally:
        # Then the background work of this process, before the store's pool goes.
        stop_background_replays(timeout=settings.shutdown_grace_seconds)
        watcher.stop()
        system.close()
        log.info("server.stopped")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from infra.demo import seed_demo

    system = _system(args, quiet=True)
    try:
        if system.app.head() > 0:
            print("the store holds events already; the demo seeds only an empty store")
            return 0 if args.if_empty else 1
        for line in seed_demo(system):
            print(line)
        return 0
    finally:
        system.close()


def cmd_token_issue(args: argparse.Namespace) -> int:
    role = Role(args.role)
    if role == Role.LIAISON and not args.unit:
        print("error: --unit is required for a liaison", file=sys.stderr)
        return 2
    if role != Role.LIAISON and args.unit:
        print("error: --unit is only for a liaison", file=sys.stderr)
        return 2
    system = _system(args, quiet=True)
    try:
        if args.unit:
            try:
                system.app.unit(args.unit)
            except NotFound:
                print(f"error: unit {args.unit!r} is not registered", file=sys.stderr)
                return 2
        lifetime = timedelta(days=args.expires_in_days) if args.expires_in_days else None
        principal, token = system.tokens.issue(
            role=role, unit=args.unit, name=args.name, lifetime=lifetime
        )
        print(f"principal: {principal.principal_id}")
        print(
            f"role: {principal.role.value}" + (f" unit: {principal.unit}" if principal.unit else "")
        )
        print(f"name: {principal.name}")
        print("token (shown once; only its hash is stored):")
        print(token)
        return 0
    finally:
        system.close()


def cmd_token_revoke(args: argparse.Namespace) -> int:
    system = _system(args)
    try:
        system.tokens.revoke(args.principal)
        print(f"revoked every token of {args.principal}")
        return 0
    finally:
        system.close()


def cmd_worker_relay(args: argparse.Namespace) -> int:
    from workers.relay import Relay

    system = _system(args)
    relay = Relay(system)
    stop_on_signals(relay.stop)
    settle_collector(system.settings.gc_young_threshold)
    try:
        relay.run()
        return 0
    finally:
        relay.stop()
        system.close()


def cmd_worker_project(args: argparse.Namespace) -> int:
    from workers.projection_host import ProjectionHost

    system = _system(args)
    names = args.projection or [p.name for p in system.projections]
    by_name = {p.name: p for p in system.projections}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        print(f"error: unknown projection(s) {unknown}; known: {sorted(by_name)}", file=sys.stderr)
        system.close()
        return 2
    # One consumer group per projection, one fetch of the topic for all of them. A
    # projection stopped by a poison event stops alone: the others go on, /health names
    # the event, and the process exits 1 at its end.
    host = ProjectionHost(system, [by_name[name] for name in dict.fromkeys(names)])
    stop_on_signals(host.stop)
    settle_collector(system.settings.gc_young_threshold)
    failures: list[BaseException] = []
    try:
        host.run()
    except BaseException as error:  # an unexpected error stops the process, loudly
        failures.append(error)
        log.error("worker.crashed", error=repr(error))
    finally:
        system.close()
    poisoned = [w.projection.name for w in host.workers if w.failure is not None]
    log.info("worker.process_stopped", failed=poisoned, errors=[repr(e) for e in failures])
    return 1 if failures or poisoned else 0


def cmd_kafka_init(args: argparse.Namespace) -> int:
    from infra.kafka import clients

    settings = _settings(args)
    if settings.bus is None:
        print("error: give --bus kafka://host:port (or TIAOKUAI_BUS)", file=sys.stderr)
        return 2
    created = clients.ensure_topic(settings)
    state = "created" if created else "exists already"
    print(f"topic {settings.kafka_topic} ({settings.kafka_partitions} partitions): {state}")
    return 0


def cmd_audit_replay(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from infra.replay import ReplayStatus, record_status, run_replay

    system = _system(args, quiet=True)
    console = Console(stderr=True)
    columns = (
        TextColumn("replay"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} events/s"),
        TimeRemainingColumn(),
    )
    try:
        with Progress(*columns, console=console, transient=False) as bar:
            job = bar.add_task("replay", total=None, rate="-")

            def progress(status: ReplayStatus) -> None:
                bar.update(
                    job,
                    total=max(status.total, status.processed) or None,
                    completed=status.processed,
                    rate=f"{status.events_per_second:,.0f}",
                )

            status = run_replay(system, progress=progress, batch=args.batch)
        record_status(system, status)
        print(
            f"replay {status.id}: {status.processed} events, {status.difference_count} differences"
        )
        for difference in status.differences:
            print(f"  drift in {difference['view']} at key {difference['key']}")
        return 1 if status.difference_count else 0
    finally:
        system.close()


def cmd_worker_deadlines(args: argparse.Namespace) -> int:
    from workers.deadline_watcher import DeadlineWatcher

    system = _system(args)
    watcher = DeadlineWatcher(system)
    try:
        if args.once:
            for task_id in watcher.tick():
                print(task_id)
            return 0
        stop_on_signals(watcher.stop)
        watcher.run(system.settings.deadline_check_seconds)
        return 0
    finally:
        system.close()


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", help="postgresql://... (default: SQLite in the data dir)")
    parser.add_argument("--bus", help="kafka://host:port (default: in-process projections)")
    parser.add_argument("--data-dir", help="where the embedded SQLite store lives (./var)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tiaokuai", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the REST API (never seeds anything)")
    _common(serve)
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=cmd_serve)

    demo = sub.add_parser("demo", help="seed the demo district into an empty store")
    _common(demo)
    demo.add_argument("--if-empty", action="store_true", help="exit 0 when already seeded")
    demo.set_defaults(func=cmd_demo)

    token = sub.add_parser("token", help="bearer tokens").add_subparsers(
        dest="token_command", required=True
    )
    issue = token.add_parser("issue", help="issue a token; it is printed once, on the last line")
    _common(issue)
    issue.add_argument("--role", required=True, choices=[r.value for r in Role])
    issue.add_argument("--unit", help="the liaison's unit slug")
    issue.add_argument("--name", required=True, help="the person's name")
    issue.add_argument(
        "--expires-in-days", type=int, default=90, help="lifetime in days (0: never expires)"
    )
    issue.set_defaults(func=cmd_token_issue)
    revoke = token.add_parser("revoke", help="revoke every token of a principal")
    _common(revoke)
    revoke.add_argument("principal")
    revoke.set_defaults(func=cmd_token_revoke)

    worker = sub.add_parser("worker", help="long-running workers").add_subparsers(
        dest="worker_command", required=True
    )
    deadlines = worker.add_parser("deadlines", help="the deadline watcher")
    _common(deadlines)
    deadlines.add_argument("--once", action="store_true", help="one tick, then exit")
    deadlines.set_defaults(func=cmd_worker_deadlines)
    relay = worker.add_parser("relay", help="publish the store's events to Kafka")
    _common(relay)
    relay.set_defaults(func=cmd_worker_relay)
    project = worker.add_parser("project", help="projection workers consuming Kafka")
    _common(project)
    project.add_argument(
        "--projection", action="append", help="one projection (repeatable; default: all)"
    )
    project.set_defaults(func=cmd_worker_project)

    audit = sub.add_parser("audit", help="audit: replay, integrity").add_subparsers(
        dest="audit_command", required=True
    )
    add_integrity_commands(audit, _common)
    replay = audit.add_parser("replay", help="rebuild every view aside and report drift")
    _common(replay)
    replay.add_argument("--batch", type=int, default=1000, help="events per transaction")
    replay.set_defaults(func=cmd_audit_replay)

    add_person_commands(sub, _common)

    kafka = sub.add_parser("kafka", help="Kafka set-up").add_subparsers(
        dest="kafka_command", required=True
    )
    init = kafka.add_parser("init", help="create the events topic (idempotent)")
    _common(init)
    init.set_defaults(func=cmd_kafka_init)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # `kill -USR1 <pid>` prints every thread's stack to stderr: how an operator (or a
    # test that waited too long for a stop) sees where a process hangs. Not where
    # stderr is no file (the CLI called in-process under a capturing test runner).
    with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
