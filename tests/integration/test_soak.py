"""The short soak (about a minute) of ``bench/soak.py``, as part of ``make test``.

Every role's clients against ``tiaokuai serve``, the relay and two projection workers on a
private PostgreSQL cluster and a Tansu broker, while the relay and a worker are killed
with -9, a worker is stopped with SIGTERM, the broker is paused and PostgreSQL restarts.
Nothing accepted may be lost or stored twice, the chain must verify and every view must
equal a rebuild. The full run (``make soak``, 300 s) and its figures: docs/reliability.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.soak import SoakOptions, print_report, run_soak

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

SEED = 20261201


def test_short_soak_loses_nothing_under_faults(tmp_path: Path) -> None:
    result = run_soak(
        SoakOptions(
            seconds=60,
            seed=SEED,
            faults="short",
            work_dir=tmp_path / "soak",
            json_path=tmp_path / "soak.json",
        )
    )
    print_report(result)
    struck = [f for f in result["faults"] if "error" not in f]
    assert {f["fault"] for f in struck} >= {
        "kill9_relay",
        "kill9_worker",
        "pause_broker",
        "restart_postgres",
        "sigterm_worker",
    }, result["faults"]
    assert result["postgres_restarts"] == 1
    # A SIGTERMed worker drains and exits 0, also under load.
    assert all(f["exit_code"] == 0 for f in struck if f["fault"].startswith("sigterm")), struck
    checks = result["checks"]
    assert checks["lost"] == []
    assert checks["duplicated"] == {}
    assert checks["mismatched"] == []
    assert checks["rejected_but_stored"] == []
    assert checks["unexplained"] == []
    assert checks["counts_differ"] == {}
    assert checks["integrity"]["ok"], checks["integrity"]
    assert checks["integrity"]["checked"] >= checks["stored_events"]
    assert checks["drift"] == 0, checks["drift_examples"]
    assert result["catch_up_seconds"] is not None
    assert result["must_refuse_accepted"] == []
    assert result["health_failures"] == []
    # Enough happened for the checks to mean something, also on a loaded machine.
    assert result["accepted"] >= 150, result["accepted"]
    assert sum(result["must_refuse"].values()) >= 20, result["must_refuse"]
    # A consumer group wedged on Tansu is recovered with a fresh broker, and reported;
    # all the checks above hold either way (docs/reliability.md).
    print(f"broker recoveries: {result['broker_recoveries']}")
    assert result["ok"]
