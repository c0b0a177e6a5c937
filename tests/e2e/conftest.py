"""End-to-end fixtures: the four services as separate processes on the real broker and database.

Services already running (`make up`) are used as they are; otherwise this package starts them and
stops them when its tests are done. Every HTTP response is recorded so the confidentiality test can
look for reporter identities in everything a non-intake caller was shown.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from shared import settings
from shared.auth import AuthSettings, Principal, ensure_keys, mint
from shared.envelope import JURISDICTIONS
from zhengming.local import LocalKafka, LocalPostgres
from zhengming.services import all_services


@dataclass
class Recorded:
    service: str
    role: str
    jurisdictions: list[str]
    method: str
    path: str
    status: int
    body: str


@dataclass
class Transcript:
    """Every response of the run, for the confidentiality checks."""

    responses: list[Recorded] = field(default_factory=list)
    reporter_names: set[str] = field(default_factory=set)


TRANSCRIPT = Transcript()


@pytest.fixture(scope="package", autouse=True)
def services() -> Iterator[None]:
    pg = LocalPostgres(settings.local(), settings.postgres())
    kafka = LocalKafka(settings.local(), settings.kafka())
    if not (pg.answering() and kafka.answering()):
        pytest.fail("Kafka and PostgreSQL must run: use `make test` (or `zhengming up`)")
    ensure_keys(AuthSettings())
    started = []
    procs = all_services(settings.local(), settings.services())
    for svc in procs:
        if svc.start():
            started.append(svc)
    for svc in procs:
        svc.wait_ready(timeout_s=90)
    yield
    for svc in started:
        svc.stop()


class Api:
    """An HTTP client of one user: role, unit and granted jurisdictions in a signed token."""

    def __init__(self, role: str, jurisdictions: list[str], user: str | None = None) -> None:
        self.role = role
        self.jurisdictions = jurisdictions
        principal = Principal(
            user_id=user or f"{role}-{jurisdictions[0]}",
            role=role,
            unit=f"{JURISDICTIONS[jurisdictions[0]]}纪委监委",
            jurisdictions=jurisdictions,
        )
        self.headers = {"Authorization": f"Bearer {mint(principal)}"}
        self.client = httpx.AsyncClient(timeout=30)

    async def call(self, method: str, service: str, path: str, **kwargs: Any) -> httpx.Response:
        url = settings.services().url(service) + path
        response = await self.client.request(method, url, headers=self.headers, **kwargs)
        TRANSCRIPT.responses.append(
            Recorded(
                service, self.role, self.jurisdictions, method, path, response.status_code, response.text
            )
        )
        return response

    async def get(self, service: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.call("GET", service, path, **kwargs)

    async def post(self, service: str, path: str, body: dict[str, Any]) -> httpx.Response:
        return await self.call("POST", service, path, json=body)

    async def ok(self, method: str, service: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """A call that must succeed; returns the JSON body."""
        response = (
            await self.call(method, service, path, json=body)
            if body is not None
            else await self.call(method, service, path)
        )
        assert response.status_code < 300, f"{method} {service}{path}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    async def close(self) -> None:
        await self.client.aclose()


@pytest.fixture
async def users() -> AsyncIterator[Callable[[str, str], Api]]:
    made: list[Api] = []

    def make(role: str, jurisdiction: str) -> Api:
        api = Api(role, [jurisdiction])
        made.append(api)
        return api

    yield make
    for api in made:
        await api.close()


async def eventually(check: Callable[[], Awaitable[Any]], what: str, timeout_s: float = 60) -> Any:
    """Poll until `check` returns something truthy (events cross Kafka asynchronously)."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; last: {last!r}")
