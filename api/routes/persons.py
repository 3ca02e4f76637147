"""/persons — personal data (个人信息) and its erasure on request (crypto-shredding)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from api.deps import Overseer, Secretariat, SystemDep
from api.responses import written
from api.schemas import WRITE_ERRORS, Erasure
from domain.errors import NotFound
from infra.bootstrap import System

router = APIRouter(prefix="/persons", tags=["persons"], responses=WRITE_ERRORS)

PersonIdPath = Annotated[
    str,
    Path(
        pattern=r"^[a-z][a-z0-9]*-[0-9a-f]{12,32}$",
        max_length=64,
        description="a person id (`p-…`) or a liaison's principal id",
    ),
]


def person_public(system: System, person_id: str) -> dict[str, Any]:
    row = system.app.persons.row(person_id)
    principal = system.app.persons.is_principal(person_id)
    if row is None and not principal:
        raise NotFound(f"person {person_id} does not exist")
    person = system.app.persons.resolve([person_id])[person_id]
    erased = row is not None and row.erased_at is not None
    return {
        "person_id": person_id,
        # A principal's (a liaison's) name is in the token table, not here: not shown.
        "name": person.name if not principal or erased else None,
        "phone": person.phone,
        "erased": erased,
        "principal": principal,
        "registered_at": row.registered_at if row else None,
        "erased_at": row.erased_at if row else None,
    }


@router.get("/{person_id}", summary="A person's current personal data, or that it was erased")
def get_person(person_id: PersonIdPath, system: SystemDep, principal: Overseer) -> dict[str, Any]:
    return person_public(system, person_id)


@router.post(
    "/{person_id}/erasure",
    summary="Erase a person (删除个人信息): delete their key, record who and why",
)
def erase(
    person_id: PersonIdPath, body: Erasure, system: SystemDep, principal: Secretariat
) -> JSONResponse:
    outcome = system.app.erase_person(
        person_id=person_id, reason=body.reason, actor=principal.actor
    )
    return written(outcome, person_public(system, person_id))
