"""Outbox relay on the real broker: concurrent writers committing out of sequence order."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections import defaultdict

import asyncpg

from shared import settings
from shared.outbox import OutboxRelay
from shared.settings import RelaySettings
from shared.store import EventStore, NewEvent
from shared.topics import events_topic
from tests.integration.conftest import ACTOR, create_topics, read_topic, wait_for

J = "331122"
WRITERS = 8
PER_WRITER = 500
CASES = 16


async def test_relay_delivers_every_event_once_and_each_key_in_order(
    pool: asyncpg.Pool, schema: str, context: str
) -> None:
    topic = events_topic(J, context)
    await create_topics(topic)
    store = EventStore(pool, schema=schema, context=context)
    relay = OutboxRelay(pool, settings.kafka(), schema=schema, settings=RelaySettings(batch_size=200))
    stop = asyncio.Event()
    relay_task = asyncio.create_task(relay.run(stop))
    held_back = 0
    naive_seen: set[int] = set()

    async def naive_last_id_tracker() -> None:
        """What a relay tracking only "last id sent" would see: proves the hard case happened."""
        last = 0
        while not stop.is_set():
            rows = await pool.fetch("SELECT id FROM outbox WHERE id > $1 ORDER BY id", last)
            if rows:
                naive_seen.update(r["id"] for r in rows)
                last = rows[-1]["id"]
            await asyncio.sleep(0.002)

    naive_task = asyncio.create_task(naive_last_id_tracker())

    async def writer(w: int) -> None:
        nonlocal held_back
        rng = random.Random(w)
        versions: dict[str, int] = defaultdict(int)
        for i in range(PER_WRITER):
            case = f"case-{rng.randrange(CASES)}"
            stream = f"{case}/writer-{w}"
            async with pool.acquire() as conn, conn.transaction():
                await store.append(
                    stream,
                    versions[stream],
                    [NewEvent("Noted", 1, {"w": w, "i": i})],
                    case_id=case,
                    jurisdiction=J,
                    actor=ACTOR,
                    correlation_id=uuid.uuid4(),
                    conn=conn,
                )
                # Hold some transactions open after their ids were taken, so later ids of other
                # writers commit first: the situation where "last id sent" relays skip events.
                if rng.random() < 0.05:
                    held_back += 1
                    await asyncio.sleep(rng.uniform(0.01, 0.05))
            versions[stream] += 1

    await asyncio.gather(*(writer(w) for w in range(WRITERS)))
    total = WRITERS * PER_WRITER

    async def all_published() -> bool:
        return bool(await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0)

    await wait_for(all_published, "the relay to publish every outbox row", timeout_s=120)
    stop.set()
    await relay_task
    await naive_task
    assert held_back > 0
    # Commit order really differed from id order: a "last id sent" relay would have lost these.
    skipped_by_naive = total - len(naive_seen)
    assert skipped_by_naive > 0

    records = await read_topic(topic, total, timeout_s=120)
    ids = [json.loads(v)["event_id"] for _, v, _ in records]
    assert len(ids) == total, f"{len(ids)} records on the topic, {total} events written"
    assert len(set(ids)) == total, "an event was published twice"
    stored = {
        str(r["event_id"]): r["global_position"]
        for r in await pool.fetch("SELECT event_id, global_position FROM events")
    }
    assert set(ids) == set(stored)

    by_key: dict[bytes, list[int]] = defaultdict(list)
    partitions: dict[bytes, set[int]] = defaultdict(set)
    for key, value, partition in records:
        by_key[key].append(stored[json.loads(value)["event_id"]])
        partitions[key].add(partition)
    assert len(by_key) == CASES
    for key, positions in by_key.items():
        assert len(partitions[key]) == 1, "one key must stay on one partition"
        assert positions == sorted(positions), f"events of {key!r} out of commit order on Kafka"
