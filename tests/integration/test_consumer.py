"""Consumer runner on the real broker and database: exactly-once effects, dead letters, crashes."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from faststream.kafka import KafkaBroker

from shared import settings
from shared.consumer import EventConsumer
from shared.envelope import GENESIS_HASH, EventEnvelope, seal
from shared.outbox import OutboxRelay
from shared.signing import service_key
from shared.store import EventStore, NewEvent
from shared.topics import dead_letter_topic, events_topic
from tests.integration.conftest import ACTOR, create_topics, wait_for
from tests.integration.consumer_app import EFFECTS_DDL, apply, registry

J = "331122"
ROOT = Path(__file__).resolve().parents[2]


async def write_and_relay(
    pool: asyncpg.Pool, schema: str, context: str, cases: int, per_case: int, first_case: int = 0
) -> None:
    store = EventStore(pool, schema=schema, context=context)
    for c in range(first_case, first_case + cases):
        await store.append(
            f"case-{c}",
            0,
            [NewEvent("Noted", 1, {"n": i}) for i in range(per_case)],
            case_id=f"case-{c}",
            jurisdiction=J,
            actor=ACTOR,
            correlation_id=uuid.uuid4(),
        )
    await OutboxRelay(pool, settings.kafka(), schema=schema).drain()


async def effects(pool: asyncpg.Pool) -> dict[str, int]:
    return {r["case_id"]: r["applied"] for r in await pool.fetch("SELECT * FROM effects")}


async def run_consumer(
    pool: asyncpg.Pool,
    name: str,
    group: str,
    topic: str,
    until: int,
    event_types: frozenset[str] | None = None,
) -> EventConsumer:
    """Run an in-process consumer until it has handled `until` messages."""
    broker = KafkaBroker(settings.kafka().bootstrap, logger=None)
    consumer = EventConsumer(name, pool, registry, apply, event_types=event_types)
    consumer.subscribe(broker, topic, group_id=group)
    await broker.start()
    try:

        async def handled() -> bool:
            return sum(consumer.counts.values()) >= until

        await wait_for(handled, f"{name} to handle {until} messages", timeout_s=60)
    finally:
        await broker.stop()
    return consumer


async def test_redelivery_leaves_inbox_and_effects_unchanged(
    pool: asyncpg.Pool, schema: str, context: str
) -> None:
    topic = events_topic(J, context)
    await create_topics(topic)
    await pool.execute(EFFECTS_DDL)
    await write_and_relay(pool, schema, context, cases=5, per_case=20)

    first = await run_consumer(pool, "projector", f"g-{uuid.uuid4()}", topic, until=100)
    assert first.counts == {"applied": 100, "duplicate": 0, "dead_letter": 0, "skipped": 0}
    before = await effects(pool)
    assert before == {f"case-{c}": 20 for c in range(5)}
    inbox_before = await pool.fetchval("SELECT count(*) FROM inbox")

    # A new group reads the same messages from offset 0: every one is a redelivery to `projector`.
    again = await run_consumer(pool, "projector", f"g-{uuid.uuid4()}", topic, until=100)
    assert again.counts == {"applied": 0, "duplicate": 100, "dead_letter": 0, "skipped": 0}
    assert await effects(pool) == before
    assert await pool.fetchval("SELECT count(*) FROM inbox") == inbox_before == 100


async def test_poison_messages_go_to_the_dead_letter_topic_and_the_partition_moves_on(
    pool: asyncpg.Pool, schema: str, context: str
) -> None:
    topic = events_topic(J, context)
    name = f"c{uuid.uuid4().hex[:8]}"
    await create_topics(topic, dead_letter_topic(name), partitions=1)
    await pool.execute(EFFECTS_DDL)

    key = service_key(context)

    def envelope(event_type: str, payload: dict[str, object], signed: bool = True) -> bytes:
        sealed = seal(
            event_type=event_type,
            schema_version=1,
            stream_id="case-p",
            stream_version=1,
            case_id="case-p",
            jurisdiction=J,
            occurred_at=__import__("datetime").datetime.now(__import__("datetime").UTC),
            actor=ACTOR,
            correlation_id=uuid.uuid4(),
            causation_id=None,
            payload=payload,
            prev_hash=GENESIS_HASH,
        )
        return (key.sign(sealed) if signed else sealed).to_bytes()

    tampered = json.loads(envelope("Noted", {"n": 1}))
    tampered["payload"]["n"] = 2
    rehashed = json.loads(envelope("Noted", {"n": 1}))
    rehashed["payload"]["n"] = 4
    rehashed["hash"] = EventEnvelope.model_validate(rehashed).computed_hash()
    poison = {
        "undecodable": b"\xff not json at all",
        "unknown_event_type": envelope("NoSuchEvent", {"n": 1}),
        "invalid_event": envelope("Noted", {"n": "not a number"}),
        "hash_mismatch": json.dumps(tampered).encode(),
        "unsigned": envelope("Noted", {"n": 3}, signed=False),
        "bad_signature": json.dumps(rehashed).encode(),
    }
    good = envelope("Noted", {"n": 7})
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka().bootstrap)
    await producer.start()
    try:
        for body in poison.values():
            await producer.send_and_wait(topic, body, key=b"case-p")
        await producer.send_and_wait(topic, good, key=b"case-p")
    finally:
        await producer.stop()

    consumer = await run_consumer(pool, name, name, topic, until=len(poison) + 1)
    assert consumer.counts == {"applied": 1, "duplicate": 0, "dead_letter": len(poison), "skipped": 0}
    assert await effects(pool) == {"case-p": 1}

    dlq = AIOKafkaConsumer(
        dead_letter_topic(name),
        bootstrap_servers=settings.kafka().bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await dlq.start()
    try:
        got: list[tuple[bytes, dict[str, str]]] = []
        deadline = asyncio.get_running_loop().time() + 30
        while len(got) < len(poison) and asyncio.get_running_loop().time() < deadline:
            for records in (await dlq.getmany(timeout_ms=500)).values():
                got.extend((r.value or b"", {k: v.decode() for k, v in r.headers}) for r in records)
    finally:
        await dlq.stop()
    assert [h["zm-dlq-code"] for _, h in got] == list(poison)
    assert [body for body, _ in got] == list(poison.values())
    for _, headers in got:
        assert headers["zm-original-topic"] == topic
        assert headers["zm-dlq-reason"]
    assert "NoSuchEvent" in got[1][1]["zm-dlq-reason"]
    assert "n" in got[2][1]["zm-dlq-reason"]
    # Forgeries and tampering are kept where verify looks; schema problems are not.
    rows = await pool.fetch("SELECT code, event_id, topic FROM rejected_events ORDER BY kafka_offset")
    assert [r["code"] for r in rows] == ["hash_mismatch", "unsigned", "bad_signature"]
    assert all(r["topic"] == topic and r["event_id"] for r in rows)


async def test_consumer_killed_between_db_commit_and_offset_commit_ignores_the_redelivery(
    pool: asyncpg.Pool, schema: str, context: str
) -> None:
    topic = events_topic(J, context)
    await create_topics(topic, partitions=1)
    await pool.execute(EFFECTS_DDL)
    await write_and_relay(pool, schema, context, cases=1, per_case=30)
    name = f"crashy{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "ZM_LOG_JSON_OUTPUT": "true"}
    cmd = [sys.executable, "-m", "tests.integration.consumer_app", schema, topic, name]

    crashed = await asyncio.create_subprocess_exec(
        *cmd, "10", cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out_b, err_b = await asyncio.wait_for(crashed.communicate(), 120)
    assert crashed.returncode == 137, err_b.decode()[-2000:]
    crash_id = next(line.split()[1] for line in out_b.decode().splitlines() if line.startswith("CRASH"))
    # The effect of the 10th event committed; its offset did not.
    assert await effects(pool) == {"case-0": 10}

    proc = await asyncio.create_subprocess_exec(
        *cmd, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:

        async def caught_up() -> bool:
            return bool(await pool.fetchval("SELECT count(*) FROM inbox") == 30)

        await wait_for(caught_up, "the restarted consumer to catch up", timeout_s=90)
    finally:
        proc.terminate()
        out_b, err_b = await asyncio.wait_for(proc.communicate(), 60)
    out, err = out_b.decode(), err_b.decode()
    assert await effects(pool) == {"case-0": 30}
    logs = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    duplicates = [entry["event_id"] for entry in logs if entry.get("event") == "event.duplicate"]
    assert crash_id in duplicates, "the event whose offset was lost must be seen again and ignored"
    assert "STOPPED" in out


async def test_event_types_a_consumer_does_not_apply_pass_without_a_transaction(
    pool: asyncpg.Pool, schema: str, context: str
) -> None:
    topic = events_topic(J, context)
    await create_topics(topic)
    await pool.execute(EFFECTS_DDL)
    await write_and_relay(pool, schema, context, cases=2, per_case=10)
    consumer = await run_consumer(
        pool, "picky", f"g-{uuid.uuid4()}", topic, until=20, event_types=frozenset({"SomethingElse"})
    )
    assert consumer.counts == {"applied": 0, "duplicate": 0, "dead_letter": 0, "skipped": 20}
    assert await pool.fetchval("SELECT count(*) FROM inbox") == 0
    assert await effects(pool) == {}
