"""Whether a wording reveals the reporter: asked of intake, which alone holds the reporter's
identity (sealed); clarification never sees it, and learns only yes or no."""

from __future__ import annotations

import asyncio
from typing import Protocol
from urllib.parse import quote

import httpx

from services.clarification.settings import IntakeSettings
from shared.logging import get_logger

log = get_logger(__name__)


class IdentityCheckUnavailable(Exception):
    """Intake did not answer the check (down, slow, or an answer that is not one): the draft is
    refused for now (503), never accepted unchecked."""


class IdentityCheck(Protocol):
    """Whether `text` contains a reporter identity of the matter `case_id`, asked with the
    caller's own credentials (`authorization`, the command's Authorization header)."""

    async def reveals(self, case_id: str, text: str, authorization: str | None) -> bool: ...


class IntakeIdentityCheck:
    """The check over HTTP: `POST {intake}/reports/{case_id}/identity-check`, on one client kept
    for the process (a client per check built a TLS context each time: a sixth of clarification's
    CPU under load), made anew when the event loop is another (tests run one loop per test)."""

    def __init__(
        self, settings: IntakeSettings | None = None, client: httpx.AsyncClient | None = None
    ) -> None:
        self.settings = settings or IntakeSettings()
        self._given = client
        self._own: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient] | None = None

    def _client(self) -> httpx.AsyncClient:
        if self._given is not None:
            return self._given
        loop = asyncio.get_running_loop()
        if self._own is None or self._own[0] is not loop:
            self._own = (loop, httpx.AsyncClient(timeout=self.settings.timeout_s))
        return self._own[1]

    async def reveals(self, case_id: str, text: str, authorization: str | None) -> bool:
        url = f"{self.settings.base_url()}/reports/{quote(case_id, safe='')}/identity-check"
        headers = {"Authorization": authorization} if authorization else {}
        try:
            response = await self._client().post(
                url, json={"text": text}, headers=headers, timeout=self.settings.timeout_s
            )
        except httpx.HTTPError as exc:
            # Never the text: only what failed.
            log.warning("clarification.identity_check_unavailable", error=type(exc).__name__)
            raise IdentityCheckUnavailable(type(exc).__name__) from exc
        return answer_of(response)


def answer_of(response: httpx.Response) -> bool:
    """Intake's answer: `contains`; a 404 of the report itself (a matter intake never registered,
    e.g. one the backlog sweep found in the old files) holds no reporter identity to reveal.
    Anything else is no answer."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code == 200 and isinstance(body, dict) and isinstance(body.get("contains"), bool):
        return bool(body["contains"])
    if response.status_code == 404 and isinstance(body, dict) and body.get("code") == "not_found":
        return False
    code = body.get("code") if isinstance(body, dict) else None
    log.warning("clarification.identity_check_unavailable", status=response.status_code, code=code)
    raise IdentityCheckUnavailable(f"intake answered {response.status_code}")
