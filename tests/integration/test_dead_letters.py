"""Dead letters an operator works off, on the real broker and database: a consumer dead-letters
what it refuses; the entries are listed with their reasons; a replay runs them through the same
consumer, so what is now acceptable is applied, once, however often it is replayed; what is still
refused stays, with the new reason; a purge deletes the settled prefix, or everything with a
reason, and records who did it."""

from __future__ import annotations

import uuid

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from faststream.kafka import KafkaBroker
from pydantic import BaseModel

from shared import dead_letters, settings
from shared.consumer import EventConsumer
from shared.db import Conn
from shared.dead_letters import EntryRef, EntryState
from shared.envelope import EventEnvelope
from shared.topics import dead_letter_topic, events_topic
from tests.integration.conftest import create_topics, wait_for
from tests.integration.consumer_app import EFFECTS_DDL, registry
from tests.integration.consumer_app import apply as count_effect
from tests.integration.test_consumer import effects, write_and_relay

J = "331122"


class Gate:
    """Refuses case-1's events (a ValueError: the consumer dead-letters them) while shut."""

    def __init__(self) -> None:
        self.shut = True

    async def apply(self, conn: Conn, envelope: EventEnvelope, payload: BaseModel) -> None:
        if self.shut and envelope.case_id == "case-1":
            raise ValueError("case-1 is not accepted yet")
        await count_effect(conn, envelope, payload)


async def _depth(pool: asyncpg.Pool, name: str, records: int) -> int:
    async with pool.acquire() as conn:
        # One partition holding every record is enough for the count's arithmetic.
        return await dead_letters.pending_count(conn, name, {0: 0}, {0: records})


async def test_replay_applies_once_failures_stay_and_purge_removes_what_is_settled(
    pool: asyncpg.Pool, schema: str, context: str
) -> None:
    await pool.execute(EFFECTS_DDL)
    topic = events_topic(J, context)
    name = f"dlq-{uuid.uuid4().hex[:8]}"
    await create_topics(topic, dead_letter_topic(name), partitions=1)
    await write_and_relay(pool, schema, context, cases=3, per_case=2)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka().bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"{not an envelope", key=b"case-9")
    finally:
        await producer.stop()

    gate = Gate()
    broker = KafkaBroker(settings.kafka().bootstrap, logger=None)
    consumer = EventConsumer(name, pool, registry, gate.apply)
    consumer.subscribe(broker, topic, group_id=name)
    await broker.start()
    try:

        async def settled() -> bool:
            return consumer.counts["applied"] == 4 and consumer.counts["dead_letter"] == 3

        await wait_for(settled, "4 applied and 3 dead-lettered", timeout_s=60)
    finally:
        await broker.stop()
    assert await effects(pool) == {"case-0": 2, "case-2": 2}

    listed = await dead_letters.entries(consumer)
    assert [(e.code, e.event_type, e.state) for e in listed] == [
        ("rejected", "Noted", EntryState.pending),
        ("rejected", "Noted", EntryState.pending),
        ("undecodable", None, EntryState.pending),
    ]
    assert all(e.original_topic == topic and e.original_offset is not None for e in listed)
    assert "case-1 is not accepted yet" in listed[0].reason
    assert await _depth(pool, name, 3) == 3

    # The cause is fixed: a replay of every unsettled entry applies case-1's two events, once.
    gate.shut = False
    replayed = await dead_letters.replay(consumer, None, "operator-331100")
    assert [e.state for e in replayed] == [EntryState.applied, EntryState.applied, EntryState.failed]
    assert replayed[2].replay_code == "undecodable" and replayed[2].replayed_by == "operator-331100"
    assert await effects(pool) == {"case-0": 2, "case-1": 2, "case-2": 2}
    assert await _depth(pool, name, 3) == 1

    # Again, all: only the refused one is tried (a second attempt); named, an applied one is a
    # duplicate the inbox drops.
    again = await dead_letters.replay(consumer, None, "operator-331100")
    assert [(e.offset, e.state, e.attempts) for e in again] == [(listed[2].offset, EntryState.failed, 2)]
    first = EntryRef(partition=listed[0].partition, offset=listed[0].offset)
    [dup] = await dead_letters.replay(consumer, [first, first], "operator-331100")
    assert dup.state == EntryState.duplicate
    assert await effects(pool) == {"case-0": 2, "case-1": 2, "case-2": 2}
    with pytest.raises(dead_letters.EntryNotFound):
        await dead_letters.replay(consumer, [EntryRef(partition=0, offset=10_000)], "operator-331100")

    # A purge removes the settled prefix only; the refused entry (and anything after it) stays.
    result = await dead_letters.purge(consumer, "operator-331100", everything=False, reason=None)
    assert [(p.removed, p.unresolved) for p in result.partitions] == [(2, 0)] and result.left == 1
    assert [e.state for e in await dead_letters.entries(consumer)] == [EntryState.failed]
    # Everything, with a reason: gone, and recorded.
    result = await dead_letters.purge(consumer, "operator-331100", everything=True, reason="垃圾数据")
    assert [(p.removed, p.unresolved) for p in result.partitions] == [(1, 1)] and result.left == 0
    assert await dead_letters.entries(consumer) == []
    purges = await pool.fetch(
        "SELECT removed, unresolved, reason, purged_by FROM dead_letter_purges ORDER BY id"
    )
    assert [tuple(r) for r in purges] == [
        (2, 0, None, "operator-331100"),
        (1, 1, "垃圾数据", "operator-331100"),
    ]


async def test_a_consumer_without_dead_letters_lists_none() -> None:
    assert await dead_letters.read_records(dead_letter_topic(f"never-{uuid.uuid4().hex[:8]}")) == []
