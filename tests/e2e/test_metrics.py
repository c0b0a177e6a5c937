"""A real Prometheus server scrapes the four services and the console on loopback; a case driven
through HTTP shows in its answers: events appended by type, requests by route template, consumers
applying what the case published, the runtime's figures."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared import settings
from shared.settings import PROCESSES, SERVICES
from tests.e2e.conftest import TRANSCRIPT, day
from tests.e2e.test_workflow import J, plan
from zhengming.client import Client
from zhengming.driver import Driver

PACKAGE = "prometheus"
"""The Debian package of the server (`make system` installs it)."""


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "-qq", PACKAGE], env=env, check=False, timeout=600)
        found = shutil.which("prometheus")
    if found is None:
        pytest.skip(f"no prometheus binary: install the Debian package `{PACKAGE}` (make system)")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def scrape_config() -> dict[str, Any]:
    svc = settings.services()
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": name, "static_configs": [{"targets": [f"{svc.host}:{svc.port(name)}"]}]}
            for name in PROCESSES
        ],
    }


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Prometheus server on a free loopback port; its base URL. Killed afterwards."""
    binary = prometheus_binary()
    home = tmp_path_factory.mktemp("prometheus")
    config = home / "prometheus.yml"
    config.write_text(json.dumps(scrape_config(), indent=2))  # JSON is YAML
    url = f"127.0.0.1:{free_port()}"
    log = (home / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={home / 'data'}",
            f"--web.listen-address={url}",
            "--storage.tsdb.retention.time=1h",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"prometheus exited {proc.returncode}: {tail(home / 'prometheus.log')}")
            try:
                if httpx.get(f"http://{url}/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"prometheus not ready after 60s: {tail(home / 'prometheus.log')}")
            time.sleep(0.2)
        yield f"http://{url}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def tail(path: Path) -> str:
    return path.read_text(errors="replace")[-2000:]


class Prometheus:
    """Instant queries over the HTTP API."""

    def __init__(self, url: str, client: Client) -> None:
        self.url = url
        self.client = client

    async def query(self, promql: str) -> list[tuple[dict[str, str], float]]:
        async with httpx.AsyncClient(timeout=10) as http:
            answer = (await http.get(f"{self.url}/api/v1/query", params={"query": promql})).json()
        assert answer["status"] == "success", answer
        return [(r["metric"], float(r["value"][1])) for r in answer["data"]["result"]]

    async def by(self, label: str, promql: str) -> dict[str, float]:
        return {metric.get(label, ""): value for metric, value in await self.query(promql)}

    async def until(
        self,
        what: str,
        label: str,
        promql: str,
        holds: Callable[[dict[str, float]], bool],
        timeout_s: float = 60,
    ) -> dict[str, float]:
        """Poll a query, its series keyed by `label`, until `holds(values)`."""

        async def check() -> dict[str, float] | None:
            values = await self.by(label, promql)
            return values if holds(values) else None

        result: dict[str, float] = await self.client.eventually(what, check, timeout_s)
        return result


async def test_prometheus_scrapes_every_service_and_sees_a_driven_case(
    prometheus: str, client: Client, driver: Driver
) -> None:
    prom = Prometheus(prometheus, client)
    everyone = set(PROCESSES)
    await prom.until(
        "every process scraped and up",
        "job",
        "max by (job) (up)",
        lambda up: {job for job, v in up.items() if v == 1} == everyone,
    )
    # The runtime's figures, read at scrape time, are there for each of the four services.
    for metric in ("zm_db_pool_max_connections", "zm_outbox_pending", "zm_outbox_relay_lag_seconds"):
        await prom.until(
            f"{metric} of each service", "job", f"max by (job) ({metric})", lambda v: set(SERVICES) <= set(v)
        )
    await prom.until(
        "a signed checkpoint of each service",
        "job",
        "max by (job) (zm_checkpoint_age_seconds)",
        lambda v: set(SERVICES) <= set(v),
    )
    await prom.until(
        "consumer lag of review's consumers",
        "consumer",
        'max by (consumer) (zm_consumer_lag{job="review"})',
        bool,
    )

    appended = 'sum by (event_type) (zm_events_appended_total{job="intake"})'
    registered = 'sum by (route) (zm_http_requests_total{job="intake", method="POST", status=~"2.."})'
    applied = 'sum by (job) (zm_consumer_events_total{job="review", outcome="applied"})'
    before_events, before_requests, before_applied = (
        await prom.by("event_type", appended),
        await prom.by("route", registered),
        await prom.by("job", applied),
    )

    p = plan(["untrue"], day(2, 3), jurisdiction=J)
    case_id = await driver.register(p)
    TRANSCRIPT.case_ids.add(case_id)
    await driver.intake(p, case_id)
    await driver.wait_verification(p, case_id)
    recorded = await client.ok(
        "GET", "intake", f"/audit/cases/{case_id}/events", role="auditor", jurisdiction=J
    )
    steps: dict[str, int] = {}
    for event in recorded:
        steps[event["event_type"]] = steps.get(event["event_type"], 0) + 1
    assert steps

    # Each of the case's steps, counted by type (other writers may add, never take away).
    await prom.until(
        f"the case's events by type {steps}",
        "event_type",
        appended,
        lambda now: all(now.get(t, 0) - before_events.get(t, 0) >= n for t, n in steps.items()),
    )
    # The commands, one series per route template: the case id is in no label.
    commands = (
        "/reports",
        "/reports/{report_id}/log",
        "/reports/{report_id}/accept",
        "/reports/{report_id}/hand-over",
    )
    routes = await prom.until(
        "the case's commands by route",
        "route",
        registered,
        lambda now: all(now.get(r, 0) - before_requests.get(r, 0) >= 1 for r in commands),
    )
    assert not [r for r in routes if case_id in r]
    everything = await prom.query('{__name__=~"zm_.+"}')
    assert not [m for m, _ in everything if any(case_id in v for v in m.values())]
    # Review applied what intake published (its verification opened).
    await prom.until(
        "review's consumers applied the case's events",
        "job",
        applied,
        lambda now: now.get("review", 0) > before_applied.get("review", 0),
    )
