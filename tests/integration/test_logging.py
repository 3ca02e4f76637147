"""Log lines carry the request id, the principal and the aggregate id."""

from __future__ import annotations

import json
import logging

import structlog
from structlog.testing import capture_logs

from domain.actor import SYSTEM, Role
from domain.ids import unit_id
from domain.units import UnitKind
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
    # One line for the request, naming what it saved; no line of its own per command.
    assert [entry for entry in logs if entry["event"] == "command.saved"] == []
    request_line = [entry for entry in logs if entry["event"] == "request"]
    assert len(request_line) == 1
    line = request_line[0]
    assert line["request_id"] == "req-42"
    assert line["principal"] == principal.principal_id
    assert line["status"] == 201
    assert line["aggregate_id"] == str(unit_id("postal"))
    [saved] = line["saved"]
    assert saved["aggregate_type"] == "Unit"
    assert saved["aggregate_id"] == str(unit_id("postal"))
    assert saved["version"] == 1
    assert saved["position"] == int(response.headers["X-Tiaokuai-Position"])


def test_a_command_saved_outside_a_request_logs_its_own_line(system: System) -> None:
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        written = system.app.register_unit(
            slug="postal", name="邮政管理局", kind=UnitKind.DEPARTMENT, actor=SYSTEM
        )
    [saved] = [entry for entry in logs if entry["event"] == "command.saved"]
    assert saved["aggregate_type"] == "Unit"
    assert saved["aggregate_id"] == str(written.aggregate.id)
    assert saved["position"] == written.position


def test_a_request_that_saves_nothing_names_nothing(system: System) -> None:
    api = Api(system)
    api.principal("s", Role.SECRETARIAT)
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        response = api.client.get("/units", headers=api.headers("s"))
    assert response.status_code == 200
    [line] = [entry for entry in logs if entry["event"] == "request"]
    assert "saved" not in line and "aggregate_id" not in line


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
