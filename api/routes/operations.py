"""/health and /metrics: for operators and Prometheus, no token needed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from api.deps import SystemDep
from infra.bootstrap import System
from infra.observability import status

router = APIRouter(tags=["operations"])

REQUESTS = Counter(
    "tiaokuai_http_requests_total",
    "HTTP requests by route and status",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "tiaokuai_http_request_seconds",
    "HTTP request latency by route",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


class PipelineCollector(Collector):
    """Positions read from the store on each scrape."""

    def __init__(self, system: System) -> None:
        self.system = system

    def collect(self) -> Iterator[Metric]:
        report = status(self.system, with_broker_offsets=True)
        head = GaugeMetricFamily("tiaokuai_store_head", "Position of the newest stored event")
        head.add_metric([], report["store"]["head"])
        yield head
        if "relay" in report:
            relay = GaugeMetricFamily(
                "tiaokuai_relay_position", "Last position the broker acknowledged"
            )
            relay.add_metric([], report["relay"]["position"])
            yield relay
            relay_lag = GaugeMetricFamily("tiaokuai_relay_lag", "Events stored but not relayed")
            relay_lag.add_metric([], report["relay"]["lag"])
            yield relay_lag
        position = GaugeMetricFamily(
            "tiaokuai_projection_position",
            "Position applied by a projection",
            labels=["projection"],
        )
        lag = GaugeMetricFamily(
            "tiaokuai_projection_lag", "Events behind the store head", labels=["projection"]
        )
        for name, values in report["projections"].items():
            position.add_metric([name], values["position"])
            lag.add_metric([name], values["lag"])
        yield position
        yield lag
        failed = GaugeMetricFamily(
            "tiaokuai_projection_failed",
            "1 when a projection stopped on an event it cannot apply",
            labels=["projection"],
        )
        for name, values in report["projections"].items():
            failed.add_metric([name], 1.0 if values.get("status") == "failed" else 0.0)
        yield failed
        if "consumer_lag" in report:
            group_lag = GaugeMetricFamily(
                "tiaokuai_consumer_group_lag",
                "Messages in the topic not yet consumed by a group",
                labels=["group", "partition"],
            )
            for row in report["consumer_lag"]:
                group_lag.add_metric([row["group"], str(row["partition"])], row["lag"])
            yield group_lag
        if "workers" in report:
            age = GaugeMetricFamily(
                "tiaokuai_worker_heartbeat_age_seconds",
                "Seconds since a worker's last heartbeat",
                labels=["worker", "kind"],
            )
            for worker in report["workers"]:
                age.add_metric([worker["name"], worker["kind"]], worker["age_seconds"])
            yield age
        if "broker" in report:
            up = GaugeMetricFamily("tiaokuai_broker_up", "1 when a broker accepts connections")
            up.add_metric([], 1.0 if report["broker"]["reachable"] else 0.0)
            yield up


@router.get(
    "/health",
    summary="Store, broker and workers",
    description=(
        "`status` is `ok`; `degraded` when the broker is unreachable (commands still "
        "succeed); `failing` when a projection stopped on an event it cannot apply "
        "(`failures` and that projection's `failure` name the event: position, type, "
        "aggregate, error; its views stay behind it). Both answer 200: the API serves. "
        "503 only when the store cannot be reached."
    ),
    responses={503: {"description": "The store cannot be reached"}},
)
def health(system: SystemDep) -> JSONResponse:
    try:
        report: dict[str, Any] = status(system)
    except Exception as error:  # the store itself is down: say so, as a 503
        return JSONResponse(
            {"status": "unavailable", "store": {"error": repr(error)}}, status_code=503
        )
    healthy = report.get("broker", {}).get("reachable", True)
    if report.get("failures"):
        report["status"] = "failing"
    else:
        report["status"] = "ok" if healthy else "degraded"
    return JSONResponse(report)


@router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
def metrics(system: SystemDep) -> Response:
    registry = CollectorRegistry()
    registry.register(PipelineCollector(system))
    body = generate_latest(registry) + generate_latest()
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
