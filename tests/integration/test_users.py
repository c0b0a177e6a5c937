"""Named users on the real PostgreSQL: the directory's operations, login issuing the bearer token a
service accepts (and whose user is the recorded event's actor), one 401 for every failed login, and
verification against a JWKS served over HTTP on 127.0.0.1 by a real server."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared import settings
from shared.auth import AuthSettings, Principal, ensure_keys, jwks, mint
from shared.directory import Directory, Officer
from shared.errors import Conflict, NotFound
from tests.integration.conftest import wait_for
from tests.integration.service_apps import ServiceApp, bearer, service_apps

COUNTY = "331122"
PASSWORD = "shan-shui-lishui-2023"


def officer(user_id: str, **changes: Any) -> Officer:
    fields: dict[str, Any] = {
        "user_id": user_id,
        "name": "王芳",
        "roles": ["letters_office"],
        "unit": "缙云县纪委监委",
        "office": "信访室",
        "cadre_authority": "county",
        "jurisdictions": [COUNTY],
    }
    return Officer.model_validate(fields | changes)


@pytest.fixture(scope="module")
def directory_schema() -> Iterator[str]:
    """A directory of the module's own: the services built meanwhile log in against it."""
    schema = f"t_dir_{uuid.uuid4().hex[:10]}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ZM_DIRECTORY_SCHEMA_NAME", schema)
        yield schema


@pytest.fixture(scope="module")
async def conn(directory_schema: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(settings.postgres().dsn())
    try:
        await Directory(directory_schema).migrate(connection)
        yield connection
    finally:
        await connection.execute(f"DROP SCHEMA IF EXISTS {directory_schema} CASCADE")
        await connection.close()


@pytest.fixture(scope="module")
def directory(directory_schema: str) -> Directory:
    return Directory(directory_schema)


@pytest.fixture(scope="module")
async def apps(conn: asyncpg.Connection) -> AsyncIterator[dict[str, ServiceApp]]:
    ensure_keys(AuthSettings())
    async with service_apps("intake", "review") as running:
        yield running


def unique(prefix: str) -> str:
    return f"{prefix}.{uuid.uuid4().hex[:8]}"


# --- the directory --------------------------------------------------------------------------------


async def test_users_are_added_listed_granted_and_disabled(
    conn: asyncpg.Connection, directory: Directory
) -> None:
    user_id = unique("wang")
    added = await directory.add(conn, officer(user_id), PASSWORD)
    assert added.enabled and added.roles == ["letters_office"]
    table = f"{directory.schema}.users"
    stored = await conn.fetchval(f"SELECT password_hash FROM {table} WHERE user_id = $1", user_id)
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    with pytest.raises(Conflict) as taken:
        await directory.add(conn, officer(user_id, name="李明"), PASSWORD)
    assert taken.value.code == "user_exists"

    other = unique("qingtian")
    await directory.add(conn, officer(other, jurisdictions=["331121"], unit="青田县纪委监委"), PASSWORD)
    in_county = {o.user_id for o in await directory.list(conn, jurisdiction=COUNTY)}
    assert user_id in in_county and other not in in_county

    granted = await directory.grant(
        conn,
        user_id,
        roles=["case_trial", "letters_office"],
        jurisdictions=["331100"],
        cadre_authority="city",
    )
    assert granted.roles == ["letters_office", "case_trial"]
    assert granted.jurisdictions == [COUNTY, "331100"] and granted.cadre_authority == "city"
    assert await directory.get(conn, user_id) == granted

    disabled = await directory.set_enabled(conn, user_id, False)
    assert not disabled.enabled
    assert user_id not in {o.user_id for o in await directory.list(conn, enabled_only=True)}
    assert user_id in {o.user_id for o in await directory.list(conn)}
    assert await directory.authenticate(conn, user_id, PASSWORD) is None
    assert (await directory.set_enabled(conn, user_id, True)).enabled
    assert await directory.authenticate(conn, user_id, PASSWORD) == granted

    for missing in (
        directory.get(conn, "nobody"),
        directory.set_enabled(conn, "nobody", False),
        directory.grant(conn, "nobody", roles=["head"]),
    ):
        with pytest.raises(NotFound):
            await missing


async def test_a_weak_hash_is_replaced_at_the_next_good_login(
    conn: asyncpg.Connection, directory: Directory
) -> None:
    from argon2 import PasswordHasher

    user_id = unique("old")
    await directory.add(conn, officer(user_id), PASSWORD)
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    table = f"{directory.schema}.users"
    await conn.execute(f"UPDATE {table} SET password_hash = $2 WHERE user_id = $1", user_id, weak)
    assert await directory.authenticate(conn, user_id, PASSWORD) is not None
    renewed = await conn.fetchval(f"SELECT password_hash FROM {table} WHERE user_id = $1", user_id)
    assert renewed != weak and renewed.startswith("$argon2id$v=19$m=65536")


# --- login -----------------------------------------------------------------------------------------


def report_body() -> dict[str, Any]:
    return {
        "jurisdiction": COUNTY,
        "channel": "letter",
        "received_on": "2023-01-16",
        "real_name": False,
        "subjects": [{"kind": "person", "name": "李某", "post": "镇长", "unit": "缙云县某镇人民政府"}],
        "allegations": [{"summary": "违规收受礼金"}],
        "summary": "反映李某问题",
    }


async def login(client: httpx.AsyncClient, user_id: str, password: str, **extra: Any) -> httpx.Response:
    return await client.post("/auth/login", json={"user_id": user_id, "password": password, **extra})


async def test_a_logged_in_user_is_the_actor_of_what_they_record(
    apps: dict[str, ServiceApp], conn: asyncpg.Connection, directory: Directory
) -> None:
    user_id = unique("zhou")
    await directory.add(conn, officer(user_id, name="周敏"), PASSWORD)
    intake = apps["intake"]
    answer = await login(intake.client, user_id, PASSWORD)
    assert answer.status_code == 200, answer.text
    issued = answer.json()
    assert issued["token_type"] == "Bearer" and issued["expires_in"] == 12 * 3600
    assert issued["name"] == "周敏" and issued["role"] == "letters_office"
    claims = jwt.decode(issued["access_token"], options={"verify_signature": False})
    assert claims["sub"] == user_id and claims["name"] == "周敏"
    assert claims["unit"] == "缙云县纪委监委" and claims["jurisdictions"] == [COUNTY]

    headers = {"Authorization": f"Bearer {issued['access_token']}"}
    recorded = await intake.client.post("/reports", json=report_body(), headers=headers)
    assert recorded.status_code == 201, recorded.text
    actor = await intake.runtime.pool.fetchval(
        "SELECT actor FROM events WHERE case_id = $1 ORDER BY global_position LIMIT 1",
        recorded.json()["report_id"],
    )
    assert actor == {"user_id": user_id, "name": "周敏", "role": "letters_office", "unit": "缙云县纪委监委"}
    assert await intake.runtime.store.verify() is None  # the named actor is in the verified hash

    # The token of one service's login is every service's: the directory and the key are shared.
    listing = await apps["review"].client.get("/verifications", headers=headers)
    assert listing.status_code == 403 and listing.json()["code"] == "role_forbidden"


async def test_a_user_of_several_roles_logs_in_as_one_of_them(
    apps: dict[str, ServiceApp], conn: asyncpg.Connection, directory: Directory
) -> None:
    user_id = unique("chen")
    await directory.add(conn, officer(user_id, roles=["case_trial", "case_management"]), PASSWORD)
    client = apps["review"].client
    assert (await login(client, user_id, PASSWORD)).json()["role"] == "case_trial"
    second = await login(client, user_id, PASSWORD, role="case_management")
    assert second.json()["role"] == "case_management"
    assert second.json()["roles"] == ["case_trial", "case_management"]
    token = second.json()["access_token"]
    listing = await client.get("/verifications", headers={"Authorization": f"Bearer {token}"})
    assert listing.status_code == 200, listing.text
    refused = await login(client, user_id, PASSWORD, role="head")
    assert refused.status_code == 403 and refused.json()["code"] == "role_forbidden"


async def test_a_failed_login_is_one_401_whatever_failed(
    apps: dict[str, ServiceApp], conn: asyncpg.Connection, directory: Directory
) -> None:
    user_id, disabled = unique("li"), unique("zhao")
    await directory.add(conn, officer(user_id), PASSWORD)
    await directory.add(conn, officer(disabled), PASSWORD)
    await directory.set_enabled(conn, disabled, False)
    client = apps["intake"].client
    answers = [
        await login(client, user_id, PASSWORD + "x"),
        await login(client, disabled, PASSWORD),
        await login(client, unique("nobody"), PASSWORD),
    ]
    bodies = []
    for answer in answers:
        assert answer.status_code == 401, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.headers["www-authenticate"].startswith("Bearer")
        body = answer.json()
        assert body["code"] == "login_failed" and body["detail_zh"] and "access_token" not in body
        bodies.append(body)
    assert bodies[0] == bodies[1] == bodies[2]  # no hint which
    # Bad input is a 422 naming the field, as everywhere (before any hashing).
    empty = await client.post("/auth/login", json={"user_id": user_id, "password": ""})
    assert empty.status_code == 422 and empty.json()["field"] == "body.password"
    nul = await client.post("/auth/login", json={"user_id": "\x00li", "password": PASSWORD})
    assert nul.status_code == 422 and nul.json()["field"] == "body.user_id"


async def test_repeated_failed_logins_lock_the_user_for_a_while(
    apps: dict[str, ServiceApp], conn: asyncpg.Connection, directory: Directory
) -> None:
    """Five wrong passwords in a row lock the user: the right one is refused too (the same 401, so
    nobody learns the user exists), until the lock runs out or the user is enabled again."""
    user_id, other = unique("qian"), unique("sun")
    await directory.add(conn, officer(user_id), PASSWORD)
    await directory.add(conn, officer(other), PASSWORD)
    client = apps["intake"].client
    for _ in range(4):
        assert (await login(client, user_id, "wrong-password-1")).status_code == 401
    assert (await login(client, user_id, PASSWORD)).status_code == 200  # four failures: no lock
    for _ in range(5):
        assert (await login(client, user_id, "wrong-password-2")).status_code == 401
    locked = await login(client, user_id, PASSWORD)
    assert locked.status_code == 401 and locked.json()["code"] == "login_failed"
    assert (await login(client, other, PASSWORD)).status_code == 200  # one user's lock only
    # The lock runs out...
    await conn.execute(
        f"UPDATE {directory.schema}.users SET locked_until = now() - interval '1 second' WHERE user_id = $1",
        user_id,
    )
    assert (await login(client, user_id, PASSWORD)).status_code == 200
    # ... or an administrator enables the user again.
    for _ in range(5):
        await login(client, user_id, "wrong-password-3")
    assert (await login(client, user_id, PASSWORD)).status_code == 401
    await directory.set_enabled(conn, user_id, True)
    assert (await login(client, user_id, PASSWORD)).status_code == 200


async def test_a_script_token_still_works(apps: dict[str, ServiceApp]) -> None:
    answer = await apps["intake"].client.post(
        "/reports", json=report_body(), headers=bearer("letters_office", COUNTY, user="script")
    )
    assert answer.status_code == 201, answer.text
    actor = await apps["intake"].runtime.pool.fetchval(
        "SELECT actor FROM events WHERE case_id = $1", answer.json()["report_id"]
    )
    assert actor == {"user_id": "script", "role": "letters_office", "unit": "缙云县纪委监委"}  # as before


# --- JWKS ------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def issuer_keys(tmp_path: Path) -> AuthSettings:
    """The key pair of another issuer (an OIDC provider, or another deployment's service)."""
    keys = AuthSettings(private_key_file=tmp_path / "idp.pem", public_key_file=tmp_path / "idp.pub.pem")
    ensure_keys(keys)
    return keys


async def test_a_service_verifies_against_a_jwks_served_over_http(
    conn: asyncpg.Connection, directory: Directory, issuer_keys: AuthSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The issuer: a service app holding its own key, under uvicorn on loopback.
    monkeypatch.setenv("ZM_AUTH_PRIVATE_KEY_FILE", str(issuer_keys.private_key))
    monkeypatch.setenv("ZM_AUTH_PUBLIC_KEY_FILE", str(issuer_keys.public_key))
    settings.auth.cache_clear()
    async with service_apps("intake") as issuing:
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(
                issuing["intake"].app, host="127.0.0.1", port=port, log_config=None, lifespan="off"
            )
        )
        serving = asyncio.create_task(server.serve())
        try:

            async def started() -> bool:
                return bool(server.started)

            await wait_for(started, "the issuer's server", timeout_s=30)
            base = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(base_url=base) as http:
                published = (await http.get("/.well-known/jwks.json")).json()
                assert published == jwks(issuer_keys)
                user_id = unique("sun")
                await directory.add(conn, officer(user_id, roles=["case_trial"], name="孙丽"), PASSWORD)
                issued = (await login(http, user_id, PASSWORD)).json()["access_token"]

            # The verifier knows the issuer's key only from the JWKS; its own key file is the
            # local default (the key `bearer` mints with).
            monkeypatch.delenv("ZM_AUTH_PRIVATE_KEY_FILE")
            monkeypatch.delenv("ZM_AUTH_PUBLIC_KEY_FILE")
            monkeypatch.setenv("ZM_AUTH_JWKS_URL", f"{base}/.well-known/jwks.json")
            settings.auth.cache_clear()
            async with service_apps("review") as verifying:
                review = verifying["review"].client
                accepted = await review.get("/verifications", headers={"Authorization": f"Bearer {issued}"})
                assert accepted.status_code == 200, accepted.text

                local = await review.get("/verifications", headers=bearer("case_trial", COUNTY))
                assert local.status_code == 401 and local.json()["code"] == "unauthorized"

                # Another key claiming the issuer's kid does not pass either.
                kid = published["keys"][0]["kid"]
                now = datetime.now(UTC)
                claims = {
                    "iss": "zhengming",
                    "sub": user_id,
                    "role": "case_trial",
                    "unit": "缙云县纪委监委",
                    "jurisdictions": [COUNTY],
                    "iat": now,
                    "exp": now + timedelta(minutes=5),
                }
                other = Ed25519PrivateKey.generate()
                forged = jwt.encode(claims, other, algorithm="EdDSA", headers={"kid": kid})
                refused = await review.get("/verifications", headers={"Authorization": f"Bearer {forged}"})
                assert refused.status_code == 401 and refused.json()["code"] == "unauthorized"
        finally:
            server.should_exit = True
            await serving


async def test_an_unreachable_jwks_answers_503(
    monkeypatch: pytest.MonkeyPatch, conn: asyncpg.Connection
) -> None:
    monkeypatch.setenv("ZM_AUTH_JWKS_URL", f"http://127.0.0.1:{free_port()}/.well-known/jwks.json")
    settings.auth.cache_clear()
    token = mint(Principal(user_id="u", role="case_trial", unit="缙云县纪委监委", jurisdictions=[COUNTY]))
    async with service_apps("review") as verifying:
        client = verifying["review"].client
        answer = await client.get("/verifications", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 503 and answer.headers["retry-after"]
    assert answer.json()["code"] == "service_unavailable"


async def test_a_service_that_does_not_issue_serves_no_login_nor_keys(
    monkeypatch: pytest.MonkeyPatch, conn: asyncpg.Connection
) -> None:
    monkeypatch.setenv("ZM_AUTH_ISSUE_TOKENS", "false")
    settings.auth.cache_clear()
    async with service_apps("review") as running:
        client = running["review"].client
        for answer in (
            await login(client, "head-331122", PASSWORD),
            await client.get("/.well-known/jwks.json"),
        ):
            assert answer.status_code == 404 and answer.json()["code"] == "route_not_found"


async def test_without_a_signing_key_login_answers_503_and_makes_no_key(
    monkeypatch: pytest.MonkeyPatch, conn: asyncpg.Connection, directory: Directory, tmp_path: Path
) -> None:
    # A deployment given only the public key (a county) must not mint with a key of its own.
    ensure_keys(AuthSettings())
    monkeypatch.setenv("ZM_AUTH_PRIVATE_KEY_FILE", str(tmp_path / "absent.pem"))
    settings.auth.cache_clear()
    user_id = unique("wu")
    await directory.add(conn, officer(user_id), PASSWORD)
    async with service_apps("intake") as running:
        answer = await login(running["intake"].client, user_id, PASSWORD)
    assert answer.status_code == 503 and answer.json()["code"] == "service_unavailable"
    assert not (tmp_path / "absent.pem").exists()
