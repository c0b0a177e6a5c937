"""Idempotent commands on the running services: a keyed POST retried records one event, also when
the service process dies between the commit and the answer and the client retries after a restart."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from shared import settings
from tests.e2e.conftest import day
from zhengming.client import Client, Users

J = "331125"


def report(marker: str) -> dict[str, Any]:
    return {
        "jurisdiction": J,
        "channel": "letter",
        "received_on": day(2, 6).isoformat(),
        "real_name": False,
        "subjects": [{"kind": "person", "name": "吴某", "post": "科员", "unit": "云和县某局"}],
        "allegations": [{"summary": "工作作风问题"}],
        "summary": marker,
    }


async def received(marker: str) -> int:
    """ReportReceived events in intake's store whose summary is `marker`: one per matter made."""
    conn = await asyncpg.connect(settings.postgres().dsn())
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM intake.events WHERE event_type = 'ReportReceived'"
            " AND payload->>'summary' = $1",
            marker,
        )
        return count
    finally:
        await conn.close()


async def test_a_retried_report_makes_one_matter(client: Client) -> None:
    marker = f"幂等测试 {uuid.uuid4()}"
    key = str(uuid.uuid4())
    first = await client.request(
        "POST",
        "intake",
        "/reports",
        role="letters_office",
        jurisdiction=J,
        body=report(marker),
        idempotency_key=key,
    )
    again = await client.request(
        "POST",
        "intake",
        "/reports",
        role="letters_office",
        jurisdiction=J,
        body=report(marker),
        idempotency_key=key,
    )
    assert (first.status_code, again.status_code) == (201, 201), again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    other = await client.request(
        "POST",
        "intake",
        "/reports",
        role="letters_office",
        jurisdiction=J,
        body={**report(marker), "summary": "另一件"},
        idempotency_key=key,
    )
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
    assert await received(marker) == 1


async def test_concurrent_retries_make_one_matter(client: Client) -> None:
    marker = f"幂等并发 {uuid.uuid4()}"
    key = str(uuid.uuid4())
    answers = await asyncio.gather(
        *(
            client.request(
                "POST",
                "intake",
                "/reports",
                role="letters_office",
                jurisdiction=J,
                body=report(marker),
                idempotency_key=key,
            )
            for _ in range(6)
        )
    )
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["report_id"] for a in answers}) == 1
    assert await received(marker) == 1


# -- a crash between the commit and the answer ---------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((settings.services().host, 0))
        port: int = s.getsockname()[1]
        return port


def start_intake(port: int, log_file: Path, **env: str) -> subprocess.Popen[bytes]:
    with open(log_file, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "zhengming.cli", "serve", "intake"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, "ZM_SERVICE_INTAKE_PORT": str(port), "ZM_LOG_JSON_OUTPUT": "true", **env},
        )


def ready(port: int) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(f"http://{settings.services().host}:{port}/readyz", timeout=2).status_code == 200
    return False


async def until(what: str, check: Any, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await asyncio.to_thread(check):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)


async def test_a_crash_between_commit_and_answer_then_retry_records_one_event(
    processes: list[subprocess.Popen[bytes]],
) -> None:
    port = free_port()
    logs = settings.local().logs
    logs.mkdir(parents=True, exist_ok=True)
    log_file = logs / "intake-idempotency-crash.log"
    # This instance dies (os._exit, as hard as a SIGKILL) right after a keyed command committed.
    doomed = start_intake(port, log_file, ZM_IDEMPOTENCY_FAULT_EXIT_AFTER_COMMIT="true")
    processes.append(doomed)
    await until("the doomed intake ready", lambda: ready(port))

    services = settings.services().model_copy(update={"intake_port": port})
    client = Client(services, Users(), retry_deadline_s=120)
    marker = f"幂等崩溃 {uuid.uuid4()}"
    try:
        posting = asyncio.create_task(
            client.request(
                "POST", "intake", "/reports", role="letters_office", jurisdiction=J, body=report(marker)
            )
        )
        await until("the doomed intake to exit after its commit", lambda: doomed.poll() is not None, 60)
        assert doomed.returncode == 70, log_file.read_text(errors="replace")[-2000:]
        assert await received(marker) == 1  # committed, but no answer was sent
        assert not posting.done()  # the client is still retrying (connection refused meanwhile)

        processes.append(start_intake(port, log_file))  # the restart, without the fault
        answer = await asyncio.wait_for(posting, 120)
    finally:
        await client.close()
    assert answer.status_code == 201, answer.text
    assert answer.headers["idempotent-replayed"] == "true"
    assert client.retries >= 1
    assert await received(marker) == 1
    report_id = answer.json()["report_id"]
    conn = await asyncpg.connect(settings.postgres().dsn())
    try:
        assert await conn.fetchval("SELECT count(*) FROM intake.events WHERE case_id = $1", report_id) == 1
    finally:
        await conn.close()
