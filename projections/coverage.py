"""The coverage board: per industry party committee (行业党委), organizations, instructors
(党建指导员) and coverage ratios (组织覆盖 / 工作覆盖) of the latest reported period."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from projections.base import Projection
from projections.envelope import EventEnvelope
from projections.store import Doc, ViewStore
from projections.timeutil import iso

COMMITTEE_AGGREGATE = "IndustryPartyCommittee"
COMMITTEES_VIEW = "coverage_committees"
"""One document per committee, keyed by committee id."""

_MEMBERS = "_members"  # active member organizations by id; internal, not returned


def _ratio(covered: int, enterprises: int) -> float | None:
    return covered / enterprises if enterprises else None


class CoverageProjection(Projection):
    """Committee documents from the events of ``IndustryPartyCommittee``."""

    name: ClassVar[str] = "coverage"
    views: ClassVar[tuple[str, ...]] = (COMMITTEES_VIEW,)
    aggregate_types: ClassVar[frozenset[str] | None] = frozenset({COMMITTEE_AGGREGATE})

    def reads(self, event: EventEnvelope) -> Iterable[tuple[str, str]]:
        if event.aggregate_type == COMMITTEE_AGGREGATE and event.type != "CommitteeEstablished":
            return [(COMMITTEES_VIEW, event.aggregate_id)]
        return ()

    def apply(self, event: EventEnvelope, store: ViewStore) -> None:
        if event.aggregate_type != COMMITTEE_AGGREGATE:
            return
        data = event.data
        if event.type == "CommitteeEstablished":
            store.put(
                COMMITTEES_VIEW,
                event.aggregate_id,
                {
                    "id": event.aggregate_id,
                    "name": data["name"],
                    "industry": data["industry"],
                    "supervising_unit": data["supervising_unit"],
                    "established_at": iso(event.at),
                    "secretary": None,
                    "member_organizations": 0,
                    "instructors": 0,
                    "instructor_list": [],
                    "latest_period": None,
                    "coverage": {},
                    "organization_coverage": None,
                    "work_coverage": None,
                    _MEMBERS: {},
                },
            )
            return
        doc = store.get(COMMITTEES_VIEW, event.aggregate_id)
        if doc is None:
            return
        at = iso(event.at)
        kind = event.type
        if kind == "SecretaryAppointed":
            doc["secretary"] = data["name"]  # a person reference, like instructors
        elif kind == "MemberOrganizationJoined":
            doc[_MEMBERS][data["member_id"]] = {
                "name": data["name"],
                "enterprise": data.get("enterprise"),
                "joined_at": at,
            }
        elif kind == "MemberOrganizationLeft":
            doc[_MEMBERS].pop(data["member_id"], None)
        elif kind == "InstructorDispatched":
            doc["instructor_list"].append(
                {
                    "id": data["instructor_id"],
                    # A person reference {"person_id"}: the name is resolved when read.
                    "person": data["name"],
                    "enterprise": data["enterprise"],
                    "enterprise_party_members": data.get("enterprise_party_members"),
                    "dispatched_at": at,
                }
            )
        elif kind == "InstructorRecalled":
            doc["instructor_list"] = [
                i for i in doc["instructor_list"] if i["id"] != data["instructor_id"]
            ]
        elif kind == "CoverageReported":
            figures = {
                name: int(data[name])
                for name in (
                    "enterprises",
                    "organizations_covered",
                    "work_covered",
                    "party_members",
                    "workers",
                )
            }
            doc["coverage"][data["period"]] = figures
            doc["latest_period"] = data["period"]
            doc["organization_coverage"] = _ratio(
                figures["organizations_covered"], figures["enterprises"]
            )
            doc["work_coverage"] = _ratio(figures["work_covered"], figures["enterprises"])
        else:
            return
        doc["member_organizations"] = len(doc[_MEMBERS])
        doc["instructors"] = len(doc["instructor_list"])
        store.put(COMMITTEES_VIEW, event.aggregate_id, doc)


def _public(doc: Doc) -> dict[str, Any]:
    return {key: value for key, value in doc.items() if not key.startswith("_")}


def coverage_board(store: ViewStore) -> dict[str, Any]:
    """{"committees": [...]} sorted by industry, then name."""
    committees = sorted(
        (_public(doc) for _, doc in store.scan(COMMITTEES_VIEW)),
        key=lambda c: (c["industry"], c["name"], c["id"]),
    )
    return {"committees": committees}
