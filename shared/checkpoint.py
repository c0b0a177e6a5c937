"""Signed checkpoints of a service's event store: the head hash of every stream, a Merkle root over
them, signed with the service's Ed25519 key. A verifier holding the public keys detects a stream
rewritten with fresh, self-consistent hashes: its head no longer matches the signed one."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict

from shared.db import Conn
from shared.envelope import canonical_json
from shared.settings import KafkaSettings
from shared.signing import Keyring

MAX_CHECKPOINT_BYTES = 16 * 1024 * 1024


def make_checkpoint_producer(settings: KafkaSettings) -> AIOKafkaProducer:
    """Checkpoints list every stream head: large, compressible messages."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap,
        acks="all",
        enable_idempotence=True,
        compression_type="gzip",
        max_request_size=MAX_CHECKPOINT_BYTES,
        **settings.client_options(),
    )


class StreamHead(BaseModel):
    model_config = ConfigDict(frozen=True)

    stream_id: str
    version: int
    hash: str


class Checkpoint(BaseModel):
    """What a service vouches for at one instant."""

    model_config = ConfigDict(frozen=True)

    service: str
    # Which deployment vouches (its group prefix: "zm" for the city, "zm.331122" for a county),
    # so the checkpoints of deployments sharing a cluster never mix.
    deployment: str = "zm"
    taken_at: datetime
    events: int
    heads: list[StreamHead]
    merkle_root: str
    # The service key that signed (shared/signing.py); absent on checkpoints of earlier versions.
    key_id: str = ""
    signature: str = ""

    def signed_bytes(self) -> bytes:
        # Only the fields the signer set: a checkpoint published before a field was added to this
        # model still verifies (the new field takes its default and is not part of what was signed).
        # An empty key id (a checkpoint from before key ids) is left out the same way.
        exclude = {"signature"} if self.key_id else {"signature", "key_id"}
        return canonical_json(self.model_dump(mode="json", exclude=exclude, exclude_unset=True))


def merkle_root(heads: list[StreamHead]) -> str:
    """Root of a binary Merkle tree over the heads sorted by stream id (odd nodes carried up)."""
    level = [
        hashlib.sha256(f"{h.stream_id}\x00{h.version}\x00{h.hash}".encode()).digest()
        for h in sorted(heads, key=lambda h: h.stream_id)
    ]
    if not level:
        return hashlib.sha256(b"").hexdigest()
    while len(level) > 1:
        nxt = [hashlib.sha256(level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0].hex()


async def take(
    conn: Conn, service: str, key: Ed25519PrivateKey, deployment: str = "zm", key_id: str | None = None
) -> Checkpoint:
    """Heads of every stream in one consistent snapshot, with the Merkle root, signed."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        rows = await conn.fetch(
            "SELECT DISTINCT ON (stream_id) stream_id, stream_version, hash FROM events"
            " ORDER BY stream_id, stream_version DESC"
        )
        count = await conn.fetchval("SELECT count(*) FROM events")
    heads = [StreamHead(stream_id=r["stream_id"], version=r["stream_version"], hash=r["hash"]) for r in rows]
    unsigned = Checkpoint(
        service=service,
        deployment=deployment,
        taken_at=datetime.now(UTC),
        events=count,
        heads=heads,
        merkle_root=merkle_root(heads),
        **({"key_id": key_id} if key_id else {}),
    )
    signature = base64.b64encode(key.sign(unsigned.signed_bytes())).decode()
    return unsigned.model_copy(update={"signature": signature})


def signature_ok(checkpoint: Checkpoint, key: Ed25519PublicKey) -> bool:
    try:
        key.verify(base64.b64decode(checkpoint.signature), checkpoint.signed_bytes())
    except (InvalidSignature, ValueError):
        return False
    return checkpoint.merkle_root == merkle_root(checkpoint.heads)


def signed_by_service(checkpoint: Checkpoint, keyring: Keyring) -> bool:
    """Signed by a key the keyring gives to the checkpoint's service: the one named, or (a
    checkpoint from before key ids) any of the service's keys, so rotation keeps old ones valid."""
    if checkpoint.key_id:
        trusted = keyring.get(checkpoint.key_id)
        candidates = [trusted] if trusted is not None and trusted.service == checkpoint.service else []
    else:
        candidates = list(keyring.of_service(checkpoint.service))
    return any(signature_ok(checkpoint, k.public) for k in candidates)
