"""Inbound integration: the public model InboundReportV1 other agencies publish (其他机关移送), the
hybrid encryption of the reporter's identity to intake's key, and the consumer that adapts it."""

from __future__ import annotations

import base64
import binascii
import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from services.intake.commands import AllegationDraft, ReporterIdentity
from services.intake.settings import InboundSettings
from shared.bounded import BusinessDate, NoControl
from shared.consumer import DeadLetter, EventConsumer
from shared.envelope import GENESIS_HASH, JURISDICTIONS, Actor, EventEnvelope, seal
from shared.errors import without_values
from shared.events.common import Subject

EVENT_TYPE = "InboundReportV1"
# Binds the derived key and the ciphertext to this purpose and version of the contract.
_HKDF_INFO = b"zhengming inbound reporter identity v1"
_AAD = b"zhengming.InboundReportV1.reporter_sealed"


class InboundMessageError(ValueError):
    """The sealed reporter cannot be opened or does not hold an identity."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class SealedForIntake(BaseModel):
    """The reporter's identity encrypted to intake's X25519 key: an ephemeral X25519 key agreement,
    HKDF-SHA256 (salt = ephemeral public key || intake's public key, raw 32 bytes each; info =
    "zhengming inbound reporter identity v1"; 32 bytes) and AES-256-GCM with associated data
    "zhengming.InboundReportV1.reporter_sealed" over the JSON {name, contact, id_number?}."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ephemeral_public_key: str = Field(description="base64 of the sender's 32-byte ephemeral X25519 key")
    nonce: str = Field(description="base64 of the 12-byte AES-GCM nonce")
    ciphertext: str = Field(min_length=1, max_length=8000, description="base64 of the AES-GCM output")

    @field_validator("ephemeral_public_key", "nonce", "ciphertext")
    @classmethod
    def _base64(cls, value: str) -> str:
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("not base64") from exc
        return value

    @model_validator(mode="after")
    def _sizes(self) -> SealedForIntake:
        if len(base64.b64decode(self.ephemeral_public_key)) != 32:
            raise ValueError("ephemeral_public_key must be 32 bytes")
        if len(base64.b64decode(self.nonce)) != 12:
            raise ValueError("nonce must be 12 bytes")
        return self


class InboundReportV1(BaseModel):
    """A report transferred by another agency (其他机关移送), version 1 of the public contract.

    The reporter's identity is never on Kafka in clear: `reporter_sealed` is encrypted to intake's
    public key and opened only to be sealed again under the reporter's own key.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    message_id: uuid.UUID
    schema_version: Literal[1]
    source_agency: Annotated[str, Field(min_length=1, max_length=150), NoControl]
    source_reference: Annotated[str, Field(min_length=1, max_length=200), NoControl]
    jurisdiction: str = Field(pattern=r"^\d{6}$")
    received_on: BusinessDate
    real_name: bool
    reporter_sealed: SealedForIntake | None = None
    subjects: list[Subject] = Field(min_length=1, max_length=50)
    allegations: list[AllegationDraft] = Field(min_length=1, max_length=100)
    summary: Annotated[str, Field(max_length=8000), NoControl] = ""

    @field_validator("jurisdiction")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in JURISDICTIONS:
            raise ValueError(f"unknown jurisdiction {value}")
        return value

    @field_validator("allegations")
    @classmethod
    def _unique_ids(cls, value: list[AllegationDraft]) -> list[AllegationDraft]:
        given = [a.allegation_id for a in value if a.allegation_id is not None]
        if len(given) != len(set(given)):
            raise ValueError("allegation ids must be unique")
        return value

    @model_validator(mode="after")
    def _reporter_matches_real_name(self) -> InboundReportV1:
        if self.real_name and self.reporter_sealed is None:
            raise ValueError("a real-name report needs reporter_sealed")
        if not self.real_name and self.reporter_sealed is not None:
            raise ValueError("an anonymous report carries no reporter")
        return self


# ---- keys -----------------------------------------------------------------------------------


def key_path() -> Path:
    return InboundSettings().key()


def load_private_key(path: Path | None = None) -> X25519PrivateKey:
    """Intake's private key for inbound reports, created on first use (production brings its own)."""
    path = path or key_path()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = X25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first; its key is the key
        else:
            with os.fdopen(fd, "wb") as out:
                out.write(pem)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, X25519PrivateKey):
        raise ValueError(f"{path} does not hold an X25519 private key")
    return key


def intake_public_key(path: Path | None = None) -> X25519PublicKey:
    """The key senders encrypt reporter identities to."""
    return load_private_key(path).public_key()


def public_key_pem(path: Path | None = None) -> str:
    """Intake's public key as PEM, for handing to another agency."""
    return (
        intake_public_key(path)
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def _derive(shared_secret: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral + recipient, info=_HKDF_INFO).derive(
        shared_secret
    )


def _raw(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def seal_for_intake(identity: dict[str, Any], public_key: X25519PublicKey) -> dict[str, str]:
    """What a sender puts in `reporter_sealed`: the identity encrypted to intake's public key."""
    ephemeral = X25519PrivateKey.generate()
    ephemeral_raw = _raw(ephemeral.public_key())
    key = _derive(ephemeral.exchange(public_key), ephemeral_raw, _raw(public_key))
    nonce = os.urandom(12)
    plaintext = json.dumps(identity, ensure_ascii=False, sort_keys=True).encode()
    return {
        "ephemeral_public_key": _b64(ephemeral_raw),
        "nonce": _b64(nonce),
        "ciphertext": _b64(AESGCM(key).encrypt(nonce, plaintext, _AAD)),
    }


def open_sealed(sealed: SealedForIntake, private_key: X25519PrivateKey) -> ReporterIdentity:
    """Decrypt the sender's envelope of the identity (kept in memory only, to be re-sealed)."""
    ephemeral_raw = base64.b64decode(sealed.ephemeral_public_key)
    try:
        shared_secret = private_key.exchange(X25519PublicKey.from_public_bytes(ephemeral_raw))
        key = _derive(shared_secret, ephemeral_raw, _raw(private_key.public_key()))
        plaintext = AESGCM(key).decrypt(
            base64.b64decode(sealed.nonce), base64.b64decode(sealed.ciphertext), _AAD
        )
    except (InvalidTag, ValueError) as exc:
        raise InboundMessageError("reporter_sealed cannot be opened with intake's key") from exc
    try:
        return ReporterIdentity.model_validate_json(plaintext)
    except ValidationError as exc:
        # Only the locations: the values are the identity itself.
        where = sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors()})
        raise InboundMessageError(f"reporter_sealed holds no valid identity ({', '.join(where)})") from exc


# ---- consumer -------------------------------------------------------------------------------


def adapt(message: InboundReportV1) -> EventEnvelope:
    """The envelope the consumer runner needs: the message id is the event id, so the inbox
    drops a redelivered message."""
    return seal(
        event_type=EVENT_TYPE,
        schema_version=message.schema_version,
        stream_id=f"inbound-{message.source_agency}",
        stream_version=1,
        case_id=message.source_reference,
        jurisdiction=message.jurisdiction,
        occurred_at=datetime.now(UTC),
        actor=Actor(user_id=f"agency:{message.source_agency}", role="system", unit=message.source_agency),
        correlation_id=message.message_id,
        causation_id=None,
        payload=message.model_dump(mode="json"),
        prev_hash=GENESIS_HASH,
        event_id=message.message_id,
    )


class InboundConsumer(EventConsumer):
    """Reads InboundReportV1 messages instead of event envelopes."""

    def decode(self, body: bytes, topic: str) -> tuple[EventEnvelope, BaseModel]:
        # Another agency's message, not a zhengming event: the topic ACL vouches for its sender.
        try:
            message = InboundReportV1.model_validate_json(body)
        except ValidationError as exc:
            raise DeadLetter("invalid_event", f"{EVENT_TYPE}: {without_values(exc)}") from exc
        return adapt(message), message
