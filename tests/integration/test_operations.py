"""/health and /metrics on the embedded default and on PostgreSQL without a bus."""

from __future__ import annotations

import re

from domain.actor import Role
from infra.bootstrap import System
from tests.integration.api_client import Api


def test_health_and_metrics_report_positions(system: System) -> None:
    api = Api(system)
    api.principal("s", Role.SECRETARIAT)
    for slug in ("postal", "commerce"):
        api.post("s", "/units", {"id": slug, "name": slug, "kind": "department"}, expect=201)

    health = api.client.get("/health").json()
    assert health["status"] == "ok"
    assert health["store"]["head"] == 2
    assert set(health["projections"]) >= {"tasks", "unit_views", "linkage", "ledger"}
    assert all(p == {"position": 2, "lag": 0} for p in health["projections"].values())

    metrics = api.client.get("/metrics")
    assert metrics.status_code == 200
    text = metrics.text
    assert re.search(r"^tiaokuai_store_head 2\.0$", text, re.M)
    assert re.search(r'^tiaokuai_projection_lag\{projection="unit_views"\} 0\.0$', text, re.M)
    # The requests above were counted by route template, not by concrete path.
    assert re.search(
        r'^tiaokuai_http_requests_total\{method="POST",route="/units",status="201"\} [1-9]',
        text,
        re.M,
    )
