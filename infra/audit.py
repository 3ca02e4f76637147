"""The auditor's questions, answered from the store: history, state then, who held what.

Everything here reads the event store itself (never a view), except ``view_at``, which
rebuilds a view from the store up to an instant with the same projection code that
builds the live view.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.postgres import PostgresAggregateRecorder
from eventsourcing.sqlite import SQLiteAggregateRecorder
from psycopg.sql import SQL, Identifier

from domain.base import TiaokuaiAggregate
from domain.chains import ResponsibilityChain
from domain.committees import IndustryPartyCommittee
from domain.errors import InvariantViolated, NotFound
from domain.ids import chain_id, unit_id
from domain.meetings import JointMeeting
from domain.persons import PersonErasure, erasure_id
from domain.tasks import SupervisedTask
from domain.units import Unit
from infra.bootstrap import System
from infra.envelopes import envelope_from, plain
from infra.integrity import Checkpoint, system_sealer
from projections.envelope import EventEnvelope
from projections.registry import build_projections
from projections.store import MemoryViewStore

KINDS: dict[str, type[TiaokuaiAggregate]] = {
    "tasks": SupervisedTask,
    "chains": ResponsibilityChain,
    "committees": IndustryPartyCommittee,
    "meetings": JointMeeting,
    "units": Unit,
    "erasures": PersonErasure,
}


def aggregate_id_of(kind: str, raw: str) -> UUID:
    """The aggregate id a path names: a UUID, an industry (chains) or a slug (units)."""
    if kind not in KINDS:
        raise NotFound(f"kind: no such kind {kind!r}; one of {', '.join(KINDS)}")
    if kind == "chains":
        return chain_id(raw)
    if kind == "units":
        return unit_id(raw)
    if kind == "erasures":
        return erasure_id(raw)
    try:
        return UUID(raw)
    except ValueError:
        raise InvariantViolated(f"id: {raw!r} is not a UUID") from None


def _events(system: System, kind: str, raw: str) -> list[Any]:
    aggregate_id = aggregate_id_of(kind, raw)
    events = list(system.app.repository.event_store.get(aggregate_id))
    cls = KINDS[kind]
    if not events or not getattr(events[0], "originator_topic", "").endswith(f":{cls.__name__}"):
        raise NotFound(f"{kind[:-1]} {raw!r} does not exist")
    return events


def event_record(event: Any) -> dict[str, Any]:
    """One event as the auditor reads it."""
    attrs = dict(vars(event))
    actor = attrs.pop("actor", None)
    at = attrs.pop("at", None)
    recorded = attrs.pop("timestamp")
    for name in ("originator_id", "originator_version", "originator_topic"):
        attrs.pop(name, None)
    return {
        "version": event.originator_version,
        "type": type(event).__name__,
        "at": plain(at or recorded),
        "recorded_at": plain(recorded),
        "actor": plain(actor) if actor is not None else None,
        "reason": attrs.get("reason"),
        "data": plain(attrs),
    }


def history(
    system: System, kind: str, raw: str, *, offset: int = 0, limit: int = 100
) -> tuple[list[dict[str, Any]], int]:
    """Every event of one aggregate, oldest first, paged."""
    events = _events(system, kind, raw)
    page = events[offset : offset + limit]
    return [event_record(e) for e in page], len(events)


def all_history(system: System, kind: str, raw: str) -> Iterator[dict[str, Any]]:
    for event in _events(system, kind, raw):
        yield event_record(event)


@dataclass(frozen=True)
class _Timeline:
    """One aggregate's versions with their business instants, read without its payloads."""

    head: int
    instants: list[tuple[int, str]]


# The instant each event was decided at: its ``at`` when it has one, else the time it was
# recorded; stored datetimes are ``{"_type_": ..., "_data_": iso}`` or a bare ISO string.
_INSTANT_PATHS = ("at._data_", "at", "timestamp._data_", "timestamp")


def _timeline(system: System, kind: str, raw: str) -> _Timeline:
    """Every version of one aggregate with its instant, extracted by the database.

    A ``state?at=`` needs the instants of all events but the payloads of only those after
    the nearest snapshot: reading and parsing every stored event in Python cost most of
    its time for long-lived aggregates.
    """
    aggregate_id = aggregate_id_of(kind, raw)
    recorder: Any = system.app.recorder
    if isinstance(recorder, PostgresAggregateRecorder):
        paths = ", ".join(
            "j #>> ARRAY[" + ", ".join(f"'{step}'" for step in p.split(".")) + "]"
            for p in _INSTANT_PATHS
        )
        statement: Any = SQL(
            "SELECT originator_version AS version, topic, coalesce("
            + paths
            + ") AS instant FROM (SELECT originator_version, topic, "
            "convert_from(state, 'UTF8')::json AS j FROM {0}.{1} WHERE originator_id = %s) s "
            "ORDER BY originator_version"
        ).format(Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name))
        params: list[Any] = [aggregate_id]
    else:
        assert isinstance(recorder, SQLiteAggregateRecorder)
        paths = ", ".join(f"json_extract(j, '$.{p}')" for p in _INSTANT_PATHS)
        statement = (
            f"SELECT originator_version AS version, topic, coalesce({paths}) AS instant "
            f"FROM (SELECT originator_version, topic, CAST(state AS TEXT) AS j "
            f"FROM {recorder.events_table_name} WHERE originator_id = ?) "
            "ORDER BY originator_version"
        )
        params = [aggregate_id.hex]
    with recorder.datastore.transaction(commit=False) as cursor:
        cursor.execute(statement, params)
        rows = cursor.fetchall()
    if not rows or not str(rows[0]["topic"]).split(":")[-1].startswith(KINDS[kind].__name__ + "."):
        raise NotFound(f"{kind[:-1]} {raw!r} does not exist")
    return _Timeline(
        head=int(rows[-1]["version"]),
        instants=[(int(row["version"]), str(row["instant"])) for row in rows],
    )


def _version_at(timeline: _Timeline, kind: str, raw: str, instant: datetime) -> int:
    """The version after the last event decided at or before ``instant``.

    It is the longest prefix of events all decided by then, so an instant that went
    backwards (clock skew between writers) never makes a later event count.
    """
    version = 0
    for number, stamp in timeline.instants:
        if datetime.fromisoformat(stamp) <= instant:
            version = number
        else:
            break
    if version == 0:
        raise NotFound(f"at: {kind[:-1]} {raw!r} did not exist yet at {instant.isoformat()}")
    return version


def state_at(
    system: System,
    kind: str,
    raw: str,
    *,
    version: int | None = None,
    at: datetime | None = None,
    use_snapshots: bool = True,
) -> TiaokuaiAggregate:
    """The aggregate exactly as it was at a version or an instant.

    With ``use_snapshots`` the fold starts from the nearest snapshot at or before that
    version (as eventsourcing's repository does) and reads only the events after it;
    without, it folds from the first event. Both give the same state (tested, and
    asserted by ``bench/audit.py``).
    """
    timeline = _timeline(system, kind, raw)
    if at is not None:
        version = _version_at(timeline, kind, raw, at)
    if version is not None and not 1 <= version <= timeline.head:
        raise NotFound(f"version: {kind[:-1]} {raw!r} has versions 1 to {timeline.head}")
    aggregate_id = aggregate_id_of(kind, raw)
    aggregate: Any = None
    after = 0
    snapshots = system.app.snapshots
    if use_snapshots and snapshots is not None:
        nearest = list(snapshots.get(aggregate_id, desc=True, limit=1, lte=version))
        if nearest:
            snapshot: Any = nearest[0]
            aggregate = snapshot.mutate(None)
            after = snapshot.originator_version
    to_event = system.app.mapper.to_domain_event
    for record in system.app.recorder.select_events(aggregate_id, gt=after, lte=version):
        event: Any = to_event(record)
        aggregate = event.mutate(aggregate)
    assert isinstance(aggregate, TiaokuaiAggregate)
    return aggregate


def responsibility_at(system: System, industry: str, instant: datetime) -> dict[str, Any]:
    """Each link of the chain in force at ``instant``, with its responsible person then."""
    current = system.app.chain(industry)
    then = state_at(system, "chains", industry, at=instant)
    assert isinstance(then, ResponsibilityChain)
    links = []
    for position, link_id in enumerate(then.order, start=1):
        link = then.links[link_id]
        links.append(
            {
                "id": link_id,
                "position": position,
                "unit": link["unit"],
                "role": link["role"],
                "responsible_person": plain(current.person_at(link_id, instant)),
                "duties": list(link["duties"]),
            }
        )
    return {"industry": industry, "name": then.name, "at": plain(instant), "links": links}


# ------------------------------------------------------------ views then
def stream_envelopes(
    system: System,
    *,
    until: datetime | None = None,
    upto: int | None = None,
    after: int = 0,
    batch: int = 1000,
) -> Iterator[EventEnvelope]:
    """The store's events after ``after`` in order, in batches, up to an instant/position."""
    position = after
    while True:
        notifications = system.app.recorder.select_notifications(
            start=position + 1, limit=batch, stop=upto
        )
        if not notifications:
            return
        for notification in notifications:
            envelope = envelope_from(notification, system.app.envelope_mapper)
            if until is not None and envelope.at > until:
                return
            yield envelope
        position = notifications[-1].id


def view_store_at(system: System, projection_name: str, instant: datetime) -> MemoryViewStore:
    """One projection rebuilt from the store up to the last event at or before ``instant``."""
    projections = [p for p in build_projections(system.tz) if p.name == projection_name]
    store = MemoryViewStore()
    for envelope in stream_envelopes(system, until=instant):
        for projection in projections:
            projection.apply(envelope, store)
    return store


def view_at(
    system: System,
    projection_name: str,
    instant: datetime,
    query: Callable[[MemoryViewStore], dict[str, Any]],
) -> dict[str, Any]:
    return {**query(view_store_at(system, projection_name, instant)), "at": plain(instant)}


# ------------------------------------------------------------- snapshots
@dataclass(frozen=True)
class SnapshotMismatch:
    """A stored snapshot that is not the state its aggregate's events give at its version."""

    aggregate_id: str
    aggregate_type: str
    version: int
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SnapshotReport:
    """What ``verify_snapshots`` found: every snapshot, folded against the events."""

    checked: int = 0
    aggregates: int = 0
    mismatches: list[SnapshotMismatch] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "aggregates": self.aggregates,
            "mismatches": [m.as_dict() for m in self.mismatches],
        }


def _snapshotted_ids(system: System) -> list[UUID]:
    """Every aggregate that has a snapshot (the snapshot store has no such query)."""
    snapshots = system.app.snapshots
    if snapshots is None:
        return []
    recorder: Any = snapshots.recorder
    if isinstance(recorder, PostgresAggregateRecorder):
        statement: Any = SQL("SELECT DISTINCT originator_id FROM {0}.{1}").format(
            Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name)
        )
    else:
        assert isinstance(recorder, SQLiteAggregateRecorder)
        statement = f"SELECT DISTINCT originator_id FROM {recorder.events_table_name}"
    with recorder.datastore.transaction(commit=False) as cursor:
        cursor.execute(statement)
        rows = cursor.fetchall()
    return sorted(UUID(str(row["originator_id"])) for row in rows)


def verify_snapshots(system: System) -> SnapshotReport:
    """Check every snapshot against the state its aggregate's stored events fold to.

    Snapshots are not in the hash chain; the events are. A snapshot that differs from the
    fold of the (sealed) events up to its version was altered, or taken by different
    code: either way ``state_at`` must not trust it. Memory: one aggregate at a time.
    """
    report = SnapshotReport()
    snapshots = system.app.snapshots
    if snapshots is None:
        return report
    to_event = system.app.mapper.to_domain_event
    for aggregate_id in _snapshotted_ids(system):
        report.aggregates += 1
        records = iter(system.app.recorder.select_events(aggregate_id))
        folded: Any = None
        for stored_snapshot in snapshots.recorder.select_events(aggregate_id):
            report.checked += 1
            version = stored_snapshot.originator_version
            for record in records:
                event: Any = to_event(record)
                folded = event.mutate(folded)
                if record.originator_version >= version:
                    break
            detail = None
            if folded is None or folded.version != version:
                detail = f"its aggregate has no event at version {version}"
            else:
                try:
                    snapshot: Any = to_event(stored_snapshot)
                    taken = vars(snapshot.mutate(None))
                except Exception as error:  # the stored bytes no longer decode
                    detail = f"it cannot be decoded: {error!r}"
                else:
                    if taken != vars(folded):
                        changed = sorted(
                            name
                            for name in set(taken) | set(vars(folded))
                            if taken.get(name) != vars(folded).get(name)
                        )
                        detail = f"it differs from the events' state in {', '.join(changed)}"
            if detail is not None:
                kind = type(folded).__name__ if folded is not None else "?"
                report.mismatches.append(SnapshotMismatch(str(aggregate_id), kind, version, detail))
    return report


def integrity_report(
    system: System, *, against: Checkpoint | None = None, snapshots: bool = True
) -> dict[str, Any]:
    """The chain's verification and, unless told not to, every snapshot's; one ``ok``.

    The REST answer and ``tiaokuai audit verify --json`` are this same object.
    """
    chain = system_sealer(system).verify(against=against)
    body = chain.as_dict()
    if snapshots:
        checked = verify_snapshots(system)
        body["snapshots"] = checked.as_dict()
        body["ok"] = chain.ok and checked.ok
    else:
        body["snapshots"] = None
    return body
