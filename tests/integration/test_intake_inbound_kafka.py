"""Inbound agency reports over the real broker: the intake.inbound consumer subscribed by its pattern
registers a message once, ignores its redelivery and dead-letters a malformed one."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from faststream.kafka import KafkaBroker

from services.intake.inbound import intake_public_key, seal_for_intake
from services.intake.main import definition
from shared import settings
from shared.events import registry
from shared.runtime import Runtime
from shared.topics import dead_letter_topic, inbound_reports_topic
from tests.integration.conftest import create_topics, fresh_runtime, wait_for

COUNTY = "331122"
IDENTITY = {"name": "钱实名", "contact": "13700007777"}


@pytest.fixture
async def runtime() -> AsyncIterator[Runtime]:
    async with fresh_runtime(definition) as rt:
        yield rt


def message(reference: str, **changes: Any) -> bytes:
    body: dict[str, Any] = {
        "message_id": str(uuid.uuid4()),
        "schema_version": 1,
        "source_agency": "缙云县审计局",
        "source_reference": reference,
        "jurisdiction": COUNTY,
        "received_on": "2023-03-01",
        "real_name": True,
        "reporter_sealed": seal_for_intake(IDENTITY, intake_public_key()),
        "subjects": [{"kind": "unit", "name": "缙云县某公司"}],
        "allegations": [{"summary": "虚报冒领专项资金"}],
        "summary": "审计移送",
    }
    body.update(changes)
    return json.dumps(body, ensure_ascii=False).encode()


async def test_inbound_messages_over_kafka_are_registered_once_and_poison_is_dead_lettered(
    runtime: Runtime,
) -> None:
    [spec] = [s for s in definition.consumers(runtime) if s.name == "intake.inbound"]
    topic = inbound_reports_topic(COUNTY)
    await create_topics(topic, dead_letter_topic(spec.name))
    reference = f"JYSJ-{uuid.uuid4().hex[:10]}"
    good = message(reference)
    poison = message(f"{reference}-bad", subjects=[])

    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka().bootstrap)
    await producer.start()
    try:
        for body in (good, poison, good):  # the agency's system sends the good one twice
            await producer.send_and_wait(topic, body, key=reference.encode())
    finally:
        await producer.stop()

    broker = KafkaBroker(settings.kafka().bootstrap, logger=None)
    consumer = spec.consumer_class(spec.name, runtime.pool, registry, spec.apply)
    consumer.subscribe(broker, pattern=spec.pattern, group_id=f"test-{uuid.uuid4().hex}")
    await broker.start()
    try:

        async def registered() -> bool:
            count = await runtime.pool.fetchval(
                "SELECT count(*) FROM reports WHERE source_reference = $1", reference
            )
            return bool(count == 1 and consumer.counts["duplicate"] >= 1)

        await wait_for(registered, "the inbound report and its redelivery", timeout_s=90)
    finally:
        await broker.stop()

    row = await runtime.pool.fetchrow(
        "SELECT channel, source_agency, real_name FROM reports WHERE source_reference = $1", reference
    )
    assert row is not None
    assert dict(row) == {"channel": "agency_transfer", "source_agency": "缙云县审计局", "real_name": True}
    assert (
        await runtime.pool.fetchval("SELECT count(*) FROM reports WHERE source_reference = $1", reference)
        == 1
    )

    dlq = AIOKafkaConsumer(
        dead_letter_topic(spec.name),
        bootstrap_servers=settings.kafka().bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await dlq.start()
    try:
        found: dict[str, str] | None = None
        deadline = time.monotonic() + 30
        while found is None and time.monotonic() < deadline:
            for records in (await dlq.getmany(timeout_ms=500)).values():
                for r in records:
                    if r.value == poison:
                        found = {k: v.decode() for k, v in r.headers}
    finally:
        await dlq.stop()
    assert found is not None, "the malformed message must reach the dead-letter topic"
    assert found["zm-dlq-code"] == "invalid_event" and "subjects" in found["zm-dlq-reason"]
    assert found["zm-original-topic"] == topic
