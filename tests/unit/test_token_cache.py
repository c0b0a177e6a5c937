"""Verified tokens are remembered until they expire: an expired token is refused even when it was
remembered, each token answers its own principal, the memory is bounded, a remembered token is
checked again once the key set it was checked with may have changed, and a settings change (a
test's) brings a fresh verifier."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest

from shared import auth, settings
from shared.auth import AuthError, AuthSettings, Principal, TokenCache, Verifier, ensure_keys, mint, verifier

CLERK = Principal(
    user_id="u-clerk", role="letters_office", unit="缙云县纪委监委信访室", jurisdictions=["331122"]
)
HEAD = Principal(user_id="u-head", role="head", unit="缙云县纪委监委", jurisdictions=["331122", "331121"])


@pytest.fixture
def keys(tmp_path: Path) -> AuthSettings:
    made = AuthSettings(private_key_file=tmp_path / "token.pem", public_key_file=tmp_path / "token.pub.pem")
    ensure_keys(made)
    return made


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tokens whose signature is checked (a remembered one is not)."""
    seen: list[str] = []
    original = auth._verified

    def counted(token: str, keys: AuthSettings) -> tuple[Principal, float]:
        seen.append(token)
        return original(token, keys)

    monkeypatch.setattr(auth, "_verified", counted)
    return seen


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def test_a_token_is_checked_once_then_remembered(keys: AuthSettings, checks: list[str]) -> None:
    token = mint(CLERK, keys)
    verifying = Verifier(keys)
    assert await verifying.verify(token) == CLERK
    assert await verifying.verify(token) == CLERK
    assert checks == [token]


async def test_a_remembered_token_is_refused_once_it_has_expired(
    keys: AuthSettings, checks: list[str]
) -> None:
    token = mint(CLERK, keys, ttl=timedelta(seconds=2))
    verifying = Verifier(keys)
    assert await verifying.verify(token) == CLERK
    assert len(verifying.cache) == 1
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    await asyncio.sleep(max(0.0, expires - time.time()) + 0.05)  # until it has expired; nothing is timed
    with pytest.raises(AuthError) as refused:
        await verifying.verify(token)
    assert refused.value.detail_zh == "令牌已过期"
    assert len(verifying.cache) == 0 and checks == [token, token]


async def test_the_cache_never_answers_past_the_expiry_it_was_given() -> None:
    clock = Clock()
    cache = TokenCache(clock=clock)
    cache.put("t", CLERK, until=clock.now + 10)
    clock.now += 9.9
    assert cache.get("t") == CLERK
    clock.now += 0.1
    assert cache.get("t") is None and len(cache) == 0


async def test_each_token_answers_its_own_principal(keys: AuthSettings, checks: list[str]) -> None:
    verifying = Verifier(keys)
    tokens = {mint(CLERK, keys): CLERK, mint(HEAD, keys): HEAD}
    for _ in range(3):
        for token, principal in tokens.items():
            assert await verifying.verify(token) == principal
    assert sorted(checks) == sorted(tokens)


async def test_a_bad_token_is_refused_every_time_and_never_remembered(
    keys: AuthSettings, tmp_path: Path, checks: list[str]
) -> None:
    other = AuthSettings(private_key_file=tmp_path / "other.pem", public_key_file=tmp_path / "other.pub.pem")
    forged = mint(CLERK, other)
    verifying = Verifier(keys)
    for _ in range(2):
        with pytest.raises(AuthError) as refused:
            await verifying.verify(forged)
        assert refused.value.detail_zh == "令牌签名无效"
    assert len(verifying.cache) == 0 and checks == [forged, forged]


def test_the_cache_is_bounded_and_keeps_the_recently_used() -> None:
    cache = TokenCache(max_tokens=3)
    until = time.time() + 3600
    for n in range(3):
        cache.put(f"t{n}", CLERK, until)
    assert cache.get("t0") == CLERK  # t1 is now the least recently used
    cache.put("t3", HEAD, until)
    cache.put("t4", HEAD, until)
    assert len(cache) == 3
    assert cache.get("t1") is None and cache.get("t2") is None
    assert cache.get("t0") == CLERK and cache.get("t3") == HEAD and cache.get("t4") == HEAD


async def test_a_token_is_checked_again_when_the_key_set_may_have_changed(
    keys: AuthSettings, checks: list[str]
) -> None:
    # A key withdrawn from a JWKS stops admitting its tokens when the key set is next fetched
    # (`jwks_cache_s`): a remembered token is not admitted for longer than that.
    short = keys.model_copy(update={"jwks_cache_s": 60.0})
    clock = Clock()
    verifying = Verifier(short, TokenCache(clock=clock))
    token = mint(CLERK, short)
    await verifying.verify(token)
    clock.now += 59
    await verifying.verify(token)
    assert checks == [token]
    clock.now += 2
    await verifying.verify(token)
    assert checks == [token, token]


def test_the_process_verifier_follows_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keys: AuthSettings
) -> None:
    first = verifier()
    assert verifier() is first and first.settings is settings.auth()
    monkeypatch.setenv("ZM_AUTH_PUBLIC_KEY_FILE", str(keys.public_key))
    settings.auth.cache_clear()
    changed: Any = verifier()
    assert changed is not first and changed.settings.public_key == keys.public_key
