"""Idempotency keys against the real PostgreSQL: a keyed POST is applied once, whatever the retries."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.intake.api import build_api as intake_api
from services.intake.main import definition as intake
from services.review.api import build_api as review_api
from services.review.main import definition as review
from shared import idempotency
from shared.auth import Principal, mint
from shared.runtime import Runtime
from tests.integration.conftest import fresh_runtime

J = "331122"


@pytest.fixture
async def runtime() -> AsyncIterator[Runtime]:
    async with fresh_runtime(intake) as rt:
        yield rt


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = intake_api(runtime)
    idempotency.install(app, runtime.pool)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://intake") as c:
        yield c


def auth(role: str = "letters_office", user: str = "u-office") -> dict[str, str]:
    principal = Principal(user_id=user, role=role, unit="缙云县纪委监委", jurisdictions=[J])
    return {"Authorization": f"Bearer {mint(principal)}"}


OFFICE = auth()


def keyed(key: str, headers: dict[str, str] = OFFICE) -> dict[str, str]:
    return {**headers, "Idempotency-Key": f'"{key}"'}


def report(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "jurisdiction": J,
        "channel": "letter",
        "received_on": "2023-01-16",
        "real_name": False,
        "subjects": [{"kind": "person", "name": "李某", "post": "镇长", "unit": "缙云县某镇人民政府"}],
        "allegations": [{"summary": "违规收受礼金"}],
        "summary": "反映李某问题",
    }
    body.update(changes)
    return body


async def events(runtime: Runtime) -> int:
    count: int = await runtime.pool.fetchval("SELECT count(*) FROM events")
    return count


async def test_same_key_same_body_answers_the_first_response(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    key = str(uuid.uuid4())
    first = await client.post("/reports", json=report(), headers=keyed(key))
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    # Another spacing and key order is the same body.
    again = await client.post(
        "/reports",
        content=httpx.Request("POST", "/", json=dict(reversed(report().items()))).content,
        headers={**keyed(key), "Content-Type": "application/json"},
    )
    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert await events(runtime) == 1
    # A new key is a new command.
    other = await client.post("/reports", json=report(), headers=keyed(str(uuid.uuid4())))
    assert other.status_code == 201 and other.json()["report_id"] != first.json()["report_id"]
    assert await events(runtime) == 2


async def test_same_key_other_body_is_refused(runtime: Runtime, client: httpx.AsyncClient) -> None:
    key = str(uuid.uuid4())
    assert (await client.post("/reports", json=report(), headers=keyed(key))).status_code == 201
    r = await client.post("/reports", json=report(summary="另一件"), headers=keyed(key))
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert (r.json()["code"], r.json()["field"]) == ("idempotency_key_reused", "Idempotency-Key")
    # Same body on another path is another request too.
    r = await client.post("/reports/331122-2023-000001/log", json=report(), headers=keyed(key))
    assert r.json()["code"] == "idempotency_key_reused"
    assert await events(runtime) == 1


async def test_keys_belong_to_their_caller(runtime: Runtime, client: httpx.AsyncClient) -> None:
    key = str(uuid.uuid4())
    a = await client.post("/reports", json=report(), headers=keyed(key))
    b = await client.post("/reports", json=report(), headers=keyed(key, auth(user="u-other")))
    assert (a.status_code, b.status_code) == (201, 201)
    assert "idempotent-replayed" not in b.headers
    assert await events(runtime) == 2


@pytest.mark.parametrize("value", [b'""', b'"unterminated', "中文键".encode(), b"x" * 256, b'"a\\"b"'])
async def test_malformed_key_is_a_bad_request(
    runtime: Runtime, client: httpx.AsyncClient, value: bytes
) -> None:
    headers = [(k.encode(), v.encode()) for k, v in OFFICE.items()] + [(b"Idempotency-Key", value)]
    r = await client.post("/reports", json=report(), headers=headers)
    assert r.status_code == 400, r.text
    assert (r.json()["code"], r.json()["field"]) == ("idempotency_key_invalid", "Idempotency-Key")
    assert await events(runtime) == 0


async def test_bare_key_is_accepted(runtime: Runtime, client: httpx.AsyncClient) -> None:
    headers = {**OFFICE, "Idempotency-Key": "bare-token-1"}
    first = await client.post("/reports", json=report(), headers=headers)
    again = await client.post("/reports", json=report(), headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["idempotent-replayed"] == "true"
    assert await events(runtime) == 1


async def test_concurrent_requests_with_one_key_record_one_event(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    key = str(uuid.uuid4())
    answers = await asyncio.gather(
        *(client.post("/reports", json=report(), headers=keyed(key)) for _ in range(8))
    )
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["report_id"] for a in answers}) == 1
    assert sum(a.headers.get("idempotent-replayed") == "true" for a in answers) == 7
    assert await events(runtime) == 1
    assert await runtime.pool.fetchval("SELECT count(*) FROM outbox") == 1


async def test_a_refused_command_does_not_spend_its_key(runtime: Runtime, client: httpx.AsyncClient) -> None:
    key = str(uuid.uuid4())
    refused = await client.post("/reports", json=report(real_name=True), headers=keyed(key))  # no reporter
    assert refused.status_code == 422, refused.text
    assert await runtime.pool.fetchval("SELECT count(*) FROM idempotency_keys") == 0
    fixed = await client.post("/reports", json=report(), headers=keyed(key))
    assert fixed.status_code == 201, fixed.text
    assert await events(runtime) == 1


async def test_without_a_key_nothing_changes(runtime: Runtime, client: httpx.AsyncClient) -> None:
    for _ in range(2):
        assert (await client.post("/reports", json=report(), headers=OFFICE)).status_code == 201
    assert await events(runtime) == 2
    assert await runtime.pool.fetchval("SELECT count(*) FROM idempotency_keys") == 0


async def test_unauthenticated_keyed_request_is_refused_as_before(client: httpx.AsyncClient) -> None:
    r = await client.post("/reports", json=report(), headers={"Idempotency-Key": '"k"'})
    assert r.status_code == 401


async def test_old_keys_are_purged(runtime: Runtime, client: httpx.AsyncClient) -> None:
    key = str(uuid.uuid4())
    assert (await client.post("/reports", json=report(), headers=keyed(key))).status_code == 201
    assert await idempotency.purge(runtime.pool, retention_hours=1) == 0
    await runtime.pool.execute("UPDATE idempotency_keys SET created_at = now() - interval '2 hours'")
    assert await idempotency.purge(runtime.pool, retention_hours=1) == 1
    again = await client.post("/reports", json=report(), headers=keyed(key))
    assert again.status_code == 201 and "idempotent-replayed" not in again.headers
    assert await events(runtime) == 2


async def test_openapi_documents_the_header_on_every_post(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    posts = [(path, item["post"]) for path, item in spec["paths"].items() if "post" in item]
    assert posts
    for path, operation in posts:
        names = [p["name"] for p in operation.get("parameters", []) if p["in"] == "header"]
        assert names.count("Idempotency-Key") == 1, path
    assert not any(
        p["name"] == "Idempotency-Key"
        for item in spec["paths"].values()
        for p in item.get("get", {}).get("parameters", [])
    )


async def test_a_command_answer_read_after_it_sees_its_own_events() -> None:
    """Review answers a results report from its read model after the command: inside the keyed
    transaction that read joins it (JoiningPool), so it sees what the command just wrote."""
    async with fresh_runtime(review) as rt:
        app = review_api(rt)
        idempotency.install(app, rt.pool)
        handler = auth("handling_department", user="u-handler")
        body = {"jurisdiction": J, "quarter": "2023Q1", "reported_on": "2023-04-05"}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://review") as c:
            key = str(uuid.uuid4())
            first = await c.post("/results-reports", json=body, headers=keyed(key, handler))
            assert first.status_code == 200, first.text
            again = await c.post("/results-reports", json=body, headers=keyed(key, handler))
            assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
            assert again.json() == first.json()
            # Without the key the command is decided again: already reported.
            unkeyed = await c.post("/results-reports", json=body, headers=handler)
            assert (unkeyed.status_code, unkeyed.json()["code"]) == (409, "already_reported")
        assert await events(rt) == 1
