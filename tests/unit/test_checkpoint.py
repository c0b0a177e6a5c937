"""Signed checkpoints: the Merkle root over stream heads and the Ed25519 signature."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.checkpoint import Checkpoint, StreamHead, merkle_root, signature_ok


def heads(n: int = 5) -> list[StreamHead]:
    return [StreamHead(stream_id=f"s-{i}", version=i + 1, hash=f"{i:064x}") for i in range(n)]


def signed(hs: list[StreamHead], key: Ed25519PrivateKey, deployment: str = "zm") -> Checkpoint:
    unsigned = Checkpoint(
        service="review",
        deployment=deployment,
        taken_at=datetime(2023, 3, 31, tzinfo=UTC),
        events=len(hs),
        heads=hs,
        merkle_root=merkle_root(hs),
    )
    return unsigned.model_copy(
        update={"signature": base64.b64encode(key.sign(unsigned.signed_bytes())).decode()}
    )


def test_merkle_root_does_not_depend_on_the_order_of_the_heads() -> None:
    hs = heads()
    assert merkle_root(hs) == merkle_root(list(reversed(hs)))


def test_merkle_root_changes_with_any_head() -> None:
    hs = heads()
    changed = [*hs[:2], hs[2].model_copy(update={"hash": "f" * 64}), *hs[3:]]
    longer = [*hs[:2], hs[2].model_copy(update={"version": 99}), *hs[3:]]
    assert len({merkle_root(hs), merkle_root(changed), merkle_root(longer), merkle_root(hs[:-1])}) == 4


def test_a_signed_checkpoint_verifies_with_the_services_public_key() -> None:
    key = Ed25519PrivateKey.generate()
    assert signature_ok(signed(heads(), key), key.public_key())


def test_altered_heads_or_another_key_or_deployment_fail_the_signature() -> None:
    key = Ed25519PrivateKey.generate()
    good = signed(heads(), key)
    rewritten = good.model_copy(
        update={"heads": [*good.heads[:-1], StreamHead(stream_id="s-4", version=5, hash="a" * 64)]}
    )
    assert not signature_ok(rewritten, key.public_key())
    assert not signature_ok(good, Ed25519PrivateKey.generate().public_key())
    assert not signature_ok(good.model_copy(update={"deployment": "zm.331122"}), key.public_key())


def test_a_consistent_forgery_without_the_key_is_caught_by_the_root_or_signature() -> None:
    key = Ed25519PrivateKey.generate()
    good = signed(heads(), key)
    forged_heads = [*good.heads[:-1], StreamHead(stream_id="s-4", version=5, hash="b" * 64)]
    forged = good.model_copy(update={"heads": forged_heads, "merkle_root": merkle_root(forged_heads)})
    assert not signature_ok(forged, key.public_key())


def test_a_checkpoint_signed_before_a_field_was_added_still_verifies() -> None:
    key = Ed25519PrivateKey.generate()
    hs = heads()
    old_body = {
        "service": "review",
        "taken_at": "2023-03-31T00:00:00Z",
        "events": 5,
        "heads": [h.model_dump() for h in hs],
        "merkle_root": merkle_root(hs),
    }
    from shared.envelope import canonical_json

    signature = base64.b64encode(key.sign(canonical_json(old_body))).decode()
    parsed = Checkpoint.model_validate({**old_body, "signature": signature})
    assert parsed.deployment == "zm"
    assert signature_ok(parsed, key.public_key())


async def test_a_taken_checkpoint_still_verifies_after_the_round_trip_through_kafka() -> None:
    """What is signed is what is published: sign, serialise, parse, verify."""
    from shared.checkpoint import take

    class FakeConn:
        def transaction(self, **_: object) -> FakeConn:
            return self

        async def __aenter__(self) -> None:
            return None

        async def __aexit__(self, *_: object) -> None:
            return None

        async def fetch(self, _: str) -> list[dict[str, object]]:
            return [{"stream_id": h.stream_id, "stream_version": h.version, "hash": h.hash} for h in heads()]

        async def fetchval(self, _: str) -> int:
            return 5

    key = Ed25519PrivateKey.generate()
    for deployment in ("zm", "zm.331122"):
        taken = await take(FakeConn(), "review", key, deployment)  # type: ignore[arg-type]
        parsed = Checkpoint.model_validate_json(taken.model_dump_json())
        assert parsed.deployment == deployment
        assert signature_ok(parsed, key.public_key())
