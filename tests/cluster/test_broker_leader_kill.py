"""The leader of a busy partition SIGKILLed mid-run on the 3-node cluster, and restarted: whole cases
keep going from report to archive; nothing is lost, nothing reaches a consumer twice, no event is on
Kafka twice, and the trail verifies.

The busy partition is partition 0 of intake's events topic of the one jurisdiction every case is in.
Its leader is killed once BEFORE cases were handed over; the cluster runs on two nodes (ISR 2, which
min.insync.replicas 2 still accepts, the partition writable under its new leader) until DURING more
cases were carried to the archive; then the node is restarted and, once back in the partition's
ISR, AFTER more cases are carried. Figures (leader changes, produce errors seen by
the services, lost and duplicated events) are printed (`pytest -s`) and written to
<stack root>/broker-leader-kill.json.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

import asyncpg
import pytest
from faker import Faker

from services.definitions import DEFINITIONS
from shared import settings
from shared.envelope import EventEnvelope
from shared.settings import SERVICES
from shared.topics import dead_letter_topic, events_topic
from tests.cluster.conftest import STACK
from zhengming import audit
from zhengming.audit import read_topics
from zhengming.client import Client
from zhengming.driver import CasePlan, Driver, Reporter
from zhengming.local import LocalKafka, PartitionState, leader_of, partition_leaders, partition_state
from zhengming.stack import Stack

pytestmark = pytest.mark.timeout(900)

T = TypeVar("T")
fake = Faker("zh_CN")

J = "331122"
YEAR = 2024
CONCURRENCY = 8
BEFORE = 10  # cases handed over before the kill
DURING = 10  # cases carried to the archive while the killed node is down
AFTER = 10  # cases carried after it is back
FIRST_WAVE = 30  # cases started before the restart (the ones in flight at the kill among them)


def plan(index: int) -> CasePlan:
    return CasePlan(
        jurisdiction=J,
        subject={
            "kind": "person",
            "name": fake.name() + uuid.uuid4().hex[:3],
            "post": fake.job(),
            "unit": f"{fake.city_name()}镇",
            "cadre_level": "county",
        },
        allegations=[fake.sentence()],
        findings=["untrue"],
        received_on=date(YEAR, 1, 8) + timedelta(days=index % 20),
        reporter=Reporter(name=fake.name() + uuid.uuid4().hex[:4], contact=fake.phone_number()),
    )


@dataclass
class Progress:
    handed_over: int = 0
    filed: list[str] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def note(self) -> None:
        self.changed.set()

    async def until(self, what: str, check: Callable[[], bool], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not check():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(left, 1.0))


async def carry(driver: Driver, client: Client, p: CasePlan, progress: Progress) -> str:
    """Report to archive: registered, handed over, verified untrue, clarified, performed, filed."""
    case_id = await driver.register(p)
    await driver.intake(p, case_id)
    progress.handed_over += 1
    progress.note()
    await driver.verify(p, case_id)
    start = p.received_on + timedelta(days=40)
    assert await driver.clarify_until_approved(p, case_id, start) == "approved"
    performed = start + timedelta(days=5)
    await client.ok(
        "POST",
        "clarification",
        f"/clarifications/{case_id}/perform",
        role="handling_department",
        jurisdiction=J,
        body={"performed_on": performed.isoformat(), "forms": p.forms},
    )
    await driver.finish(p, case_id, performed)
    await archived(client, case_id)
    progress.filed.append(case_id)
    progress.note()
    return case_id


async def archived(client: Client, case_id: str) -> None:
    """The filing reached the archive (the third hop across Kafka)."""
    conn = await asyncpg.connect(settings.postgres().dsn())
    try:

        async def filed() -> bool:
            return bool(
                await conn.fetchval("SELECT count(*) FROM archive.filings WHERE case_id = $1", case_id)
            )

        await client.eventually(f"{case_id} filed in the archive", filed, timeout_s=120)
    finally:
        await conn.close()


@dataclass
class LeaderWatch:
    """Polls the busy partition's state and keeps every change of leader (with its time)."""

    topic: str
    partition: int
    seen: list[tuple[float, PartitionState]] = field(default_factory=list)
    errors: int = 0

    @property
    def leaders(self) -> list[int]:
        out: list[int] = []
        for _, s in self.seen:
            if not out or out[-1] != s.leader:
                out.append(s.leader)
        return out

    async def run(self, stop: asyncio.Event) -> None:
        kafka = settings.kafka()
        while not stop.is_set():
            try:
                state = await partition_state(kafka, self.topic, self.partition, timeout_s=2)
            except Exception:
                self.errors += 1
            else:
                if not self.seen or self.seen[-1][1] != state:
                    self.seen.append((time.monotonic(), state))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)


async def leaders_of_all() -> dict[tuple[str, int], int]:
    """The leader of every partition of the cluster (internal topics included)."""
    from zhengming.local import _asking

    described = await _asking(settings.kafka(), lambda admin: admin.describe_topics(None), 20)
    return {(d["topic"], p["partition"]): p["leader"] for d in described for p in d["partitions"]}


async def until(what: str, check: Callable[[], Awaitable[T | None]], timeout_s: float) -> T:
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}; last: {last!r}")


async def quiet(cases: list[str]) -> None:
    """Every outbox drained and the stores and inboxes unchanged for three seconds."""
    conn = await asyncpg.connect(settings.postgres().dsn())
    try:
        last: list[int] = []
        since = time.monotonic()

        async def settled() -> bool:
            nonlocal last, since
            counts = []
            for s in SERVICES:
                counts.append(
                    await conn.fetchval(f"SELECT count(*) FROM {s}.outbox WHERE published_at IS NULL")
                )
                counts.append(await conn.fetchval(f"SELECT count(*) FROM {s}.events"))
                counts.append(await conn.fetchval(f"SELECT count(*) FROM {s}.inbox"))
            pending = sum(counts[0::3])
            if counts != last:
                last, since = counts, time.monotonic()
                return False
            return pending == 0 and time.monotonic() - since >= 3

        await until("the stack to settle", settled, 180)
    finally:
        await conn.close()


@dataclass
class Delivery:
    """Per consumer: the events that should have reached it, and what its inbox holds."""

    expected: dict[str, set[str]]
    applied: dict[str, set[str]]

    @property
    def lost(self) -> dict[str, int]:
        return {c: len(self.expected[c] - self.applied.get(c, set())) for c in self.expected}


async def deliveries(conn: asyncpg.Connection, cases: list[str]) -> Delivery:
    """For every subscription reacting to domain events: the events of these cases on the topics
    it reads, of the types it reacts to, against the event ids in its inbox."""
    expected: dict[str, set[str]] = {}
    applied: dict[str, set[str]] = {}
    for service, definition in DEFINITIONS.items():
        for sub in definition.subscriptions:
            types = sub.event_types
            if types is None:
                continue
            pattern = re.compile(sub.topics([J]))
            sources = [s for s in SERVICES if pattern.match(events_topic(J, s))]
            wanted: set[str] = set()
            for source in sources:
                rows = await conn.fetch(
                    f"SELECT event_id::text FROM {source}.events"
                    " WHERE case_id = ANY($1::text[]) AND event_type = ANY($2::text[])",
                    cases,
                    sorted(types),
                )
                wanted |= {r["event_id"] for r in rows}
            rows = await conn.fetch(
                f"SELECT event_id::text FROM {service}.inbox"
                " WHERE consumer = $1 AND event_id = ANY($2::uuid[])",
                sub.name,
                sorted(wanted),
            )
            expected[sub.name] = wanted
            applied[sub.name] = {r["event_id"] for r in rows}
    return Delivery(expected, applied)


async def store_events(conn: asyncpg.Connection, cases: list[str]) -> dict[str, tuple[str, str, str]]:
    """event id -> (service, case, event type) of every event of these cases in the four stores."""
    out: dict[str, tuple[str, str, str]] = {}
    for s in SERVICES:
        rows = await conn.fetch(
            f"SELECT event_id::text, case_id, event_type FROM {s}.events WHERE case_id = ANY($1::text[])",
            cases,
        )
        out.update({r["event_id"]: (s, r["case_id"], r["event_type"]) for r in rows})
    return out


async def kafka_copies() -> tuple[Counter[str], list[Any]]:
    """How many committed records of each event id the jurisdiction's events topics hold, and
    the records themselves."""
    records = await read_topics(events_topic(J, s) for s in SERVICES)
    return Counter(str(EventEnvelope.from_bytes(r.value).event_id) for r in records), records


# The services' own lines about the broker (JSON, one per message); the stack keeps every aiokafka
# warning (ZM_LOG_BROKER_QUIET_S=0), so the client's retries can be counted too.
OWN_LINES = (
    "broker.unavailable",  # a relay term failed (first failure of an outage)
    "broker.recovered",  # the relay publishes again; `failures` = failed terms in between
    "relay.leadership_lost",
    "relay.reconciled",  # a failed batch was found on Kafka: marked, not sent again
    "relay.retry",
    "event.retry",  # a consumer retried an apply
    "event.duplicate",  # a redelivered event an inbox dropped
    "checkpoint.failed",
    "consumer.stopped",
)
CLIENT_KINDS = {
    "produce request failed, retried by the producer": ("Got error produce response",),
    "request not sent": ("Cannot send", "Could not send"),
    "connection refused / lost": ("Unable connect", "Unable to connect", "Connection at", "Failed fetch"),
    "coordinator moved or away": (
        "coordinator",
        "Coordinator",
        "JoinGroup",
        "Heartbeat",
        "OffsetCommit",
        "SyncGroup",
    ),
}


def log_figures(stack: Stack, since: float) -> dict[str, Any]:
    """What the four services logged about the broker since `since` (epoch seconds)."""
    own: Counter[str] = Counter()
    client: Counter[str] = Counter()
    relay_failures = 0
    samples: dict[str, str] = {}
    for service in SERVICES:
        path = stack.root / "logs" / f"{service}.log"
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if not isinstance(entry, dict):
                continue
            stamp = entry.get("timestamp")
            if not isinstance(stamp, str) or datetime.fromisoformat(stamp).timestamp() < since:
                continue
            event = str(entry.get("event", ""))
            if event in OWN_LINES:
                own[event] += 1
                if event == "broker.recovered" and isinstance(entry.get("failures"), int):
                    relay_failures += entry["failures"]
                continue
            if " " not in event or entry.get("level") not in ("warning", "error", "critical"):
                continue  # an event of our own (event.applied, http...), or chatter
            kind = next((k for k, starts in CLIENT_KINDS.items() if any(x in event for x in starts)), "other")
            client[kind] += 1
            samples.setdefault(kind, f"{service}: {event[:240]}")
    return {
        "relay terms failed": relay_failures + own["broker.unavailable"] - own["broker.recovered"],
        "service lines": dict(own),
        "client warnings (aiokafka)": dict(client),
        "samples": samples,
    }


async def test_killing_the_leader_of_a_busy_partition_loses_nothing_and_repeats_nothing(
    cluster: Stack, client: Client, driver: Driver
) -> None:
    t0 = time.monotonic()
    kafka = LocalKafka(settings.local(), settings.kafka())
    topic, partition = events_topic(J, "intake"), 0
    state = await partition_state(settings.kafka(), topic, partition)
    assert len(state.replicas) == 3 and len(state.isr) == 3, state
    watch = LeaderWatch(topic, partition)
    stop_watching = asyncio.Event()
    watching = asyncio.create_task(watch.run(stop_watching))
    progress = Progress()
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(index: int) -> str:
        async with gate:
            return await carry(driver, client, plan(index), progress)

    timings: dict[str, float] = {}
    first = [asyncio.create_task(one(i)) for i in range(FIRST_WAVE)]
    later: list[asyncio.Task[str]] = []
    try:
        await progress.until(f"{BEFORE} cases handed over", lambda: progress.handed_over >= BEFORE, 180)
        leaders_before = await partition_leaders(settings.kafka())
        victim = await leader_of(settings.kafka(), topic, partition)
        assert victim > 0
        killed_at, killed_wall = time.monotonic(), time.time()
        timings["kill at"] = killed_at - t0
        assert await asyncio.to_thread(kafka.kill_node, victim)
        filed_at_kill = len(progress.filed)

        async def new_leader() -> int | None:
            leader = await leader_of(settings.kafka(), topic, partition)
            return leader if leader not in (-1, victim) else None

        successor = await until("a new leader of the busy partition", new_leader, 60)
        timings["failover s"] = time.monotonic() - killed_at
        await progress.until(
            f"{DURING} cases carried to the archive on two nodes",
            lambda: len(progress.filed) - filed_at_kill >= DURING,
            240,
        )
        leaders_degraded = await partition_leaders(settings.kafka())
        restarted_at, restarted_wall = time.monotonic(), time.time()
        timings["down s"] = restarted_at - killed_at
        assert await asyncio.to_thread(kafka.start_node, victim)
        timings["rejoin s"] = time.monotonic() - restarted_at

        async def in_sync() -> PartitionState | None:
            s = await partition_state(settings.kafka(), topic, partition)
            return s if len(s.isr) == 3 else None

        await until("the restarted node back in the busy partition's ISR", in_sync, 120)
        timings["back in ISR s"] = time.monotonic() - restarted_at
        later = [asyncio.create_task(one(FIRST_WAVE + i)) for i in range(AFTER)]
        cases = list(await asyncio.gather(*first, *later))
        timings["cases done at"] = time.monotonic() - t0
    finally:
        for task in [*first, *later]:
            task.cancel()
        await asyncio.gather(*first, *later, return_exceptions=True)
        stop_watching.set()
        await watching

    await quiet(cases)
    conn = await asyncpg.connect(settings.postgres().dsn())
    try:
        delivery = await deliveries(conn, cases)
        stored = await store_events(conn, cases)
    finally:
        await conn.close()
    copies, records = await kafka_copies()
    report = await audit.verify_trail(J)
    dead_letters = await read_topics(
        dead_letter_topic(sub.name) for d in DEFINITIONS.values() for sub in d.subscriptions
    )
    timings["test s"] = time.monotonic() - t0
    ours = set(stored)
    busy = [r for r in records if (r.topic, r.partition) == (topic, partition)]
    while_down = [r for r in busy if killed_wall * 1000 <= r.timestamp <= restarted_wall * 1000]
    # Every case took the same path: the same events in every service, or one was lost or doubled.
    per_case: dict[str, Counter[tuple[str, str]]] = {c: Counter() for c in cases}
    for service, case_id, event_type in stored.values():
        per_case[case_id][(service, event_type)] += 1
    shapes = Counter(tuple(sorted(c.items())) for c in per_case.values())
    moved = sorted(
        tp for tp, leader in leaders_before.items() if leader == victim and leaders_degraded.get(tp) != victim
    )
    led_by_victim = [tp for tp, leader in leaders_before.items() if leader == victim]
    figures = {
        "cases": len(cases),
        "killed node": victim,
        "busy partition": f"{topic}[{partition}]",
        "busy partition leaders": watch.leaders,
        "records on the busy partition": {
            "in all": len(busy),
            "written while the killed node was down": len(while_down),
            "first written after the kill, s": round(
                min(r.timestamp for r in while_down) / 1000 - killed_wall, 1
            )
            if while_down
            else None,
        },
        "successor": successor,
        "leader changes (busy partition)": len(watch.leaders) - 1,
        "partitions whose leader moved off the killed node": f"{len(moved)} of {len(led_by_victim)} it led"
        f" ({len(leaders_before)} partitions in the cluster)",
        "timings": {k: round(v, 1) for k, v in timings.items()},
        "events in the stores": dict(Counter(service for service, _, _ in stored.values())),
        "deliveries expected per consumer": {c: len(e) for c, e in delivery.expected.items()},
        "lost (not in a consumer's inbox)": sum(delivery.lost.values()),
        "lost (not on Kafka)": sum(1 for e in ours if copies[e] == 0),
        "twice on Kafka": sum(1 for e in ours if copies[e] > 1),
        "dead letters": len(dead_letters),
        "errors seen by the services since the kill": log_figures(cluster, killed_wall),
        "audit verify": "ok" if report.ok else "BROKEN",
    }
    text = json.dumps(figures, ensure_ascii=False, indent=2)
    (STACK.root / "broker-leader-kill.json").write_text(text, encoding="utf-8")
    print("\nbroker leader kill:\n" + text)

    assert len(cases) == FIRST_WAVE + AFTER == len(set(cases))
    assert watch.leaders[0] == victim and successor in watch.leaders[1:], f"the leader changed\n{text}"
    assert while_down, f"the busy partition took writes under its new leader\n{text}"
    assert len(shapes) == 1, f"cases with different events: {shapes}\n{text}"
    [shape] = shapes
    assert dict(shape)[("review", "VerificationOpened")] == 1, text
    assert dict(shape)[("clarification", "ClarificationFiled")] == 1, text
    assert delivery.lost == {c: 0 for c in delivery.expected}, text
    assert {e: copies[e] for e in ours if copies[e] != 1} == {}, text
    assert dead_letters == [], text
    assert report.ok, "\n".join(report.lines()) + "\n" + text
