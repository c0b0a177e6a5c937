"""How the demo calls the services: as a role of a jurisdiction, many cases at a time, each command
retried under its idempotency key, every round trip timed; and waiting on what crosses Kafka."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

import httpx
from rich.progress import (
    Progress,
    TaskID,
)

from zhengming.client import ApiError, Client, new_idempotency_key
from zhengming.demo.facts import Facts, PhaseFailed

CONCURRENCY = 16

T = TypeVar("T")


async def until(what: str, check: Callable[[], Awaitable[T | None]], timeout_s: float = 120) -> T:
    """Poll `check` (with a growing pause) until it answers something: events cross Kafka."""
    deadline = time.monotonic() + timeout_s
    pause = 0.05
    while True:
        found = await check()
        if found is not None and found is not False:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout_s:.0f}s for {what}")
        await asyncio.sleep(pause)
        pause = min(pause * 1.5, 1.0)


def iso_day(day: date | None) -> str:
    assert day is not None
    return day.isoformat()


@dataclass(frozen=True)
class As:
    """Who calls: a role of a jurisdiction (or of several joined with '+')."""

    role: str
    jurisdiction: str


def problem_code(text: str) -> str | None:
    try:
        body = json.loads(text)
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None


class Calls:
    """The services as the demo's callers see them, and the progress of its phases."""

    def __init__(self, client: Client, progress: Progress, tasks: dict[str, TaskID]) -> None:
        self.c = client
        self.progress = progress
        self.tasks = tasks
        self.gate = asyncio.Semaphore(CONCURRENCY)
        self.timings: dict[str, float] = {}
        self.facts = Facts()

    async def raw(
        self,
        method: str,
        service: str,
        path: str,
        who: As,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> httpx.Response:
        started = time.monotonic()
        response = await self.c.request(
            method,
            service,
            path,
            role=who.role,
            jurisdiction=who.jurisdiction,
            body=body,
            params=params,
            idempotency_key=idempotency_key,
        )
        self.facts.latencies.append(time.monotonic() - started)
        return response

    async def call(
        self,
        method: str,
        service: str,
        path: str,
        who: As,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        """One command or query; the client retries connection errors and 5xx with the command's
        idempotency key, and a concurrent writer on the same stream (409 concurrency_conflict) is
        retried here, with the same key (a refused command did not spend it)."""
        key = new_idempotency_key() if method == "POST" else None
        for attempt in range(8):
            response = await self.raw(
                method, service, path, who, body=body, params=params, idempotency_key=key
            )
            if response.status_code == 409 and problem_code(response.text) == "concurrency_conflict":
                await asyncio.sleep(0.05 * (attempt + 1))
                continue
            if response.status_code >= 300:
                raise ApiError(method, f"{service}{path}", response.status_code, response.text)
            return response.json() if response.content else None
        raise ApiError(method, f"{service}{path}", 409, "concurrency conflict persisted")

    async def command(
        self, step: str, service: str, path: str, *, role: str, jurisdiction: str, body: dict[str, Any]
    ) -> Any:
        """One command of a case's chain (zhengming.driver sends them through here)."""
        return await self.call("POST", service, path, As(role, jurisdiction), body=body)

    async def get_if(self, service: str, path: str, *, role: str, jurisdiction: str) -> Any:
        """GET that answers None on 404 (not there yet)."""
        response = await self.raw("GET", service, path, As(role, jurisdiction))
        if response.status_code == 404:
            return None
        if response.status_code >= 300:
            raise ApiError("GET", f"{service}{path}", response.status_code, response.text)
        return response.json()

    async def each(
        self, phase: str, items: Sequence[T], work: Callable[[T], Awaitable[None]], label: Callable[[T], str]
    ) -> None:
        """Run `work` on every item, CONCURRENCY at a time; fail the phase naming what failed."""
        failures: list[tuple[str, BaseException]] = []
        task = self.tasks[phase]

        async def one(item: T) -> None:
            async with self.gate:
                try:
                    await work(item)
                except Exception as exc:
                    failures.append((label(item), exc))
            self.progress.advance(task)

        await asyncio.gather(*(one(i) for i in items))
        if failures:
            raise PhaseFailed(phase, failures)

    def begin(self, phase: str, total: int) -> None:
        task = self.tasks[phase]
        self.progress.update(task, total=total)
        self.progress.start_task(task)

    async def timed(self, phase: str, step: Awaitable[T]) -> T:
        """Run a phase; its time is kept also when it fails or is interrupted."""
        started = time.monotonic()
        try:
            done = await step
        finally:
            self.timings[phase] = time.monotonic() - started
        task = self.tasks[phase]
        self.progress.update(task, completed=self.progress.tasks[task].total or 0)
        self.progress.stop_task(task)
        return done
