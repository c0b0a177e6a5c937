"""EventConsumer.decode: every kind of poison message becomes a DeadLetter with its own code, and
only an event signed by the service owning the topic's context gets through."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import cast

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel

from shared.consumer import DeadLetter, EventConsumer
from shared.db import Conn
from shared.envelope import GENESIS_HASH, Actor, EventEnvelope, canonical_json, seal
from shared.registry import EventRegistry, Payload
from shared.signing import Keyring, ServiceKey

INTAKE = ServiceKey("intake", Ed25519PrivateKey.generate())
REVIEW = ServiceKey("review", Ed25519PrivateKey.generate())
TOPIC = "zm.331122.intake.events"


class ReportLogged(BaseModel):
    """举报登记 payload."""

    case_id: str
    official_name: str


async def _ignore(conn: Conn, envelope: EventEnvelope, payload: BaseModel) -> None:
    raise AssertionError("decode must not apply anything")


def _consumer() -> EventConsumer:
    registry = EventRegistry()
    registry.event("ReportLogged", 2)(ReportLogged)

    @registry.upcaster("ReportLogged", 1)
    def rename_official(payload: Payload) -> Payload:
        payload["official_name"] = payload.pop("official")
        return payload

    keyring = Keyring.of(INTAKE, REVIEW)
    return EventConsumer("review-test", cast(asyncpg.Pool, None), registry, _ignore, keyring=keyring)


def _envelope(
    event_type: str = "ReportLogged",
    version: int = 2,
    payload: Payload | None = None,
    signer: ServiceKey | None = INTAKE,
) -> EventEnvelope:
    sealed = seal(
        event_type=event_type,
        schema_version=version,
        stream_id="case-1",
        stream_version=1,
        case_id="case-1",
        jurisdiction="331122",
        occurred_at=datetime(2025, 3, 1, tzinfo=UTC),
        actor=Actor(user_id="u-001", role="reviewer", unit="缙云县纪委"),
        correlation_id=uuid.uuid4(),
        causation_id=None,
        payload={"case_id": "case-1", "official_name": "张三"} if payload is None else payload,
        prev_hash=GENESIS_HASH,
    )
    return sealed if signer is None else signer.sign(sealed)


def _dead_letter_code(body: bytes, topic: str = TOPIC) -> str:
    with pytest.raises(DeadLetter) as caught:
        _consumer().decode(body, topic)
    assert caught.value.reason
    return caught.value.code


@pytest.mark.parametrize("body", [b"\xff\xfe\x00garbage", b"not json", b"[]", b"{}", b""])
def test_garbage_is_undecodable(body: bytes) -> None:
    assert _dead_letter_code(body) == "undecodable"


def test_envelope_with_an_extra_field_is_undecodable() -> None:
    data = json.loads(_envelope().to_bytes())
    data["smuggled"] = True
    assert _dead_letter_code(canonical_json(data)) == "undecodable"


def test_unknown_type_is_dead_lettered() -> None:
    assert _dead_letter_code(_envelope(event_type="NoSuchEvent").to_bytes()) == "unknown_event_type"


def test_invalid_payload_is_dead_lettered() -> None:
    body = _envelope(payload={"case_id": "case-1"}).to_bytes()
    assert _dead_letter_code(body) == "invalid_event"


def test_version_newer_than_the_consumer_is_invalid() -> None:
    body = _envelope(version=3).to_bytes()
    assert _dead_letter_code(body) == "invalid_event"


def test_tampered_payload_is_a_hash_mismatch() -> None:
    data = json.loads(_envelope().to_bytes())
    data["payload"]["official_name"] = "李四"
    assert _dead_letter_code(canonical_json(data)) == "hash_mismatch"


def test_tampered_hash_is_a_hash_mismatch() -> None:
    data = json.loads(_envelope().to_bytes())
    data["hash"] = "f" * 64
    assert _dead_letter_code(canonical_json(data)) == "hash_mismatch"


def test_good_envelope_decodes_to_envelope_and_typed_payload() -> None:
    sent = _envelope()
    envelope, payload = _consumer().decode(sent.to_bytes(), TOPIC)
    assert envelope == sent
    assert payload == ReportLogged(case_id="case-1", official_name="张三")


def test_old_version_is_upcast_on_decode() -> None:
    sent = _envelope(version=1, payload={"case_id": "case-1", "official": "张三"})
    envelope, payload = _consumer().decode(sent.to_bytes(), TOPIC)
    assert envelope.schema_version == 1
    assert payload == ReportLogged(case_id="case-1", official_name="张三")


def test_old_payload_an_upcaster_cannot_handle_is_invalid() -> None:
    # A v1 payload without the field the upcaster renames: poison, so it belongs in the DLQ.
    body = _envelope(version=1, payload={"case_id": "case-1"}).to_bytes()
    assert _dead_letter_code(body) == "invalid_event"


def test_unsigned_event_is_dead_lettered() -> None:
    assert _dead_letter_code(_envelope(signer=None).to_bytes()) == "unsigned"


def test_event_signed_by_a_key_outside_the_keyring_is_dead_lettered() -> None:
    stranger = ServiceKey("intake", Ed25519PrivateKey.generate())
    assert _dead_letter_code(_envelope(signer=stranger).to_bytes()) == "unknown_key"


def test_event_signed_by_another_service_is_a_wrong_producer() -> None:
    assert _dead_letter_code(_envelope(signer=REVIEW).to_bytes()) == "wrong_producer"


def test_intakes_own_event_on_reviews_topic_is_a_wrong_producer() -> None:
    assert _dead_letter_code(_envelope().to_bytes(), "zm.331122.review.events") == "wrong_producer"


def test_event_of_another_jurisdiction_or_off_the_events_topics_is_on_the_wrong_topic() -> None:
    assert _dead_letter_code(_envelope().to_bytes(), "zm.331121.intake.events") == "wrong_topic"
    assert _dead_letter_code(_envelope().to_bytes(), "zm.331122.inbound.reports") == "wrong_topic"


def test_altered_event_with_a_recomputed_hash_has_a_bad_signature() -> None:
    genuine = _envelope()
    forged = genuine.model_copy(update={"payload": {"case_id": "case-1", "official_name": "李四"}})
    forged = forged.model_copy(update={"hash": forged.computed_hash()})
    assert forged.hash_ok() and forged.signature == genuine.signature
    assert _dead_letter_code(forged.to_bytes()) == "bad_signature"


def test_garbage_signature_is_a_bad_signature() -> None:
    data = json.loads(_envelope().to_bytes())
    data["signature"] = "not base64!"
    assert _dead_letter_code(canonical_json(data)) == "bad_signature"


def test_dead_letter_names_the_event() -> None:
    sent = _envelope(signer=REVIEW)
    with pytest.raises(DeadLetter) as caught:
        _consumer().decode(sent.to_bytes(), TOPIC)
    assert caught.value.event_id == str(sent.event_id)
    assert str(sent.event_id) in caught.value.reason and REVIEW.key_id in caught.value.reason
