"""Tokens: the Ed25519 key as an OKP JWK (RFC 8037) with its RFC 7638 thumbprint, the kid in
minted tokens, the name claim, and the actor's name kept out of old events' hashes."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.auth import (
    AuthError,
    AuthSettings,
    Principal,
    ensure_keys,
    jwk_thumbprint,
    jwks,
    mint,
    public_jwk,
    verify,
)
from shared.envelope import GENESIS_HASH, Actor, chain_hash, seal

# RFC 8037 appendix A.1 (the Ed25519 key) and A.3 (its JWK thumbprint).
RFC_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC_THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"

OFFICER = Principal(
    user_id="head-331122", name="王芳", role="head", unit="缙云县纪委监委", jurisdictions=["331122"]
)


@pytest.fixture
def settings(tmp_path: Path) -> AuthSettings:
    s = AuthSettings(private_key_file=tmp_path / "k.pem", public_key_file=tmp_path / "k.pub.pem")
    ensure_keys(s)
    return s


def test_the_rfc_8037_key_converts_to_its_jwk_and_thumbprint() -> None:
    key = Ed25519PrivateKey.from_private_bytes(RFC_SEED).public_key()
    jwk = public_jwk(key)
    assert jwk == {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": RFC_X,
        "kid": RFC_THUMBPRINT,
        "use": "sig",
        "alg": "EdDSA",
    }
    assert jwk_thumbprint({"kty": "OKP", "crv": "Ed25519", "x": RFC_X}) == RFC_THUMBPRINT


def test_the_published_jwk_is_the_verifying_key(settings: AuthSettings) -> None:
    (jwk,) = jwks(settings)["keys"]
    token = mint(OFFICER, settings)
    assert jwt.get_unverified_header(token)["kid"] == jwk["kid"]
    claims = jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=["EdDSA"], issuer="zhengming")
    assert claims["sub"] == "head-331122" and claims["name"] == "王芳"


def test_another_key_does_not_verify(settings: AuthSettings, tmp_path: Path) -> None:
    other = AuthSettings(private_key_file=tmp_path / "o.pem", public_key_file=tmp_path / "o.pub.pem")
    with pytest.raises(AuthError):
        verify(mint(OFFICER, other), settings)


def test_a_token_carries_the_name_into_the_actor(settings: AuthSettings) -> None:
    principal = verify(mint(OFFICER, settings), settings)
    assert principal == OFFICER
    assert principal.actor() == Actor(user_id="head-331122", role="head", unit="缙云县纪委监委", name="王芳")


def test_a_script_token_without_a_name_still_verifies(settings: AuthSettings) -> None:
    script = OFFICER.model_copy(update={"name": None})
    assert verify(mint(script, settings), settings).name is None


def test_the_expected_issuer_and_audience_are_checked(settings: AuthSettings) -> None:
    token = mint(OFFICER, settings)
    with pytest.raises(AuthError, match="issuer"):
        verify(token, settings.model_copy(update={"issuer": "https://sso.example/realms/lishui"}))
    with pytest.raises(AuthError, match="aud"):
        verify(token, settings.model_copy(update={"audience": "zhengming"}))


def test_the_user_claim_is_configurable(settings: AuthSettings) -> None:
    # An OIDC provider's readable login name (Keycloak: preferred_username) instead of sub.
    private = serialization.load_pem_private_key(settings.private_key.read_bytes(), password=None)
    now = datetime.now(UTC)
    claims = {
        "iss": "zhengming",
        "sub": str(uuid.uuid4()),
        "preferred_username": "wang.fang",
        "role": "head",
        "unit": "缙云县纪委监委",
        "jurisdictions": ["331122"],
        "iat": now,
        "exp": now.timestamp() + 60,
    }
    token = jwt.encode(claims, private, algorithm="EdDSA")  # type: ignore[arg-type]
    oidc = settings.model_copy(update={"user_claim": "preferred_username"})
    assert verify(token, oidc).user_id == "wang.fang"


def test_an_actor_without_a_name_hashes_as_before_the_field_existed() -> None:
    actor = Actor(user_id="u", role="head", unit="缙云县纪委监委")
    assert actor.model_dump(mode="json") == {"user_id": "u", "role": "head", "unit": "缙云县纪委监委"}
    envelope = seal(
        event_type="t",
        schema_version=1,
        stream_id="s",
        stream_version=1,
        case_id="c",
        jurisdiction="331122",
        occurred_at=datetime(2023, 1, 9, tzinfo=UTC),
        actor=actor,
        correlation_id=uuid.UUID(int=1),
        causation_id=None,
        payload={},
        prev_hash=GENESIS_HASH,
        event_id=uuid.UUID(int=2),
    )
    # The body an event recorded before the name existed was hashed over.
    old_body = envelope.model_dump(mode="json", exclude={"prev_hash", "hash", "key_id", "signature"})
    old_body["actor"] = {"user_id": "u", "role": "head", "unit": "缙云县纪委监委"}
    assert envelope.hash == chain_hash(GENESIS_HASH, old_body)
    named = Actor(user_id="u", role="head", unit="缙云县纪委监委", name="王芳")
    assert named.model_dump(mode="json")["name"] == "王芳"
    assert Actor.model_validate(named.model_dump(mode="json")) == named


def test_a_jwk_x_is_the_raw_public_key() -> None:
    key = Ed25519PrivateKey.generate().public_key()
    x = public_jwk(key)["x"]
    raw = base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
    assert raw == key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def test_a_token_minted_here_passes_this_deployments_own_checks(settings: AuthSettings) -> None:
    """Issuer, audience and user claim set for the deployment: its own tokens still verify."""
    own = settings.model_copy(
        update={"issuer": "https://zhengming.lishui.example", "audience": "zhengming", "user_claim": "uid"}
    )
    assert verify(mint(OFFICER, own), own).user_id == OFFICER.user_id
