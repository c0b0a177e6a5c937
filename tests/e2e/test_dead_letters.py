"""The operator's dead letters through the running services and `zhengming dlq`: another agency's
malformed report is dead-lettered by intake with its reason, listed, shown, replayed (refused
again) and purged with a reason; a report in the dead-letter topic that is acceptable is applied
by its replay once, however often it is replayed; every other role is refused; /readyz and
`zhengming status` show each consumer's dead letters."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer

from shared import settings
from shared.topics import dead_letter_topic, inbound_reports_topic
from tests.integration.test_intake_inbound_kafka import COUNTY, message
from zhengming.client import Users

CONSUMER = "intake.inbound"
ZM = [sys.executable, "-m", "zhengming.cli"]


def dlq(token: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ZM, "dlq", *args],
        env={**os.environ, "ZM_TOKEN": token, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def entries(token: str) -> list[dict[str, Any]]:
    done = dlq(token, "list", CONSUMER, "--json")
    assert done.returncode == 0, done.stderr
    listed: list[dict[str, Any]] = json.loads(done.stdout)
    return listed


async def wait_for_entry(token: str, reference: str) -> dict[str, Any]:
    for _ in range(120):
        found = [e for e in await asyncio.to_thread(entries, token) if reference in e["reason"]]
        if found:
            return found[0]
        await asyncio.sleep(0.5)
    raise AssertionError(f"no dead letter naming {reference}")


def counted_in_readyz() -> dict[str, Any]:
    url = settings.services().url("intake") + "/readyz"
    for _ in range(60):
        ready = httpx.get(url, timeout=10).json()
        figures = ready.get("consumer_figures", {}).get("consumers", {}).get(CONSUMER)
        if figures and figures["dead_letters_pending"] >= 1:
            return dict(figures)
        time.sleep(1)
    raise AssertionError(f"/readyz never counted the dead letters: {ready}")


async def reports_with(reference: str) -> int:
    conn = await asyncpg.connect(settings.postgres().dsn())
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM intake.reports WHERE source_reference = $1", reference
        )
        return count
    finally:
        await conn.close()


async def test_an_operator_works_off_intakes_dead_letters_with_the_cli() -> None:
    operator = Users().token("operator", "331100")
    reference = f"JYSJ-{uuid.uuid4().hex[:10]}"
    # Refused for what it is: the agency sent a report without subjects (the reason names the field).
    poison = message(reference, subjects=[], summary=f"审计移送 {reference}")
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka().bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(inbound_reports_topic(COUNTY), poison, key=reference.encode())
    finally:
        await producer.stop()

    refused = await wait_for_entry(operator, "subjects")
    assert refused["code"] == "invalid_event" and refused["state"] == "pending"
    assert refused["original_topic"] == inbound_reports_topic(COUNTY)
    where = (str(refused["partition"]), str(refused["offset"]))
    shown = dlq(operator, "show", CONSUMER, *where)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["reason"] == refused["reason"]

    again = dlq(operator, "replay", CONSUMER, "--entry", ":".join(where))
    assert again.returncode == 1, again.stdout  # refused again: exit 1, still there
    [after] = [e for e in entries(operator) if (str(e["partition"]), str(e["offset"])) == where]
    assert after["state"] == "failed" and after["attempts"] == 1 and after["replay_code"] == "invalid_event"

    # A report that is acceptable in the dead-letter topic (as one refused while its cause lasted):
    # replayed, it is registered; replayed again, it is a duplicate, registered once.
    good_reference = f"JYSJ-{uuid.uuid4().hex[:10]}"
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka().bootstrap)
    await producer.start()
    try:
        meta = await producer.send_and_wait(
            dead_letter_topic(CONSUMER),
            message(good_reference),
            key=good_reference.encode(),
            headers=[
                ("zm-dlq-code", b"rejected"),
                ("zm-dlq-reason", f"refused while its cause lasted {good_reference}".encode()),
                ("zm-dlq-consumer", CONSUMER.encode()),
                ("zm-original-topic", inbound_reports_topic(COUNTY).encode()),
                ("zm-original-partition", b"0"),
                ("zm-original-offset", b"0"),
            ],
        )
    finally:
        await producer.stop()
    entry = f"{meta.partition}:{meta.offset}"
    first = dlq(operator, "replay", CONSUMER, "--entry", entry)
    assert first.returncode == 0 and "applied" in first.stdout, first.stdout + first.stderr
    second = dlq(operator, "replay", CONSUMER, "--entry", entry)
    assert second.returncode == 0 and "duplicate" in second.stdout, second.stdout + second.stderr
    assert await reports_with(good_reference) == 1
    assert await reports_with(reference) == 0

    # Who may: the operator only.
    auditor = dlq(Users().token("auditor", "331100"), "list", CONSUMER)
    assert auditor.returncode == 1 and "role_forbidden" in auditor.stderr
    letters = dlq(Users().token("letters_office", COUNTY), "replay", CONSUMER)
    assert letters.returncode == 1 and "role_forbidden" in letters.stderr

    # The figures: /readyz and `zhengming status` count the consumer's dead letters.
    figures = await asyncio.to_thread(counted_in_readyz)
    assert figures["dead_letters"] >= figures["dead_letters_pending"] >= 1
    status = await asyncio.to_thread(
        subprocess.run,
        [*ZM, "status"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert CONSUMER in status.stdout, status.stdout

    # Purged: without --all only what replays settled; --all needs a reason, and takes the rest.
    assert dlq(operator, "purge", CONSUMER).returncode == 0
    assert any(e["state"] == "failed" for e in entries(operator))
    no_reason = dlq(operator, "purge", CONSUMER, "--all")
    assert no_reason.returncode == 1 and "purge_reason_required" in no_reason.stderr
    purged = dlq(operator, "purge", CONSUMER, "--all", "--reason", "来源机关已重新发送")
    assert purged.returncode == 0, purged.stderr
    assert entries(operator) == []
