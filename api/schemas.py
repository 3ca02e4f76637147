"""Request and response bodies, named by purpose."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from domain.chains import LinkRole

Slug = Field(pattern=r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$", min_length=1, max_length=64)
Text = Field(min_length=1, max_length=2000)
ShortText = Field(min_length=1, max_length=200)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# ----------------------------------------------------------------- units
class UnitRegister(Body):
    id: str = Slug
    name: str = ShortText
    kind: Literal["department", "town"]


class UnitPublic(BaseModel):
    id: str
    name: str
    kind: str
    version: int | None = None
    registered_at: str | None = None


# -------------------------------------------------------------- meetings
class MeetingConvene(Body):
    title: str = ShortText
    held_at: AwareDatetime


class AttendanceRecord(Body):
    units: list[str] = Field(min_length=1, max_length=100)


class ResolutionAdopt(Body):
    text: str = Text


# ----------------------------------------------------------------- tasks
class TaskIssue(Body):
    title: str = ShortText
    description: str = Field(default="", max_length=4000)
    industry: str = Slug
    lead_unit: str = Slug
    co_units: list[str] = Field(default_factory=list, max_length=50)
    towns: list[str] = Field(default_factory=list, max_length=50)
    deadline: AwareDatetime
    weight: float = Field(default=1.0, gt=0, le=100)
    meeting_id: UUID | None = None
    resolution_id: str | None = Field(default=None, max_length=20)


class Note(Body):
    note: str = Field(default="", max_length=2000)


class RequiredNote(Body):
    note: str = Text


class ProgressReport(Body):
    note: str = Text
    percent: int | None = Field(default=None, ge=0, le=100)


class Reason(Body):
    reason: str = Text


class LeadTransfer(Body):
    new_lead: str = Slug
    reason: str = Text


class MembershipChange(Body):
    add: list[str] = Field(default_factory=list, max_length=50)
    remove: list[str] = Field(default_factory=list, max_length=50)
    reason: str = Field(default="", max_length=2000)


class ExtensionRequest(Body):
    new_deadline: AwareDatetime
    reason: str = Text


# ---------------------------------------------------------------- chains
class ChainEstablish(Body):
    industry: str = Slug
    name: str = ShortText


class LinkAdd(Body):
    unit: str = Slug
    role: LinkRole
    responsible_person: str = ShortText
    duties: list[str] = Field(min_length=1, max_length=50)


class Handover(Body):
    responsible_person: str = ShortText
    effective_at: AwareDatetime
    reason: str = Text


# ------------------------------------------------------------ committees
class CommitteeEstablish(Body):
    name: str = ShortText
    industry: str = Slug
    supervising_unit: str = Slug


class SecretaryAppoint(Body):
    name: str = ShortText
    reason: str = Field(default="", max_length=2000)


class MemberAdmit(Body):
    name: str = ShortText
    enterprise: str = Field(default="", max_length=200)


class InstructorDispatch(Body):
    name: str = ShortText
    enterprise: str = ShortText
    enterprise_party_members: int = Field(ge=0, le=1000)


class CoverageReport(Body):
    period: str = Field(min_length=1, max_length=20)
    enterprises: int = Field(ge=0)
    organizations_covered: int = Field(ge=0)
    work_covered: int = Field(ge=0)
    party_members: int = Field(ge=0)
    workers: int = Field(ge=0)


Json = dict[str, Any]
