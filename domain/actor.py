"""Who acts: the principal behind every event."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """The three kinds of principal of DESIGN.md."""

    SECRETARIAT = "secretariat"  # 联席会议办公室
    LIAISON = "liaison"  # 部门/镇街联络员
    AUDITOR = "auditor"  # 督查/纪检


@dataclass(frozen=True)
class Actor:
    """The principal that decided: id, role and (for a liaison) unit slug."""

    principal_id: str
    role: Role
    unit: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {"id": self.principal_id, "role": self.role.value, "unit": self.unit}

    @classmethod
    def from_dict(cls, data: dict[str, str | None]) -> Actor:
        return cls(str(data["id"]), Role(str(data["role"])), data.get("unit"))

    @property
    def is_secretariat(self) -> bool:
        return self.role == Role.SECRETARIAT


SYSTEM = Actor("system:deadline-watcher", Role.SECRETARIAT, None)
"""The actor of events nobody decides, such as a deadline passing."""
