"""Log lines carry the request id, the principal and the aggregate id."""

from __future__ import annotations

import json
import logging

import structlog
from structlog.testing import capture_logs

from domain.actor import Role
from domain.ids import unit_id
from infra.bootstrap import System
from infra.logging import configure_logging
from tests.integration.api_client import Api


def test_command_log_binds_request_principal_and_aggregate(system: System) -> None:
    api = Api(system)
    api.principal("s", Role.SECRETARIAT)
    principal = system.tokens.resolve(api.tokens["s"])
    assert principal is not None
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        response = api.client.post(
            "/units",
            json={"id": "postal", "name": "邮政管理局", "kind": "department"},
            headers={**api.headers("s"), "X-Request-Id": "req-42"},
        )
    assert response.status_code == 201
    assert response.headers["X-Request-Id"] == "req-42"
    saved = [entry for entry in logs if entry["event"] == "command.saved"]
    assert len(saved) == 1
    assert saved[0]["request_id"] == "req-42"
    assert saved[0]["principal"] == principal.principal_id
    assert saved[0]["aggregate_type"] == "Unit"
    assert saved[0]["aggregate_id"] == str(unit_id("postal"))
    request_line = [entry for entry in logs if entry["event"] == "request"]
    assert request_line[-1]["principal"] == principal.principal_id
    assert request_line[-1]["status"] == 201


def test_production_logs_are_json_lines() -> None:
    import sys
    from io import StringIO

    buffer = StringIO()
    real = sys.stderr
    sys.stderr = buffer
    try:
        structlog.reset_defaults()
        configure_logging(json=True, level=logging.INFO)
        structlog.contextvars.bind_contextvars(request_id="r1")
        structlog.get_logger("t").info("task.issued", title="快递员")
    finally:
        structlog.contextvars.clear_contextvars()
        sys.stderr = real
        structlog.reset_defaults()
    line = json.loads(buffer.getvalue().strip().splitlines()[-1])
    assert line["event"] == "task.issued"
    assert line["request_id"] == "r1"
    assert line["title"] == "快递员"
    assert line["level"] == "info"


def test_a_request_without_an_id_gets_one_of_its_own(system: System) -> None:
    api = Api(system)
    api.principal("s", Role.SECRETARIAT)
    seen = set()
    for _ in range(2):
        response = api.client.get("/units", headers=api.headers("s"))
        assert response.status_code == 200
        ids = [v for k, v in response.headers.multi_items() if k.lower() == "x-request-id"]
        assert len(ids) == 1
        assert len(ids[0]) == 32 and int(ids[0], 16) >= 0
        seen.add(ids[0])
    assert len(seen) == 2
