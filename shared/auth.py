"""Signed bearer tokens (EdDSA JWT) carrying user, name, role, unit and granted jurisdictions: minted
here (login, CLI), verified against the public key file or a JWKS endpoint (an OIDC provider's)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.concurrency import run_in_threadpool

from shared.envelope import JURISDICTIONS, Actor
from shared.recent import Recent
from shared.roles import Role
from shared.settings import auth as configured
from shared.settings import local

ISSUER = "zhengming"


class AuthSettings(BaseSettings):
    """Token keys: services need only the public key; the private key mints (CLI, identity provider)."""

    model_config = SettingsConfigDict(env_prefix="ZM_AUTH_")

    private_key_file: Path | None = None  # default: <local root>/secrets/token-signing.pem
    public_key_file: Path | None = None  # default: <local root>/secrets/token-signing.pub.pem
    token_ttl_hours: int = 12
    # Verification against a JWKS endpoint instead of the public key file (a commission's own
    # OIDC provider, or the JWKS another zhengming service publishes); fetched and cached.
    jwks_url: str | None = None
    jwks_cache_s: float = Field(default=300.0, gt=0)
    jwks_timeout_s: float = Field(default=5.0, gt=0)
    # What a token must say: its issuer (`iss`), its audience (`aud`, checked when set), the
    # signature algorithms accepted (an OIDC provider often signs RS256), and the claim naming the
    # user (`sub`; Keycloak's readable one is `preferred_username`).
    issuer: str = ISSUER
    audience: str | None = None
    algorithms: list[str] = Field(default_factory=lambda: ["EdDSA"], min_length=1)
    user_claim: str = "sub"
    # Whether this process issues tokens: serves POST /auth/login (needs the private key) and
    # GET /.well-known/jwks.json. Off where an OIDC provider issues them.
    issue_tokens: bool = True

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


class KeysUnavailable(Exception):
    """The JWKS endpoint does not answer (and no cached key set is left): the caller may retry."""


class Principal(BaseModel):
    """The authenticated caller."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: str = Field(min_length=1, max_length=200)
    role: Role
    unit: str = Field(min_length=1, max_length=200)
    jurisdictions: list[str] = Field(min_length=1)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    """姓名 of a named user (tokens of the directory's login and of an OIDC provider); scripts'
    tokens may have none."""

    def actor(self) -> Actor:
        return Actor(user_id=self.user_id, role=self.role, unit=self.unit, name=self.name)

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


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def jwk_thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638 thumbprint of an OKP key (SHA-256 over its required members, sorted): its kid."""
    members = {name: jwk[name] for name in ("crv", "kty", "x")}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return _b64url(hashlib.sha256(canonical).digest())


def public_jwk(key: Ed25519PublicKey) -> dict[str, str]:
    """The Ed25519 public key as an OKP JWK (RFC 8037) with its thumbprint as kid."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw)}
    return {**jwk, "kid": jwk_thumbprint(jwk), "use": "sig", "alg": "EdDSA"}


def jwks(settings: AuthSettings | None = None) -> dict[str, list[dict[str, str]]]:
    """The JWK set this deployment's tokens verify against (its one signing key; FileNotFoundError
    before there is one)."""
    settings = settings or configured()
    return {"keys": [public_jwk(_public_key(settings.public_key))]}


def mint(principal: Principal, settings: AuthSettings | None = None, ttl: timedelta | None = None) -> str:
    settings = settings or configured()
    ensure_keys(settings)
    key = serialization.load_pem_private_key(settings.private_key.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    now = datetime.now(UTC)
    # The claims this deployment's verifiers ask for (`issuer`, `user_claim`, `audience`): a token it
    # mints must pass its own check whatever those are set to.
    claims: dict[str, Any] = {
        "iss": settings.issuer,
        "sub": principal.user_id,
        settings.user_claim: principal.user_id,
        "role": principal.role,
        "unit": principal.unit,
        "jurisdictions": principal.jurisdictions,
        "iat": now,
        "exp": now + (ttl or timedelta(hours=settings.token_ttl_hours)),
    }
    if settings.audience is not None:
        claims["aud"] = settings.audience
    if principal.name is not None:
        claims["name"] = principal.name
    # The kid lets a verifier holding the JWKS pick the key (and a rotated key set keep old ones).
    kid = public_jwk(key.public_key())["kid"]
    return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid})


@lru_cache(maxsize=4)
def _public_key(path: Path) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(path.read_bytes())
    assert isinstance(key, Ed25519PublicKey)
    return key


@lru_cache(maxsize=4)
def _jwks_client(url: str, cache_s: float, timeout_s: float) -> jwt.PyJWKClient:
    # One client per URL: it caches the key set for `cache_s` and refetches it at most every 30 s
    # for an unknown kid (a rotated key), so random kids cannot make it hammer the provider.
    return jwt.PyJWKClient(url, cache_jwk_set=True, lifespan=cache_s, timeout=timeout_s)


def _verification_key(token: str, settings: AuthSettings) -> Any:
    if settings.jwks_url is None:
        return _public_key(settings.public_key)
    client = _jwks_client(settings.jwks_url, settings.jwks_cache_s, settings.jwks_timeout_s)
    try:
        return client.get_signing_key_from_jwt(token).key
    except jwt.PyJWKClientConnectionError as exc:
        raise KeysUnavailable(str(exc)) from exc
    except ValueError as exc:  # the endpoint answered, but not with a JWKS (a proxy's error page)
        raise KeysUnavailable(f"the JWKS endpoint answered no JSON key set: {exc}") from exc


def verify(token: str, settings: AuthSettings | None = None) -> Principal:
    """The principal of a valid token; AuthError otherwise (KeysUnavailable: JWKS not answering)."""
    return _verified(token, settings or configured())[0]


def _verified(token: str, settings: AuthSettings) -> tuple[Principal, float]:
    """The principal of a valid token and its expiry (epoch seconds)."""
    try:
        claims = jwt.decode(
            token,
            _verification_key(token, settings),
            algorithms=settings.algorithms,
            issuer=settings.issuer,
            audience=settings.audience,
            options={
                "require": ["exp", "iat", "iss", settings.user_claim],
                "verify_aud": settings.audience is not None,
            },
        )
    except (jwt.PyJWTError, FileNotFoundError) as exc:
        raise AuthError(str(exc), detail_zh=_chinese(exc)) from exc
    try:
        principal = Principal(
            user_id=claims[settings.user_claim],
            role=claims.get("role"),
            unit=claims.get("unit"),
            jurisdictions=claims.get("jurisdictions") or [],
            name=claims.get("name"),
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
    # PyJWT has checked that `exp` is a number in the future.
    return principal, float(claims["exp"])


class TokenCache:
    """The principals of verified tokens, each until its token expires, at most `max_tokens` of
    them (the least recently used go first). Only verified tokens enter, so a caller sending bad
    tokens cannot fill it; an expired token is never answered from it."""

    def __init__(self, max_tokens: int = 4096, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._entries: Recent[str, tuple[Principal, float]] = Recent(max_tokens)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str) -> Principal | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        principal, until = entry
        if self.clock() >= until:
            self._entries.pop(token)
            return None
        return principal

    def put(self, token: str, principal: Principal, until: float) -> None:
        self._entries.put(token, (principal, until))


class Verifier:
    """Bearer tokens checked against one set of settings, each verified once (an EdDSA check
    costs about 200 us) and then remembered until it expires, or until `jwks_cache_s` has passed:
    no longer than the key set itself is trusted, so a key withdrawn from the JWKS stops
    admitting its tokens as soon as a fresh key set would."""

    def __init__(self, settings: AuthSettings, cache: TokenCache | None = None) -> None:
        self.settings = settings
        self.cache = TokenCache() if cache is None else cache  # an empty cache is falsy

    async def verify(self, token: str) -> Principal:
        """The principal of a valid token; AuthError otherwise (KeysUnavailable: JWKS not
        answering). A JWKS fetch (a blocking HTTP call) runs in a worker thread; the key file
        path stays on the loop (it costs no I/O once cached)."""
        known = self.cache.get(token)
        if known is not None:
            return known
        if self.settings.jwks_url is None:
            principal, expires = _verified(token, self.settings)
        else:
            principal, expires = await run_in_threadpool(_verified, token, self.settings)
        self.cache.put(token, principal, min(expires, self.cache.clock() + self.settings.jwks_cache_s))
        return principal


_verifier: Verifier | None = None


def verifier() -> Verifier:
    """This process's verifier, for the configured settings (a new one, with an empty cache,
    when a test has cleared `shared.settings.auth` to change them)."""
    global _verifier
    current = configured()
    if _verifier is None or _verifier.settings is not current:
        _verifier = Verifier(current)
    return _verifier
