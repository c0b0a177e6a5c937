"""/metrics: requests labelled by route template (never a raw path, so never a case id), the
runtime's figures read at scrape time, and the Grafana dashboard querying only metrics that exist."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from starlette.types import ASGIApp, Receive, Scope, Send

from shared import metrics
from shared.ops_api import ConsumerState

DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "zhengming.json"
CASE_ID = "ZM-331122-2026-000123"


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, s.labels, s.value) for f in text_string_to_metric_families(text) for s in f.samples]


def requests_of(text: str, service: str) -> dict[tuple[str, str, str], float]:
    return {
        (labels["method"], labels["route"], labels["status"]): value
        for name, labels, value in samples(text)
        if name == "zm_http_requests_total" and labels["service"] == service
    }


def app_of(service: str) -> FastAPI:
    app = FastAPI()

    @app.get("/cases/{case_id}")
    async def case(case_id: str) -> dict[str, str]:
        return {"case_id": case_id}

    @app.post("/cases/{case_id}/boom")
    async def boom(case_id: str) -> None:
        raise RuntimeError("unexpected")

    @app.post("/cases/{case_id}/replay", status_code=201)
    async def replay(case_id: str) -> None:
        raise AssertionError("answered by the middleware")

    app.add_middleware(Replaying)
    metrics.install_http(app, service)
    return app


class Replaying:
    """Answers before routing, as the idempotency middleware does with a replay."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/replay"):
            await send({"type": "http.response.start", "status": 201, "headers": []})
            await send({"type": "http.response.body", "body": b"{}"})
            return
        await self.app(scope, receive, send)


async def test_requests_are_counted_by_route_template_and_status() -> None:
    app = app_of("unit-http")
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        for _ in range(2):
            assert (await http.get(f"/cases/{CASE_ID}")).status_code == 200
        assert (await http.get(f"/no/such/{CASE_ID}")).status_code == 404
        assert (await http.get(f"/elsewhere/{CASE_ID}-2")).status_code == 404
        assert (await http.post(f"/cases/{CASE_ID}")).status_code == 405
        assert (await http.post(f"/cases/{CASE_ID}/boom")).status_code == 500
        assert (await http.post(f"/cases/{CASE_ID}/replay")).status_code == 201
        scraped = await http.get("/metrics")
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    text = scraped.text
    seen = requests_of(text, "unit-http")
    assert seen[("GET", "/cases/{case_id}", "200")] == 2
    # Two different unknown paths, one label value.
    assert seen[("GET", metrics.UNMATCHED, "404")] == 2
    assert seen[("POST", "/cases/{case_id}", "405")] == 1
    assert seen[("POST", "/cases/{case_id}/boom", "500")] == 1
    assert seen[("POST", "/cases/{case_id}/replay", "201")] == 1
    assert CASE_ID not in text
    latency = [
        v
        for name, labels, v in samples(text)
        if name == "zm_http_request_duration_seconds_count"
        and labels["service"] == "unit-http"
        and labels["route"] == "/cases/{case_id}"
        and labels["method"] == "GET"
    ]
    assert latency == [2]
    assert "/metrics" not in app.openapi()["paths"]


class Pool:
    def get_size(self) -> int:
        return 5

    def get_idle_size(self) -> int:
        return 2

    def get_max_size(self) -> int:
        return 10


def state(consumer: str, lag: int) -> ConsumerState:
    return ConsumerState(
        consumer=consumer,
        group_id=f"zm.{consumer}",
        partitions=3,
        lag=lag,
        dead_letters=4,
        dead_letters_pending=1,
        dead_letter_topic=f"zm.dlq.{consumer}",
        applied=7,
        duplicates=1,
        stopped=None,
    )


def test_runtime_figures_are_read_at_scrape_time() -> None:
    consumer = SimpleNamespace(
        name="review-intake",
        counts={"applied": 7, "duplicate": 1, "dead_letter": 2, "skipped": 3},
        failure=None,
    )
    now = datetime.now(UTC)
    runtime: Any = SimpleNamespace(
        service="unit-runtime",
        pool=Pool(),
        consumers=[consumer],
        consumer_states=(now, [state("review-intake", 12)]),
        checkpoint_at=now - timedelta(seconds=30),
    )
    collector = metrics.RuntimeCollector()
    watched = collector.watch(runtime)
    watched.outbox = metrics.OutboxFigures(pending=3, oldest_age_s=1.5)
    got = {(s.name, tuple(sorted(s.labels.items()))): s.value for m in collector.collect() for s in m.samples}
    svc = ("service", "unit-runtime")
    assert got[("zm_db_pool_connections", (svc, ("state", "in_use")))] == 3
    assert got[("zm_db_pool_connections", (svc, ("state", "idle")))] == 2
    assert got[("zm_db_pool_max_connections", (svc,))] == 10
    assert got[("zm_outbox_pending", (svc,))] == 3
    assert got[("zm_outbox_relay_lag_seconds", (svc,))] == 1.5
    by = ("consumer", "review-intake")
    for outcome, n in consumer.counts.items():
        assert got[("zm_consumer_events_total", (by, ("outcome", outcome), svc))] == n
    assert got[("zm_consumer_lag", (by, ("group", "zm.review-intake"), svc))] == 12
    assert got[("zm_consumer_dead_letters", (by, svc))] == 4
    assert got[("zm_consumer_dead_letters_pending", (by, svc))] == 1
    assert got[("zm_consumer_stopped", (by, svc))] == 0
    assert 29 <= got[("zm_checkpoint_age_seconds", (svc,))] < 60
    # Every family it yields is one the module names (the dashboard's test relies on the list).
    assert {m.name + ("_total" if m.type == "counter" else "") for m in collector.collect()} <= (
        metrics.METRIC_NAMES
    )


def test_events_appended_by_type() -> None:
    before = metrics.REGISTRY.get_sample_value(
        "zm_events_appended_total", {"service": "unit-store", "event_type": "CaseRegistered"}
    )
    metrics.appended("unit-store", ["CaseRegistered", "CaseRegistered", "ReviewOpened"])
    after = metrics.REGISTRY.get_sample_value(
        "zm_events_appended_total", {"service": "unit-store", "event_type": "CaseRegistered"}
    )
    assert (before or 0) + 2 == after


SUFFIXES = ("_bucket", "_sum", "_count")


def named_metrics(expr: str) -> set[str]:
    """The zm_ metric names a PromQL expression reads."""
    names = set()
    for name in re.findall(r"\bzm_[a-z0-9_]+", expr):
        for suffix in SUFFIXES:
            if name.endswith(suffix) and name.removesuffix(suffix) in metrics.METRIC_NAMES:
                name = name.removesuffix(suffix)
        names.add(name)
    return names


def test_dashboard_queries_name_only_exposed_metrics() -> None:
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    panels = board["panels"]
    assert panels
    read: set[str] = set()
    for panel in panels:
        targets = panel.get("targets", [])
        assert targets, panel["title"]
        for target in targets:
            names = named_metrics(target["expr"])
            assert names, (panel["title"], target["expr"])
            assert names <= metrics.METRIC_NAMES, (panel["title"], names - metrics.METRIC_NAMES)
            read |= names
    histogram = "zm_http_request_duration_seconds_bucket"
    assert any(
        histogram in t["expr"] and "histogram_quantile" in t["expr"] for p in panels for t in p["targets"]
    )
    for wanted in (
        "zm_http_requests_total",
        "zm_events_appended_total",
        "zm_outbox_pending",
        "zm_outbox_relay_lag_seconds",
        "zm_consumer_lag",
        "zm_consumer_events_total",
        "zm_db_pool_connections",
        "zm_checkpoint_age_seconds",
    ):
        assert wanted in read, wanted
