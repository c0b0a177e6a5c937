"""The public contract as another agency meets it: a notice the running archive issues reaches the
example consumer (examples/agency_consumer.py) as a CloudEvent whose hash and signature check out
with nothing but the archive's public key files; only the case-management office may issue one."""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

from shared import settings
from shared.envelope import JURISDICTIONS
from shared.settings import SigningSettings
from shared.topics import personnel_notices_topic
from zhengming.client import Client

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "agency_consumer.py"
YEARS = [2004, *range(2021, 2026)]  # the notice years of test_notice_kills: no workflow test uses them


async def _example(topic: str, keys: list[Path]) -> list[dict[str, Any]]:
    args = [a for key in keys for a in ("--public-key", str(key))]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-I",
        str(EXAMPLE),
        "--bootstrap",
        settings.kafka().bootstrap,
        "--topic",
        topic,
        *args,
        "--until-end",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), 90)
    except TimeoutError:
        process.kill()
        raise
    assert process.returncode == 0, err.decode()
    return [json.loads(line) for line in out.decode().splitlines()]


async def test_another_agency_verifies_the_archives_notices(client: Client) -> None:
    j = random.choice(sorted(JURISDICTIONS))
    held = await client.ok(
        "GET", "archive", "/notices", role="case_management", jurisdiction=j, params={"jurisdiction": j}
    )
    issued = {n["period"] for n in held}
    period = random.choice([f"{y}Q{q}" for y in YEARS for q in range(1, 5) if f"{y}Q{q}" not in issued])
    body = {"jurisdiction": j, "period": period, "issued_on": date(int(period[:4]) + 1, 1, 20).isoformat()}

    refused = await client.request(
        "POST", "archive", "/notices", role="letters_office", jurisdiction=j, body=body
    )
    assert refused.status_code == 403, refused.text
    answer = await client.request(
        "POST", "archive", "/notices", role="case_management", jurisdiction=j, body=body
    )
    assert answer.status_code == 201, answer.text
    notice_id = answer.json()["notice_id"]

    keys = sorted(SigningSettings().keyring().glob("archive.*.pub"))
    assert keys, "the archive's public key is in the deployment's keyring"
    deadline = time.monotonic() + 60
    while True:  # the relay publishes shortly after the commit
        lines = await _example(personnel_notices_topic(j), keys)
        ours = [line for line in lines if line.get("notice", {}).get("notice_id") == notice_id]
        if ours or time.monotonic() > deadline:
            break
    assert [line["status"] for line in ours] == ["accepted"]
    assert ours[0]["notice"]["period"] == period
    duplicates = [line for line in lines if line["status"] == "duplicate" and line["notice_id"] == notice_id]
    assert duplicates == []  # exactly once on the topic
