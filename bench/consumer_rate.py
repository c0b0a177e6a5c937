"""Messages per second of one consumer (shared/consumer.py) over events of which most are of types
it does not react to, as a service's consumer sees its topic (about 1 in 6 applied).

    python -m bench.consumer_rate [--events N] [--every K]

Runs against the stack of the environment (`zhengming with-infra`): writes N events through the
event store and relay (real headers) to a fresh topic of one partition, then times one consumer
from its first message to its last; reports the rate and the offset commits it made.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer
from faststream.kafka import KafkaBroker, KafkaMessage
from pydantic import BaseModel

from shared import settings
from shared.consumer import EventConsumer, Outcome
from shared.db import CORE_MIGRATIONS, Conn, create_pool, migrate
from shared.envelope import Actor, EventEnvelope
from shared.outbox import OutboxRelay
from shared.registry import EventRegistry
from shared.store import EventStore, NewEvent
from shared.topics import events_topic
from zhengming.local import ensure_topics

J = "331122"
registry = EventRegistry()


@registry.event("Wanted", 1)
class Wanted(BaseModel):
    n: int


@registry.event("Unwanted", 1)
class Unwanted(BaseModel):
    n: int
    text: str = ""


async def apply(conn: Conn, envelope: EventEnvelope, payload: BaseModel) -> None:
    await conn.execute("INSERT INTO effects (n) VALUES ($1)", getattr(payload, "n", 0))


class Timed(EventConsumer):
    first: float | None = None
    last: float = 0.0
    target = 0
    done: asyncio.Event

    async def handle(self, msg: KafkaMessage) -> Outcome:
        outcome = await super().handle(msg)
        now = time.perf_counter()
        self.first = self.first or now
        self.last = now
        if sum(self.counts.values()) >= self.target:
            self.done.set()
        return outcome


async def run(events: int, every: int) -> dict[str, Any]:
    schema = f"b_{uuid.uuid4().hex[:10]}"
    context = f"b{uuid.uuid4().hex[:10]}"
    topic = events_topic(J, context)
    conn = await asyncpg.connect(settings.postgres().dsn())
    try:
        await migrate(conn, schema, [CORE_MIGRATIONS])
    finally:
        await conn.close()
    pool = await create_pool(settings.postgres(), schema, min_size=1, max_size=4)
    commits = 0
    original = AIOKafkaConsumer.commit

    async def counted(self: AIOKafkaConsumer, offsets: Any = None) -> None:
        nonlocal commits
        commits += 1
        await original(self, offsets)

    AIOKafkaConsumer.commit = counted
    try:
        await pool.execute("CREATE TABLE effects (n int NOT NULL)")
        await ensure_topics(settings.kafka(), [topic], 1)
        store = EventStore(pool, schema=schema, context=context)
        actor = Actor(user_id="bench", role="system", unit="bench")
        batch = [
            NewEvent("Wanted", 1, {"n": i})
            if i % every == 0
            else NewEvent("Unwanted", 1, {"n": i, "text": "x" * 400})
            for i in range(events)
        ]
        for start in range(0, events, 500):
            await store.append(
                f"s-{start}",
                0,
                batch[start : start + 500],
                case_id=f"c-{start}",
                jurisdiction=J,
                actor=actor,
                correlation_id=uuid.uuid4(),
            )
        await OutboxRelay(pool, settings.kafka(), schema=schema).drain()
        broker = KafkaBroker(settings.kafka().bootstrap, logger=None)
        consumer = Timed("bench", pool, registry, apply, event_types=frozenset({"Wanted"}))
        consumer.target, consumer.done = events, asyncio.Event()
        consumer.subscribe(broker, topic, group_id=f"bench-{uuid.uuid4()}")
        await broker.start()
        try:
            await asyncio.wait_for(consumer.done.wait(), 600)
        finally:
            await broker.stop()
        assert consumer.first is not None
        elapsed = consumer.last - consumer.first
        return {
            "events": events,
            "applied": consumer.counts["applied"],
            "skipped": consumer.counts["skipped"],
            "seconds": round(elapsed, 3),
            "messages_per_s": round((events - 1) / elapsed, 1),
            "offset_commits": commits,
        }
    finally:
        AIOKafkaConsumer.commit = original
        await pool.close()
        conn = await asyncpg.connect(settings.postgres().dsn())
        try:
            await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        finally:
            await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--every", type=int, default=6, help="one event in EVERY is applied")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.events, args.every))))


if __name__ == "__main__":
    main()
