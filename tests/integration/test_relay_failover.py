"""Relay leadership: when the leader's database session dies, it stops publishing and another
relay takes over; every event still arrives once per relay round, each key in order."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import defaultdict

import asyncpg

from shared import settings
from shared.outbox import OutboxRelay, _relay_lock
from shared.settings import RelaySettings
from shared.store import EventStore, NewEvent
from shared.topics import events_topic
from tests.integration.conftest import ACTOR, create_topics, read_topic, wait_for

J = "331122"


async def _leader_pid(pool: asyncpg.Pool, schema: str) -> int | None:
    lock = _relay_lock(schema)
    high, low = (lock >> 32) & 0xFFFFFFFF, lock & 0xFFFFFFFF
    pid: int | None = await pool.fetchval(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
        " AND classid::bigint = $1 AND objid::bigint = $2",
        high,
        low,
    )
    return pid


async def test_a_relay_that_loses_its_lock_session_stops_and_another_takes_over(
    pool: asyncpg.Pool, schema: str, context: str
) -> None:
    topic = events_topic(J, context)
    await create_topics(topic)
    store = EventStore(pool, schema=schema, context=context)
    quick = RelaySettings(poll_interval_s=0.1)
    # Each relay on its own pool, as two service instances would be.
    pools = [
        await asyncpg.create_pool(
            settings.postgres().dsn(),
            min_size=1,
            max_size=3,
            server_settings={"search_path": schema},
            init=_jsonb,
        )
        for _ in range(2)
    ]
    relays = [OutboxRelay(pools[i], settings.kafka(), schema=schema, settings=quick) for i in range(2)]
    stop = asyncio.Event()
    first = asyncio.create_task(relays[0].run(stop))

    async def append(n: int) -> None:
        for i in range(n):
            case = f"case-{i % 4}"
            version = await pool.fetchval(
                "SELECT coalesce(max(stream_version), 0) FROM events WHERE stream_id = $1", case
            )
            await store.append(
                case,
                version,
                [NewEvent("Noted", 1, {"n": i})],
                case_id=case,
                jurisdiction=J,
                actor=ACTOR,
                correlation_id=uuid.uuid4(),
            )

    async def none_pending() -> bool:
        return bool(await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0)

    try:
        await append(40)
        await wait_for(none_pending, "the first relay to publish")
        leader = await _leader_pid(pool, schema)
        assert leader is not None
        second = asyncio.create_task(relays[1].run(stop))
        # The leader's session dies (a database failover, an admin's pg_terminate_backend):
        # its lock is gone with it.
        assert await pool.fetchval("SELECT pg_terminate_backend($1)", leader)

        async def new_leader() -> bool:
            pid = await _leader_pid(pool, schema)
            return pid is not None and pid != leader

        await wait_for(new_leader, "a relay to take the lock again")
        await append(40)
        await wait_for(none_pending, "the relays to publish after the failover")
    finally:
        stop.set()
        await asyncio.gather(first, *([second] if "second" in locals() else []))
        for p in pools:
            await p.close()

    # Only one relay published at any time: no row went out twice.
    assert relays[0].published + relays[1].published == 80
    records = await read_topic(topic, 80)
    assert len(records) == 80
    ids = [json.loads(v)["event_id"] for _, v, _ in records]
    assert set(ids) == {str(r["event_id"]) for r in await pool.fetch("SELECT event_id FROM events")}
    positions = {
        str(r["event_id"]): r["global_position"]
        for r in await pool.fetch("SELECT event_id, global_position FROM events")
    }
    by_key: dict[bytes, list[int]] = defaultdict(list)
    seen: set[str] = set()
    for key, value, _ in records:
        event_id = json.loads(value)["event_id"]
        if event_id in seen:
            continue  # at-least-once: a batch in flight at the failover may be sent twice
        seen.add(event_id)
        by_key[key].append(positions[event_id])
    for key, order in by_key.items():
        assert order == sorted(order), f"{key!r} out of order after the failover"


async def _jsonb(conn: asyncpg.Connection) -> None:
    from shared.db import init_connection

    await init_connection(conn)
