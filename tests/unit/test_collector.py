"""The long-running processes' garbage collector settings (``infra.collector``)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from infra.collector import settle_collector
from infra.settings import Settings


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_collector")
def test_the_young_threshold_is_raised_and_start_up_frozen() -> None:
    gc.unfreeze()
    _, middle, oldest = gc.get_threshold()
    settle_collector(12_345)
    assert gc.get_threshold() == (12_345, middle, oldest)
    assert gc.get_freeze_count() > 0


@pytest.mark.usefixtures("restored_collector")
def test_zero_keeps_pythons_thresholds() -> None:
    before = gc.get_threshold()
    settle_collector(0)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() > 0


def test_the_setting_defaults_high_and_refuses_negative() -> None:
    assert Settings().gc_young_threshold == 50_000
    with pytest.raises(ValueError, match="gc_young_threshold"):
        Settings(gc_young_threshold=-1)
