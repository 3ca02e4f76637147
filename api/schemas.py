"""Request and response bodies, named by purpose."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from domain.chains import LinkRole

Slug = Field(pattern=r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$", min_length=1, max_length=64)
Text = Field(min_length=1, max_length=2000)
ShortText = Field(min_length=1, max_length=200)
Phone = Field(
    default=None,
    pattern=r"^\+?[0-9][0-9 -]{3,28}[0-9]$",
    max_length=30,
    description="a phone number: digits, an optional leading +, spaces or hyphens between",
)
PersonId = Field(
    default=None,
    pattern=r"^[a-z][a-z0-9]*-[0-9a-f]{12,32}$",
    max_length=64,
    description="an already known person's id (from a previous answer); omit for a new person",
)


EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
# Store positions are PostgreSQL bigints; a larger number is refused before it reaches SQL.
MAX_POSITION = 2**63 - 1


def _in_range(value: datetime) -> datetime:
    # Far from the ends of datetime's range, so that converting to UTC or the district's
    # time zone, and the views' day arithmetic, cannot overflow on a stored event.
    try:
        in_utc = value.astimezone(UTC)
    except OverflowError:
        in_utc = None
    if in_utc is None or not EARLIEST <= in_utc < LATEST:
        raise ValueError("an instant lies between the years 1900 and 9000")
    return value


Instant = Annotated[AwareDatetime, AfterValidator(_in_range)]
"""An ISO-8601 instant with its UTC offset, between the years 1900 and 9000."""

_ALLOWED_CONTROLS = {"\n", "\t"}


def _reject_controls(value: Any) -> Any:
    texts = value if isinstance(value, list) else [value]
    for text in texts:
        # A printable text holds no control character or surrogate (isprintable is
        # false for every category C*): the per-character look-up is for the rest.
        if (
            isinstance(text, str)
            and not text.isprintable()
            and any(
                unicodedata.category(ch) in ("Cc", "Cs") and ch not in _ALLOWED_CONTROLS
                for ch in text
            )
        ):
            raise ValueError("control characters are not allowed")
    return value


class Body(BaseModel):
    """A request body: unknown fields, control characters and surrogates are refused."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        return _reject_controls(value)


class ErrorBody(BaseModel):
    """Every error: a code, and a message that names the field or the rule."""

    error: str
    detail: str
    fields: list[dict[str, str]] | None = None


_ERROR_TEXT = {
    400: "Malformed JSON or header",
    401: "Missing, unknown, revoked or expired bearer token",
    403: "The principal may not do or read this",
    404: "No such resource",
    409: "The current state forbids it, or another write won",
    412: "If-Match names a version that is no longer current",
    413: "The request body is too large",
    422: "A field is invalid or a rule of the content is broken",
    503: "The store cannot be reached right now, or (views) the view did not catch up "
    "in time (read-your-writes); retry",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error statuses a route can answer."""
    return {code: {"model": ErrorBody, "description": _ERROR_TEXT[code]} for code in codes}


READ_ERRORS = error_responses(401, 403, 404, 422, 503)
WRITE_ERRORS = error_responses(400, 401, 403, 404, 409, 412, 413, 422, 503)


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
    held_at: Instant


class AttendanceRecord(Body):
    units: list[str] = Field(min_length=1, max_length=100)

    @field_validator("units")
    @classmethod
    def _slugs(cls, value: list[str]) -> list[str]:
        if any(len(u) > 64 for u in value):
            raise ValueError("a unit id is at most 64 characters")
        return value


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
    deadline: Instant
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
    new_deadline: Instant
    reason: str = Text


# ---------------------------------------------------------------- chains
class ChainEstablish(Body):
    industry: str = Slug
    name: str = ShortText


class LinkAdd(Body):
    unit: str = Slug
    role: LinkRole
    responsible_person: str = Field(min_length=1, max_length=200, description="the name")
    phone: str | None = Phone
    person_id: str | None = PersonId
    duties: list[str] = Field(min_length=1, max_length=50)

    @field_validator("duties")
    @classmethod
    def _duty_length(cls, value: list[str]) -> list[str]:
        if any(len(d) > 500 for d in value):
            raise ValueError("a duty is at most 500 characters")
        return value


class Handover(Body):
    responsible_person: str = Field(min_length=1, max_length=200, description="the name")
    phone: str | None = Phone
    person_id: str | None = PersonId
    effective_at: Instant
    reason: str = Text


# ------------------------------------------------------------ committees
class CommitteeEstablish(Body):
    name: str = ShortText
    industry: str = Slug
    supervising_unit: str = Slug


class SecretaryAppoint(Body):
    name: str = ShortText
    phone: str | None = Phone
    person_id: str | None = PersonId
    reason: str = Field(default="", max_length=2000)


class MemberAdmit(Body):
    name: str = ShortText
    enterprise: str = Field(default="", max_length=200)


class InstructorDispatch(Body):
    name: str = ShortText
    phone: str | None = Phone
    person_id: str | None = PersonId
    enterprise: str = ShortText
    enterprise_party_members: int = Field(ge=0, le=1000)


class CoverageReport(Body):
    period: str = Field(min_length=1, max_length=20)
    enterprises: int = Field(ge=0, le=10_000_000)
    organizations_covered: int = Field(ge=0, le=10_000_000)
    work_covered: int = Field(ge=0, le=10_000_000)
    party_members: int = Field(ge=0, le=10_000_000)
    workers: int = Field(ge=0, le=100_000_000)


# --------------------------------------------------------------- persons
class Erasure(Body):
    reason: str = Text


Json = dict[str, Any]
