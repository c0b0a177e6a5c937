"""The relay marks published rows in bulk, and only after their Kafka transaction committed."""

from __future__ import annotations

import uuid

import asyncpg
import pytest
from aiokafka.errors import MessageSizeTooLargeError

from shared import settings
from shared.outbox import OutboxRelay
from shared.settings import RelaySettings
from shared.store import EventStore, NewEvent
from shared.topics import events_topic
from tests.integration.conftest import ACTOR, create_topics, read_topic

J = "331122"
BATCH = 40


async def _append(store: EventStore, n: int) -> None:
    for k in range(n // 10):
        await store.append(
            f"case-{k}",
            0,
            [NewEvent("Noted", 1, {"i": i}) for i in range(10)],
            case_id=f"case-{k}",
            jurisdiction=J,
            actor=ACTOR,
            correlation_id=uuid.uuid4(),
        )


async def test_one_drain_marks_every_published_row_one_statement_per_batch(
    pool: asyncpg.Pool, schema: str, context: str
) -> None:
    topic = events_topic(J, context)
    await create_topics(topic)
    store = EventStore(pool, schema=schema, context=context)
    await _append(store, 250)
    relay = OutboxRelay(pool, settings.kafka(), schema=schema, settings=RelaySettings(batch_size=BATCH))

    assert await relay.drain() == 250

    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0
    # One UPDATE per batch: its rows share the statement's transaction time.
    marks = await pool.fetchval("SELECT count(DISTINCT published_at) FROM outbox")
    assert marks == -(-250 // BATCH)
    records = await read_topic(topic, 250)
    assert len(records) == 250


async def test_a_failed_kafka_transaction_marks_none_of_its_rows(
    pool: asyncpg.Pool, schema: str, context: str
) -> None:
    topic = events_topic(J, context)
    await create_topics(topic)
    store = EventStore(pool, schema=schema, context=context)
    await _append(store, 20)
    # A record beyond the producer's request size fails the batch it is in, after the others
    # were handed to the producer.
    async with pool.acquire() as conn:
        await store.enqueue_integration(
            conn, topic=topic, key="case-0", body=b"x" * (2 * 1024 * 1024), message_id=uuid.uuid4()
        )
    relay = OutboxRelay(pool, settings.kafka(), schema=schema, settings=RelaySettings(batch_size=BATCH))

    async with relay.producing():
        with pytest.raises(MessageSizeTooLargeError):
            await relay.publish_pending()

    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NOT NULL") == 0
    assert await read_topic(topic, 0, timeout_s=2) == []
