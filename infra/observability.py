"""What /health and /metrics report: store head, relay, projections, workers, broker."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from typing import Any

from infra.bootstrap import System
from infra.kafka import clients


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
    report["workers"] = [
        {
            **beat,
            "age_seconds": round(
                (now - datetime.fromisoformat(beat["last_heartbeat"])).total_seconds(), 3
            ),
        }
        for beat in state.heartbeats()
    ]
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
