"""Producer signatures: keys per service on disk, key ids, the keyring, rotation, and checkpoints
signed with the same keys."""

from __future__ import annotations

import base64
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.checkpoint import Checkpoint, merkle_root, signed_by_service
from shared.envelope import GENESIS_HASH, Actor, EventEnvelope, draft, seal, sealed
from shared.settings import SigningSettings
from shared.signing import Keyring, ServiceKey, SignatureProblem, event_message, rotate, service_key


@pytest.fixture
def signing(tmp_path: Path) -> SigningSettings:
    return SigningSettings(key_dir=tmp_path / "keys", keyring_dir=tmp_path / "keyring")


def event(payload: dict[str, object] | None = None) -> EventEnvelope:
    return seal(
        event_type="ReportHandedOver",
        schema_version=1,
        stream_id="report-331122-2023-000001",
        stream_version=1,
        case_id="331122-2023-000001",
        jurisdiction="331122",
        occurred_at=datetime(2023, 1, 10, tzinfo=UTC),
        actor=Actor(user_id="u-1", role="letters_office", unit="缙云县纪委监委"),
        correlation_id=uuid.uuid4(),
        causation_id=None,
        payload=payload or {"department": "第三纪检监察室"},
        prev_hash=GENESIS_HASH,
    )


@pytest.mark.parametrize(
    "payload", [{"department": "第三纪检监察室"}, {"score": 1.5, "n": 2**70, "标题": ["甲", None]}]
)
def test_the_stores_one_dump_seal_is_sealing_signing_and_dumping_in_turn(
    signing: SigningSettings, payload: dict[str, object]
) -> None:
    """The store seals with `sealed` (one dump of the envelope for its hash, signature and wire
    form); it must give what `seal`, `ServiceKey.sign` and `to_bytes` give one after the other,
    floats and big integers (the standard library's JSON) included."""
    key = service_key("intake", signing)
    in_turn = key.sign(event(payload))
    fields = in_turn.model_dump(exclude={"hash", "key_id", "signature"})
    fields["actor"] = in_turn.actor

    envelope, wire = sealed(draft(**fields), key.vouch)

    assert envelope == in_turn
    assert wire == in_turn.to_bytes()
    assert Keyring.load(signing.keyring()).check(envelope, "intake").key_id == key.key_id
    unsigned, unsigned_wire = sealed(draft(**fields))
    assert (unsigned.signature, unsigned.key_id) == (None, None)
    assert unsigned.hash == envelope.hash
    assert unsigned_wire == unsigned.to_bytes() != wire


def test_a_service_key_is_created_once_private_and_published_to_the_keyring(signing: SigningSettings) -> None:
    first = service_key("intake", signing)
    again = service_key("intake", signing)
    assert first.key_id == again.key_id and first.key_id.startswith("intake:")
    assert os.stat(signing.keys() / "intake.pem").st_mode & 0o777 == 0o600
    [pub] = list(signing.keyring().glob("*.pub"))
    assert pub.name == f"intake.{first.key_id.split(':')[1]}.pub"
    assert b"PRIVATE" not in pub.read_bytes()
    assert service_key("review", signing).key_id != first.key_id


def test_signature_is_outside_the_hash_and_verifies(signing: SigningSettings) -> None:
    key = service_key("intake", signing)
    unsigned = event()
    signed = key.sign(unsigned)
    assert signed.hash == unsigned.hash == signed.computed_hash()
    assert signed.key_id == key.key_id
    assert len(base64.b64decode(signed.signature or "")) == 64
    back = EventEnvelope.from_bytes(signed.to_bytes())
    assert Keyring.load(signing.keyring()).check(back, "intake").key_id == key.key_id


def test_every_forgery_is_named_with_its_own_code(signing: SigningSettings) -> None:
    intake, review = service_key("intake", signing), service_key("review", signing)
    ring = Keyring.load(signing.keyring())
    genuine = intake.sign(event())
    rehashed = genuine.model_copy(update={"payload": {"department": "伪造"}})
    rehashed = rehashed.model_copy(update={"hash": rehashed.computed_hash()})
    cases = {
        "unsigned": event(),
        "unknown_key": ServiceKey("intake", Ed25519PrivateKey.generate()).sign(event()),
        "wrong_producer": review.sign(event()),
        "bad_signature": rehashed,
    }
    for code, envelope in cases.items():
        with pytest.raises(SignatureProblem) as caught:
            ring.check(envelope, "intake")
        assert caught.value.code == code
        assert str(envelope.event_id) in caught.value.reason


def test_libsodium_signs_and_checks_exactly_as_openssl_did() -> None:
    """Events signed before signing moved to libsodium keep verifying, and the other way round:
    Ed25519 is deterministic, so both libraries make the same bytes from the same key."""
    private = Ed25519PrivateKey.generate()
    key = ServiceKey("intake", private)
    ring = Keyring.of(key)
    for n in range(20):
        unsigned = event({"department": f"第{n}纪检监察室"})
        by_openssl = base64.b64encode(private.sign(event_message(unsigned.hash))).decode()
        assert key.signature(unsigned.hash) == by_openssl
        old = unsigned.model_copy(update={"key_id": key.key_id, "signature": by_openssl})
        assert ring.check(old, "intake").key_id == key.key_id
        made = base64.b64decode(key.sign(unsigned).signature or "")
        private.public_key().verify(made, event_message(unsigned.hash))


@pytest.mark.parametrize("signature", ["", "not base64!", base64.b64encode(b"short").decode(), "A" * 88])
def test_a_malformed_signature_is_a_bad_signature(signature: str) -> None:
    key = ServiceKey("intake", Ed25519PrivateKey.generate())
    forged = key.sign(event()).model_copy(update={"signature": signature or None})
    with pytest.raises(SignatureProblem) as caught:
        Keyring.of(key).check(forged, "intake")
    assert caught.value.code == ("unsigned" if not signature else "bad_signature")


def test_rotation_keeps_old_events_verifiable(signing: SigningSettings) -> None:
    old = service_key("intake", signing)
    before = old.sign(event())
    new = rotate("intake", signing)
    assert new.key_id != old.key_id
    assert service_key("intake", signing).key_id == new.key_id, "the new key is the current one"
    after = service_key("intake", signing).sign(event())
    ring = Keyring.load(signing.keyring())
    assert ring.check(before, "intake").key_id == old.key_id
    assert ring.check(after, "intake").key_id == new.key_id
    assert len(list(signing.keyring().glob("intake.*.pub"))) == 2


def test_a_running_keyring_learns_a_rotated_key(signing: SigningSettings) -> None:
    service_key("intake", signing)
    ring = Keyring.load(signing.keyring())
    rotated = rotate("intake", signing)
    assert ring.check(rotated.sign(event()), "intake").key_id == rotated.key_id


def test_the_key_id_comes_from_the_key_not_the_file_name(signing: SigningSettings) -> None:
    stranger = Ed25519PrivateKey.generate().public_key()
    signing.keyring().mkdir(parents=True)
    (signing.keyring() / "intake.0000000000000000.pub").write_bytes(
        stranger.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    ring = Keyring.load(signing.keyring())
    assert ring.get("intake:0000000000000000") is None
    assert [k.service for k in ring.keys.values()] == ["intake"]


def test_the_checkpoint_key_of_earlier_versions_becomes_the_signing_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZM_LOCAL_ROOT", str(tmp_path))
    from shared import settings

    settings.local.cache_clear()
    try:
        legacy = Ed25519PrivateKey.generate()
        (tmp_path / "secrets").mkdir()
        (tmp_path / "secrets" / "checkpoint-review.pem").write_bytes(
            legacy.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        key = service_key("review", SigningSettings())
        assert key.key_id == ServiceKey("review", legacy).key_id
        assert (tmp_path / "secrets" / "signing" / "review.pem").exists()
    finally:
        settings.local.cache_clear()


def _checkpoint(key: ServiceKey, with_key_id: bool = True) -> Checkpoint:
    unsigned = Checkpoint(
        service=key.service,
        deployment="zm",
        taken_at=datetime(2023, 3, 31, tzinfo=UTC),
        events=0,
        heads=[],
        merkle_root=merkle_root([]),
        **({"key_id": key.key_id} if with_key_id else {}),
    )
    signature = base64.b64encode(key.private.sign(unsigned.signed_bytes())).decode()
    return Checkpoint.model_validate_json(
        unsigned.model_copy(update={"signature": signature}).model_dump_json()
    )


def test_checkpoints_verify_by_key_id_across_a_rotation(signing: SigningSettings) -> None:
    old = service_key("review", signing)
    before, legacy = _checkpoint(old), _checkpoint(old, with_key_id=False)
    new = rotate("review", signing)
    ring = Keyring.load(signing.keyring())
    assert signed_by_service(before, ring) and signed_by_service(legacy, ring)
    assert signed_by_service(_checkpoint(new), ring)
    intake = service_key("intake", signing)
    ring = Keyring.load(signing.keyring())
    posing = _checkpoint(intake).model_copy(update={"service": "review"})
    assert not signed_by_service(posing, ring), "intake's key cannot vouch for review"
