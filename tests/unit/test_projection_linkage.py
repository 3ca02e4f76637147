"""The linkage matrix (条块联动)."""

from __future__ import annotations

from typing import Any

from projections.linkage import CELLS_VIEW, LinkageProjection, linkage_matrix
from projections.store import MemoryViewStore
from tests.unit.envelopes import Events, run


def _cells(store: MemoryViewStore) -> dict[tuple[str, str], tuple[int, int, int, int]]:
    return {
        (c["unit"], c["town"]): (c["joint"], c["open"], c["overdue"], c["verified_on_time"])
        for c in linkage_matrix(store)["cells"]
    }


def test_cells_follow_state_changes_and_removals() -> None:
    ev = Events()
    proj = LinkageProjection()
    ev.issue(
        "T1",
        at="2026-11-01T00:00",
        lead="postal",
        co_units=["commerce"],
        towns=["town-a", "town-b"],
        deadline="2026-12-01T00:00",
    )
    ev.issue(
        "T2", at="2026-11-01T00:00", lead="postal", towns=["town-a"], deadline="2026-12-01T00:00"
    )
    # No town: no cell at all.
    ev.issue("T3", at="2026-11-01T00:00", lead="transport", deadline="2026-12-01T00:00")
    store = run(proj, ev.log)
    assert _cells(store) == {
        ("commerce", "town-a"): (1, 1, 0, 0),
        ("commerce", "town-b"): (1, 1, 0, 0),
        ("postal", "town-a"): (2, 2, 0, 0),
        ("postal", "town-b"): (1, 1, 0, 0),
    }

    def step(*envelopes: Any) -> None:
        run(proj, envelopes, store)

    step(ev.overdue("T1", "2026-12-01T00:00"))
    assert _cells(store)[("postal", "town-a")] == (2, 2, 1, 0)
    assert _cells(store)[("commerce", "town-b")] == (1, 1, 1, 0)

    step(ev.sign("T2", "postal", "2026-11-02T00:00"))
    step(ev.complete("T2", "2026-11-20T00:00"), ev.verify("T2", "2026-11-21T00:00"))
    assert _cells(store)[("postal", "town-a")] == (2, 1, 1, 1)

    step(ev.remove_co_unit("T1", "commerce", "2026-12-02T00:00"))
    step(ev.remove_town("T1", "town-b", "2026-12-02T00:00"))
    assert linkage_matrix(store) == {
        "units": ["postal"],
        "towns": ["town-a"],
        "cells": [
            {
                "unit": "postal",
                "town": "town-a",
                "joint": 2,
                "open": 1,
                "overdue": 1,
                "verified_on_time": 1,
            }
        ],
    }
    # The zeroed cells are gone from the store, not just hidden.
    assert sorted(store.docs[CELLS_VIEW]) == ["postal/town-a"]

    step(ev.request_extension("T1", "E1", "2026-12-20T00:00", "2026-12-02T01:00"))
    step(ev.grant("T1", "E1", "2026-12-03T00:00"))
    assert _cells(store) == {("postal", "town-a"): (2, 1, 0, 1)}

    step(ev.transfer("T1", "transport", "2026-12-04T00:00"))
    assert _cells(store) == {
        ("postal", "town-a"): (1, 0, 0, 1),
        ("transport", "town-a"): (1, 1, 0, 0),
    }

    step(ev.add_co_unit("T1", "market", "2026-12-05T00:00"))
    step(ev.add_town("T1", "town-c", "2026-12-05T00:00"))
    assert _cells(store) == {
        ("market", "town-a"): (1, 1, 0, 0),
        ("market", "town-c"): (1, 1, 0, 0),
        ("postal", "town-a"): (1, 0, 0, 1),
        ("transport", "town-a"): (1, 1, 0, 0),
        ("transport", "town-c"): (1, 1, 0, 0),
    }

    # Verified after the (extended) deadline: late, so not "verified_on_time".
    step(ev.sign("T1", "transport", "2026-12-21T00:00"))
    step(ev.complete("T1", "2026-12-22T00:00"), ev.verify("T1", "2026-12-23T00:00"))
    assert _cells(store)[("transport", "town-c")] == (1, 0, 0, 0)
    assert linkage_matrix(store)["units"] == ["market", "postal", "transport"]
    assert linkage_matrix(store)["towns"] == ["town-a", "town-c"]


def test_empty_matrix() -> None:
    assert linkage_matrix(MemoryViewStore()) == {"units": [], "towns": [], "cells": []}
