"""The console under 50 officers at once: page loads of 待办 and of a case page, each officer in a
session of their own, on the bench's running stack; against the console's own /healthz at the
same concurrency (the process's bare-HTTP ceiling). Also the calls each page made to the services
(the console's X-Zm-Backend-Calls header). Recorded, never judged."""

from __future__ import annotations

import asyncio
import re
import secrets
import statistics
import time
from typing import Any

import httpx
from rich.console import Console

from bench.common import Figure, latency_summary
from shared import settings
from shared.envelope import JURISDICTIONS
from zhengming.client import Users
from zhengming.users_cli import seed_officers

ROLES = ("letters_office", "handling_department", "case_trial", "case_management", "head")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def _log_in(http: httpx.AsyncClient, base: str, user_id: str, password: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=base, timeout=60, follow_redirects=False)
    page = await client.get("/login")
    token = CSRF.search(page.text)
    assert token, "no CSRF token on the login page"
    answer = await client.post("/login", data={"user_id": user_id, "password": password, "csrf": token[1]})
    error = re.search(r'id="login-error">([^<]*)', answer.text)
    assert answer.status_code == 303, f"{user_id} could not log in: {answer.status_code} {error and error[1]}"
    return client


async def _case_ids(per_jurisdiction: int = 3) -> dict[str, list[str]]:
    users = Users()
    out: dict[str, list[str]] = {}
    async with httpx.AsyncClient(timeout=60) as http:
        for code in JURISDICTIONS:
            token = users.token("handling_department", code)
            rows = (
                await http.get(
                    settings.services().url("clarification") + "/clarifications",
                    params={"jurisdiction": code},
                    headers={"Authorization": f"Bearer {token}"},
                )
            ).json()
            out[code] = [r["case_id"] for r in rows[:per_jurisdiction]]
    return out


async def bench_console(
    console: Console, sessions: int = 50, rounds: int = 6
) -> tuple[list[Figure], dict[str, Any]]:
    base = settings.services().url("console")
    password = secrets.token_urlsafe(12)
    wanted = [f"{role}-{code}" for code in JURISDICTIONS for role in ROLES][:sessions]
    await seed_officers(password, set(wanted))
    cases = await _case_ids()
    async with httpx.AsyncClient() as http:
        clients = await asyncio.gather(*(_log_in(http, base, u, password) for u in wanted))
    pages: dict[str, list[float]] = {"tasks": [], "case": [], "healthz": []}
    calls: dict[str, list[int]] = {"tasks": [], "case": []}
    statuses: dict[int, int] = {}

    async def load(client: httpx.AsyncClient, user_id: str, kind: str) -> None:
        code = user_id.rsplit("-", 1)[1]
        for i in range(rounds):
            if kind == "healthz":
                path = "/healthz"
            elif kind == "tasks":
                path = "/"
            else:
                ids = cases.get(code) or []
                if not ids:
                    return
                path = f"/cases/{ids[i % len(ids)]}"
            t = time.perf_counter()
            response = await client.get(path)
            pages[kind].append(time.perf_counter() - t)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if kind in calls:
                calls[kind].append(int(response.headers.get("x-zm-backend-calls", "0")))

    spans: dict[str, float] = {}
    try:
        for kind in ("healthz", "tasks", "case"):
            t = time.perf_counter()
            await asyncio.gather(*(load(c, u, kind) for c, u in zip(clients, wanted, strict=True)))
            spans[kind] = time.perf_counter() - t
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    figures = [
        Figure(
            name=f"console_{kind}",
            label=f"console page {'待办' if kind == 'tasks' else 'case'} ({sessions} sessions)",
            unit="pages/s",
            count=len(pages[kind]),
            ours_s=spans[kind],
            baseline_name="console_healthz",
            baseline_label=f"the console's /healthz, {sessions} sessions",
            baseline_s=spans["healthz"],
            baseline_count=len(pages["healthz"]),
            extra={
                "latency_ms": latency_summary(pages[kind]),
                "backend_calls_per_page": {
                    "mean": round(statistics.fmean(calls[kind]), 1) if calls[kind] else None,
                    "max": max(calls[kind], default=None),
                },
            },
        )
        for kind in ("tasks", "case")
    ]
    for f in figures:
        lat = f.extra["latency_ms"]
        console.print(
            f"{f.label}: p50 {lat.get('p50_ms')} ms, p99 {lat.get('p99_ms')} ms, "
            f"{f.extra['backend_calls_per_page']['mean']} service calls per page, "
            f"{f.ours_rate:.1f} pages/s ({f.ratio:.2f}x /healthz)"
        )
    return figures, {"statuses": statuses, "sessions": sessions, "rounds": rounds}


if __name__ == "__main__":
    # On a stack that runs already (e.g. `make demo ARGS=--keep` with its demo.env sourced).
    asyncio.run(bench_console(Console()))
