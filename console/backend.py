"""The console's calls to the four services: every call with the logged-in user's bearer token,
every command with an idempotency key of the form it came from (a form sent twice applies once)."""

from __future__ import annotations

import asyncio
import dataclasses
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class Problem(Exception):
    """A service's refusal (its problem+json), or the console's own when a service does not answer."""

    status: int
    code: str
    detail_zh: str
    field: str | None = None
    errors: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.detail_zh}"

    def field_messages(self) -> dict[str, str]:
        """Chinese messages by form field: `body.reporter.name` → `reporter.name`."""
        out: dict[str, str] = {}
        for e in self.errors:
            name = str(e.get("field", ""))
            for prefix in ("body.", "query.", "path."):
                name = name.removeprefix(prefix)
            out.setdefault(name, str(e.get("message_zh") or e.get("message") or "输入无效"))
        if self.field and self.field not in out:
            out[self.field] = self.detail_zh
        return out


def _problem(response: httpx.Response) -> Problem:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    return Problem(
        status=response.status_code,
        code=str(body.get("code") or f"http_{response.status_code}"),
        detail_zh=str(body.get("detail_zh") or body.get("detail") or f"服务返回 {response.status_code}"),
        field=body.get("field") if isinstance(body.get("field"), str) else None,
        errors=[e for e in body.get("errors") or [] if isinstance(e, dict)],
    )


UNAVAILABLE = "服务暂时无法访问，请稍后再试"

CALLS: ContextVar[list[int] | None] = ContextVar("console_backend_calls", default=None)
"""The calls to the services made for the request being served (the page's cost, in a header)."""
AWAY: ContextVar[set[str] | None] = ContextVar("console_services_away", default=None)
"""The services that did not answer a read of the request being served (the page says so)."""


class Backend:
    """One HTTP client of the services for the whole console process (connections are pooled)."""

    def __init__(self, urls: dict[str, str], timeout_s: float) -> None:
        self.urls = urls
        self.http = httpx.AsyncClient(timeout=timeout_s, limits=httpx.Limits(max_connections=100))

    async def close(self) -> None:
        await self.http.aclose()

    async def login(self, service: str, user_id: str, password: str, role: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"user_id": user_id, "password": password}
        if role:
            body["role"] = role
        return dict(await self._send("POST", service, "/auth/login", None, json=body))

    async def get(self, token: str, service: str, path: str, params: dict[str, Any] | None = None) -> Any:
        return await self._send("GET", service, path, token, params=params)

    async def get_or_none(
        self, token: str, service: str, path: str, params: dict[str, Any] | None = None
    ) -> Any:
        """The resource, or None when the service answers 404 (absent, or not the user's to see),
        or does not answer at all: the page shows what the other services said, and names this one
        as away (the user's session expiring, 401, still ends the page)."""
        try:
            return await self.get(token, service, path, params)
        except Problem as p:
            if p.status in (403, 404):
                return None
            if p.status >= 500 or p.status == 429:
                away = AWAY.get()
                if away is not None:
                    away.add(service)
                return None
            raise

    async def raw(self, token: str, service: str, path: str) -> httpx.Response:
        """A binary resource (a document's DOCX or PDF), streamed back as it came."""
        response = await self._request("GET", service, path, token)
        if response.status_code >= 400:
            raise _problem(response)
        return response

    async def text(self, token: str, service: str, path: str) -> str:
        """A plain-text resource (a document's text preview)."""
        return (await self.raw(token, service, path)).text

    async def post(
        self, token: str, service: str, path: str, body: dict[str, Any], idempotency_key: str
    ) -> Any:
        return await self._send(
            "POST", service, path, token, json=body, headers={"Idempotency-Key": idempotency_key}
        )

    async def gather(self, *calls: Any) -> list[Any]:
        """Several reads at once (a page's calls go out together)."""
        return list(await asyncio.gather(*calls))

    async def _send(self, method: str, service: str, path: str, token: str | None, **kwargs: Any) -> Any:
        response = await self._request(method, service, path, token, **kwargs)
        if response.status_code >= 400:
            raise _problem(response)
        if not response.content:
            return None
        return response.json()

    async def _request(
        self,
        method: str,
        service: str,
        path: str,
        token: str | None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        sent = {"Accept-Language": "zh-CN", **(headers or {})}
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        counter = CALLS.get()
        if counter is not None:
            counter[0] += 1
        try:
            return await self.http.request(method, self.urls[service] + path, headers=sent, **kwargs)
        except httpx.HTTPError as exc:
            raise Problem(503, "service_unavailable", UNAVAILABLE) from exc
