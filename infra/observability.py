"""What /health and /metrics report: store head, relay, projections, workers, broker."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from typing import Any

from infra.bootstrap import System
from infra.kafka import clients
from infra.view_store import applied_view


def broker_reachable(system: System, timeout: float = 0.5) -> bool:
    """A TCP connect to any bootstrap broker (cheap; no client start-up)."""
    for address in system.settings.kafka_bootstrap:
        host, _, port = address.rpartition(":")
        try:
            with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
                return True
        except OSError:
            continue
    return False


def status(system: System, *, with_broker_offsets: bool = False) -> dict[str, Any]:
    """The pipeline's positions; with a bus, the relay, workers and consumer groups."""
    head = system.app.head()
    report: dict[str, Any] = {"store": {"head": head}}
    state = system.bus_state
    if state is None:
        positions = system.projector.positions()
        report["projections"] = {
            name: {"position": pos, "lag": head - pos} for name, pos in positions.items()
        }
        _mark_failed(report, system.projector.failures)
        return report
    relay = state.relay_state()
    report["relay"] = {"position": relay.position, "lag": head - relay.position}
    offsets = state.all_offsets()
    projections: dict[str, Any] = {}
    for projection in system.projections:
        group = clients.projection_group(projection.name)
        mine = [
            o for o in offsets if o.group_id == group and o.topic == system.settings.kafka_topic
        ]
        # The highest position applied: exact when idle, a lower bound of lag otherwise.
        reached = max(
            (o.max_position for o in mine), default=system.projector.views.position(projection.name)
        )
        projections[projection.name] = {"position": reached, "lag": max(0, head - reached)}
    report["projections"] = projections
    now = datetime.now(UTC)
    beats = state.heartbeats()
    report["workers"] = [
        {
            **beat,
            "age_seconds": round(
                (now - datetime.fromisoformat(beat["last_heartbeat"])).total_seconds(), 3
            ),
        }
        for beat in beats
    ]
    _mark_failed(report, _worker_failures(system, beats))
    up = broker_reachable(system)
    report["broker"] = {"reachable": up}
    if up and with_broker_offsets:
        report["consumer_lag"] = _consumer_lag(system, offsets)
    return report


def _consumer_lag(system: System, offsets: list[Any]) -> list[dict[str, Any]]:
    from infra.kafka import clients

    reader = clients.offsets_reader(system.settings)
    try:
        ends = clients.end_offsets(reader, system.settings.kafka_topic)
    finally:
        reader.close()
    lag = []
    for projection in system.projections:
        group = clients.projection_group(projection.name)
        stored = {o.partition: o.next_offset for o in offsets if o.group_id == group}
        for partition, end in sorted(ends.items()):
            lag.append(
                {
                    "group": group,
                    "partition": partition,
                    "lag": max(0, end - stored.get(partition, 0)),
                }
            )
    return lag


def _worker_failures(system: System, beats: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Poison events reported by workers that the projection has not got past since.

    A failure stays in the heartbeat row of the worker that met it (it stopped); once
    the projection applied that version of that aggregate (the code was fixed and a
    worker restarted) it is history, not a failure.
    """
    failures: dict[str, dict[str, Any]] = {}
    for beat in beats:
        failed = (beat.get("info") or {}).get("failed")
        if beat.get("kind") != "projection" or not isinstance(failed, dict):
            continue
        name = str(failed.get("projection"))
        applied = system.views.get(applied_view(name), str(failed.get("aggregate_id"))) or {}
        if int(applied.get("version", 0)) < int(failed.get("version", 0)):
            failures.setdefault(name, {**failed, "worker": beat["name"]})
    return failures


def _mark_failed(report: dict[str, Any], failures: dict[str, dict[str, Any]]) -> None:
    """Name each stopped projection and the event it stopped on."""
    for name, failure in failures.items():
        entry = report["projections"].setdefault(name, {})
        entry["status"] = "failed"
        entry["failure"] = failure
    if failures:
        report["failures"] = sorted(failures.values(), key=lambda f: int(f.get("position", 0)))
