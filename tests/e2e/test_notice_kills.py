"""Kill probe on the running archive: SIGKILLed a few milliseconds after it accepted a batch of
personnel notices, restarted, again and again; the organisation department, reading the public
topic as its contract says (read_committed, no inbox), receives every notice exactly once."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import time
from collections import Counter
from datetime import date

import pytest

from shared import settings
from shared.envelope import JURISDICTIONS
from shared.topics import personnel_notices_topic
from zhengming.audit import read_topics
from zhengming.client import Client
from zhengming.services import LocalService, all_services

KILLS = int(os.environ.get("ZM_TEST_NOTICE_KILLS", "8"))
PER_KILL = int(os.environ.get("ZM_TEST_NOTICES_PER_KILL", "5"))
# Years no other e2e test issues notices for (they work in 2005-2020), each notice issued the next
# January: years whose dates the working-day calendar knows (it starts in 2004 and ends in 2026).
YEARS = [2004, *range(2021, 2026)]


async def free_periods(client: Client) -> list[tuple[str, str]]:
    free = []
    for j in JURISDICTIONS:
        held = await client.ok(
            "GET", "archive", "/notices", role="case_management", jurisdiction=j, params={"jurisdiction": j}
        )
        issued = {n["period"] for n in held}
        free += [(j, f"{y}Q{q}") for y in YEARS for q in range(1, 5) if f"{y}Q{q}" not in issued]
    return free


def gone(service: LocalService, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while service.pid() is not None and time.monotonic() < deadline:
        time.sleep(0.05)


async def notices_on_topics(jurisdictions: set[str]) -> Counter[str]:
    records = await read_topics(personnel_notices_topic(j) for j in jurisdictions)
    return Counter(json.loads(r.value)["notice_id"] for r in records)


@pytest.mark.timeout(300 + 15 * KILLS)  # an archive restart takes 5-10 s on two busy cores
async def test_the_archive_killed_right_after_accepting_notices_never_publishes_one_twice(
    client: Client,
) -> None:
    archive = {s.name: s for s in all_services(settings.local(), settings.services())}["archive"]
    free = await free_periods(client)
    if len(free) < KILLS * PER_KILL:
        pytest.fail("not enough unused notice periods on this database: `make clean` resets the local data")
    slots = random.Random().sample(free, KILLS * PER_KILL)
    expected: set[str] = set()
    for k in range(KILLS):
        batch = slots[k * PER_KILL : (k + 1) * PER_KILL]
        answers = await asyncio.gather(
            *(
                client.request(
                    "POST",
                    "archive",
                    "/notices",
                    role="case_management",
                    jurisdiction=j,
                    body={
                        "jurisdiction": j,
                        "period": p,
                        "issued_on": date(int(p[:4]) + 1, 1, 20).isoformat(),
                    },
                )
                for j, p in batch
            )
        )
        assert [a.status_code for a in answers] == [201] * PER_KILL, [a.text for a in answers]
        expected |= {a.json()["notice_id"] for a in answers}
        pid = archive.pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)  # a few milliseconds after the notices were accepted
        await asyncio.to_thread(gone, archive)
        archive.start()
        await asyncio.to_thread(archive.wait_ready, 120)

    jurisdictions = {j for j, _ in slots}
    deadline = time.monotonic() + 120
    seen = await notices_on_topics(jurisdictions)
    while not expected <= set(seen) and time.monotonic() < deadline:
        seen = await notices_on_topics(jurisdictions)
    ours = {n: c for n, c in seen.items() if n in expected}
    print(f"kills={KILLS} notices={len(expected)} duplicates={sum(c - 1 for c in ours.values())}")
    assert set(ours) == expected, "every accepted notice reaches the public topic"
    assert {n: c for n, c in ours.items() if c > 1} == {}, "and none twice"
