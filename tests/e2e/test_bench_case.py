"""The bench's case (bench/workflow.py `carry`) still goes from report to archive on the services
as they are today: when the procedure's rules move on (e.g. the head must approve the forms that
are performed), `make bench` would otherwise fail only when someone runs it. Nothing is timed."""

from __future__ import annotations

import random

from bench.workflow import CONCLUDED, FILED, HANDED, Api, Recorder, carry


async def test_the_bench_case_reaches_the_archive() -> None:
    api = Api(poll_s=0.05)
    rec = Recorder()
    try:
        await carry(api, rec, random.randrange(100_000, 1_000_000))
    finally:
        await api.close()
    assert rec.failures == []
    assert len(rec.end_to_end) == 1
    assert sum(len(v) for v in rec.commands.values()) >= 15
    assert {hop: len(v) for hop, v in rec.hops.items()} == {HANDED: 1, CONCLUDED: 1, FILED: 1}
