"""The projection interface."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import ClassVar

from projections.envelope import EventEnvelope
from projections.store import Doc, ViewStore

Peek = Callable[[str, str], Doc | None]
"""A document a store has loaded already (None if it has not, or it does not exist)."""


class Projection(ABC):
    """Folds events into the documents of the views it owns.

    ``apply`` must be deterministic (no clock, no randomness) and touch a bounded
    number of documents per event, so live views and rebuilds agree.
    """

    name: ClassVar[str]
    views: ClassVar[tuple[str, ...]]
    """The view namespaces this projection owns and nobody else writes."""
    aggregate_types: ClassVar[frozenset[str] | None] = None
    """The aggregate types whose events this projection takes (None: every type).

    Events of the other types are none of its business: they are neither applied nor
    recorded as applied (no ``applied`` version per aggregate), so their duplicates and
    order cannot matter to it. A type left out by mistake shows as views that differ
    from applying every event (the view store's tests compare the two).
    """

    @classmethod
    def takes(cls, aggregate_type: str) -> bool:
        """Whether events of ``aggregate_type`` are this projection's to apply."""
        return cls.aggregate_types is None or aggregate_type in cls.aggregate_types

    @abstractmethod
    def apply(self, event: EventEnvelope, store: ViewStore) -> None: ...

    def reads(self, event: EventEnvelope) -> Iterable[tuple[str, str]]:
        """The (view, key) documents ``apply`` will get for ``event``, known beforehand.

        A store may load them for a whole batch of events in one round trip. A document
        left out is still read when ``apply`` asks for it, so a short list costs only
        speed, never correctness.
        """
        return ()

    def reads_next(self, event: EventEnvelope, loaded: Peek) -> Iterable[tuple[str, str]]:
        """More documents ``apply`` will get, found from those ``reads`` named.

        ``loaded`` looks at what is loaded already, without reading: a task's cells, say,
        follow from its units in the task's document. A store may load them in a second
        round trip for the batch. As for ``reads``, a short list costs only speed.
        """
        return ()
