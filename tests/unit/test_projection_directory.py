"""The unit directory projection."""

from __future__ import annotations

from projections.directory import UnitDirectoryProjection, get_unit, list_units
from tests.unit.envelopes import Events, iso, run


def test_units_registered_renamed_and_listed_by_slug() -> None:
    ev = Events()
    ev.unit("town-longgang", "Longgang Town", "town", at="2026-01-02T00:00")
    ev.unit("postal", "Postal Administration", at="2026-01-01T00:00")
    ev.unit("commerce", "Commerce Bureau", at="2026-01-03T00:00")
    ev.rename_unit("commerce", "Commerce and Trade Bureau", at="2026-03-01T00:00")
    views = run(UnitDirectoryProjection(), ev.log)
    assert list_units(views) == [
        {
            "id": "commerce",
            "name": "Commerce and Trade Bureau",
            "kind": "department",
            "registered_at": iso("2026-01-03T00:00"),
        },
        {
            "id": "postal",
            "name": "Postal Administration",
            "kind": "department",
            "registered_at": iso("2026-01-01T00:00"),
        },
        {
            "id": "town-longgang",
            "name": "Longgang Town",
            "kind": "town",
            "registered_at": iso("2026-01-02T00:00"),
        },
    ]
    assert get_unit(views, "town-longgang") == list_units(views)[2]
    assert get_unit(views, "nowhere") is None


def test_rename_of_an_unknown_unit_is_ignored() -> None:
    ev = Events()
    ev.rename_unit("ghost", "Ghost Bureau", at="2026-03-01T00:00")
    views = run(UnitDirectoryProjection(), ev.log)
    assert list_units(views) == []
