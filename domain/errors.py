"""Domain exceptions. The API maps each class to an HTTP status in one place."""

from __future__ import annotations


class DomainError(Exception):
    """A command was refused by a rule of the domain."""

    code = "domain_error"


class NotFound(DomainError):
    """The aggregate or the entity inside it does not exist."""

    code = "not_found"


class AlreadyExists(DomainError):
    """An aggregate with that identity exists already."""

    code = "already_exists"


class NotPermitted(DomainError):
    """The actor may not take this decision in its capacity."""

    code = "forbidden"


class InvalidState(DomainError):
    """The command does not fit the aggregate's current state (e.g. a verified task)."""

    code = "invalid_state"


class InvariantViolated(DomainError):
    """The command's content breaks a rule (e.g. the lead listed as a co-unit)."""

    code = "invariant_violated"


class VersionMismatch(DomainError):
    """The caller's expected version (If-Match) is not the aggregate's version."""

    code = "version_mismatch"

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(f"expected version {expected}, the aggregate is at version {actual}")
        self.expected = expected
        self.actual = actual


class ConcurrentWrite(DomainError):
    """Another write to the same aggregate won the race for this version."""

    code = "conflict"
