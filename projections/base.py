"""The projection interface."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import ClassVar

from projections.envelope import EventEnvelope
from projections.store import ViewStore


class Projection(ABC):
    """Folds events into the documents of the views it owns.

    ``apply`` must be deterministic (no clock, no randomness) and touch a bounded
    number of documents per event, so live views and rebuilds agree.
    """

    name: ClassVar[str]
    views: ClassVar[tuple[str, ...]]
    """The view namespaces this projection owns and nobody else writes."""

    @abstractmethod
    def apply(self, event: EventEnvelope, store: ViewStore) -> None: ...

    def reads(self, event: EventEnvelope) -> Iterable[tuple[str, str]]:
        """The (view, key) documents ``apply`` will get for ``event``, known beforehand.

        A store may load them for a whole batch of events in one round trip. A document
        left out is still read when ``apply`` asks for it, so a short list costs only
        speed, never correctness.
        """
        return ()
