"""The kcat forgery, on the real broker and database: a `ReportHandedOver` for a case intake never
had, published straight to intake's topic with a raw producer, keeping the original hash, with a
recomputed hash, unsigned, and re-signed with keys that are not intake's. Review dead-letters each
with the reason and opens nothing; review's GET /audit/verify and `zhengming audit verify` name
every one. The trail still verifies after a key rotation and after crypto-shredding.

Each test works in a jurisdiction code of its own (not one of the ten), so its topics are fresh and
a deliberate forgery never stays on the topics of the deployment the e2e tests verify.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from faststream.kafka import KafkaBroker

from services.archive.main import definition as archive_definition
from services.clarification.main import definition as clarification_definition
from services.intake.main import definition as intake_definition
from services.review.api import build_api as review_api
from services.review.main import definition as review_definition
from shared import settings
from shared.audit_api import add_audit_routes
from shared.auth import Principal, mint
from shared.consumer import EventConsumer
from shared.envelope import EventEnvelope, seal
from shared.events import registry
from shared.events.common import Allegation, Subject
from shared.events.intake import ReportHandedOver, ReportReceived
from shared.outbox import OutboxRelay
from shared.runtime import Runtime, open_runtime, system_actor
from shared.settings import SERVICES
from shared.signing import ServiceKey, rotate, service_key
from shared.store import NewEvent
from shared.topics import dead_letter_topic, events_topic
from tests.integration.conftest import create_topics, read_topic, wait_for
from zhengming import audit

DEFINITIONS = {
    "intake": intake_definition,
    "review": review_definition,
    "clarification": clarification_definition,
    "archive": archive_definition,
}


@dataclass
class Stack:
    """The four services' stores in fresh schemas, for one fresh jurisdiction code."""

    jurisdiction: str
    runtimes: dict[str, Runtime]

    @property
    def schemas(self) -> dict[str, str]:
        return {name: rt.store.schema for name, rt in self.runtimes.items()}

    async def relay(self, service: str) -> None:
        rt = self.runtimes[service]
        await OutboxRelay(rt.pool, settings.kafka(), schema=rt.store.schema).drain()

    async def verify_trail(self) -> audit.VerifyReport:
        return await audit.verify_trail(
            self.jurisdiction,
            schemas=self.schemas,
            deployment=f"test-{self.jurisdiction}",
            drain_timeout_s=5,
        )


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    jurisdiction = f"99{random.randrange(10_000):04d}"
    await create_topics(*(events_topic(jurisdiction, c) for c in SERVICES))
    runtimes: dict[str, Runtime] = {}
    try:
        for name, definition in DEFINITIONS.items():
            runtimes[name] = await open_runtime(definition, schema=f"t_{uuid.uuid4().hex[:12]}")
        yield Stack(jurisdiction, runtimes)
    finally:
        for rt in runtimes.values():
            await rt.pool.close()
            await audit.drop_schema(rt.store.schema)


def handed_over(case_id: str) -> dict[str, Any]:
    _, _, body = registry.encode(
        ReportHandedOver(
            handed_on=date(2023, 1, 10),
            department="第三纪检监察室",
            received_on=date(2023, 1, 3),
            real_name=False,
            subjects=[Subject(kind="person", name="李某", post="村支书", unit="某村")],
            allegations=[Allegation(allegation_id="A1", summary=f"{case_id} 的问题")],
        )
    )
    return body


def forged_handover(jurisdiction: str, case_id: str, signer: ServiceKey | None = None) -> EventEnvelope:
    """What the probe built: the project's own `seal`, a recomputed, valid hash."""
    sealed = seal(
        event_type="ReportHandedOver",
        schema_version=1,
        stream_id=f"report-{case_id}",
        stream_version=1,
        case_id=case_id,
        jurisdiction=jurisdiction,
        occurred_at=datetime.now(UTC),
        actor=system_actor("intake"),
        correlation_id=uuid.uuid4(),
        causation_id=None,
        payload=handed_over(case_id),
        prev_hash="0" * 64,
    )
    return sealed if signer is None else signer.sign(sealed)


async def auditor_verify(runtime: Runtime) -> dict[str, Any]:
    app = review_api(runtime)
    add_audit_routes(app, runtime)
    token = mint(
        Principal(user_id="auditor-1", role="auditor", unit="丽水市纪委监委", jurisdictions=["331100"])
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as client:
        response = await client.get("/audit/verify", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_the_kcat_forgery_is_dead_lettered_not_applied_and_named_by_both_verifies(stack: Stack) -> None:
    j = stack.jurisdiction
    topic = events_topic(j, "intake")
    intake, review = stack.runtimes["intake"], stack.runtimes["review"]

    # A genuine handover, appended and signed by intake's store and relayed to Kafka.
    genuine_case = f"{j}-2023-000001"
    [genuine] = await intake.store.append(
        f"report-{genuine_case}",
        0,
        [NewEvent("ReportHandedOver", 1, handed_over(genuine_case))],
        case_id=genuine_case,
        jurisdiction=j,
        actor=system_actor("intake"),
        correlation_id=uuid.uuid4(),
    )
    await stack.relay("intake")
    assert genuine.key_id == service_key("intake").key_id

    # The forgeries, each for a case intake never had.
    altered = json.loads(genuine.to_bytes())
    altered["case_id"] = altered["stream_id"] = f"{j}-2023-000002"
    altered["event_id"] = str(uuid.uuid4())
    rehashed = forged_handover(j, f"{j}-2023-000003").model_copy(
        update={"key_id": genuine.key_id, "signature": genuine.signature}
    )
    forgeries: dict[str, bytes] = {
        "hash_mismatch": json.dumps(altered, ensure_ascii=False).encode(),  # the original hash
        "bad_signature": rehashed.to_bytes(),  # recomputed hash, intake's signature copied
        "unsigned": forged_handover(j, f"{j}-2023-000004").to_bytes(),  # the probe as it was
        "unknown_key": forged_handover(
            j, f"{j}-2023-000005", ServiceKey("intake", Ed25519PrivateKey.generate())
        ).to_bytes(),
        "wrong_producer": forged_handover(j, f"{j}-2023-000006", service_key("review")).to_bytes(),
    }
    forged_ids = {code: json.loads(body)["event_id"] for code, body in forgeries.items()}
    forged_cases = [json.loads(body)["case_id"] for body in forgeries.values()]
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka().bootstrap)  # what kcat does
    await producer.start()
    try:
        for body in forgeries.values():
            await producer.send_and_wait(topic, body, key=json.loads(body)["case_id"].encode())
    finally:
        await producer.stop()

    [spec] = [s for s in review_definition.consumers(review) if s.name == "review.handover"]
    name = f"{spec.name}.t{uuid.uuid4().hex[:8]}"
    await create_topics(dead_letter_topic(name), partitions=1)
    consumer = EventConsumer(name, review.pool, registry, spec.apply)
    broker = KafkaBroker(settings.kafka().bootstrap, logger=None)
    consumer.subscribe(broker, topic, group_id=name)
    await broker.start()
    try:

        async def handled() -> bool:
            return sum(consumer.counts.values()) >= 1 + len(forgeries)

        await wait_for(handled, "review to handle the genuine event and every forgery")
    finally:
        await broker.stop()
    assert consumer.counts == {"applied": 1, "duplicate": 0, "dead_letter": len(forgeries), "skipped": 0}

    # Not applied: only the genuine handover opened a verification.
    opened = await review.pool.fetch("SELECT case_id FROM verifications")
    assert [r["case_id"] for r in opened] == [genuine_case]
    assert not set(forged_cases) & {r["case_id"] for r in opened}

    # Dead-lettered with the reason.
    dead = await read_topic(dead_letter_topic(name), expected=len(forgeries))
    assert sorted(json.loads(value)["event_id"] for _, value, _ in dead) == sorted(forged_ids.values())
    rows = await review.pool.fetch(
        "SELECT code, event_id, topic, reason FROM rejected_events ORDER BY kafka_offset"
    )
    assert {r["code"]: str(r["event_id"]) for r in rows} == forged_ids
    assert all(r["topic"] == topic and str(r["event_id"]) in r["reason"] for r in rows)

    # GET /audit/verify of the consuming service fails, naming every forged event.
    verified = await auditor_verify(review)
    assert verified["ok"] is False
    named = {r["event_id"]: r["code"] for r in verified["rejected"]}
    assert named == {event_id: code for code, event_id in forged_ids.items()}
    assert verified["event_id"] in forged_ids.values() and verified["reason"]

    # `zhengming audit verify` fails, naming each forgery on Kafka with its offset and reason.
    await stack.relay("review")
    report = await stack.verify_trail()
    assert not report.ok
    lines = "\n".join(report.lines())
    for code, event_id in forged_ids.items():
        on_kafka = [b for b in report.breaks if event_id in b.reason and f"{topic}[" in b.reason]
        assert on_kafka, f"{code} forgery {event_id} not named on Kafka:\n{lines}"
        assert code in on_kafka[0].reason
        assert any(event_id in b.reason and b.stream_id == "(consumer)" for b in report.breaks)
    assert not [b for b in report.breaks if str(genuine.event_id) in b.reason], lines


async def test_the_trail_verifies_after_a_key_rotation_and_crypto_shredding(stack: Stack) -> None:
    j = stack.jurisdiction
    intake, review = stack.runtimes["intake"], stack.runtimes["review"]
    case_id = f"{j}-2023-000010"
    subject = f"reporter-{uuid.uuid4().hex[:8]}"
    async with intake.pool.acquire() as conn, conn.transaction():
        sealed = await intake.cipher.seal(conn, subject, "郑实名 13812345678", "reporter.identity")
        _, _, received = registry.encode(
            ReportReceived(
                report_id=case_id,
                channel="letter",
                received_on=date(2023, 1, 3),
                real_name=True,
                reporter=sealed,
                reporter_subject_id=subject,
                subjects=[Subject(kind="person", name="李某", post="村支书", unit="某村")],
                allegations=[Allegation(allegation_id="A1", summary="问题")],
            )
        )
        [before] = await intake.store.append(
            f"report-{case_id}",
            0,
            [NewEvent("ReportReceived", 1, received)],
            case_id=case_id,
            jurisdiction=j,
            actor=system_actor("intake"),
            correlation_id=uuid.uuid4(),
            conn=conn,
        )
    old_key = before.key_id

    rotated = rotate("intake")
    intake_after = type(intake.store)(
        intake.pool, schema=intake.store.schema, context="intake", signer=rotated
    )
    [handover] = await intake_after.append(
        f"report-{case_id}",
        1,
        [NewEvent("ReportHandedOver", 1, handed_over(case_id))],
        case_id=case_id,
        jurisdiction=j,
        actor=system_actor("intake"),
        correlation_id=uuid.uuid4(),
    )
    assert handover.key_id == rotated.key_id != old_key
    await stack.relay("intake")

    # A consumer started before the rotation still accepts the event signed with the new key.
    [spec] = [s for s in review_definition.consumers(review) if s.name == "review.handover"]
    name = f"{spec.name}.t{uuid.uuid4().hex[:8]}"
    consumer = EventConsumer(name, review.pool, registry, spec.apply, event_types=spec.event_types)
    broker = KafkaBroker(settings.kafka().bootstrap, logger=None)
    consumer.subscribe(broker, events_topic(j, "intake"), group_id=name)
    await broker.start()
    try:

        async def handled() -> bool:
            return sum(consumer.counts.values()) >= 2

        await wait_for(handled, "review to handle both intake events")
    finally:
        await broker.stop()
    assert consumer.counts == {"applied": 1, "duplicate": 0, "dead_letter": 0, "skipped": 1}
    await stack.relay("review")

    async with intake.pool.acquire() as conn:
        assert await intake.cipher.erase(conn, subject, erased_by="letters_office-1")
    assert await intake.store.verify() is None
    assert await review.store.verify() is None
    report = await stack.verify_trail()
    assert report.ok, "\n".join(report.lines())
    assert report.checked["intake"]["events"] == report.checked["intake"]["kafka"] == 2
    assert (await auditor_verify(review))["ok"] is True
