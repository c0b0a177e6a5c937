"""Faults at every point of the consumer runner, on the real broker and database.

Each point (pool acquire, inbox insert, apply, transaction commit before and after it lands, offset
commit, dead-letter publish) fails with each kind of error (connection loss, admin shutdown, an
exception class nobody expected, a stray cancellation). Whatever fails, no offset may be committed
past a message that was neither applied nor dead-lettered, and no effect may happen twice.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Callable
from types import TracebackType
from typing import Any, cast

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import FastAPI
from faststream.kafka import KafkaBroker
from pydantic import BaseModel

from shared import settings
from shared.consumer import EventConsumer
from shared.crypto import FieldCipher
from shared.db import Conn
from shared.envelope import EventEnvelope
from shared.outbox import make_producer
from shared.runtime import Runtime, add_health_routes
from shared.settings import ConsumerSettings
from shared.store import EventStore
from shared.topics import dead_letter_topic, events_topic
from tests.integration.conftest import create_topics, read_topic, wait_for
from tests.integration.consumer_app import EFFECTS_DDL, apply, registry
from tests.integration.test_consumer import effects, write_and_relay
from zhengming.audit import read_topics

J = "331122"
CASES, PER_CASE, POISON = 4, 50, 12

KINDS: list[Callable[[], BaseException]] = [
    lambda: ConnectionResetError("connection reset by peer"),
    lambda: asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    lambda: asyncpg.AdminShutdownError("terminating connection due to administrator command"),
    lambda: RuntimeError("an exception class nobody expected"),
    lambda: KeyError("nobody expected this either"),
    lambda: asyncio.CancelledError(),  # raised by a library, not a cancellation of the task
]
POINTS = ["acquire", "inbox", "apply", "applied", "commit", "committed", "offset", "dead_letter"]
# Commits every other message: each commit is checked against what has settled, and the offset
# faults need commits enough to fire.
FAST_RETRY = ConsumerSettings(
    retry_initial_s=0.01, retry_max_s=0.05, retry_deadline_s=60, commit_every_messages=2
)


class Faults:
    """Raises the planned error at the planned call of each point, once each."""

    def __init__(self, plan: dict[str, dict[int, BaseException]]) -> None:
        self.plan = plan
        self.calls: Counter[str] = Counter()
        self.fired: list[tuple[str, str]] = []

    def hit(self, point: str) -> None:
        self.calls[point] += 1
        error = self.plan.get(point, {}).pop(self.calls[point], None)
        if error is not None:
            self.fired.append((point, type(error).__name__))
            raise error

    def pending(self) -> dict[str, list[int]]:
        return {p: sorted(calls) for p, calls in self.plan.items() if calls}


class FaultyTransaction:
    def __init__(self, tx: Any, faults: Faults) -> None:
        self.tx, self.faults = tx, faults

    async def __aenter__(self) -> FaultyTransaction:
        await self.tx.__aenter__()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> bool:
        if kind is not None:
            return bool(await self.tx.__aexit__(kind, error, tb))
        try:
            self.faults.hit("commit")  # the commit never reaches the database
        except BaseException as injected:
            await self.tx.__aexit__(type(injected), injected, None)
            raise
        await self.tx.__aexit__(None, None, None)
        self.faults.hit("committed")  # the commit landed, then the connection broke
        return False


class FaultyConnection:
    def __init__(self, conn: asyncpg.Connection, faults: Faults) -> None:
        self.conn, self.faults = conn, faults

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)

    async def fetchval(self, query: str, *args: Any) -> Any:
        if query.startswith("INSERT INTO inbox"):
            self.faults.hit("inbox")
        return await self.conn.fetchval(query, *args)

    def transaction(self) -> FaultyTransaction:
        return FaultyTransaction(self.conn.transaction(), self.faults)


class FaultyAcquire:
    def __init__(self, pool: asyncpg.Pool, faults: Faults) -> None:
        self.pool, self.faults = pool, faults
        self.inner: Any = None

    async def __aenter__(self) -> FaultyConnection:
        self.faults.hit("acquire")
        self.inner = self.pool.acquire()
        return FaultyConnection(await self.inner.__aenter__(), self.faults)

    async def __aexit__(self, *exc: Any) -> None:
        await self.inner.__aexit__(*exc)


class FaultyPool:
    def __init__(self, pool: asyncpg.Pool, faults: Faults) -> None:
        self.pool, self.faults = pool, faults

    def acquire(self) -> FaultyAcquire:
        return FaultyAcquire(self.pool, self.faults)


async def publish_poison(topic: str, count: int) -> None:
    producer = make_producer(settings.kafka())
    await producer.start()
    try:
        for i in range(count):
            await producer.send_and_wait(topic, b"{not an envelope %d" % i, key=f"case-{i % CASES}".encode())
    finally:
        await producer.stop()


async def committed_offsets(group: str, topic: str, partitions: int) -> dict[int, int]:
    probe = AIOKafkaConsumer(bootstrap_servers=settings.kafka().bootstrap, group_id=group)
    await probe.start()
    try:
        return {p: (await probe.committed(TopicPartition(topic, p))) or 0 for p in range(partitions)}
    finally:
        await probe.stop()


async def record_offsets(topic: str) -> set[tuple[int, int]]:
    """(partition, offset) of every record on the topic (transaction markers take offsets too)."""
    return {(r.partition, r.offset) for r in await read_topics([topic])}


async def settled(pool: asyncpg.Pool, name: str, dead: set[tuple[int, int]]) -> set[tuple[int, int]]:
    """(partition, offset) of every message applied (inbox) or dead-lettered so far."""
    rows = await pool.fetch("SELECT kafka_partition, kafka_offset FROM inbox WHERE consumer = $1", name)
    return {(r["kafka_partition"], r["kafka_offset"]) for r in rows} | dead


async def test_no_failure_at_any_point_commits_past_an_unsettled_message(
    pool: asyncpg.Pool, schema: str, context: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = events_topic(J, context)
    name = f"c{uuid.uuid4().hex[:8]}"
    group = f"g-{uuid.uuid4()}"
    await create_topics(topic, dead_letter_topic(name))
    await pool.execute(EFFECTS_DDL)
    await write_and_relay(pool, schema, context, cases=CASES, per_case=PER_CASE)
    await publish_poison(topic, POISON)

    # Every kind at every point, spread over the run (dead-letter publishes are fewer: denser).
    plan = {
        point: {(2 * k + 1 if point == "dead_letter" else 7 + 11 * k): make() for k, make in enumerate(KINDS)}
        for point in POINTS
    }
    faults = Faults(plan)
    dead: set[tuple[int, int]] = set()
    violations: list[str] = []

    original_commit = AIOKafkaConsumer.commit

    async def commit(self: AIOKafkaConsumer, offsets: dict[TopicPartition, int] | None = None) -> None:
        targets = offsets or {tp: await self.position(tp) for tp in self.assignment()}
        unsettled = on_topic - await settled(pool, name, dead)
        for tp, offset in targets.items():
            missing = [o for o in range(offset) if (tp.partition, o) in unsettled]
            if missing:
                violations.append(f"commit of {tp.partition}@{offset} passes unsettled {missing}")
        faults.hit("offset")
        await original_commit(self, offsets)

    monkeypatch.setattr(AIOKafkaConsumer, "commit", commit)

    async def faulty_apply(conn: Conn, envelope: EventEnvelope, payload: BaseModel) -> None:
        faults.hit("apply")
        await apply(conn, envelope, payload)
        faults.hit("applied")  # the effect is written, the transaction must roll it back

    broker = KafkaBroker(settings.kafka().bootstrap, logger=None)
    consumer = EventConsumer(
        name, cast(asyncpg.Pool, FaultyPool(pool, faults)), registry, faulty_apply, settings=FAST_RETRY
    )
    consumer.subscribe(broker, topic, group_id=group)
    real_publish = broker.publish

    async def publish(body: bytes, **kwargs: Any) -> Any:
        faults.hit("dead_letter")
        result = await real_publish(body, **kwargs)
        headers = kwargs["headers"]
        dead.add((int(headers["zm-original-partition"]), int(headers["zm-original-offset"])))
        return result

    monkeypatch.setattr(broker, "publish", publish)
    on_topic = await record_offsets(topic)
    assert len(on_topic) == CASES * PER_CASE + POISON
    # Done when each partition is committed just past its last record.
    ends = {p: max(o for q, o in on_topic if q == p) + 1 for p in range(3)}

    await broker.start()
    try:

        async def caught_up() -> bool:
            return bool(violations) or await committed_offsets(group, topic, 3) == ends

        await wait_for(caught_up, "every offset committed up to the end of the topic", timeout_s=180)
    finally:
        await broker.stop()

    assert faults.pending() == {}, "every planned fault must have fired"
    assert len(faults.fired) == len(POINTS) * len(KINDS)
    assert violations == []
    assert await pool.fetchval("SELECT count(*) FROM inbox WHERE consumer = $1", name) == CASES * PER_CASE
    assert await effects(pool) == {f"case-{c}": PER_CASE for c in range(CASES)}
    assert len(dead) == POISON
    dead_letters = await read_topic(dead_letter_topic(name), POISON, timeout_s=30)
    assert {value for _, value, _ in dead_letters} == {b"{not an envelope %d" % i for i in range(POISON)}
    assert consumer.failure is None
    assert consumer.retries >= len(faults.fired) - len([f for f in faults.fired if f[0] == "offset"])


async def test_a_message_that_keeps_failing_stops_the_consumer_on_it_and_nothing_after_is_committed(
    pool: asyncpg.Pool, schema: str, context: str
) -> None:
    topic = events_topic(J, context)
    name = f"c{uuid.uuid4().hex[:8]}"
    group = f"g-{uuid.uuid4()}"
    await create_topics(topic, partitions=1)
    await pool.execute(EFFECTS_DDL)
    await write_and_relay(pool, schema, context, cases=1, per_case=30)
    broken = {"on": True}

    async def apply_failing_on_the_tenth(conn: Conn, envelope: EventEnvelope, payload: BaseModel) -> None:
        if broken["on"] and envelope.stream_version == 10:
            raise RuntimeError("a bug in the projection")
        await apply(conn, envelope, payload)

    broker = KafkaBroker(settings.kafka().bootstrap, logger=None)
    quick = ConsumerSettings(retry_initial_s=0.05, retry_max_s=0.2, retry_deadline_s=1.5)
    consumer = EventConsumer(name, pool, registry, apply_failing_on_the_tenth, settings=quick)
    consumer.subscribe(broker, topic, group_id=group)
    await broker.start()
    try:

        async def stopped() -> bool:
            return consumer.failure is not None

        await wait_for(stopped, "the consumer to give up on the failing message", timeout_s=60)
    finally:
        await broker.stop()
    assert consumer.failure is not None and "RuntimeError" in consumer.failure
    assert consumer.counts["applied"] == 9
    assert await committed_offsets(group, topic, 1) == {0: 9}  # offset 9 is the 10th event

    # A service whose consumer stopped says so.
    runtime = Runtime(
        service="t",
        pool=pool,
        store=EventStore(pool, schema=schema, context=context),
        cipher=FieldCipher(b"\0" * 32),
        jurisdictions=[J],
        broker_started=True,
        consumers=[consumer],
    )
    app = FastAPI()
    add_health_routes(app, runtime)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        ready = await http.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["consumers"] is False
    assert name in ready.json()["stopped_consumers"]

    # Once the bug is fixed, the same group resumes on that very message: nothing lost, nothing twice.
    broken["on"] = False
    broker = KafkaBroker(settings.kafka().bootstrap, logger=None)
    again = EventConsumer(name, pool, registry, apply, settings=quick)
    again.subscribe(broker, topic, group_id=group)
    await broker.start()
    try:

        async def resumed() -> bool:
            return await committed_offsets(group, topic, 1) == {0: 30}

        await wait_for(resumed, "the consumer to resume and finish", timeout_s=60)
    finally:
        await broker.stop()
    assert again.counts["applied"] == 21
    assert await effects(pool) == {"case-0": 30}


async def test_a_message_with_a_binary_header_is_dead_lettered_not_passed_over(
    pool: asyncpg.Pool, schema: str, context: str
) -> None:
    topic = events_topic(J, context)
    name = f"c{uuid.uuid4().hex[:8]}"
    group = f"g-{uuid.uuid4()}"
    await create_topics(topic, dead_letter_topic(name), partitions=1)
    await pool.execute(EFFECTS_DDL)
    producer = make_producer(settings.kafka())
    await producer.start()
    try:  # FastStream's own parser fails on this header before any handler sees the message
        await producer.send_and_wait(topic, b"{forged", key=b"case-0", headers=[("event_type", b"\xff\xfe")])
    finally:
        await producer.stop()
    await write_and_relay(pool, schema, context, cases=1, per_case=5)
    broker = KafkaBroker(settings.kafka().bootstrap, logger=None)
    consumer = EventConsumer(name, pool, registry, apply, settings=FAST_RETRY)
    consumer.subscribe(broker, topic, group_id=group)
    last = max(o for _, o in await record_offsets(topic))
    await broker.start()
    try:

        async def done() -> bool:
            return await committed_offsets(group, topic, 1) == {0: last + 1}

        await wait_for(done, "the partition committed to its end", timeout_s=60)
    finally:
        await broker.stop()
    assert [value for _, value, _ in await read_topic(dead_letter_topic(name), 1)] == [b"{forged"]
    assert consumer.counts["dead_letter"] == 1 and consumer.counts["applied"] == 5
