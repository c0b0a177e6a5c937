"""Soak: 2,000 events written, relayed and consumed while PostgreSQL restarts five times and the
broker three times, with CPU-burning processes of the test's own loading the machine."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from faststream.kafka import KafkaBroker

from shared import settings
from shared.consumer import EventConsumer
from shared.errors import ConcurrencyError
from shared.outbox import DB_DOWN, OutboxRelay
from shared.settings import ConsumerSettings, RelaySettings
from shared.store import EventStore, NewEvent
from shared.topics import events_topic
from tests.integration.conftest import ACTOR, create_topics, wait_for
from tests.integration.consumer_app import EFFECTS_DDL, apply, registry
from tests.integration.test_consumer import effects
from zhengming.local import LocalKafka, LocalPostgres

J = "331122"
BATCHES, PER_BATCH, CASES = 200, 10, 8
TOTAL = BATCHES * PER_BATCH
# What restarts when the consumer has applied this many events (five database, three broker).
RESTARTS = [(150, "postgres"), (350, "kafka"), (550, "postgres"), (800, "postgres"), (1000, "kafka"),
            (1250, "postgres"), (1500, "kafka"), (1750, "postgres")]  # fmt: skip
# What a database restart raises, asyncpg's InternalClientError on a session cut mid-COMMIT among them.
DOWN = DB_DOWN


@contextlib.contextmanager
def cpu_burners(count: int = 2) -> Iterator[None]:
    """Busy processes, so the consumer's races meet a loaded machine."""
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


@contextlib.asynccontextmanager
async def relaying(pool: asyncpg.Pool, schema: str) -> AsyncIterator[OutboxRelay]:
    relay = OutboxRelay(pool, settings.kafka(), schema=schema, settings=RelaySettings(poll_interval_s=0.2))
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        yield relay
    finally:
        stop.set()
        await task


async def write_all(store: EventStore) -> None:
    """Each batch a fresh stream: a retry that meets ConcurrencyError finds the batch committed."""
    for b in range(BATCHES):
        while True:
            try:
                await store.append(
                    f"soak-{b}",
                    0,
                    [NewEvent("Noted", 1, {"n": b * PER_BATCH + i}) for i in range(PER_BATCH)],
                    case_id=f"case-{b % CASES}",
                    jurisdiction=J,
                    actor=ACTOR,
                    correlation_id=uuid.uuid4(),
                )
                break
            except ConcurrencyError:
                break
            except DOWN:
                await asyncio.sleep(0.2)


@pytest.mark.timeout(900)
async def test_soak_2000_events_through_five_database_and_three_broker_restarts_on_a_loaded_machine(
    pool: asyncpg.Pool, schema: str, context: str
) -> None:
    topic = events_topic(J, context)
    await create_topics(topic)
    await pool.execute(EFFECTS_DDL)
    store = EventStore(pool, schema=schema, context=context)
    postgres = LocalPostgres(settings.local(), settings.postgres())
    kafka = LocalKafka(settings.local(), settings.kafka())
    parts: dict[str, LocalPostgres | LocalKafka] = {"postgres": postgres, "kafka": kafka}
    broker = KafkaBroker(settings.kafka().bootstrap, logger=None)
    retry = ConsumerSettings(retry_initial_s=0.1, retry_max_s=1.0, retry_deadline_s=240)
    consumer = EventConsumer("soak", pool, registry, apply, settings=retry)
    consumer.subscribe(broker, topic, group_id=f"g-{uuid.uuid4()}")

    async def inbox_full() -> bool:
        try:
            return bool(await pool.fetchval("SELECT count(*) FROM inbox") >= TOTAL)
        except DOWN:
            return False

    with cpu_burners():
        async with relaying(pool, schema):
            writer = asyncio.create_task(write_all(store))
            await broker.start()
            try:
                for threshold, part in RESTARTS:

                    async def reached(at: int = threshold) -> bool:
                        return consumer.counts["applied"] >= at

                    await wait_for(reached, f"{threshold} events applied", timeout_s=240)
                    await asyncio.to_thread(parts[part].stop)
                    await asyncio.to_thread(parts[part].start)
                await writer
                await wait_for(inbox_full, f"all {TOTAL} events in the inbox", timeout_s=300)
            finally:
                writer.cancel()
                await broker.stop()

    assert await pool.fetchval("SELECT count(*) FROM events") == TOTAL
    assert await pool.fetchval("SELECT count(*) FROM inbox") == TOTAL
    assert await pool.fetchval("SELECT count(DISTINCT event_id) FROM inbox") == TOTAL
    assert await effects(pool) == {f"case-{c}": TOTAL // CASES for c in range(CASES)}
    assert consumer.counts["dead_letter"] == 0
    assert consumer.failure is None
    # A commit that landed while its connection died is retried and then found in the inbox:
    # counted a duplicate, applied once all the same (the effects above say so).
    assert consumer.counts["applied"] + consumer.counts["duplicate"] >= TOTAL >= consumer.counts["applied"]
