"""Projections keep the rule that lets a batch share documents instead of copying them.

The batch of the view recorders (``infra.view_store._Batch``) hands a projection the
cached document itself and keeps the one it is given, so each document is parsed and
serialised once per batch. That is right only if a projection changes nothing it got
without putting (or deleting) it afterwards, and puts nothing it goes on changing under
another key or view. ``SharingStore`` shares as the batch does and remembers what every
document was when it was last put: any change behind its back shows as a difference.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest

from projections.registry import build_projections
from projections.store import Doc, MemoryViewStore
from tests.unit.envelopes import rich_history


class SharingStore:
    """A ViewStore that shares documents as the SQL batch does, and checks the rule."""

    def __init__(self) -> None:
        self.docs: dict[tuple[str, str], Doc] = {}
        self.as_put: dict[tuple[str, str], Doc] = {}

    def get(self, view: str, key: str) -> Doc | None:
        return self.docs.get((view, key))

    def put(self, view: str, key: str, doc: Doc) -> None:
        self.docs[(view, key)] = doc
        self.as_put[(view, key)] = copy.deepcopy(doc)

    def delete(self, view: str, key: str) -> None:
        self.docs.pop((view, key), None)
        self.as_put.pop((view, key), None)

    def scan(self, view: str, prefix: str = "") -> Iterator[tuple[str, Doc]]:
        for (v, key), doc in sorted(self.docs.items()):
            if v == view and key.startswith(prefix):
                yield key, doc

    def changed_behind_its_back(self) -> list[tuple[str, str]]:
        return [pair for pair, doc in self.docs.items() if doc != self.as_put[pair]]


@pytest.mark.parametrize("projection_major", [True, False])
def test_no_projection_changes_a_document_it_did_not_put(projection_major: bool) -> None:
    log = rich_history().log
    projections = build_projections()
    shared, copied = SharingStore(), MemoryViewStore()
    # Projection-major is how a batch applies (each projection over the whole poll);
    # event-major lets projections interleave on documents built from one event.
    order = (
        [(p, e) for p in projections for e in log]
        if projection_major
        else [(p, e) for e in log for p in projections]
    )
    for projection, envelope in order:
        projection.apply(envelope, shared)
        projection.apply(envelope, copied)
        assert shared.changed_behind_its_back() == [], (projection.name, envelope.type)
    for projection in projections:
        for view in projection.views:
            assert dict(shared.scan(view)) == dict(copied.scan(view)), view
    assert shared.docs, "the history builds documents"
