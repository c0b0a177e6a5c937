"""Kill probe: the relay process SIGKILLed at random moments while it publishes public notices,
over a hundred times; an outside reader (read_committed, no inbox) sees every notice exactly once."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
import uuid
from collections import Counter
from pathlib import Path

import asyncpg
import pytest

from shared.store import EventStore
from shared.topics import personnel_notices_topic
from tests.integration.conftest import create_topics, read_topic, wait_for

ROOT = Path(__file__).resolve().parents[2]
KILLS = int(os.environ.get("ZM_TEST_RELAY_KILLS", "100"))
PER_ROUND = 30


async def start_relay(schema: str, log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.integration.relay_app",
            schema,
            cwd=ROOT,
            stdout=out,
            stderr=out,
        )


@pytest.mark.timeout(1200)
async def test_a_relay_killed_over_a_hundred_times_publishes_each_public_notice_exactly_once(
    pool: asyncpg.Pool, schema: str, context: str, tmp_path: Path
) -> None:
    log = tmp_path / "relays.log"
    topic = personnel_notices_topic("331122").replace("zm.", f"zm.{context}.", 1)
    await create_topics(topic)
    store = EventStore(pool, schema=schema, context=context)
    rng = random.Random(8)
    sent: list[str] = []
    # Kill at moments spread over start-up, leadership, a transaction in flight and the marking.
    kills = 0
    while kills < KILLS:
        async with pool.acquire() as conn, conn.transaction():
            for _ in range(PER_ROUND):
                notice_id = str(uuid.uuid4())
                await store.enqueue_integration(
                    conn,
                    topic=topic,
                    key=notice_id,
                    body=json.dumps({"notice_id": notice_id}).encode(),
                    message_id=uuid.UUID(notice_id),
                )
                sent.append(notice_id)
        relay = await start_relay(schema, log)
        await asyncio.sleep(rng.uniform(0.4, 1.6))
        relay.send_signal(signal.SIGKILL)
        await relay.wait()
        kills += 1

    relay = await start_relay(schema, log)
    try:

        async def drained() -> bool:
            return bool(await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0)

        await wait_for(drained, "the last relay to publish what is left", timeout_s=120)
    finally:
        relay.send_signal(signal.SIGTERM)
        await relay.wait()

    records = await read_topic(topic, len(sent), timeout_s=60)
    seen = Counter(json.loads(value)["notice_id"] for _, value, _ in records)
    duplicates = {n: c for n, c in seen.items() if c > 1}
    # How often a kill fell between a committed batch and its marking (the case reconciled).
    reconciled = log.read_text().count("relay.reconciled")
    print(f"kills={kills} notices={len(sent)} on_topic={len(records)} reconciled={reconciled}", end=" ")
    print(f"duplicates={len(duplicates)}")
    assert duplicates == {}
    assert set(seen) == set(sent)
