"""/audit/integrity — re-check the hash chain and the snapshots (auditor, secretariat)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from api.deps import Overseer, SystemDep
from api.schemas import READ_ERRORS
from infra.audit import integrity_report
from infra.integrity import Checkpoint

router = APIRouter(prefix="/audit", tags=["audit"], responses=READ_ERRORS)

Against = Annotated[
    str | None,
    Query(
        description="A checkpoint kept outside the system, as printed by "
        "`tiaokuai audit checkpoint`: tiaokuai-checkpoint:<position>:<64 hex digits>. "
        "The recomputed chain must reach exactly that hash at that position, which "
        "also catches a consistent rewrite of every event and seal before it.",
        examples=["tiaokuai-checkpoint:42:" + "0" * 64],
    ),
]


@router.get(
    "/integrity",
    summary="Integrity check: recompute the hash chain over the stored events",
    description="Streams every stored event and its seal in position order and recomputes "
    'the SHA-256 chain (docs/audit.md, "Integrity"). `ok` is false when a stored event '
    "was edited, deleted, inserted or reordered, and `first_failure` names the first "
    "position that fails and how; events stored after the last seal are counted as "
    "`unsealed`, which is not a failure. Then every snapshot is folded against its "
    "aggregate's events (snapshots are outside the chain): `snapshots.mismatches` names "
    "each one that differs, and `ok` is false if any does. The answer is 200 either way.",
)
def get_integrity(
    system: SystemDep,
    principal: Overseer,
    against: Against = None,
    snapshots: Annotated[
        bool,
        Query(description="Also check every snapshot against its events (the default)."),
    ] = True,
) -> dict[str, Any]:
    checkpoint = None
    if against is not None:
        try:
            checkpoint = Checkpoint.parse(against)
        except ValueError as error:
            raise HTTPException(422, f"against: {error}") from None
    return integrity_report(system, against=checkpoint, snapshots=snapshots)
