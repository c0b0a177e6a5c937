"""Signed bearer tokens (EdDSA JWT) carrying user, role, unit and granted jurisdictions."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.envelope import JURISDICTIONS, Actor
from shared.events.common import Role
from shared.settings import local

ISSUER = "zhengming"


class AuthSettings(BaseSettings):
    """Token keys: services need only the public key; the private key mints (CLI, identity provider)."""

    model_config = SettingsConfigDict(env_prefix="ZM_AUTH_")

    private_key_file: Path | None = None  # default: <local root>/secrets/token-signing.pem
    public_key_file: Path | None = None  # default: <local root>/secrets/token-signing.pub.pem
    token_ttl_hours: int = 12

    @property
    def private_key(self) -> Path:
        return self.private_key_file or local().secrets / "token-signing.pem"

    @property
    def public_key(self) -> Path:
        return self.public_key_file or local().secrets / "token-signing.pub.pem"


class AuthError(Exception):
    """Missing, malformed, expired or wrongly signed token; `detail_zh` says why in Chinese."""

    def __init__(self, detail: str, *, detail_zh: str) -> None:
        super().__init__(detail)
        self.detail_zh = detail_zh


def _chinese(exc: Exception) -> str:
    """Why PyJWT (or the key file) refused a token, in Chinese."""
    if isinstance(exc, FileNotFoundError):
        return "缺少验证令牌的公钥"
    if isinstance(exc, jwt.ExpiredSignatureError):
        return "令牌已过期"
    if isinstance(exc, jwt.ImmatureSignatureError):
        return "令牌尚未生效"
    if isinstance(exc, jwt.InvalidSignatureError):
        return "令牌签名无效"
    if isinstance(exc, jwt.InvalidIssuerError):
        return "令牌的签发方不符"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"令牌缺少必需的声明 {exc.claim}"
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return "令牌的签名算法不被接受"
    if isinstance(exc, jwt.DecodeError):
        return "令牌格式无效"
    return "令牌无法验证"


class Principal(BaseModel):
    """The authenticated caller."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: str = Field(min_length=1)
    role: Role
    unit: str = Field(min_length=1)
    jurisdictions: list[str] = Field(min_length=1)

    def actor(self) -> Actor:
        return Actor(user_id=self.user_id, role=self.role, unit=self.unit)

    def sees(self, jurisdiction: str) -> bool:
        return jurisdiction in self.jurisdictions


def ensure_keys(settings: AuthSettings) -> None:
    """Create a local signing key pair on first use (production brings its own)."""
    if settings.private_key.exists():
        if not settings.public_key.exists():
            _write_public(settings)
        return
    settings.private_key.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(settings.private_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    _write_public(settings)


def _write_public(settings: AuthSettings) -> None:
    key = serialization.load_pem_private_key(settings.private_key.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    settings.public_key.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def mint(principal: Principal, settings: AuthSettings | None = None, ttl: timedelta | None = None) -> str:
    settings = settings or AuthSettings()
    ensure_keys(settings)
    key = serialization.load_pem_private_key(settings.private_key.read_bytes(), password=None)
    now = datetime.now(UTC)
    claims = {
        "iss": ISSUER,
        "sub": principal.user_id,
        "role": principal.role,
        "unit": principal.unit,
        "jurisdictions": principal.jurisdictions,
        "iat": now,
        "exp": now + (ttl or timedelta(hours=settings.token_ttl_hours)),
    }
    return jwt.encode(claims, key, algorithm="EdDSA")  # type: ignore[arg-type]


@lru_cache(maxsize=4)
def _public_key(path: Path) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(path.read_bytes())
    assert isinstance(key, Ed25519PublicKey)
    return key


def verify(token: str, settings: AuthSettings | None = None) -> Principal:
    settings = settings or AuthSettings()
    try:
        claims = jwt.decode(
            token,
            _public_key(settings.public_key),
            algorithms=["EdDSA"],
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "iss"]},
        )
    except (jwt.PyJWTError, FileNotFoundError) as exc:
        raise AuthError(str(exc), detail_zh=_chinese(exc)) from exc
    try:
        principal = Principal(
            user_id=claims["sub"],
            role=claims.get("role"),
            unit=claims.get("unit"),
            jurisdictions=claims.get("jurisdictions") or [],
        )
    except ValidationError as exc:
        raise AuthError(
            f"token claims are incomplete: {exc.error_count()} problems",
            detail_zh=f"令牌的声明不完整（{exc.error_count()} 处问题）",
        ) from exc
    unknown = [j for j in principal.jurisdictions if j not in JURISDICTIONS]
    if unknown:
        raise AuthError(
            f"unknown jurisdictions in token: {unknown}",
            detail_zh=f"令牌含有未知的辖区：{'、'.join(unknown)}",
        )
    return principal
