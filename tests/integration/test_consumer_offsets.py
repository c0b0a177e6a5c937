"""The consumer's header filter and lazy offset commits, on the real broker and database: a type
the consumer does not react to is skipped unread, offsets are committed in batches, on revocation
and at stop, and a crash between the inbox commit and the offset commit loses nothing and applies
nothing twice."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError
from faststream.kafka import KafkaBroker
from pydantic import BaseModel

from shared import settings
from shared.consumer import EventConsumer
from shared.envelope import EventEnvelope
from shared.outbox import make_producer
from shared.settings import ConsumerSettings
from shared.topics import dead_letter_topic, events_topic
from tests.integration.conftest import create_topics, read_topic, wait_for
from tests.integration.consumer_app import EFFECTS_DDL, apply, registry
from tests.integration.test_consumer import ROOT, effects, write_and_relay
from tests.integration.test_consumer_faults import committed_offsets, record_offsets

J = "331122"
# Only batches commit (the timer would commit at a moment the test cannot name).
BATCHES_OF_10 = ConsumerSettings(
    retry_initial_s=0.01,
    retry_max_s=0.05,
    retry_deadline_s=60,
    commit_every_messages=10,
    commit_interval_s=3600,
)
NEVER_BEFORE_STOP = BATCHES_OF_10.model_copy(update={"commit_every_messages": 1_000_000})
# Only the timer commits, and soon.
TIMER_ONLY = NEVER_BEFORE_STOP.model_copy(update={"commit_interval_s": 0.2})

Commit = Callable[[dict[TopicPartition, int]], Awaitable[None]]


def committing_through(wrap: Callable[[Commit], Commit]) -> type[EventConsumer]:
    """An EventConsumer whose aiokafka consumer commits through `wrap(its own commit)`."""

    class Wrapped(EventConsumer):
        def _adopt(self, consumer: AIOKafkaConsumer) -> None:
            if consumer is not self._kafka:
                consumer.commit = wrap(consumer.commit)
            super()._adopt(consumer)

    return Wrapped


async def committed_to_the_end(group: str, topic: str) -> bool:
    """Whether the group's offset of the one-partition topic is past its last record."""
    offsets = sorted(o for _, o in await record_offsets(topic))
    return await committed_offsets(group, topic, 1) == {0: offsets[-1] + 1}


async def test_a_type_the_consumer_ignores_is_skipped_unread_and_one_it_reacts_to_is_read(
    pool: asyncpg.Pool, context: str
) -> None:
    topic = events_topic(J, context)
    name = f"c{uuid.uuid4().hex[:8]}"
    await create_topics(topic, dead_letter_topic(name), partitions=1)
    await pool.execute(EFFECTS_DDL)
    garbage = b"\xff this body is no envelope"
    producer = make_producer(settings.kafka())
    await producer.start()
    try:
        # Skipped on its header alone: were it decoded, it would be dead-lettered.
        await producer.send_and_wait(topic, garbage + b" 1", key=b"k", headers=[("event_type", b"Other")])
        # The same body under a type the consumer reacts to, without the header or with an
        # unreadable one: decoded, found poison, dead-lettered.
        await producer.send_and_wait(topic, garbage + b" 2", key=b"k", headers=[("event_type", b"Noted")])
        await producer.send_and_wait(topic, garbage + b" 3", key=b"k")
        await producer.send_and_wait(topic, garbage + b" 4", key=b"k", headers=[("event_type", b"\xff\xfe")])
        await producer.send_and_wait(topic, garbage + b" 5", key=b"k", headers=[("event_type", b"")])
    finally:
        await producer.stop()
    decoded: list[bytes] = []

    class Watched(EventConsumer):
        async def _decode(self, body: bytes, topic: str) -> tuple[EventEnvelope, BaseModel]:
            decoded.append(body)
            return await super()._decode(body, topic)

    broker = KafkaBroker(settings.kafka().bootstrap, logger=None)
    consumer = Watched(name, pool, registry, apply, event_types=frozenset({"Noted"}), settings=BATCHES_OF_10)
    consumer.subscribe(broker, topic, group_id=name)
    await broker.start()
    try:

        async def handled() -> bool:
            return sum(consumer.counts.values()) >= 5

        await wait_for(handled, "the consumer to settle the five messages")
    finally:
        await broker.stop()
    assert consumer.counts == {"applied": 0, "duplicate": 0, "dead_letter": 4, "skipped": 1}
    assert decoded == [garbage + b" %d" % i for i in (2, 3, 4, 5)]
    dead = await read_topic(dead_letter_topic(name), 4, timeout_s=30)
    assert sorted(value for _, value, _ in dead) == sorted(decoded)
    assert await committed_offsets(name, topic, 1) == {0: 5}  # the skipped one is committed too


async def test_offsets_are_committed_per_batch_and_the_rest_at_stop(
    pool: asyncpg.Pool, schema: str, context: str
) -> None:
    topic = events_topic(J, context)
    name = f"c{uuid.uuid4().hex[:8]}"
    await create_topics(topic, partitions=1)
    await pool.execute(EFFECTS_DDL)
    await write_and_relay(pool, schema, context, cases=1, per_case=25)
    offsets = sorted(o for _, o in await record_offsets(topic))  # a relay's transaction marker takes one
    broker = KafkaBroker(settings.kafka().bootstrap, logger=None)
    consumer = EventConsumer(name, pool, registry, apply, settings=BATCHES_OF_10)
    consumer.subscribe(broker, topic, group_id=name)
    await broker.start()
    try:

        async def handled() -> bool:
            return consumer.counts["applied"] >= 25

        await wait_for(handled, "the consumer to apply the 25 events")
        # Two full batches committed; the last five are settled and wait for the next commit.
        assert consumer.commits == 2
        assert await committed_offsets(name, topic, 1) == {0: offsets[19] + 1}
    finally:
        await broker.stop()
    assert consumer.commits == 3
    assert await committed_offsets(name, topic, 1) == {0: offsets[-1] + 1}
    assert await effects(pool) == {"case-0": 25}


async def test_a_refused_commit_of_the_last_batch_is_taken_again_without_another_message(
    pool: asyncpg.Pool, schema: str, context: str
) -> None:
    """A commit the group refuses (a rebalance under way) keeps its offsets; with no message
    after them the group would stay behind for good, and a deployment would never look quiet."""
    topic = events_topic(J, context)
    name = f"c{uuid.uuid4().hex[:8]}"
    await create_topics(topic, partitions=1)
    await pool.execute(EFFECTS_DDL)
    await write_and_relay(pool, schema, context, cases=1, per_case=5)
    refused: list[dict[TopicPartition, int]] = []

    def refuse_the_first(commit: Commit) -> Commit:
        async def refusing(offsets: dict[TopicPartition, int]) -> None:
            if not refused:
                refused.append(dict(offsets))
                raise CommitFailedError("rebalance in progress (refused by the test)")
            await commit(offsets)

        return refusing

    broker = KafkaBroker(settings.kafka().bootstrap, logger=None)
    consumer = committing_through(refuse_the_first)(name, pool, registry, apply, settings=TIMER_ONLY)
    consumer.subscribe(broker, topic, group_id=name)
    await broker.start()
    try:

        async def caught_up() -> bool:
            return await committed_to_the_end(name, topic)

        await wait_for(caught_up, "the group's offset to reach the last event while the consumer runs")
        assert len(refused) == 1
        assert consumer.commits >= 1
    finally:
        await broker.stop()
    assert await effects(pool) == {"case-0": 5}


async def test_a_message_settled_while_the_timer_commits_gets_a_commit_of_its_own(
    pool: asyncpg.Pool, schema: str, context: str
) -> None:
    """The timer's commit takes what had settled when it woke; a message settled while that
    commit is in flight, the last on its partition, must still be committed (it once waited for
    a next message that never came, and the chaos run's stack never looked quiet)."""
    topic = events_topic(J, context)
    name = f"c{uuid.uuid4().hex[:8]}"
    await create_topics(topic, partitions=1)
    await pool.execute(EFFECTS_DDL)
    await write_and_relay(pool, schema, context, cases=1, per_case=1)
    in_flight, release = asyncio.Event(), asyncio.Event()

    def hold_the_first(commit: Commit) -> Commit:
        async def holding(offsets: dict[TopicPartition, int]) -> None:
            if not in_flight.is_set():
                in_flight.set()
                await release.wait()
            await commit(offsets)

        return holding

    broker = KafkaBroker(settings.kafka().bootstrap, logger=None)
    consumer = committing_through(hold_the_first)(name, pool, registry, apply, settings=TIMER_ONLY)
    consumer.subscribe(broker, topic, group_id=name)
    await broker.start()
    try:
        await asyncio.wait_for(in_flight.wait(), 60)  # the timer commits the first event
        # A second event, settled while that commit is held.
        await write_and_relay(pool, schema, context, cases=1, per_case=1, first_case=1)

        async def second_applied() -> bool:
            return consumer.counts["applied"] >= 2

        await wait_for(second_applied, "the consumer to apply the events written meanwhile")
        release.set()

        async def caught_up() -> bool:
            return await committed_to_the_end(name, topic)

        await wait_for(caught_up, "the group's offset to reach the last event while the consumer runs")
    finally:
        release.set()
        await broker.stop()
    assert await effects(pool) == {"case-0": 1, "case-1": 1}


async def test_a_revoked_partition_is_committed_before_its_next_owner_reads_it(
    pool: asyncpg.Pool, schema: str, context: str
) -> None:
    topic = events_topic(J, context)
    name = f"c{uuid.uuid4().hex[:8]}"
    await create_topics(topic, partitions=3)
    await pool.execute(EFFECTS_DDL)
    await write_and_relay(pool, schema, context, cases=6, per_case=5)
    first_broker = KafkaBroker(settings.kafka().bootstrap, logger=None)
    first = EventConsumer(name, pool, registry, apply, settings=NEVER_BEFORE_STOP)
    first.subscribe(first_broker, topic, group_id=name)
    await first_broker.start()
    second_broker = KafkaBroker(settings.kafka().bootstrap, logger=None)
    second = EventConsumer(name, pool, registry, apply, settings=NEVER_BEFORE_STOP)
    second.subscribe(second_broker, topic, group_id=name)
    try:

        async def all_applied() -> bool:
            return first.counts["applied"] >= 30

        await wait_for(all_applied, "the first member to apply the 30 events")
        assert first.commits == 0
        # A second member joins: the rebalance revokes the first member's partitions, which
        # commits what it settled, so the second starts where the first stopped.
        await second_broker.start()

        async def rebalanced() -> bool:
            return first.commits > 0

        await wait_for(rebalanced, "the first member to commit on revocation", timeout_s=90)
    finally:
        await second_broker.stop()
        await first_broker.stop()
    assert second.counts == {"applied": 0, "duplicate": 0, "dead_letter": 0, "skipped": 0}
    assert await effects(pool) == {f"case-{c}": 5 for c in range(6)}
    assert await pool.fetchval("SELECT count(*) FROM inbox WHERE consumer = $1", name) == 30


async def test_a_consumer_killed_after_the_inbox_commit_redelivers_the_uncommitted_batch_once(
    pool: asyncpg.Pool, schema: str, context: str
) -> None:
    topic = events_topic(J, context)
    await create_topics(topic, partitions=1)
    await pool.execute(EFFECTS_DDL)
    await write_and_relay(pool, schema, context, cases=1, per_case=30)
    offsets = sorted(o for _, o in await record_offsets(topic))
    name = f"crashy{uuid.uuid4().hex[:6]}"
    env = {
        **os.environ,
        "ZM_LOG_JSON_OUTPUT": "true",
        "ZM_CONSUMER_COMMIT_EVERY_MESSAGES": "4",
        "ZM_CONSUMER_COMMIT_INTERVAL_S": "3600",
    }
    cmd = [sys.executable, "-m", "tests.integration.consumer_app", schema, topic, name]

    # SIGKILL-like death (os._exit) right after the 10th event's transaction committed: offsets
    # 0-7 were committed in two batches, 8 and 9 are applied and uncommitted.
    crashed = await asyncio.create_subprocess_exec(
        *cmd, "10", cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out_b, err_b = await asyncio.wait_for(crashed.communicate(), 120)
    assert crashed.returncode == 137, err_b.decode()[-2000:]
    assert await effects(pool) == {"case-0": 10}
    assert await committed_offsets(name, topic, 1) == {0: offsets[7] + 1}
    first_logs = [json.loads(line) for line in err_b.decode().splitlines() if line.startswith("{")]
    applied_before = [e["event_id"] for e in first_logs if e.get("event") == "event.applied"]
    assert len(applied_before) == 10

    proc = await asyncio.create_subprocess_exec(
        *cmd, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:

        async def caught_up() -> bool:
            return bool(await pool.fetchval("SELECT count(*) FROM inbox WHERE consumer = $1", name) == 30)

        await wait_for(caught_up, "the restarted consumer to catch up", timeout_s=90)
    finally:
        proc.terminate()
        out_b, err_b = await asyncio.wait_for(proc.communicate(), 60)
    assert "STOPPED" in out_b.decode()
    logs = [json.loads(line) for line in err_b.decode().splitlines() if line.startswith("{")]
    duplicates = [e["event_id"] for e in logs if e.get("event") == "event.duplicate"]
    applied_after = [e["event_id"] for e in logs if e.get("event") == "event.applied"]
    # Exactly the two applied but uncommitted events come again, and are dropped by the inbox.
    assert duplicates == applied_before[8:]
    assert len(applied_after) == 20 and not set(applied_after) & set(applied_before)
    assert await effects(pool) == {"case-0": 30}
    # The stop committed the end of the partition.
    assert await committed_offsets(name, topic, 1) == {0: offsets[-1] + 1}
