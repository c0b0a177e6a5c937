"""A typed HTTP client of the four services, with retries under one idempotency key per command.

Used by `make demo`, the bench and the end-to-end tests (through zhengming.driver): all go through
the public interfaces only.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

import httpx

from shared.auth import Principal, mint
from shared.envelope import CITY, JURISDICTIONS
from shared.settings import ServiceSettings

Observer = Callable[[str, str, str, int, str, str], None]
"""(service, role, method, status, path, body) of every response, e.g. for confidentiality checks."""


# Answers worth another try: the server failed or is going away, or the first request with the
# same idempotency key is still running. Everything else is the answer.
RETRY_STATUSES = frozenset({500, 502, 503, 504})
RETRY_CODES = frozenset({"idempotency_key_in_use"})
# Shorter than the services' keep-alive (ZM_SERVICE_KEEP_ALIVE_S, 75 s): the client drops an idle
# connection before the server may close it, so a request is never sent into a closing socket.
KEEPALIVE_EXPIRY_S = 15.0


def new_idempotency_key() -> str:
    """A key for one logical command (IETF httpapi Idempotency-Key), sent on each of its tries."""
    return str(uuid.uuid4())


class ApiError(Exception):
    def __init__(self, method: str, url: str, status: int, body: str) -> None:
        super().__init__(f"{method} {url}: {status} {body[:500]}")
        self.status = status
        self.body = body


@functools.cache
def demo_names() -> dict[str, str]:
    """The names of the directory's demo users (`zhengming users seed`), by user id: the tokens
    minted here name the same officers, so documents and events read as those users' would."""
    from zhengming.users_cli import demo_officers

    return {officer.user_id: officer.name for officer in demo_officers()}


class Users:
    """Signed tokens for the users of each role and jurisdiction (minted with the local key)."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str], str] = {}

    def token(self, role: str, jurisdiction: str) -> str:
        """A user of the commission of `jurisdiction`; the city's users are also granted the nine
        counties (the city level oversees them and approves for city-managed cadres). Several
        jurisdictions joined with '+' make one user of the first granted them all (the city's head
        approving a city-managed cadre of a county, the city's auditor reading them all)."""
        key = (role, jurisdiction)
        if key not in self._tokens:
            codes = jurisdiction.split("+")
            granted = sorted(JURISDICTIONS) if codes == [CITY] else codes
            user_id = f"{role}-{codes[0]}"
            principal = Principal(
                user_id=user_id,
                name=demo_names().get(user_id),
                role=role,
                unit=f"{JURISDICTIONS[codes[0]]}纪委监委",
                jurisdictions=granted,
            )
            self._tokens[key] = mint(principal)
        return self._tokens[key]


class Client:
    """HTTP calls as a given role of a given jurisdiction.

    Every POST carries an `Idempotency-Key`, generated once per command and sent again on each
    retry, so a retry never applies a command twice. Connection errors (also a kept-alive
    connection the server closed meanwhile), timeouts and 5xx answers are retried with
    exponential backoff until `retry_deadline_s` has passed; GETs are retried the same way.
    """

    def __init__(
        self,
        services: ServiceSettings,
        users: Users,
        observer: Observer | None = None,
        *,
        retry_deadline_s: float = 30.0,
        retry_initial_s: float = 0.1,
        retry_max_s: float = 2.0,
    ) -> None:
        self.services = services
        self.users = users
        self.observer = observer
        self.retry_deadline_s = retry_deadline_s
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.http = httpx.AsyncClient(
            timeout=60, limits=httpx.Limits(max_connections=50, keepalive_expiry=KEEPALIVE_EXPIRY_S)
        )
        self.calls = 0
        self.retries = 0

    async def close(self) -> None:
        await self.http.aclose()

    async def request(
        self,
        method: str,
        service: str,
        path: str,
        *,
        role: str,
        jurisdiction: str,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> httpx.Response:
        url = self.services.url(service) + path
        headers = {"Authorization": f"Bearer {self.users.token(role, jurisdiction)}"}
        if method.upper() == "POST":
            headers["Idempotency-Key"] = f'"{idempotency_key or new_idempotency_key()}"'
        deadline = time.monotonic() + self.retry_deadline_s
        delay = self.retry_initial_s
        while True:
            try:
                response = await self.http.request(method, url, json=body, params=params, headers=headers)
            except httpx.TransportError:
                if time.monotonic() + delay > deadline:
                    raise
            else:
                if not _worth_retrying(response) or time.monotonic() + delay > deadline:
                    break
            self.retries += 1
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, self.retry_max_s)
        self.calls += 1
        if self.observer is not None:
            self.observer(service, role, method, response.status_code, path, response.text)
        return response

    async def ok(
        self,
        method: str,
        service: str,
        path: str,
        *,
        role: str,
        jurisdiction: str,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        response = await self.request(
            method,
            service,
            path,
            role=role,
            jurisdiction=jurisdiction,
            body=body,
            params=params,
            idempotency_key=idempotency_key,
        )
        if response.status_code >= 300:
            raise ApiError(method, path, response.status_code, response.text)
        return response.json() if response.content else None

    async def command(
        self, step: str, service: str, path: str, *, role: str, jurisdiction: str, body: dict[str, Any]
    ) -> Any:
        """POST one command of a case (`step` names it; see zhengming.driver)."""
        return await self.ok("POST", service, path, role=role, jurisdiction=jurisdiction, body=body)

    async def eventually(self, what: str, check: Callable[[], Awaitable[Any]], timeout_s: float = 60) -> Any:
        """Poll until `check` returns something truthy: events cross Kafka asynchronously."""
        deadline = time.monotonic() + timeout_s
        last: Any = None
        while time.monotonic() < deadline:
            last = await check()
            if last:
                return last
            await asyncio.sleep(0.1)
        raise TimeoutError(f"timed out after {timeout_s}s waiting for {what}; last: {last!r}")

    async def get_if(self, service: str, path: str, *, role: str, jurisdiction: str) -> Any:
        """GET that answers None on 404 (not there yet)."""
        response = await self.request("GET", service, path, role=role, jurisdiction=jurisdiction)
        if response.status_code == 404:
            return None
        if response.status_code >= 300:
            raise ApiError("GET", path, response.status_code, response.text)
        return response.json()


def _worth_retrying(response: httpx.Response) -> bool:
    if response.status_code in RETRY_STATUSES:
        return True
    if response.status_code == 409:
        try:
            return isinstance(body := response.json(), dict) and body.get("code") in RETRY_CODES
        except ValueError:
            return False
    return False


def iso(day: date) -> str:
    return day.isoformat()
