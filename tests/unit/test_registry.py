"""The event registry: typed payloads, upcasting old versions, encoding current ones."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest
from pydantic import BaseModel

from shared.envelope import GENESIS_HASH, Actor, EventEnvelope, seal
from shared.errors import InvalidEvent, UnknownEventType
from shared.registry import EventRegistry, Payload


class ReportLogged(BaseModel):
    """举报登记 payload at schema version 3."""

    case_id: str
    official_name: str
    channel: str = "letter"


def _registry() -> EventRegistry:
    registry = EventRegistry()
    registry.event("ReportLogged", 3)(ReportLogged)

    @registry.upcaster("ReportLogged", 1)
    def rename_official(payload: Payload) -> Payload:
        payload["official_name"] = payload.pop("official")
        return payload

    @registry.upcaster("ReportLogged", 2)
    def add_channel(payload: Payload) -> Payload:
        payload.setdefault("channel", "unknown")
        return payload

    return registry


def _envelope(event_type: str, version: int, payload: Payload) -> EventEnvelope:
    return seal(
        event_type=event_type,
        schema_version=version,
        stream_id="case-1",
        stream_version=1,
        case_id="case-1",
        jurisdiction="331122",
        occurred_at=datetime(2025, 3, 1, tzinfo=UTC),
        actor=Actor(user_id="u-001", role="clerk", unit="缙云县信访局"),
        correlation_id=uuid.uuid4(),
        causation_id=None,
        payload=payload,
        prev_hash=GENESIS_HASH,
    )


def test_decode_upcasts_v1_to_the_current_model() -> None:
    registry = _registry()
    decoded = registry.decode(_envelope("ReportLogged", 1, {"case_id": "c1", "official": "张三"}))
    assert isinstance(decoded, ReportLogged)
    assert decoded == ReportLogged(case_id="c1", official_name="张三", channel="unknown")


def test_decode_upcasts_v2_with_one_step() -> None:
    registry = _registry()
    decoded = registry.decode(_envelope("ReportLogged", 2, {"case_id": "c1", "official_name": "李四"}))
    assert decoded == ReportLogged(case_id="c1", official_name="李四", channel="unknown")


def test_decode_current_version_is_not_upcast() -> None:
    registry = _registry()
    payload = {"case_id": "c1", "official_name": "王五", "channel": "hotline"}
    decoded = registry.decode(_envelope("ReportLogged", 3, payload))
    assert decoded == ReportLogged(case_id="c1", official_name="王五", channel="hotline")


def test_upcasting_does_not_touch_the_stored_payload() -> None:
    registry = _registry()
    envelope = _envelope("ReportLogged", 1, {"case_id": "c1", "official": "张三"})
    registry.decode(envelope)
    assert envelope.payload == {"case_id": "c1", "official": "张三"}
    assert envelope.hash_ok()


def test_unknown_type_raises_unknown_event_type() -> None:
    registry = _registry()
    with pytest.raises(UnknownEventType):
        registry.decode(_envelope("NoSuchEvent", 1, {}))
    assert not registry.knows("NoSuchEvent")
    assert registry.knows("ReportLogged")


def test_missing_upcaster_raises_invalid_event() -> None:
    registry = EventRegistry()
    registry.event("ReportLogged", 3)(ReportLogged)

    @registry.upcaster("ReportLogged", 1)
    def rename_official(payload: Payload) -> Payload:
        payload["official_name"] = payload.pop("official")
        return payload

    with pytest.raises(InvalidEvent, match="no upcaster"):
        registry.decode(_envelope("ReportLogged", 1, {"case_id": "c1", "official": "张三"}))


def test_version_newer_than_current_raises_invalid_event() -> None:
    registry = _registry()
    with pytest.raises(InvalidEvent, match="newer"):
        registry.decode(_envelope("ReportLogged", 4, {"case_id": "c1", "official_name": "张三"}))


def test_invalid_payload_raises_invalid_event() -> None:
    registry = _registry()
    with pytest.raises(InvalidEvent, match="ReportLogged"):
        registry.decode(_envelope("ReportLogged", 3, {"case_id": "c1"}))


def test_registering_two_models_under_one_type_raises() -> None:
    registry = _registry()

    class Other(BaseModel):
        case_id: str

    with pytest.raises(ValueError, match="ReportLogged"):
        registry.event("ReportLogged", 3)(Other)
    assert registry.model("ReportLogged") is ReportLogged


def test_registering_the_same_model_again_is_allowed() -> None:
    registry = _registry()
    assert registry.event("ReportLogged", 3)(ReportLogged) is ReportLogged
    assert registry.current_version("ReportLogged") == 3


class HearingScheduled(BaseModel):
    """听证 scheduled: a payload with non-JSON-native types."""

    hearing_id: uuid.UUID
    on: date
    venue: str


def test_encode_returns_type_version_and_json_payload() -> None:
    registry = _registry()
    registry.event("HearingScheduled", 2)(HearingScheduled)
    hearing_id = uuid.uuid4()
    encoded = registry.encode(HearingScheduled(hearing_id=hearing_id, on=date(2025, 4, 1), venue="缙云县"))
    assert encoded == (
        "HearingScheduled",
        2,
        {"hearing_id": str(hearing_id), "on": "2025-04-01", "venue": "缙云县"},
    )


def test_encode_then_decode_round_trips() -> None:
    registry = _registry()
    original = ReportLogged(case_id="c1", official_name="张三", channel="hotline")
    event_type, version, payload = registry.encode(original)
    assert registry.decode(_envelope(event_type, version, payload)) == original


def test_encode_unregistered_model_raises_unknown_event_type() -> None:
    registry = _registry()
    with pytest.raises(UnknownEventType):
        registry.encode(HearingScheduled(hearing_id=uuid.uuid4(), on=date(2025, 4, 1), venue="x"))
