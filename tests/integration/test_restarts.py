"""Faults of the real parts: the database and the broker restart while events flow."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
from faststream.kafka import KafkaBroker

from shared import settings
from shared.consumer import EventConsumer
from shared.logging import outages
from shared.outbox import OutboxRelay
from shared.settings import ConsumerSettings, RelaySettings
from shared.store import EventStore, NewEvent
from shared.topics import events_topic
from tests.integration.conftest import ACTOR, create_topics, wait_for
from tests.integration.consumer_app import EFFECTS_DDL, apply, registry
from tests.integration.service_apps import bearer, service_apps
from tests.integration.test_consumer import effects, write_and_relay
from zhengming.local import LocalKafka, LocalPostgres

J = "331122"


async def test_consumer_survives_a_database_restart_without_loss_or_double_apply(
    pool: asyncpg.Pool, schema: str, context: str
) -> None:
    topic = events_topic(J, context)
    await create_topics(topic)
    await pool.execute(EFFECTS_DDL)
    await write_and_relay(pool, schema, context, cases=4, per_case=100)

    broker = KafkaBroker(settings.kafka().bootstrap, logger=None)
    consumer = EventConsumer(
        "projector", pool, registry, apply, settings=ConsumerSettings(retry_initial_s=0.1, retry_max_s=1)
    )
    consumer.subscribe(broker, topic, group_id=f"g-{uuid.uuid4()}")
    postgres = LocalPostgres(settings.local(), settings.postgres())
    await broker.start()
    try:

        async def started() -> bool:
            return consumer.counts["applied"] >= 40

        await wait_for(started, "the consumer to get going")
        await asyncio.to_thread(postgres.stop)
        assert not await asyncio.to_thread(postgres.answering)
        await asyncio.to_thread(postgres.start)

        async def done() -> bool:
            try:
                return bool(await pool.fetchval("SELECT count(*) FROM inbox") == 400)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                return False

        await wait_for(done, "every event applied after the restart", timeout_s=120)
    finally:
        await broker.stop()
    assert await effects(pool) == {f"case-{c}": 100 for c in range(4)}
    assert consumer.counts["dead_letter"] == 0


async def test_relay_and_consumer_survive_a_broker_restart(
    pool: asyncpg.Pool, schema: str, context: str
) -> None:
    topic = events_topic(J, context)
    await create_topics(topic)
    await pool.execute(EFFECTS_DDL)
    store = EventStore(pool, schema=schema, context=context)
    relay = OutboxRelay(pool, settings.kafka(), schema=schema, settings=RelaySettings(poll_interval_s=0.2))
    stop = asyncio.Event()
    relay_task = asyncio.create_task(relay.run(stop))
    kafka = LocalKafka(settings.local(), settings.kafka())

    async def write(first: int, count: int) -> None:
        for i in range(first, first + count):
            await store.append(
                f"case-{i}",
                0,
                [NewEvent("Noted", 1, {"n": i})],
                case_id=f"case-{i % 5}",
                jurisdiction=J,
                actor=ACTOR,
                correlation_id=uuid.uuid4(),
            )

    try:
        await write(0, 100)
        await asyncio.to_thread(kafka.stop)
        await write(100, 100)  # the outbox keeps them while the broker is away
        await asyncio.to_thread(kafka.start)

        async def relayed() -> bool:
            return bool(await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0)

        await wait_for(relayed, "the relay to catch up after the broker came back", timeout_s=180)
    finally:
        stop.set()
        await relay_task

    broker = KafkaBroker(settings.kafka().bootstrap, logger=None)
    consumer = EventConsumer("projector", pool, registry, apply)
    consumer.subscribe(broker, topic, group_id=f"g-{uuid.uuid4()}")
    await broker.start()
    try:

        async def applied() -> bool:
            return bool(await pool.fetchval("SELECT count(*) FROM inbox") == 200)

        await wait_for(applied, "all 200 events applied", timeout_s=120)
    finally:
        await broker.stop()
    assert sum((await effects(pool)).values()) == 200


async def test_http_answers_503_while_the_database_is_down_and_serves_again_after() -> None:

    office = bearer("letters_office", J)
    report = {
        "jurisdiction": J,
        "channel": "letter",
        "received_on": "2023-01-16",
        "real_name": False,
        "subjects": [{"kind": "person", "name": "李某", "post": "镇长", "unit": "缙云县某镇人民政府"}],
        "allegations": [{"summary": "违规收受礼金"}],
    }
    postgres = LocalPostgres(settings.local(), settings.postgres())
    async with service_apps("intake") as apps:
        client = apps["intake"].client
        assert (await client.post("/reports", json=report, headers=office)).status_code == 201
        outages.up("database")
        await asyncio.to_thread(postgres.stop)
        try:
            for _ in range(3):
                listed = await client.get(f"/reports?jurisdiction={J}", headers=office)
                created = await client.post("/reports", json=report, headers=office)
                for response in (listed, created):
                    assert response.status_code == 503, response.text
                    assert response.headers["content-type"].startswith("application/problem+json")
                    assert int(response.headers["retry-after"]) > 0
            assert outages.is_down("database")
        finally:
            await asyncio.to_thread(postgres.start)

        async def serving() -> bool:
            response = await client.get(f"/reports?jurisdiction={J}", headers=office)
            assert response.status_code in (200, 503), response.text
            return response.status_code == 200

        await wait_for(serving, "intake to serve again after the restart", timeout_s=60)
        assert not outages.is_down("database")  # the new connection said so
        assert (await client.post("/reports", json=report, headers=office)).status_code == 201
