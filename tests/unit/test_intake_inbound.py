"""Inbound agency reports: the public model, the hybrid encryption to intake's key, the decoder."""

from __future__ import annotations

import json
import stat
import uuid
from pathlib import Path
from typing import Any, cast

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from services.intake.inbound import (
    InboundConsumer,
    InboundMessageError,
    InboundReportV1,
    SealedForIntake,
    intake_public_key,
    load_private_key,
    open_sealed,
    public_key_pem,
    seal_for_intake,
)
from shared.consumer import DeadLetter
from shared.db import Conn
from shared.envelope import EventEnvelope
from shared.events import registry

IDENTITY = {"name": "周举报", "contact": "13900001111", "id_number": "332526199001010011"}


def message(public_key: Any = None, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "message_id": str(uuid.uuid4()),
        "schema_version": 1,
        "source_agency": "丽水市公安局",
        "source_reference": "LSGA-2023-0042",
        "jurisdiction": "331122",
        "received_on": "2023-02-06",
        "real_name": True,
        "reporter_sealed": seal_for_intake(IDENTITY, public_key or X25519PrivateKey.generate().public_key()),
        "subjects": [{"kind": "person", "name": "吴某", "post": "所长", "unit": "缙云县某派出所"}],
        "allegations": [{"summary": "插手工程项目"}],
        "summary": "公安机关移送",
    }
    body.update(changes)
    return body


async def _never(conn: Conn, envelope: EventEnvelope, payload: Any) -> None:
    raise AssertionError("decode applies nothing")


def consumer() -> InboundConsumer:
    return InboundConsumer("intake.inbound", cast(asyncpg.Pool, None), registry, _never)


def test_the_key_pair_is_created_once_private_to_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "inbound-x25519.pem"
    first = public_key_pem(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert public_key_pem(path) == first
    assert first.startswith("-----BEGIN PUBLIC KEY-----")


def test_only_intakes_private_key_opens_the_sealed_identity(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    sealed = SealedForIntake.model_validate(seal_for_intake(IDENTITY, intake_public_key(path)))
    assert open_sealed(sealed, load_private_key(path)).model_dump() == IDENTITY
    assert IDENTITY["name"] not in json.dumps(sealed.model_dump(), ensure_ascii=False)
    with pytest.raises(InboundMessageError):
        open_sealed(sealed, X25519PrivateKey.generate())


def test_a_tampered_ciphertext_does_not_open(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    sealed = seal_for_intake(IDENTITY, intake_public_key(path))
    sealed["nonce"] = seal_for_intake(IDENTITY, intake_public_key(path))["nonce"]
    with pytest.raises(InboundMessageError):
        open_sealed(SealedForIntake.model_validate(sealed), load_private_key(path))


TOPIC = "zm.331122.inbound.reports"


def test_a_valid_message_becomes_an_envelope_keyed_by_its_message_id() -> None:
    body = message()
    envelope, model = consumer().decode(json.dumps(body).encode(), TOPIC)
    assert isinstance(model, InboundReportV1)
    assert envelope.event_id == uuid.UUID(body["message_id"]) == model.message_id
    assert envelope.event_type == "InboundReportV1" and envelope.hash_ok()
    assert envelope.case_id == "LSGA-2023-0042" and envelope.jurisdiction == "331122"
    assert envelope.actor.user_id == "agency:丽水市公安局" and envelope.actor.role == "system"
    assert not registry.knows("InboundReportV1")


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"schema_version": 2}, "schema_version"),
        ({"jurisdiction": "999999"}, "jurisdiction"),
        ({"subjects": []}, "subjects"),
        (
            {
                "allegations": [
                    {"allegation_id": "A1", "summary": "x"},
                    {"allegation_id": "A1", "summary": "y"},
                ]
            },
            "allegations",
        ),
        ({"reporter_sealed": None}, "real-name"),
        ({"received_on": "9999-12-31"}, "received_on"),  # would overflow the working-day deadlines
        ({"summary": "反映\u0000问题"}, "summary"),  # PostgreSQL refuses NUL at append
        ({"reporter": IDENTITY}, "reporter"),
        (
            {"reporter_sealed": {"ephemeral_public_key": "!!", "nonce": "AA==", "ciphertext": "AA=="}},
            "base64",
        ),
    ],
)
def test_an_invalid_message_is_a_dead_letter_that_does_not_echo_its_values(
    changes: dict[str, Any], where: str
) -> None:
    with pytest.raises(DeadLetter) as exc:
        consumer().decode(json.dumps(message(**changes)).encode(), TOPIC)
    assert exc.value.code == "invalid_event"
    assert where in exc.value.reason
    assert IDENTITY["name"] not in exc.value.reason and IDENTITY["contact"] not in exc.value.reason


def test_a_message_that_is_not_json_is_a_dead_letter() -> None:
    with pytest.raises(DeadLetter) as exc:
        consumer().decode(b"\xff not json", TOPIC)
    assert exc.value.code == "invalid_event"
