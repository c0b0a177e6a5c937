"""A small consumer process for the fault tests: applies `Noted` events to a counter table.

Run as `python -m tests.integration.consumer_app SCHEMA TOPIC NAME [CRASH_AT_N]`: with CRASH_AT_N it
dies (os._exit) right after the database commit of its N-th applied event, before the offset commit.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from faststream.kafka import KafkaBroker
from pydantic import BaseModel

from shared import settings
from shared.consumer import EventConsumer
from shared.db import Conn, create_pool
from shared.envelope import EventEnvelope
from shared.logging import configure_logging
from shared.registry import EventRegistry

registry = EventRegistry()


@registry.event("Noted", 1)
class Noted(BaseModel):
    n: int
    text: str = ""


async def apply(conn: Conn, envelope: EventEnvelope, payload: BaseModel) -> None:
    assert isinstance(payload, Noted)
    await conn.execute(
        "INSERT INTO effects (case_id, applied) VALUES ($1, 1)"
        " ON CONFLICT (case_id) DO UPDATE SET applied = effects.applied + 1",
        envelope.case_id,
    )


EFFECTS_DDL = "CREATE TABLE IF NOT EXISTS effects (case_id text PRIMARY KEY, applied int NOT NULL)"


class CrashingConsumer(EventConsumer):
    def __init__(self, *args: object, crash_at: int | None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.crash_at = crash_at

    def after_apply(self, envelope: EventEnvelope, status: str) -> None:
        if status == "applied" and self.counts["applied"] == self.crash_at:
            print(f"CRASH {envelope.event_id}", flush=True)
            os._exit(137)


async def main(schema: str, topic: str, name: str, crash_at: int | None) -> None:
    configure_logging("test-consumer")
    pool = await create_pool(settings.postgres(), schema, min_size=1, max_size=4)
    await pool.execute(EFFECTS_DDL)
    broker = KafkaBroker(settings.kafka().bootstrap)
    consumer = CrashingConsumer(name, pool, registry, apply, crash_at=crash_at)
    consumer.subscribe(broker, topic, group_id=name)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await broker.start()
    print("READY", flush=True)
    await stop.wait()
    await broker.stop()
    await pool.close()
    print(f"STOPPED {consumer.counts}", flush=True)


if __name__ == "__main__":
    crash = int(sys.argv[4]) if len(sys.argv) > 4 else None
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], crash))
