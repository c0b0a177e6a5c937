"""EventConsumer.decode: every kind of poison message becomes a DeadLetter with its own code."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import cast

import asyncpg
import pytest
from pydantic import BaseModel

from shared.consumer import DeadLetter, EventConsumer
from shared.db import Conn
from shared.envelope import GENESIS_HASH, Actor, EventEnvelope, canonical_json, seal
from shared.registry import EventRegistry, Payload


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

    return EventConsumer("review-test", cast(asyncpg.Pool, None), registry, _ignore)


def _envelope(
    event_type: str = "ReportLogged", version: int = 2, payload: Payload | None = None
) -> EventEnvelope:
    return seal(
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


def _dead_letter_code(body: bytes) -> str:
    with pytest.raises(DeadLetter) as caught:
        _consumer().decode(body)
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
    envelope, payload = _consumer().decode(sent.to_bytes())
    assert envelope == sent
    assert payload == ReportLogged(case_id="case-1", official_name="张三")


def test_old_version_is_upcast_on_decode() -> None:
    sent = _envelope(version=1, payload={"case_id": "case-1", "official": "张三"})
    envelope, payload = _consumer().decode(sent.to_bytes())
    assert envelope.schema_version == 1
    assert payload == ReportLogged(case_id="case-1", official_name="张三")


def test_old_payload_an_upcaster_cannot_handle_is_invalid() -> None:
    # A v1 payload without the field the upcaster renames: poison, so it belongs in the DLQ.
    body = _envelope(version=1, payload={"case_id": "case-1"}).to_bytes()
    assert _dead_letter_code(body) == "invalid_event"
