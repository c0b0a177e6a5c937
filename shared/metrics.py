"""Prometheus metrics: one registry per process, HTTP requests by route template, events appended,
and collectors that read a runtime (pool, consumers, outbox, checkpoints) when /metrics is scraped.

Confidentiality: labels are service names, route templates, event types, consumer names and
outcomes, never a raw path (it holds case ids), an identity or anything a case says."""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.routing import Match, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.logging import get_logger

if TYPE_CHECKING:
    from shared.runtime import Runtime

log = get_logger(__name__)

# No `_created` series beside every counter: half the series, nothing the dashboard reads.
disable_created_metrics()  # type: ignore[no-untyped-call]
REGISTRY = CollectorRegistry()
"""The process's registry (not the client's default one: no process/platform collectors twice)."""

UNMATCHED = "<unmatched>"
"""The route label of a request no route matched (a 404): one value, whatever the path was."""

HTTP_REQUESTS = Counter(
    "zm_http_requests",
    "HTTP requests answered, by route template and status",
    ["service", "method", "route", "status"],
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "zm_http_request_duration_seconds",
    "Time from a request's arrival to its response's end, by route template",
    ["service", "method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
EVENTS_APPENDED = Counter(
    "zm_events_appended",
    "Events appended to the store, by event type (counted in the appending transaction)",
    ["service", "event_type"],
    registry=REGISTRY,
)

OUTBOX_BOUND = 100_000
"""At most this many pending outbox rows are counted per scrape (the figure saturates there)."""
REFRESH_TIMEOUT_S = 2.0


def appended(service: str, event_types: Iterable[str]) -> None:
    """Count events the store just appended (one increment a type)."""
    for event_type, n in collections.Counter(event_types).items():
        EVENTS_APPENDED.labels(service, event_type).inc(n)


def route_of(scope: Scope, router: Router | None = None) -> str:
    """The template of the route that answered (`/cases/{case_id}`), never the raw path.

    A middleware may answer before routing (an idempotent replay): the router then says which
    route the request was for, as routing would have."""
    route = scope.get("route")
    if route is None and router is not None:
        partial = None
        for candidate in router.routes:
            match, _ = candidate.matches(scope)
            if match is Match.FULL:
                route = candidate
                break
            if match is Match.PARTIAL and partial is None:
                partial = candidate
        route = route or partial
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


class HttpMetrics:
    """Pure ASGI middleware: counts and times every HTTP request by method, route template and
    status (an exception that escapes the app counts as 500)."""

    def __init__(self, app: ASGIApp, service: str, router: Router | None = None) -> None:
        self.app = app
        self.service = service
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            method, route = str(scope.get("method", "")), route_of(scope, self.router)
            HTTP_REQUESTS.labels(self.service, method, route, str(status[0])).inc()
            HTTP_LATENCY.labels(self.service, method, route).observe(time.perf_counter() - started)


@dataclass
class OutboxFigures:
    pending: int
    oldest_age_s: float


@dataclass
class Watched:
    """A runtime the collector reads, with the outbox figures of the last scrape."""

    runtime: Runtime
    outbox: OutboxFigures | None = None

    async def refresh(self) -> None:
        """The outbox figures need a query: run it (bounded, with a deadline) before collecting."""
        try:
            async with asyncio.timeout(REFRESH_TIMEOUT_S):
                row = await self.runtime.pool.fetchrow(
                    "SELECT count(*) AS pending,"
                    " coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS age"
                    " FROM (SELECT created_at FROM outbox WHERE published_at IS NULL"
                    " ORDER BY id LIMIT $1) p",
                    OUTBOX_BOUND,
                )
            assert row is not None
            self.outbox = OutboxFigures(int(row["pending"]), max(0.0, float(row["age"])))
        except Exception as exc:  # a scrape must answer: the figures are left out this time
            log.info("metrics.outbox_unavailable", error=repr(exc))
            self.outbox = None


class RuntimeCollector(Collector):
    """Figures read from each watched runtime at scrape time, no counters kept of its own."""

    def __init__(self) -> None:
        self.watched: dict[str, Watched] = {}

    def watch(self, runtime: Runtime) -> Watched:
        # One runtime per service and process; a test serving a fresh one replaces the old.
        self.watched[runtime.service] = Watched(runtime)
        return self.watched[runtime.service]

    def collect(self) -> Iterator[Metric]:
        families = _Families()
        for service, watched in sorted(self.watched.items()):
            families.add(service, watched)
        yield from families.all()


class _Families:
    def __init__(self) -> None:
        g, c = GaugeMetricFamily, CounterMetricFamily
        self.pool = g(
            "zm_db_pool_connections", "Database pool connections by state", labels=["service", "state"]
        )
        self.pool_max = g("zm_db_pool_max_connections", "The pool's largest size", labels=["service"])
        self.outbox = g("zm_outbox_pending", "Outbox rows not yet published", labels=["service"])
        self.relay_lag = g(
            "zm_outbox_relay_lag_seconds",
            "Age of the oldest unpublished outbox row (0: none)",
            labels=["service"],
        )
        consumer = ["service", "consumer"]
        self.events = c(
            "zm_consumer_events",
            "Events a consumer settled since the process started, by outcome",
            labels=[*consumer, "outcome"],
        )
        self.lag = g(
            "zm_consumer_lag", "Records after the group's committed offsets", labels=[*consumer, "group"]
        )
        self.dead = g(
            "zm_consumer_dead_letters", "Records in the consumer's dead-letter topic", labels=consumer
        )
        self.dead_pending = g(
            "zm_consumer_dead_letters_pending", "Dead letters no replay has settled", labels=consumer
        )
        self.stopped = g("zm_consumer_stopped", "1 when the consumer stopped on a message", labels=consumer)
        self.figures_age = g(
            "zm_consumer_figures_age_seconds",
            "Age of the lag figures (the operations watch)",
            labels=["service"],
        )
        self.checkpoint_age = g(
            "zm_checkpoint_age_seconds",
            "Seconds since the last signed checkpoint was published",
            labels=["service"],
        )
        self.checkpoint_at = g(
            "zm_checkpoint_published_timestamp_seconds",
            "When the last signed checkpoint was published (Unix time)",
            labels=["service"],
        )

    def add(self, service: str, watched: Watched) -> None:
        runtime = watched.runtime
        pool: Any = runtime.pool
        try:
            size, idle = pool.get_size(), pool.get_idle_size()
            self.pool.add_metric([service, "in_use"], size - idle)
            self.pool.add_metric([service, "idle"], idle)
            self.pool_max.add_metric([service], pool.get_max_size())
        except Exception as exc:  # a closed pool: no figures
            log.info("metrics.pool_unavailable", error=repr(exc))
        if watched.outbox is not None:
            self.outbox.add_metric([service], watched.outbox.pending)
            self.relay_lag.add_metric([service], watched.outbox.oldest_age_s)
        for consumer in runtime.consumers:
            for outcome, n in sorted(consumer.counts.items()):
                self.events.add_metric([service, consumer.name, outcome], n)
            self.stopped.add_metric([service, consumer.name], 0 if consumer.failure is None else 1)
        if runtime.consumer_states is not None:
            seen_at, states = runtime.consumer_states
            self.figures_age.add_metric([service], max(0.0, time.time() - seen_at.timestamp()))
            for s in states:
                self.lag.add_metric([service, s.consumer, s.group_id], s.lag)
                self.dead.add_metric([service, s.consumer], s.dead_letters)
                self.dead_pending.add_metric([service, s.consumer], s.dead_letters_pending)
        if runtime.checkpoint_at is not None:
            at = runtime.checkpoint_at.timestamp()
            self.checkpoint_at.add_metric([service], at)
            self.checkpoint_age.add_metric([service], max(0.0, time.time() - at))

    def all(self) -> list[Metric]:
        return [v for v in vars(self).values() if isinstance(v, Metric)]


RUNTIMES = RuntimeCollector()
REGISTRY.register(RUNTIMES)

METRIC_NAMES = frozenset(
    {
        "zm_http_requests_total",
        "zm_http_request_duration_seconds",
        "zm_events_appended_total",
        "zm_db_pool_connections",
        "zm_db_pool_max_connections",
        "zm_outbox_pending",
        "zm_outbox_relay_lag_seconds",
        "zm_consumer_events_total",
        "zm_consumer_lag",
        "zm_consumer_dead_letters",
        "zm_consumer_dead_letters_pending",
        "zm_consumer_stopped",
        "zm_consumer_figures_age_seconds",
        "zm_checkpoint_age_seconds",
        "zm_checkpoint_published_timestamp_seconds",
    }
)
"""The metric names /metrics exposes (as scraped: counters end in _total; a histogram adds
_bucket, _sum and _count); the dashboard's test checks its queries against them."""


def exposition() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


def install_http(app: FastAPI, service: str) -> None:
    """HTTP metrics and an unauthenticated /metrics (outside the API's schema) on an app."""
    app.add_middleware(HttpMetrics, service=service, router=app.router)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return exposition()


def install(app: FastAPI, runtime: Runtime) -> None:
    """A service's metrics: HTTP, and the runtime's figures read at each scrape."""
    app.add_middleware(HttpMetrics, service=runtime.service, router=app.router)
    watched = RUNTIMES.watch(runtime)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        await watched.refresh()
        return exposition()
