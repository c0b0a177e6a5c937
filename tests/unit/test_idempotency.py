"""Idempotency keys without I/O: parsing, fingerprints, and the client's retries with one key."""

from __future__ import annotations

import httpx
import pytest

from shared.idempotency import fingerprint, parse_key
from shared.settings import ServiceSettings
from zhengming.client import KEEPALIVE_EXPIRY_S, Client, Users


@pytest.mark.parametrize(
    ("raw", "key"),
    [('"8e03978e-40d5-43e8-bc93-6894a57f9324"', "8e03978e-40d5-43e8-bc93-6894a57f9324"), ("bare", "bare")],
)
def test_keys_as_sf_strings_or_bare(raw: str, key: str) -> None:
    assert parse_key(raw) == key


@pytest.mark.parametrize("raw", ['""', '"', '"open', 'closed"', "x" * 256, '"a\\"b"', "   ", "tab\tkey"])
def test_malformed_keys(raw: str) -> None:
    assert parse_key(raw) is None


def test_fingerprint_is_the_content_of_the_request() -> None:
    a = fingerprint("POST", "/reports", "", b'{"a": 1, "b": [1, 2]}')
    assert a == fingerprint("post", "/reports", "", b'{"b":[1,2],"a":1}')
    assert a != fingerprint("POST", "/reports", "", b'{"a": 2, "b": [1, 2]}')
    assert a != fingerprint("POST", "/reports/x", "", b'{"a": 1, "b": [1, 2]}')
    assert a != fingerprint("POST", "/reports", "x=1", b'{"a": 1, "b": [1, 2]}')
    assert fingerprint("POST", "/p", "", b"not json") != fingerprint("POST", "/p", "", b"not json!")


def test_the_client_drops_idle_connections_before_the_server_does() -> None:
    assert ServiceSettings().keep_alive_s > KEEPALIVE_EXPIRY_S


def client_with(answers: list[httpx.Response | Exception], seen: list[httpx.Request]) -> Client:
    client = Client(ServiceSettings(), Users(), retry_initial_s=0.001, retry_max_s=0.002, retry_deadline_s=5)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    client.http = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    return client


@pytest.fixture(autouse=True)
def no_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Users, "token", lambda self, role, jurisdiction: f"token-{role}")


async def test_connection_errors_and_5xx_are_retried_with_the_same_key() -> None:
    seen: list[httpx.Request] = []
    answers: list[httpx.Response | Exception] = [
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ConnectError("refused"),
        httpx.Response(503),
        httpx.Response(201, json={"ok": True}),
    ]
    client = client_with(answers, seen)
    response = await client.request(
        "POST", "intake", "/reports", role="r", jurisdiction="331122", body={"a": 1}
    )
    assert response.status_code == 201
    keys = {r.headers["idempotency-key"] for r in seen}
    assert len(seen) == 4 and len(keys) == 1 and keys.pop().startswith('"')
    assert client.retries == 3
    # The next command has a key of its own.
    answers.append(httpx.Response(201))
    await client.request("POST", "intake", "/reports", role="r", jurisdiction="331122", body={"a": 1})
    assert seen[-1].headers["idempotency-key"] != seen[0].headers["idempotency-key"]


async def test_answers_are_not_retried_and_gets_carry_no_key() -> None:
    seen: list[httpx.Request] = []
    client = client_with([httpx.Response(422, json={"code": "x"}), httpx.Response(200)], seen)
    assert (await client.request("POST", "intake", "/p", role="r", jurisdiction="331122")).status_code == 422
    assert (await client.request("GET", "intake", "/p", role="r", jurisdiction="331122")).status_code == 200
    assert len(seen) == 2 and "idempotency-key" not in seen[1].headers


async def test_retries_stop_at_the_deadline() -> None:
    seen: list[httpx.Request] = []
    client = client_with([httpx.ConnectError("refused")] * 1000, seen)
    client.retry_deadline_s = 0.05
    with pytest.raises(httpx.ConnectError):
        await client.request("POST", "intake", "/p", role="r", jurisdiction="331122")
    assert len(seen) > 1
