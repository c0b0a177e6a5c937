"""Ed25519 keys of the services: each signs the events it appends (and its checkpoints) with its
deployment's key; a keyring of public keys tells a consumer or an auditor who wrote an event.

A hash anyone can recompute proves content, not authorship: the signature over the event hash, by a
key the keyring assigns to the context that owns the topic, does. Layout (SigningSettings):

    <key_dir>/<service>.pem                 the service's current private key (0600)
    <keyring_dir>/<service>.<fingerprint>.pub  every public key ever used, kept after a rotation

A key id is `<service>:<fingerprint>` (the first 16 hex digits of SHA-256 over the raw public key).

Keys are held, stored and exchanged as `cryptography` keys (PEM files, fingerprints); the
signature of every event is made and checked by libsodium (PyNaCl) from the same raw key bytes.
Ed25519 is deterministic (RFC 8032), so both make the very same signatures; libsodium is the
faster of the two here (sign 20 against 30 us, check 50 against 96 us: `python -m bench.signing`), and
verification is what every consumer and the audit pay per event.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from nacl.bindings import crypto_sign_BYTES, crypto_sign_open
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey

from shared.envelope import EventEnvelope
from shared.settings import SigningSettings, local

# Separates event signatures from checkpoint signatures made with the same key.
EVENT_SIGNING_CONTEXT = b"zhengming event v1\x00"


class SignatureProblem(Exception):
    """Why an event's signature does not vouch for it; `code` is the dead-letter code."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _raw_public(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(public: Ed25519PublicKey) -> str:
    return hashlib.sha256(_raw_public(public)).hexdigest()[:16]


def key_id_of(service: str, public: Ed25519PublicKey) -> str:
    return f"{service}:{fingerprint(public)}"


def event_message(event_hash: str) -> bytes:
    """What is signed: the event hash (which covers prev_hash and every field but the signature)."""
    return EVENT_SIGNING_CONTEXT + bytes.fromhex(event_hash)


@dataclass(frozen=True)
class ServiceKey:
    """A service's private signing key and its key id."""

    service: str
    private: Ed25519PrivateKey

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @cached_property
    def key_id(self) -> str:
        return key_id_of(self.service, self.public)

    @cached_property
    def _sodium(self) -> SigningKey:
        seed = self.private.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        return SigningKey(seed)

    def signature(self, event_hash: str) -> str:
        """base64 Ed25519 over the event hash (event_message), as an envelope carries it."""
        return base64.b64encode(self._sodium.sign(event_message(event_hash)).signature).decode("ascii")

    def vouch(self, event_hash: str) -> tuple[str, str]:
        """This key's id and its signature over an event hash (what `sign` adds to an envelope)."""
        return self.key_id, self.signature(event_hash)

    def sign(self, envelope: EventEnvelope) -> EventEnvelope:
        """The envelope with this key's signature over its hash."""
        key_id, signature = self.vouch(envelope.hash)
        return envelope.model_copy(update={"key_id": key_id, "signature": signature})


def _pem(private: Ed25519PrivateKey) -> bytes:
    return private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write_new(path: Path, data: bytes) -> bool:
    """Create `path` (0600) unless it exists; False when another process was first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    return True


def _load_private(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 private key")
    return key


def publish_public(service: str, public: Ed25519PublicKey, settings: SigningSettings | None = None) -> Path:
    """Put a public key in the keyring (idempotent). Production: distribute this file to every
    deployment whose consumers read the service's topics."""
    directory = (settings or SigningSettings()).keyring()
    path = directory / f"{service}.{fingerprint(public)}.pub"
    if not path.exists():
        pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(pem)
        os.replace(tmp, path)
    return path


def service_key(service: str, settings: SigningSettings | None = None) -> ServiceKey:
    """The service's current signing key, created on first use (production: from its secret
    store); its public key is put in the keyring."""
    settings = settings or SigningSettings()
    path = settings.keys() / f"{service}.pem"
    if not path.exists():
        # The checkpoint key of earlier versions becomes the first signing key, so the
        # checkpoints it signed keep verifying.
        legacy = local().secrets / f"checkpoint-{service}.pem"
        _write_new(path, legacy.read_bytes() if legacy.exists() else _pem(Ed25519PrivateKey.generate()))
    key = ServiceKey(service, _load_private(path))
    publish_public(service, key.public, settings)
    return key


def rotate(service: str, settings: SigningSettings | None = None) -> ServiceKey:
    """A new signing key for the service. The old public key stays in the keyring so events and
    checkpoints signed before still verify; the old private key is destroyed. The new public key
    enters the keyring before the private key is replaced, so no event is ever signed by a key a
    consumer cannot find. Restart the service afterwards (it keeps its key in memory)."""
    settings = settings or SigningSettings()
    fresh = Ed25519PrivateKey.generate()
    publish_public(service, fresh.public_key(), settings)
    path = settings.keys() / f"{service}.pem"
    tmp = path.with_suffix(f".new{os.getpid()}")
    tmp.unlink(missing_ok=True)
    _write_new(tmp, _pem(fresh))
    os.replace(tmp, path)
    return ServiceKey(service, fresh)


@dataclass(frozen=True)
class TrustedKey:
    key_id: str
    service: str
    public: Ed25519PublicKey

    @cached_property
    def raw(self) -> bytes:
        return _raw_public(self.public)

    def vouches(self, signature: bytes, message: bytes) -> bool:
        """The signature over `message` is this key's."""
        return first_forged([(self.raw, signature, message)]) is None


SignatureCheck = tuple[bytes, bytes, bytes]
"""(raw public key, signature, signed message): one Ed25519 check, as plain bytes."""


def first_forged(checks: Sequence[SignatureCheck]) -> int | None:
    """The index of the first check whose signature is not its key's over its message, or None.
    A function of bytes alone: the audit runs it in worker processes (store.check_rows), where a
    thread would wait for the GIL between checks."""
    for index, (public, signature, message) in enumerate(checks):
        if len(signature) != crypto_sign_BYTES:
            return index
        try:
            crypto_sign_open(signature + message, public)
        except (BadSignatureError, ValueError, TypeError):
            return index
    return None


class Keyring:
    """The public keys a deployment trusts, by key id, each belonging to one service."""

    def __init__(self, keys: dict[str, TrustedKey] | None = None, directory: Path | None = None) -> None:
        self.keys: dict[str, TrustedKey] = dict(keys or {})
        self.directory = directory
        self._seen_mtime: int | None = None

    @classmethod
    def load(cls, directory: Path | None = None) -> Keyring:
        """Every `<service>.<fingerprint>.pub` of the directory (SigningSettings' by default)."""
        ring = cls(directory=directory or SigningSettings().keyring())
        ring.reload()
        return ring

    @classmethod
    def of(cls, *keys: ServiceKey | tuple[str, Ed25519PublicKey]) -> Keyring:
        """A keyring held in memory (tests, tools)."""
        ring = cls()
        for key in keys:
            service, public = (key.service, key.public) if isinstance(key, ServiceKey) else key
            ring.add(service, public)
        return ring

    def add(self, service: str, public: Ed25519PublicKey) -> str:
        trusted = TrustedKey(key_id_of(service, public), service, public)
        self.keys[trusted.key_id] = trusted
        return trusted.key_id

    def reload(self) -> None:
        if self.directory is None or not self.directory.is_dir():
            return
        self._seen_mtime = self.directory.stat().st_mtime_ns
        for path in sorted(self.directory.glob("*.pub")):
            service = path.name.split(".", 1)[0]
            public = serialization.load_pem_public_key(path.read_bytes())
            if isinstance(public, Ed25519PublicKey):
                # The key id comes from the key itself, never from the file name.
                self.add(service, public)

    def _directory_changed(self) -> bool:
        if self.directory is None or not self.directory.is_dir():
            return False
        return self.directory.stat().st_mtime_ns != self._seen_mtime

    def get(self, key_id: str) -> TrustedKey | None:
        found = self.keys.get(key_id)
        # A key rotated in by a running producer: read the directory again, but only when it
        # changed (a flood of unknown key ids costs one stat each).
        if found is None and self._directory_changed():
            self.reload()
            found = self.keys.get(key_id)
        return found

    def of_service(self, service: str) -> Iterator[TrustedKey]:
        return (k for k in self.keys.values() if k.service == service)

    def check(self, envelope: EventEnvelope, owner: str) -> TrustedKey:
        """The key that signed `envelope`, which must belong to `owner` (the context that owns
        the topic or the store it came from). Raises SignatureProblem naming the event."""
        trusted, signature, message = self._claimed(envelope, owner)
        if not trusted.vouches(signature, message):
            raise bad_signature(envelope)
        return trusted

    def _claimed(self, envelope: EventEnvelope, owner: str) -> tuple[TrustedKey, bytes, bytes]:
        """The key the envelope names (which must be trusted and `owner`'s), its signature and
        the signed message, all unchecked yet."""
        event = f"event {envelope.event_id} ({envelope.event_type})"
        if not envelope.signature or not envelope.key_id:
            raise SignatureProblem("unsigned", f"{event} carries no signature; {owner} signs every event")
        trusted = self.get(envelope.key_id)
        if trusted is None:
            raise SignatureProblem(
                "unknown_key", f"{event} is signed by key {envelope.key_id}, not in the keyring"
            )
        if trusted.service != owner:
            raise SignatureProblem(
                "wrong_producer",
                f"{event} is signed by {trusted.service}'s key {trusted.key_id}, but {owner} owns it",
            )
        try:
            signature = base64.b64decode(envelope.signature, validate=True)
            message = event_message(envelope.hash)
        except ValueError:
            signature, message = b"", b""
        return trusted, signature, message


def bad_signature(envelope: EventEnvelope) -> SignatureProblem:
    """The problem of an envelope whose signature is not its (trusted) key's over its hash."""
    return SignatureProblem(
        "bad_signature",
        f"event {envelope.event_id} ({envelope.event_type}): the signature of key {envelope.key_id}"
        " does not match its hash",
    )
