"""Aggregates → public JSON (instants ISO-8601 in UTC)."""

from __future__ import annotations

from typing import Any

from domain.chains import ResponsibilityChain
from domain.committees import IndustryPartyCommittee
from domain.meetings import JointMeeting
from domain.persons import PersonErasure
from domain.tasks import SupervisedTask
from domain.units import Unit
from infra.envelopes import plain


def unit_public(unit: Unit) -> dict[str, Any]:
    return {
        "id": unit.slug,
        "name": unit.name,
        "kind": unit.kind.value if hasattr(unit.kind, "value") else unit.kind,
        "version": unit.version,
        "registered_at": plain(unit.registered_at),
    }


def meeting_public(meeting: JointMeeting) -> dict[str, Any]:
    return {
        "id": str(meeting.id),
        "version": meeting.version,
        "title": meeting.title,
        "held_at": plain(meeting.held_at),
        "convened_at": plain(meeting.convened_at),
        "attendance": list(meeting.attendance),
        "resolutions": [{"id": k, "text": v} for k, v in meeting.resolutions.items()],
        "closed_at": plain(meeting.closed_at),
    }


def task_public(task: SupervisedTask) -> dict[str, Any]:
    return {
        "id": str(task.id),
        "version": task.version,
        "title": task.title,
        "description": task.description,
        "industry": task.industry,
        "lead_unit": task.lead_unit,
        "co_units": list(task.co_units),
        "towns": list(task.towns),
        "deadline": plain(task.deadline),
        "weight": task.weight,
        "state": str(task.state),
        "overdue": task.overdue,
        "overdue_since": plain(task.overdue_since),
        "signatures": plain(task.signatures),
        "extension_requests": [
            {"id": rid, **plain(request)} for rid, request in task.extension_requests.items()
        ],
        "urge_count": task.urge_count,
        "meeting_id": task.meeting_id,
        "resolution_id": task.resolution_id,
        "issued_at": plain(task.issued_at),
        "completion_reported_at": plain(task.completion_reported_at),
        "verified_at": plain(task.verified_at),
    }


def chain_public(chain: ResponsibilityChain) -> dict[str, Any]:
    return {
        "industry": chain.industry,
        "version": chain.version,
        "name": chain.name,
        "established_at": plain(chain.established_at),
        "links": [link_public(chain, link_id) for link_id in chain.order],
    }


def link_public(chain: ResponsibilityChain, link_id: str) -> dict[str, Any]:
    link = chain.links[link_id]
    return {"id": link_id, "position": chain.order.index(link_id) + 1, **plain(link)}


def committee_public(committee: IndustryPartyCommittee) -> dict[str, Any]:
    return {
        "id": str(committee.id),
        "version": committee.version,
        "name": committee.name,
        "industry": committee.industry,
        "supervising_unit": committee.supervising_unit,
        "secretary": plain(committee.secretary),
        "established_at": plain(committee.established_at),
        "members": [{"id": k, **plain(v)} for k, v in committee.members.items()],
        "instructors": [{"id": k, **plain(v)} for k, v in committee.instructors.items()],
        "coverage": plain(committee.coverage),
    }


def erasure_public(erasure: PersonErasure) -> dict[str, Any]:
    return {
        "person_id": erasure.person_id,
        "version": erasure.version,
        "reason": erasure.reason,
        "erased_by": plain(erasure.erased_by),
        "erased_at": plain(erasure.erased_at),
    }
