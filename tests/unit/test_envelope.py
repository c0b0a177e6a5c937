"""The event envelope: canonical JSON, the chain hash and what the model refuses."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.db import jsonb_value
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


# Every hash in every trail was made of the standard library's bytes; canonical_json's fast path
# must give exactly those, and fall back to them wherever it cannot.
_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=12)
_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=25,
)


def _stdlib(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@settings(max_examples=600, deadline=None)
@given(_json_values)
def test_canonical_json_is_the_standard_librarys_bytes(value: Any) -> None:
    assert canonical_json(value) == _stdlib(value)


@pytest.mark.parametrize(
    "value",
    [
        {"b": 1, "a": [1e16, 1e-07, 0.1, -0.0]},
        {"n": float("nan"), "i": float("inf")},
        {"big": 2**64, "neg": -(2**63) - 1},
        {"ctl": '\x00\x1f\x7f\u2028\u2029"\\/\n\t\b\f\r', "汉": "缙云县", "𝄞": "😀"},
        {"z": {"y": (1, 2)}, "a": [], "": None},
        {2: "integer keys", 1: True},
    ],
)
def test_canonical_json_edge_cases_are_the_standard_librarys_bytes(value: Any) -> None:
    assert canonical_json(value) == _stdlib(value)


def _same(a: Any, b: Any) -> bool:
    """Equal values of the same types all the way down (1 == 1.0 but an int is not a float; NaN
    counts as equal to NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b or (a != a and b != b))


# jsonb comes back from PostgreSQL through jsonb_value: the very values json.loads would give.
@given(_json_values, st.booleans())
def test_jsonb_value_is_what_json_loads_gives(value: Any, spaced: bool) -> None:
    text = json.dumps(value, ensure_ascii=False, indent=1 if spaced else None)
    assert _same(jsonb_value(text), json.loads(text))


@pytest.mark.parametrize(
    "text",
    ["18446744073709551616", "-9223372036854775809", '{"n": 1234567890123456789012}', "1e400",
     "-1e-400", '"\\ud800"', '["缙云县", 9223372036854775807, 1.5e-7, "1234567890123456789"]'],
)  # fmt: skip
def test_jsonb_value_edge_cases_are_what_json_loads_gives(text: str) -> None:
    assert _same(jsonb_value(text), json.loads(text))


@settings(max_examples=200, deadline=None)
@given(payload=st.dictionaries(_text, _json_values, max_size=6))
def test_hash_and_wire_are_the_hash_and_bytes_of_one_dump(payload: dict[str, Any]) -> None:
    envelope = _sealed(payload=payload).model_copy(update={"key_id": "review:00", "signature": "c2ln"})
    assert envelope.hash_and_wire() == (envelope.computed_hash(), envelope.to_bytes())
