"""The application services: one method per use case — load, decide, save.

``TiaokuaiApplication`` is an eventsourcing ``Application``: its repository, notification
log and snapshots are the library's. Each command returns a ``Written`` with the
aggregate after the decision and the store position it produced, which is what
read-your-writes waits for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any, ClassVar, Generic, TypeVar
from uuid import UUID

import structlog
from eventsourcing.application import AggregateNotFoundError, Application, LRUCache, Repository
from eventsourcing.persistence import IntegrityError, JSONTranscoder, Mapper
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from psycopg.sql import SQL, Composed, Identifier

from domain.actor import SYSTEM, Actor
from domain.base import TiaokuaiAggregate
from domain.chains import LinkRole, ResponsibilityChain
from domain.committees import IndustryPartyCommittee
from domain.errors import (
    AlreadyExists,
    ConcurrentWrite,
    DomainError,
    InvalidState,
    InvariantViolated,
    NotFound,
    VersionMismatch,
)
from domain.ids import chain_id, unit_id
from domain.meetings import JointMeeting
from domain.persons import Person, PersonErasure
from domain.tasks import SupervisedTask
from domain.units import Unit, UnitKind
from infra.clock import Clock, SystemClock
from infra.logging import log_saved
from infra.persons import PersonStore
from infra.transcodings import ActorAsDict, PersonAsCiphertext, PersonAsReference

A = TypeVar("A", bound=TiaokuaiAggregate)
log = structlog.get_logger(__name__)


class _StaleCopy(Exception):
    """A command decided on a cached task that another writer had moved on."""


@dataclass(frozen=True)
class Written(Generic[A]):
    """The outcome of a command: the aggregate now, the position of its last event."""

    aggregate: A
    position: int
    created_id: str | None = None


class TaskCache(LRUCache[UUID, Any]):
    """The repository's aggregate cache, for supervised tasks only.

    Tasks are loaded by nearly every command; caching them saves decoding their events
    again. A command on a task decides on the cached task as it is (``_on_task``); when
    another API process wrote since, the save conflicts, or the decision fails, and the
    command decides again on the task the repository brings up to date from the store.
    Chains hold decrypted personal data: cached, a name would outlive its erasure in
    memory, so they and the other aggregates are always read from the store.
    """

    def put(self, key: UUID, value: Any) -> Any:
        if isinstance(value, SupervisedTask):
            return super().put(key, value)
        return None


class TiaokuaiApplication(Application[UUID]):
    """Every command of the secretariat and the liaisons."""

    name = "tiaokuai"
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {
        SupervisedTask: 50,
        ResponsibilityChain: 50,
        IndustryPartyCommittee: 50,
        JointMeeting: 50,
    }

    def __init__(self, env: dict[str, str] | None = None, clock: Clock | None = None) -> None:
        super().__init__(env)
        self.clock: Clock = clock or SystemClock()
        self.saved_listeners: list[Callable[[int], None]] = []
        references = self.factory.transcoder()
        assert isinstance(references, JSONTranscoder)
        self._register_values(references)
        references.register(PersonAsReference())
        self.envelope_mapper: Mapper[UUID] = self.factory.mapper(transcoder=references)
        """Decodes stored events for envelopes: persons as ids, no key read per event."""
        # Called with a person id once its key is gone (the token cache forgets a liaison).
        self.erased_listeners: list[Callable[[str], None]] = []
        self._unit_kinds: dict[str, UnitKind] = {}

    def construct_repository(self) -> Repository[UUID]:
        repository = super().construct_repository()
        size = int(self.env.get(self.AGGREGATE_CACHE_MAXSIZE) or 0)
        # Fast-forwarded (the library's default) and copied out for each command. The
        # library reads 0 as "unbounded": here it means no cache.
        repository.cache = TaskCache(maxsize=size) if size > 0 else None
        return repository

    def _register_values(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(ActorAsDict())

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        self._register_values(transcoder)
        # Called while the library builds the mapper, before __init__ continues: the
        # key store lives in the events' database, beside but outside the events.
        self.persons = PersonStore(self.factory.datastore)  # type: ignore[attr-defined]
        self.persons.create_table()
        transcoder.register(PersonAsCiphertext(self.persons))

    # ------------------------------------------------------------ plumbing
    def _load(self, cls: type[A], aggregate_id: UUID, what: str) -> A:
        structlog.contextvars.bind_contextvars(aggregate_id=str(aggregate_id))
        try:
            aggregate: Any = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise NotFound(f"{what} does not exist") from None
        if not isinstance(aggregate, cls):
            raise NotFound(f"{what} does not exist")
        return aggregate

    def load_as_of(self, aggregate_id: UUID, *, version: int | None = None) -> TiaokuaiAggregate:
        """The aggregate at a version (or now), whatever its class."""
        try:
            aggregate: Any = self.repository.get(aggregate_id, version=version)
        except AggregateNotFoundError:
            raise NotFound(f"aggregate {aggregate_id} does not exist") from None
        assert isinstance(aggregate, TiaokuaiAggregate)
        return aggregate

    @staticmethod
    def _expect(aggregate: TiaokuaiAggregate, expected_version: int | None) -> None:
        if expected_version is not None and expected_version != aggregate.version:
            raise VersionMismatch(expected_version, aggregate.version)

    def _write(
        self,
        aggregate: A,
        *,
        expected_version: int | None = None,
        created: bool = False,
        created_id: str | None = None,
        from_cache: bool = False,
    ) -> Written[A]:
        pending = list(aggregate.pending_events)
        try:
            recordings = self.save(aggregate)
            position = max((r.notification.id for r in recordings), default=0)
        except IntegrityError:
            landed = self._landed(aggregate.id, pending)
            if landed is None:
                if from_cache:
                    raise _StaleCopy from None
                if created:
                    raise AlreadyExists(f"{type(aggregate).__name__} exists already") from None
                if expected_version is not None:
                    # The caller's precondition no longer holds: someone else wrote first.
                    raise VersionMismatch(expected_version, expected_version + 1) from None
                raise ConcurrentWrite(
                    "another write to this record happened at the same time; reload and retry"
                ) from None
            position = landed
        if self.repository.cache is not None:
            # What was just written is the newest state: the next command decides on it.
            self.repository.cache.put(aggregate.id, aggregate)
        aggregate_id = str(aggregate.id)
        structlog.contextvars.bind_contextvars(aggregate_id=aggregate_id)
        log_saved(
            log,
            aggregate_type=type(aggregate).__name__,
            aggregate_id=aggregate_id,
            version=aggregate.version,
            events=len(pending),
            position=position,
        )
        for listener in self.saved_listeners:
            listener(position)
        return Written(aggregate, position, created_id)

    def _decide(
        self,
        aggregate: A,
        expected_version: int | None,
        decide: Callable[[A, datetime], str | None],
        *,
        from_cache: bool = False,
    ) -> Written[A]:
        """Check the caller's version, let the aggregate decide now, write what it recorded."""
        self._expect(aggregate, expected_version)
        created_id = decide(aggregate, self.now())
        return self._write(
            aggregate,
            expected_version=expected_version,
            created_id=created_id,
            from_cache=from_cache,
        )

    def _landed(self, aggregate_id: UUID, pending: list[Any]) -> int | None:
        """The position of these very events if they are stored already, else None.

        eventsourcing retries an insert on a connection error. When the database went
        away after the commit reached it but before the client heard (a restart, seen in
        the soak), the retry meets its own rows and raises IntegrityError: the command
        was applied, and answering 409/412 would tell the client it was not.
        """
        if not pending:
            return None
        first, last = pending[0].originator_version, pending[-1].originator_version
        stored = self.recorder.select_events(aggregate_id, gt=first - 1, lte=last)
        if [self.mapper.to_domain_event(event) for event in stored] != pending:
            return None
        position = self._position_of(aggregate_id, last)
        if position is not None:
            log.warning("command.saved_on_retry", aggregate_id=str(aggregate_id))
        return position

    def _position_of(self, aggregate_id: UUID, version: int) -> int | None:
        """The notification id of one stored event, looked up by its primary key."""
        recorder: Any = self.recorder
        if isinstance(recorder, PostgresApplicationRecorder):
            statement: Any = SQL(
                "SELECT notification_id AS position FROM {0}.{1} "
                "WHERE originator_id = %s AND originator_version = %s"
            ).format(Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name))
            params: tuple[Any, ...] = (aggregate_id, version)
        else:
            assert isinstance(recorder, SQLiteApplicationRecorder)
            statement = (
                f"SELECT rowid AS position FROM {recorder.events_table_name} "
                "WHERE originator_id = ? AND originator_version = ?"
            )
            params = (aggregate_id.hex, version)
        with recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, params)
            row = cursor.fetchone()
        return int(row["position"]) if row else None

    def event_at(self, position: int) -> tuple[str, int, str] | None:
        """The aggregate id, version and topic of the event at a store position, if any."""
        recorder: Any = self.recorder
        if not isinstance(recorder, PostgresApplicationRecorder):
            found = recorder.select_notifications(start=position, limit=1, stop=position)
            if not found:
                return None
            return str(found[0].originator_id), found[0].originator_version, found[0].topic
        # Every read-your-writes read asks this: one statement on an autocommit
        # connection (no BEGIN and ROLLBACK around it), composed once.
        with recorder.datastore.get_connection() as conn:
            row = conn.execute(self._event_at_statement, (position,)).fetchone()
        if row is None:
            return None
        return str(row["originator_id"]), int(row["originator_version"]), str(row["topic"])

    @cached_property
    def _event_at_statement(self) -> Composed:
        recorder: Any = self.recorder
        return SQL(
            "SELECT originator_id, originator_version, topic FROM {0}.{1} "
            "WHERE notification_id = %s"
        ).format(Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name))

    def now(self) -> datetime:
        return self.clock.now()

    def head(self) -> int:
        """The position of the newest stored event (0 when empty)."""
        return self.recorder.max_notification_id() or 0

    # ---------------------------------------------------------------- units
    def unit(self, slug: str, *, field: str = "unit") -> Unit:
        return self._load(Unit, unit_id(slug), f"{field}: unit {slug!r}")

    def unit_kind(self, slug: str, *, field: str = "unit") -> UnitKind:
        """A registered unit's kind: department (条) or town (块); NotFound if there is none.

        Remembered once read: a unit is never removed and its kind never changes, and the
        views and commands that only check a unit no longer load it from the store.
        """
        kind = self._unit_kinds.get(slug)
        if kind is None:
            kind = self._unit_kinds[slug] = self.unit(slug, field=field).kind
        return kind

    def require_units(self, slugs: list[str], field: str, kind: UnitKind | None = None) -> None:
        for slug in slugs:
            found = self.unit_kind(slug, field=field)
            if kind is not None and found != kind:
                raise InvariantViolated(f"{field}: {slug!r} is a {found}, not a {kind.value}")

    def register_unit(self, *, slug: str, name: str, kind: UnitKind, actor: Actor) -> Written[Unit]:
        unit = Unit.register(slug=slug, name=name, kind=kind, actor=actor, at=self.now())
        return self._write(unit, created=True)

    def rename_unit(
        self, *, slug: str, name: str, reason: str, actor: Actor, expected_version: int | None
    ) -> Written[Unit]:
        unit = self.unit(slug)
        self._expect(unit, expected_version)
        unit.rename(name=name, reason=reason, actor=actor, at=self.now())
        return self._write(unit, expected_version=expected_version)

    # ------------------------------------------------------------- meetings
    def meeting(self, meeting_id: UUID) -> JointMeeting:
        return self._load(JointMeeting, meeting_id, f"meeting {meeting_id}")

    def convene_meeting(
        self, *, title: str, held_at: datetime, actor: Actor
    ) -> Written[JointMeeting]:
        meeting = JointMeeting.convene(title=title, held_at=held_at, actor=actor, at=self.now())
        return self._write(meeting, created=True)

    def record_attendance(
        self, *, meeting_id: UUID, units: list[str], actor: Actor, expected_version: int | None
    ) -> Written[JointMeeting]:
        meeting = self.meeting(meeting_id)
        self._expect(meeting, expected_version)
        self.require_units(units, "units")
        meeting.record_attendance(units=units, actor=actor, at=self.now())
        return self._write(meeting, expected_version=expected_version)

    def adopt_resolution(
        self, *, meeting_id: UUID, text: str, actor: Actor, expected_version: int | None
    ) -> Written[JointMeeting]:
        meeting = self.meeting(meeting_id)
        self._expect(meeting, expected_version)
        resolution_id = meeting.adopt_resolution(text=text, actor=actor, at=self.now())
        return self._write(meeting, expected_version=expected_version, created_id=resolution_id)

    def close_meeting(
        self, *, meeting_id: UUID, actor: Actor, expected_version: int | None
    ) -> Written[JointMeeting]:
        meeting = self.meeting(meeting_id)
        self._expect(meeting, expected_version)
        meeting.close(actor=actor, at=self.now())
        return self._write(meeting, expected_version=expected_version)

    # ---------------------------------------------------------------- tasks
    def task(self, task_id: UUID) -> SupervisedTask:
        return self._load(SupervisedTask, task_id, f"task {task_id}")

    def issue_task(
        self,
        *,
        title: str,
        industry: str,
        lead_unit: str,
        co_units: list[str],
        towns: list[str],
        deadline: datetime,
        weight: float,
        meeting_id: UUID | None,
        resolution_id: str | None,
        actor: Actor,
        description: str = "",
    ) -> Written[SupervisedTask]:
        self.unit_kind(lead_unit, field="lead_unit")
        self.require_units(co_units, "co_units")
        self.require_units(towns, "towns", UnitKind.TOWN)
        if meeting_id is not None:
            meeting = self._load(JointMeeting, meeting_id, f"meeting_id: meeting {meeting_id}")
            if resolution_id is not None:
                meeting.require_resolution(resolution_id)
        task = SupervisedTask.issue(
            title=title,
            description=description,
            industry=industry,
            lead_unit=lead_unit,
            co_units=co_units,
            towns=towns,
            deadline=deadline,
            weight=weight,
            meeting_id=str(meeting_id) if meeting_id else None,
            resolution_id=resolution_id,
            actor=actor,
            at=self.now(),
        )
        return self._write(task, created=True)

    def _on_task(
        self,
        task_id: UUID,
        expected_version: int | None,
        decide: Callable[[SupervisedTask, datetime], str | None],
    ) -> Written[SupervisedTask]:
        """Decide on the cached task, and again on the stored one if the cache was behind.

        The command decides on a copy (a failed command leaves nothing half-changed in the
        cache), and ``_write`` caches the written task. That saves the query that would
        bring the cached task up to date (a third of a command's extra cost over a bare
        save). If another process wrote the task since, either the save meets its
        events (a conflict, never stored) or the decision fails on the stale state; in
        both cases the task the repository brings up to date decides, as without a cache,
        and its answer, error or not, is the command's.
        """
        cache = self.repository.cache
        if cache is not None:
            try:
                cached = cache.get(task_id)
            except KeyError:
                cached = None
            if isinstance(cached, SupervisedTask):
                structlog.contextvars.bind_contextvars(aggregate_id=str(task_id))
                try:
                    copy = cached.copy_to_decide()
                    return self._decide(copy, expected_version, decide, from_cache=True)
                except (DomainError, _StaleCopy):
                    pass
        return self._decide(self.task(task_id), expected_version, decide)

    def sign_for(
        self, *, task_id: UUID, actor: Actor, expected_version: int | None = None
    ) -> Written[SupervisedTask]:
        return self._on_task(
            task_id, expected_version, lambda t, at: t.sign_for(actor=actor, at=at)
        )

    def report_progress(
        self,
        *,
        task_id: UUID,
        note: str,
        percent: int | None,
        actor: Actor,
        expected_version: int | None = None,
    ) -> Written[SupervisedTask]:
        return self._on_task(
            task_id,
            expected_version,
            lambda t, at: t.report_progress(note=note, percent=percent, actor=actor, at=at),
        )

    def report_contribution(
        self, *, task_id: UUID, note: str, actor: Actor, expected_version: int | None = None
    ) -> Written[SupervisedTask]:
        return self._on_task(
            task_id,
            expected_version,
            lambda t, at: t.report_contribution(note=note, actor=actor, at=at),
        )

    def report_completion(
        self, *, task_id: UUID, note: str, actor: Actor, expected_version: int | None = None
    ) -> Written[SupervisedTask]:
        return self._on_task(
            task_id,
            expected_version,
            lambda t, at: t.report_completion(note=note, actor=actor, at=at),
        )

    def verify_task(
        self, *, task_id: UUID, note: str, actor: Actor, expected_version: int | None = None
    ) -> Written[SupervisedTask]:
        return self._on_task(
            task_id, expected_version, lambda t, at: t.verify(note=note, actor=actor, at=at)
        )

    def return_task(
        self, *, task_id: UUID, reason: str, actor: Actor, expected_version: int | None = None
    ) -> Written[SupervisedTask]:
        return self._on_task(
            task_id,
            expected_version,
            lambda t, at: t.return_for_rework(reason=reason, actor=actor, at=at),
        )

    def urge_task(
        self, *, task_id: UUID, note: str, actor: Actor, expected_version: int | None = None
    ) -> Written[SupervisedTask]:
        return self._on_task(
            task_id, expected_version, lambda t, at: t.urge(note=note, actor=actor, at=at)
        )

    def transfer_lead(
        self,
        *,
        task_id: UUID,
        new_lead: str,
        reason: str,
        actor: Actor,
        expected_version: int | None = None,
    ) -> Written[SupervisedTask]:
        self.unit_kind(new_lead, field="new_lead")
        return self._on_task(
            task_id,
            expected_version,
            lambda t, at: t.transfer_lead(new_lead=new_lead, reason=reason, actor=actor, at=at),
        )

    def change_co_units(
        self,
        *,
        task_id: UUID,
        add: list[str],
        remove: list[str],
        reason: str,
        actor: Actor,
        expected_version: int | None = None,
    ) -> Written[SupervisedTask]:
        self.require_units(add, "add")

        def decide(task: SupervisedTask, at: datetime) -> None:
            for unit in add:
                task.add_co_unit(unit=unit, actor=actor, at=at)
            for unit in remove:
                task.remove_co_unit(unit=unit, reason=reason, actor=actor, at=at)

        return self._on_task(task_id, expected_version, decide)

    def change_towns(
        self,
        *,
        task_id: UUID,
        add: list[str],
        remove: list[str],
        reason: str,
        actor: Actor,
        expected_version: int | None = None,
    ) -> Written[SupervisedTask]:
        self.require_units(add, "add", UnitKind.TOWN)

        def decide(task: SupervisedTask, at: datetime) -> None:
            for unit in add:
                task.add_town(unit=unit, actor=actor, at=at)
            for unit in remove:
                task.remove_town(unit=unit, reason=reason, actor=actor, at=at)

        return self._on_task(task_id, expected_version, decide)

    def request_extension(
        self,
        *,
        task_id: UUID,
        new_deadline: datetime,
        reason: str,
        actor: Actor,
        expected_version: int | None = None,
    ) -> Written[SupervisedTask]:
        return self._on_task(
            task_id,
            expected_version,
            lambda t, at: t.request_extension(
                new_deadline=new_deadline, reason=reason, actor=actor, at=at
            ),
        )

    def grant_extension(
        self,
        *,
        task_id: UUID,
        request_id: str,
        note: str,
        actor: Actor,
        expected_version: int | None = None,
    ) -> Written[SupervisedTask]:
        return self._on_task(
            task_id,
            expected_version,
            lambda t, at: t.grant_extension(request_id=request_id, note=note, actor=actor, at=at),
        )

    def deny_extension(
        self,
        *,
        task_id: UUID,
        request_id: str,
        reason: str,
        actor: Actor,
        expected_version: int | None = None,
    ) -> Written[SupervisedTask]:
        return self._on_task(
            task_id,
            expected_version,
            lambda t, at: t.deny_extension(
                request_id=request_id, reason=reason, actor=actor, at=at
            ),
        )

    def mark_overdue(self, *, task_id: UUID) -> Written[SupervisedTask] | None:
        """Record TaskBecameOverdue if the deadline has passed; None when nothing to do."""
        task = self.task(task_id)
        if not task.mark_overdue(actor=SYSTEM, at=self.now()):
            return None
        try:
            return self._write(task)
        except ConcurrentWrite:
            # Another watcher or a command got there first; the next tick looks again.
            return None

    # -------------------------------------------------------------- persons
    def person(self, *, name: str, phone: str | None, person_id: str | None, field: str) -> Person:
        """The person a command names: a new one, or a known one by ``person_id``."""
        if person_id is not None:
            row = self.persons.row(person_id)
            if row is not None and row.erased_at is not None:
                raise InvalidState(f"person_id: person {person_id} was erased")
            if row is None or self.persons.key_of(person_id) is None:
                raise NotFound(f"person_id: no person {person_id!r}")
            if phone is None:
                # Naming a known person without a phone keeps the phone on record.
                phone = self.persons.resolve([person_id])[person_id].phone
        try:
            return Person.new(name, phone, person_id=person_id)
        except InvariantViolated as error:
            text = str(error)
            if text.startswith("name:"):
                text = field + text[len("name") :]
            raise InvariantViolated(text) from None

    def _register(self, *persons: Person) -> None:
        # Before the save, so the transcoding finds the key and the latest name/phone
        # is what views resolve. A refused save leaves an unreferenced, erasable row.
        for person in persons:
            self.persons.register(person)

    def erase_person(self, *, person_id: str, reason: str, actor: Actor) -> Written[PersonErasure]:
        """Crypto-shred a person: record who erased them and why, then delete the key."""
        erasure = PersonErasure.erase(
            person_id=person_id, reason=reason, actor=actor, at=self.now()
        )
        row = self.persons.row(person_id)
        if row is None:
            if not self.persons.is_principal(person_id):
                raise NotFound(f"person {person_id} does not exist")
            self.persons.register_principal(person_id)
        elif row.erased_at is not None:
            raise InvalidState(f"person {person_id} was erased at {row.erased_at}")
        try:
            written = self._write(erasure, created=True)
        except AlreadyExists:
            # A crash between the event and the key deletion: finish the erasure.
            self.persons.erase(person_id, at=self.now())
            raise InvalidState(f"person {person_id} was erased already") from None
        self.persons.erase(person_id, at=erasure.erased_at)
        for listener in self.erased_listeners:
            listener(person_id)
        return written

    # --------------------------------------------------------------- chains
    def chain(self, industry: str) -> ResponsibilityChain:
        return self._load(
            ResponsibilityChain, chain_id(industry), f"responsibility chain {industry!r}"
        )

    def establish_chain(
        self, *, industry: str, name: str, actor: Actor
    ) -> Written[ResponsibilityChain]:
        chain = ResponsibilityChain.establish(
            industry=industry, name=name, actor=actor, at=self.now()
        )
        return self._write(chain, created=True)

    def add_chain_link(
        self,
        *,
        industry: str,
        unit: str,
        role: LinkRole,
        responsible_person: str,
        duties: list[str],
        actor: Actor,
        expected_version: int | None = None,
        phone: str | None = None,
        person_id: str | None = None,
    ) -> Written[ResponsibilityChain]:
        chain = self.chain(industry)
        self._expect(chain, expected_version)
        self.unit_kind(unit)
        person = self.person(
            name=responsible_person, phone=phone, person_id=person_id, field="responsible_person"
        )
        link_id = chain.add_link(
            unit=unit,
            role=role,
            responsible_person=person,
            duties=duties,
            actor=actor,
            at=self.now(),
        )
        self._register(person)
        return self._write(chain, expected_version=expected_version, created_id=link_id)

    def hand_over_link(
        self,
        *,
        industry: str,
        link_id: str,
        responsible_person: str,
        effective_at: datetime,
        reason: str,
        actor: Actor,
        expected_version: int | None = None,
        phone: str | None = None,
        person_id: str | None = None,
    ) -> Written[ResponsibilityChain]:
        chain = self.chain(industry)
        self._expect(chain, expected_version)
        person = self.person(
            name=responsible_person, phone=phone, person_id=person_id, field="responsible_person"
        )
        chain.hand_over(
            link_id=link_id,
            responsible_person=person,
            effective_at=effective_at,
            reason=reason,
            actor=actor,
            at=self.now(),
        )
        self._register(person)
        return self._write(chain, expected_version=expected_version)

    # ----------------------------------------------------------- committees
    def committee(self, committee_id: UUID) -> IndustryPartyCommittee:
        return self._load(IndustryPartyCommittee, committee_id, f"committee {committee_id}")

    def establish_committee(
        self, *, name: str, industry: str, supervising_unit: str, actor: Actor
    ) -> Written[IndustryPartyCommittee]:
        self.unit(supervising_unit, field="supervising_unit")
        committee = IndustryPartyCommittee.establish(
            name=name,
            industry=industry,
            supervising_unit=supervising_unit,
            actor=actor,
            at=self.now(),
        )
        return self._write(committee, created=True)

    def _on_committee(
        self,
        committee_id: UUID,
        expected_version: int | None,
        decide: Callable[[IndustryPartyCommittee, datetime], str | None],
    ) -> Written[IndustryPartyCommittee]:
        return self._decide(self.committee(committee_id), expected_version, decide)

    def appoint_secretary(
        self,
        *,
        committee_id: UUID,
        name: str,
        reason: str,
        actor: Actor,
        expected_version: int | None = None,
        phone: str | None = None,
        person_id: str | None = None,
    ) -> Written[IndustryPartyCommittee]:
        person = self.person(name=name, phone=phone, person_id=person_id, field="name")

        def decide(committee: IndustryPartyCommittee, at: datetime) -> None:
            committee.appoint_secretary(name=person, reason=reason, actor=actor, at=at)
            self._register(person)

        return self._on_committee(committee_id, expected_version, decide)

    def admit_member(
        self,
        *,
        committee_id: UUID,
        name: str,
        enterprise: str,
        actor: Actor,
        expected_version: int | None = None,
    ) -> Written[IndustryPartyCommittee]:
        return self._on_committee(
            committee_id,
            expected_version,
            lambda c, at: c.admit_member(name=name, enterprise=enterprise, actor=actor, at=at),
        )

    def remove_member(
        self,
        *,
        committee_id: UUID,
        member_id: str,
        reason: str,
        actor: Actor,
        expected_version: int | None = None,
    ) -> Written[IndustryPartyCommittee]:
        return self._on_committee(
            committee_id,
            expected_version,
            lambda c, at: c.remove_member(member_id=member_id, reason=reason, actor=actor, at=at),
        )

    def dispatch_instructor(
        self,
        *,
        committee_id: UUID,
        name: str,
        enterprise: str,
        enterprise_party_members: int,
        actor: Actor,
        expected_version: int | None = None,
        phone: str | None = None,
        person_id: str | None = None,
    ) -> Written[IndustryPartyCommittee]:
        person = self.person(name=name, phone=phone, person_id=person_id, field="name")

        def decide(committee: IndustryPartyCommittee, at: datetime) -> str:
            instructor_id = committee.dispatch_instructor(
                name=person,
                enterprise=enterprise,
                enterprise_party_members=enterprise_party_members,
                actor=actor,
                at=at,
            )
            self._register(person)
            return instructor_id

        return self._on_committee(committee_id, expected_version, decide)

    def recall_instructor(
        self,
        *,
        committee_id: UUID,
        instructor_id: str,
        reason: str,
        actor: Actor,
        expected_version: int | None = None,
    ) -> Written[IndustryPartyCommittee]:
        return self._on_committee(
            committee_id,
            expected_version,
            lambda c, at: c.recall_instructor(
                instructor_id=instructor_id, reason=reason, actor=actor, at=at
            ),
        )

    def report_coverage(
        self,
        *,
        committee_id: UUID,
        period: str,
        enterprises: int,
        organizations_covered: int,
        work_covered: int,
        party_members: int,
        workers: int,
        actor: Actor,
        expected_version: int | None = None,
    ) -> Written[IndustryPartyCommittee]:
        def decide(committee: IndustryPartyCommittee, at: datetime) -> None:
            committee.report_coverage(
                period=period,
                enterprises=enterprises,
                organizations_covered=organizations_covered,
                work_covered=work_covered,
                party_members=party_members,
                workers=workers,
                actor=actor,
                at=at,
            )

        return self._on_committee(committee_id, expected_version, decide)
