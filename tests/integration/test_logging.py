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
