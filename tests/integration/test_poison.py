"""A poison event: stored, sealed, but some projections cannot fold it.

The event is a genuine stored ``TaskIssued`` whose ``weight`` is the text "heavy" (the
domain would never write it; an old bug or a hand edit could). The projections that fold
the weight raise on it; they must stop right before it (never skip it, never store an
offset past it), log ``projection.failed`` naming it, and ``/health`` must name it too,
while the projections that do not read the weight go on. In-process (SQLite and
PostgreSQL) and through a ``tiaokuai worker project`` process on the Kafka path.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent
from kafka import KafkaConsumer, TopicPartition

from infra.application import Written
from infra.bootstrap import System, bootstrap
from infra.clock import ManualClock
from infra.envelopes import envelope_from
from infra.integrity import system_sealer
from infra.kafka.clients import projection_group
from infra.observability import status
from projections.envelope import EventEnvelope
from projections.registry import build_projections
from projections.store import MemoryViewStore
from tests.conftest import SettingsFactory
from tests.integration.api_client import Api
from tests.integration.conftest import (
    PROJECTIONS,
    SEC,
    KafkaBed,
    Writers,
    applied_versions,
    wait_caught_up,
)

pytestmark = [pytest.mark.postgres]


def issue(system: System) -> Written[Any]:
    return system.app.issue_task(
        title="快递网点建站",
        industry="express",
        lead_unit="postal",
        co_units=["commerce"],
        towns=["town-xinqiao"],
        deadline=system.clock.now() + timedelta(days=10),
        weight=2.0,
        meeting_id=None,
        resolution_id=None,
        actor=SEC,
    )


def insert_poison(system: System, template_position: int) -> tuple[int, str]:
    """Store a copy of the TaskIssued at ``template_position`` with an unfoldable weight.

    Written through the store's own recorder, so it is sealed like any event; returns
    its position and aggregate id.
    """
    (template,) = system.app.recorder.select_notifications(start=template_position, limit=1)
    state = json.loads(template.state)
    state["weight"] = "heavy"
    aggregate_id = uuid.uuid4()
    system.app.recorder.insert_events(
        [
            StoredEvent(
                originator_id=aggregate_id,
                originator_version=1,
                topic=template.topic,
                state=json.dumps(state, separators=(",", ":")).encode(),
            )
        ]
    )
    system_sealer(system).seal_pending()
    return system.app.head(), str(aggregate_id)


def poison_envelope(system: System, position: int) -> EventEnvelope:
    (notification,) = system.app.recorder.select_notifications(start=position, limit=1)
    return envelope_from(notification, system.app.mapper)


def cannot_fold(envelope: EventEnvelope) -> set[str]:
    """Which projections raise on the envelope alone (an oracle apart from the runners)."""
    failing = set()
    for projection in build_projections():
        try:
            projection.apply(envelope, MemoryViewStore())
        except Exception:
            failing.add(projection.name)
    return failing


def assert_names_event(failure: dict[str, Any], position: int, aggregate_id: str) -> None:
    assert failure["position"] == position, failure
    assert failure["event_type"] == "TaskIssued", failure
    assert failure["aggregate_id"] == aggregate_id, failure
    assert failure["version"] == 1, failure
    assert "heavy" in failure["error"], failure


def test_in_process_projector_stops_only_the_projections_that_cannot_fold_it(
    make_settings: SettingsFactory, clock: ManualClock
) -> None:
    system = bootstrap(make_settings(), clock=clock)
    try:
        Writers.register_units(system)
        task = issue(system)
        position, aggregate_id = insert_poison(system, task.position)
        failing = cannot_fold(poison_envelope(system, position))
        assert failing and failing != set(PROJECTIONS), failing
        # Commands go on: the write path never waits for a failed projection.
        urged = system.app.urge_task(task_id=task.aggregate.id, note="请加快", actor=SEC)
        assert urged.position > position
        system.catch_up()

        assert set(system.projector.failures) == failing
        positions = system.projector.positions()
        for name in PROJECTIONS:
            if name in failing:
                # Stopped right before the poison: neither it nor anything after applied.
                assert positions[name] == position - 1, (name, positions)
                applied = applied_versions(system, name)
                assert aggregate_id not in applied and applied[str(task.aggregate.id)] == 1
            else:
                assert positions[name] == urged.position, (name, positions)
                # Applied, or passed over by a projection that takes no task events.
                takes = next(p for p in system.projections if p.name == name).takes(
                    poison_envelope(system, position).aggregate_type
                )
                assert applied_versions(system, name).get(aggregate_id) == (1 if takes else None)

        api = Api(system)
        health = api.client.get("/health")
        assert health.status_code == 200
        report = health.json()
        assert report["status"] == "failing"
        assert {f["projection"] for f in report["failures"]} == failing
        for name in failing:
            assert report["projections"][name]["status"] == "failed"
            assert_names_event(report["projections"][name]["failure"], position, aggregate_id)
        metrics = api.client.get("/metrics").text
        assert f'tiaokuai_projection_failed{{projection="{sorted(failing)[0]}"}} 1.0' in metrics
        # A view behind a failed projection is never presented as fresh.
        api.principal("sec", SEC.role)
        after = api.client.get(
            f"/views/units/postal?after={urged.position}", headers=api.headers("sec")
        )
        assert "unit_views" in failing and after.status_code == 503, after.text
    finally:
        system.close()

    # A new process meets the same event again: it was never skipped.
    again = bootstrap(make_settings(), clock=clock)
    try:
        again.catch_up()
        assert set(again.projector.failures) == failing
        for failure in again.projector.failures.values():
            assert_names_event(failure, position, aggregate_id)
    finally:
        again.close()


def topic_message(bed: KafkaBed, aggregate_id: str) -> tuple[int, int]:
    """(partition, offset) of the first message of an aggregate in the topic."""
    reader = KafkaConsumer(bootstrap_servers=[bed.tansu.address], enable_auto_commit=False)
    try:
        partitions = [TopicPartition(bed.topic, p) for p in reader.partitions_for_topic(bed.topic)]
        reader.assign(partitions)
        reader.seek_to_beginning(*partitions)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for tp, messages in reader.poll(timeout_ms=200).items():
                for message in messages:
                    if bytes(message.key).decode() == aggregate_id:
                        return tp.partition, message.offset
        raise AssertionError(f"{aggregate_id} is not in the topic")
    finally:
        reader.close()


def wait_for_failures(system: System, names: set[str], timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        report = status(system)
        if {f["projection"] for f in report.get("failures", [])} == names:
            return report
        if time.monotonic() >= deadline:
            raise AssertionError(f"health does not report {sorted(names)}: {report}")
        time.sleep(0.2)


@pytest.mark.kafka
def test_worker_stops_the_projection_on_a_poison_event_and_health_names_it(
    bed: KafkaBed,
) -> None:
    system = bed.system()
    Writers.register_units(system)
    relay = bed.cli("relay", "relay")
    project = bed.cli("project", "project")
    task = issue(system)
    wait_caught_up(bed, system)
    position, aggregate_id = insert_poison(system, task.position)
    failing = cannot_fold(poison_envelope(system, position))
    assert failing and failing != set(PROJECTIONS), failing
    later = [
        system.app.urge_task(task_id=task.aggregate.id, note=f"第{i}次", actor=SEC)
        for i in range(5)
    ]
    healthy = [name for name in PROJECTIONS if name not in failing]
    wait_caught_up(bed, system, healthy)

    report = wait_for_failures(system, failing)
    for name in failing:
        assert report["projections"][name]["status"] == "failed"
        assert_names_event(report["projections"][name]["failure"], position, aggregate_id)
        assert aggregate_id not in applied_versions(system, name)
    # No offset stored past the poison message in any failed group.
    partition, offset = topic_message(bed, aggregate_id)
    state = bed.bus_state(system)
    for name in failing:
        stored = state.partition_offsets(projection_group(name), bed.topic)
        assert partition not in stored or stored[partition].next_offset <= offset, (name, stored)
    # The process lives on for the healthy projections, and the log names the event.
    project.check()
    log = project.log.read_text()
    failed_lines = [json.loads(line) for line in log.splitlines() if "projection.failed" in line]
    assert {line["projection"] for line in failed_lines} == failing
    assert all(line["position"] == position for line in failed_lines)
    head = later[-1].position
    assert all(v["position"] >= head for k, v in report["projections"].items() if k in healthy)

    # SIGTERM: the healthy ones drain; the exit code says a projection failed.
    code, took = project.terminate()
    assert code == 1 and took < 30, (code, took, project.log_tail())
    # Restarted, it meets the same event again: never skipped.
    project = bed.cli("project", "project")
    deadline = time.monotonic() + 60
    while log.count("projection.failed") >= project.log.read_text().count("projection.failed"):
        project.check()
        assert time.monotonic() < deadline, project.log_tail()
        time.sleep(0.2)
    for name in failing:
        assert aggregate_id not in applied_versions(system, name)
    assert relay.stop() == 0
    assert project.stop() == 1
