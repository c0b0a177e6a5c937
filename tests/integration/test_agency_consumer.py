"""The other agencies' example consumer (examples/agency_consumer.py) on the real broker: a notice
published the archive's way (unit of work -> outbox -> relay) is accepted once, with only the
archive's public key file; altered, re-signed, forged and replayed records are not."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import sys
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary
from cloudevents.core.formats.json import JSONFormat
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared import public, settings
from shared.events.archive import NoticeEntry, PersonnelNoticeV1
from shared.outbox import OutboxRelay
from shared.runtime import Cause, UnitOfWork
from shared.settings import SigningSettings
from shared.signing import ServiceKey, fingerprint
from shared.store import EventStore
from tests.integration.conftest import ACTOR, create_topics

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "agency_consumer.py"


def _notice(jurisdiction: str) -> PersonnelNoticeV1:
    return PersonnelNoticeV1(
        notice_id=f"PN-{jurisdiction}-2026Q3",
        jurisdiction=jurisdiction,
        period="2026Q3",
        issued_on=date(2026, 10, 9),
        entries=[
            NoticeEntry(
                subject_id="p-1",
                name="张某某",
                kind="person",
                post="副局长",
                unit="某局",
                clarified_on=date(2026, 8, 21),
                points=2,
            )
        ],
    )


async def _run_example(topic: str, key_file: Path) -> list[dict[str, Any]]:
    """The example as another agency runs it: its own process, no zhengming on its path (-I)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-I",
        str(EXAMPLE),
        "--bootstrap",
        settings.kafka().bootstrap,
        "--topic",
        topic,
        "--public-key",
        str(key_file),
        "--until-end",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), 90)
    except TimeoutError:
        process.kill()
        raise
    assert process.returncode == 0, err.decode()
    return [json.loads(line) for line in out.decode().splitlines()]


async def test_example_consumer_accepts_genuine_notices_only(pool: asyncpg.Pool, schema: str) -> None:
    jurisdiction = f"t{uuid.uuid4().hex[:8]}"  # a topic of the test's own
    topic = f"zm.{jurisdiction}.public.personnel-notices.v1"
    await create_topics(topic, partitions=1)
    store = EventStore(pool, schema=schema, context="archive")
    notice = _notice(jurisdiction)
    async with pool.acquire() as conn, conn.transaction():
        uow = UnitOfWork(store, conn, None, Cause(ACTOR, uuid.uuid4()))
        await uow.publish(topic=topic, key=notice.notice_id, message=notice)
    assert await OutboxRelay(pool, settings.kafka(), schema=schema).drain() == 1

    key, value, genuine = await _first_record(topic)
    assert value == notice.model_dump_json().encode()
    event = from_binary(KafkaMessage(headers=genuine, key=key, value=value), JSONFormat())
    assert (event.get_specversion(), event.get_id()) == ("1.0", notice.notice_id)
    assert event.get_type() == "cn.gov.lishui.zhengming.personnel-notice.v1"
    assert event.get_source() == f"/zhengming/{jurisdiction}/archive"

    altered = value.replace("张某某".encode(), "李某某".encode())
    rehashed = {**genuine, public.HASH_HEADER: hashlib.sha256(altered).hexdigest().encode()}
    forger = ServiceKey("archive", Ed25519PrivateKey.generate())
    forged = public.public_headers(
        topic=topic, key=notice.notice_id, body=altered, contract=PersonnelNoticeV1, signer=forger
    )
    other = _notice("331102")  # genuinely signed, but another county's notice on this topic
    other_body = other.model_dump_json().encode()
    replanted = {
        **genuine,
        public.HASH_HEADER: hashlib.sha256(other_body).hexdigest().encode(),
        public.SIGNATURE_HEADER: base64.b64encode(
            store.signer.private.sign(public.signed_message(other_body))
        ),
    }
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka().bootstrap, **settings.kafka().client_options()
    )
    await producer.start()
    try:
        for headers, body in [
            (genuine, altered),  # content changed, headers kept
            (rehashed, altered),  # and the hash recomputed: the signature no longer fits
            ({k: v.encode() for k, v in forged.items()}, altered),  # signed with a key not the archive's
            (replanted, other_body),
            (genuine, value),  # the genuine record once more, as a replay would bring it
        ]:
            await producer.send_and_wait(topic, body, key=key, headers=[(k, v) for k, v in headers.items()])
    finally:
        await producer.stop()

    key_file = SigningSettings().keyring() / f"archive.{fingerprint(store.signer.public)}.pub"
    lines = await _run_example(topic, key_file)
    assert [line["status"] for line in lines] == [
        "accepted",
        "rejected",
        "rejected",
        "rejected",
        "rejected",
        "duplicate",
    ]
    assert lines[0]["notice"] == notice.model_dump(mode="json")
    reasons = [line["reason"] for line in lines[1:5]]
    assert "altered in transit" in reasons[0]
    assert "signature" in reasons[1] and "does not match" in reasons[1]
    assert "not one of the archive's keys" in reasons[2]
    assert "another county" in reasons[3] or "on the topic of" in reasons[3]


async def _first_record(topic: str) -> tuple[bytes, bytes, dict[str, bytes]]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka().bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
        isolation_level="read_committed",
        **settings.kafka().client_options(),
    )
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), 30)
        assert record.key is not None and record.value is not None
        return record.key, record.value, dict(record.headers)
    finally:
        await consumer.stop()
