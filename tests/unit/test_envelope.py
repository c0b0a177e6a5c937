"""The event envelope: canonical JSON, the chain hash and what the model refuses."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from shared.envelope import GENESIS_HASH, Actor, EventEnvelope, canonical_json, seal

CHINA = timezone(timedelta(hours=8))
ACTOR = Actor(user_id="u-001", role="reviewer", unit="缙云县纪委")


def _fields(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "event_id": uuid.UUID("00000000-0000-4000-8000-000000000001"),
        "event_type": "ReportLogged",
        "schema_version": 1,
        "stream_id": "case-1",
        "stream_version": 1,
        "case_id": "case-1",
        "jurisdiction": "331122",
        "occurred_at": datetime(2025, 3, 1, 2, 30, tzinfo=UTC),
        "actor": ACTOR,
        "correlation_id": uuid.UUID("00000000-0000-4000-8000-000000000002"),
        "causation_id": None,
        "payload": {"summary": "不实举报", "count": 1},
        "prev_hash": GENESIS_HASH,
    }
    fields.update(overrides)
    return fields


def _sealed(**overrides: Any) -> EventEnvelope:
    return seal(**_fields(**overrides))


def test_canonical_json_ignores_key_order() -> None:
    one = {"b": 1, "a": {"y": [1, 2], "x": "甲"}}
    two = {"a": {"x": "甲", "y": [1, 2]}, "b": 1}
    assert canonical_json(one) == canonical_json(two)
    assert canonical_json(one) == '{"a":{"x":"甲","y":[1,2]},"b":1}'.encode()


def test_canonical_json_keeps_chinese_as_utf8() -> None:
    raw = canonical_json({"name": "正名"})
    assert "正名".encode() in raw
    assert b"\\u" not in raw


def test_seal_produces_a_hash_that_verifies() -> None:
    envelope = _sealed()
    assert envelope.hash != GENESIS_HASH
    assert envelope.hash_ok()


def test_seal_is_deterministic_for_the_same_content() -> None:
    assert _sealed().hash == _sealed().hash


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("payload", {"summary": "不实举报", "count": 2}),
        ("actor", Actor(user_id="u-002", role="reviewer", unit="缙云县纪委")),
        ("stream_version", 2),
        ("jurisdiction", "331121"),
        ("occurred_at", datetime(2025, 3, 1, 2, 30, 1, tzinfo=UTC)),
        ("prev_hash", "a" * 64),
    ],
)
def test_changing_any_field_breaks_the_hash(field: str, value: Any) -> None:
    envelope = _sealed()
    tampered = envelope.model_copy(update={field: value})
    assert getattr(tampered, field) == value
    assert not tampered.hash_ok()


def test_mutating_the_payload_in_place_breaks_the_hash() -> None:
    envelope = _sealed()
    envelope.payload["count"] = 99
    assert not envelope.hash_ok()


def test_occurred_at_is_normalised_to_utc() -> None:
    local = _sealed(occurred_at=datetime(2025, 3, 1, 10, 30, tzinfo=CHINA))
    utc = _sealed(occurred_at=datetime(2025, 3, 1, 2, 30, tzinfo=UTC))
    assert local.occurred_at.utcoffset() == timedelta(0)
    assert local.occurred_at == utc.occurred_at
    assert local.hash == utc.hash


def test_bytes_round_trip_keeps_the_hash_valid() -> None:
    envelope = _sealed(
        occurred_at=datetime(2025, 3, 1, 10, 30, 0, 123456, tzinfo=CHINA),
        causation_id=uuid.uuid4(),
        payload={"summary": "不实举报", "nested": {"b": [1, 2.5, None], "a": True}},
    )
    raw = envelope.to_bytes()
    assert "不实举报".encode() in raw
    back = EventEnvelope.from_bytes(raw)
    assert back == envelope
    assert back.hash == envelope.hash
    assert back.hash_ok()


def test_to_bytes_is_canonical() -> None:
    raw = _sealed().to_bytes()
    assert raw == canonical_json(json.loads(raw))


@pytest.mark.parametrize("jurisdiction", ["33112", "3311222", "33112x", "", "331 22"])
def test_rejects_a_jurisdiction_that_is_not_six_digits(jurisdiction: str) -> None:
    with pytest.raises(ValidationError, match="jurisdiction"):
        _sealed(jurisdiction=jurisdiction)


def test_rejects_a_naive_datetime() -> None:
    with pytest.raises(ValidationError, match="occurred_at"):
        _sealed(occurred_at=datetime(2025, 3, 1, 2, 30))


def test_rejects_extra_fields() -> None:
    fields = _fields(hash=GENESIS_HASH, unexpected="x")
    with pytest.raises(ValidationError, match="unexpected"):
        EventEnvelope(**fields)


def test_rejects_extra_fields_on_the_wire() -> None:
    data = json.loads(_sealed().to_bytes())
    data["unexpected"] = "x"
    with pytest.raises(ValidationError, match="unexpected"):
        EventEnvelope.from_bytes(canonical_json(data))


def test_actor_rejects_extra_fields() -> None:
    with pytest.raises(ValidationError):
        Actor.model_validate({"user_id": "u", "role": "r", "unit": "u", "admin": True})
