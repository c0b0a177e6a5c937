"""One case from its report to its filing in the archive on a fresh stack of its own, the four
services tracing into span files (ZM_TRACING_FILE_DIR: each process's spans buffered in memory by
the SDK's batch processor and written as JSON lines): the handover's trace runs from intake's HTTP
request through the outbox, Kafka and the consumers of review, clarification and archive, every
parent link intact across the hops; the services' log lines carry its trace id.

The e2e package's services run with the environment of the test run, without tracing; this
module brings its own stack (under .local/tracing/stack, Kafka 27192-27193, PostgreSQL 18932,
services 9711-9715), so it leaves them alone (its `services` fixture stands in for the package's).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from datetime import date, timedelta
from typing import Any

import asyncpg
import pytest

from shared import settings
from shared.settings import PROJECT_ROOT, SERVICES
from zhengming.client import Client, Users
from zhengming.driver import CasePlan, Driver, Reporter
from zhengming.stack import Stack, start, stop, use_environment

pytestmark = pytest.mark.timeout(600)

STACK = Stack(
    PROJECT_ROOT / ".local" / "tracing" / "stack",
    {
        "ZM_KAFKA_PORT": "27192",
        "ZM_KAFKA_CONTROLLER_PORT": "27193",
        "ZM_PG_PORT": "18932",
        "ZM_SERVICE_INTAKE_PORT": "9711",
        "ZM_SERVICE_REVIEW_PORT": "9712",
        "ZM_SERVICE_CLARIFICATION_PORT": "9713",
        "ZM_SERVICE_ARCHIVE_PORT": "9714",
        "ZM_SERVICE_CONSOLE_PORT": "9715",
    },
)
SPANS = STACK.root / "spans"
J = "331123"


@pytest.fixture(scope="module")
def services() -> Iterator[None]:
    """Stands in for the package's fixture: these tests never use the run's services."""
    yield


@pytest.fixture(scope="module")
def traced_stack() -> Iterator[Stack]:
    """The stack wiped and started with tracing into SPANS; stopped afterwards and the test run's
    environment put back, also when a test failed."""
    saved = dict(os.environ)
    use_environment({**STACK.environment(), "ZM_TRACING_FILE_DIR": str(SPANS)}, only=True)
    try:
        STACK.prepare()
        start(with_services=True, processes=SERVICES, ready_timeout_s=120)  # the console is not needed
        yield STACK
    finally:
        stop()
        os.environ.clear()
        os.environ.update(saved)
        use_environment({})


@pytest.fixture
async def traced_client(traced_stack: Stack) -> AsyncIterator[Client]:
    c = Client(settings.services(), Users())
    yield c
    await c.close()


def spans() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for path in sorted(SPANS.glob("*.jsonl")):
        found.extend(json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line)
    return found


async def carry(driver: Driver, client: Client, p: CasePlan) -> str:
    """Report to archive: registered, handed over, verified untrue, clarified, performed, filed."""
    case_id = await driver.register(p)
    await driver.intake(p, case_id)
    await driver.verify(p, case_id)
    begin = p.received_on + timedelta(days=40)
    assert await driver.clarify_until_approved(p, case_id, begin) == "approved"
    performed = begin + timedelta(days=5)
    await client.ok(
        "POST",
        "clarification",
        f"/clarifications/{case_id}/perform",
        role="handling_department",
        jurisdiction=J,
        body={"performed_on": performed.isoformat(), "forms": p.forms},
    )
    await driver.finish(p, case_id, performed)
    conn = await asyncpg.connect(settings.postgres().dsn())
    try:

        async def filed() -> bool:
            n = await conn.fetchval("SELECT count(*) FROM archive.filings WHERE case_id = $1", case_id)
            return bool(n)

        await client.eventually(f"{case_id} filed in the archive", filed, timeout_s=120)
    finally:
        await conn.close()
    return case_id


def by_trace(found: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    traces: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in found:
        traces[s["trace_id"]].append(s)
    return traces


def request_trace(
    found: list[dict[str, Any]], service: str, route: str, case_id: str
) -> list[dict[str, Any]]:
    """The spans of the trace rooted at `service`'s request of `case_id` on a route ending `route`
    (empty while that request's span is not written yet)."""
    roots = [
        s
        for s in found
        if s["service"] == f"zhengming-{service}"
        and s["kind"] == "SERVER"
        and str(s["attributes"].get("http.route", "")).endswith(route)
        and case_id in str(s["attributes"].get("url.path", s["attributes"].get("http.target", "")))
    ]
    assert len(roots) <= 1, roots
    return by_trace(found)[roots[0]["trace_id"]] if roots else []


def consumers(trace: list[dict[str, Any]], outcome: str | None = None) -> set[tuple[str, str]]:
    """(service, event type) of the trace's consumer spans (of that outcome, if given)."""
    return {
        (s["service"].removeprefix("zhengming-"), s["attributes"]["zm.event_type"])
        for s in trace
        if s["kind"] == "CONSUMER" and outcome in (None, s["attributes"]["zm.outcome"])
    }


def closed(trace: list[dict[str, Any]]) -> bool:
    """Every span's parent is written too."""
    ids = {s["span_id"] for s in trace}
    return all(s["parent_id"] is None or s["parent_id"] in ids for s in trace)


def assert_links_intact(trace: list[dict[str, Any]], root_service: str) -> None:
    """One root, the request's span; every other span's parent in the trace; every consumer span
    the child of the relay's span of its record, in another service (a hop across Kafka)."""
    ids = {s["span_id"]: s for s in trace}
    [root] = [s for s in trace if s["parent_id"] is None]
    assert (root["service"], root["kind"]) == (f"zhengming-{root_service}", "SERVER"), root
    for s in trace:
        assert s is root or s["parent_id"] in ids, s
    for s in (s for s in trace if s["kind"] == "CONSUMER"):
        producer = ids[s["parent_id"]]
        assert producer["kind"] == "PRODUCER" and s["remote_parent"], (s, producer)
        assert producer["service"] != s["service"], (s, producer)
        destination = "messaging.destination.name"
        assert producer["attributes"][destination] == s["attributes"][destination]


def show(title: str, trace: list[dict[str, Any]]) -> None:
    print(f"\n{title} (without its {sum(s['kind'] == 'CLIENT' for s in trace)} database spans):")
    for s in sorted(trace, key=lambda s: s["start"]):
        if s["kind"] != "CLIENT":
            a = s["attributes"]
            print(
                f"  {s['service']:<24} {s['kind']:<8} {s['name']:<38} {a.get('zm.event_type', '')}"
                f" {a.get('zm.outcome', '')}"
            )


async def test_one_trace_runs_from_a_request_through_the_outbox_and_kafka_to_all_four_services(
    traced_stack: Stack, traced_client: Client
) -> None:
    plan = CasePlan(
        jurisdiction=J,
        subject={
            "kind": "person",
            "name": "林" + uuid.uuid4().hex[:4],
            "post": "副镇长",
            "unit": "白塔镇",
            "cadre_level": "county",
        },
        allegations=["反映其在征地补偿中优亲厚友"],
        findings=["untrue"],
        received_on=date(2024, 3, 4),
        reporter=Reporter(name="检举人" + uuid.uuid4().hex[:4], contact="13905780000"),
    )
    case_id = await carry(Driver(traced_client), traced_client, plan)

    deadline = time.monotonic() + 60
    while True:  # the batch processors flush every 200 ms
        found = spans()
        handover = request_trace(found, "intake", "/hand-over", case_id)
        conclusion = request_trace(found, "review", "/conclude", case_id)
        filing = request_trace(found, "clarification", "/file", case_id)
        # Children end (and are written) before their parents: wait for whole trees.
        if (
            ("review", "ReportHandedOver") in consumers(handover, "applied")
            and {service for service, _ in consumers(conclusion)} >= {"intake", "clarification", "archive"}
            and ("archive", "ClarificationFiled") in consumers(filing, "applied")
            and all(closed(t) for t in (handover, conclusion, filing))
        ):
            break
        if time.monotonic() > deadline:
            raise AssertionError(
                f"handover {consumers(handover)}, conclusion {consumers(conclusion)},"
                f" filing {consumers(filing)}"
            )
        await asyncio.sleep(0.5)
    show("the handover's trace", handover)
    show("the conclusion's trace", conclusion)
    show("the filing's trace", filing)

    # The handover's trace: intake's request and relay, review's consumer applying it. Review's own
    # events carry the trace on (its relay's producer spans); no other service reacts to them, and a
    # consumer skips a type it does not react to on the event_type header, unread: no span.
    assert {s["service"] for s in handover} == {"zhengming-intake", "zhengming-review"}
    assert_links_intact(handover, "intake")
    assert ("review", "ReportHandedOver") in consumers(handover, "applied")
    assert any(s["kind"] == "PRODUCER" and s["service"] == "zhengming-review" for s in handover)
    assert any(s["kind"] == "CLIENT" and s["service"] == "zhengming-review" for s in handover), "asyncpg"
    assert not any(s["kind"] == "CONSUMER" and s["attributes"].get("zm.outcome") == "skipped" for s in found)
    # The conclusion's trace: review's request, applied by intake, clarification and the archive.
    assert {s["service"] for s in conclusion} == {f"zhengming-{s}" for s in SERVICES}
    assert_links_intact(conclusion, "review")
    applied = consumers(conclusion, "applied")
    assert {("intake", "VerificationConcluded"), ("clarification", "VerificationConcluded")} <= applied
    # The filing's trace: clarification's request, the archive filing it.
    assert_links_intact(filing, "clarification")
    assert ("archive", "ClarificationFiled") in consumers(filing, "applied")

    # Log lines carry the trace id: review's line applying the handover is in the handover's trace.
    lines = [
        json.loads(line)
        for line in (traced_stack.root / "logs" / "review.log").read_text(encoding="utf-8").splitlines()
        if line.startswith("{")
    ]
    applied_lines = [
        e
        for e in lines
        if e.get("event") == "event.applied"
        and e.get("case_id") == case_id
        and e.get("event_type") == "ReportHandedOver"
    ]
    assert [e.get("trace_id") for e in applied_lines] == [handover[0]["trace_id"]], applied_lines
    assert all(e.get("span_id") in {s["span_id"] for s in handover} for e in applied_lines)
