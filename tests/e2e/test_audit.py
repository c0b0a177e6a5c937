"""The audit trail on a scenario of more than 10,000 events carried by the running services:
verification, tampering (altered, deleted, consistently rewritten), replay, time travel, erasure."""

from __future__ import annotations

import asyncio
import json
from datetime import date, timedelta

import asyncpg
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared import settings
from shared.envelope import GENESIS_HASH, JURISDICTIONS, chain_hash
from shared.settings import SERVICES
from tests.e2e.conftest import TRANSCRIPT, day
from tests.e2e.test_workflow import plan
from zhengming import audit
from zhengming.client import Client, Users
from zhengming.driver import CasePlan, Driver

# The first test also builds the 10,000-event scenario (about three minutes on two busy cores).
pytestmark = pytest.mark.timeout(900)

EVENTS_WANTED = 10_000
CONCURRENCY = 12
J_CYCLE = sorted(JURISDICTIONS)


async def _carry(driver: Driver, client: Client, p: CasePlan) -> str:
    case_id = await driver.register(p)
    TRANSCRIPT.case_ids.add(case_id)
    await driver.intake(p, case_id)
    await driver.verify(p, case_id)
    start = p.received_on + timedelta(days=40)
    assert await driver.clarify_until_approved(p, case_id, start) == "approved"
    performed = start + timedelta(days=5)
    await client.ok(
        "POST",
        "clarification",
        f"/clarifications/{case_id}/perform",
        role="handling_department",
        jurisdiction=p.jurisdiction,
        # In the forms the head approved: the plan's, proposed at the assessment.
        body={"performed_on": performed.isoformat(), "forms": p.forms},
    )
    await driver.finish(p, case_id, performed)
    return case_id


async def _events_of(cases: list[str]) -> int:
    conn = await asyncpg.connect(settings.postgres().dsn())
    try:
        total = 0
        for service in SERVICES:
            total += await conn.fetchval(
                f"SELECT count(*) FROM {service}.events WHERE case_id = ANY($1)", cases
            )
        return total
    finally:
        await conn.close()


async def _end_offsets(prefix: str) -> dict[TopicPartition, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka().bootstrap)
    await admin.start()
    try:
        topics = [t for t in await admin.list_topics() if t.startswith(prefix)]
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka().bootstrap, group_id=None)
    await consumer.start()
    try:
        parts = [TopicPartition(d["topic"], p["partition"]) for d in described for p in d["partitions"]]
        return dict(await consumer.end_offsets(parts)) if parts else {}
    finally:
        await consumer.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def scenario_cases() -> list[str]:
    """More than 10,000 events: whole cases carried from report to archive, 12 at a time."""

    async def build() -> list[str]:
        client = Client(settings.services(), Users(), observer=TRANSCRIPT.observe)
        driver = Driver(client)
        cases: list[str] = []
        gate = asyncio.Semaphore(CONCURRENCY)
        n = 0

        async def one(i: int) -> None:
            async with gate:
                j = J_CYCLE[i % len(J_CYCLE)]
                p = plan(["untrue", "untrue"], day(1, 5) + timedelta(days=i % 20), jurisdiction=j)
                cases.append(await _carry(driver, client, p))

        try:
            while True:
                await asyncio.gather(*(one(n + k) for k in range(120)))
                n += 120
                await _wait_archived(client, cases)
                if await _events_of(cases) >= EVENTS_WANTED:
                    return cases
        finally:
            await client.close()

    return await build()


async def _wait_archived(client: Client, cases: list[str]) -> None:
    """Every reaction of the scenario has happened: each case filed in the archive."""
    conn = await asyncpg.connect(settings.postgres().dsn())
    try:

        async def filed() -> bool:
            count = await conn.fetchval("SELECT count(*) FROM archive.filings WHERE case_id = ANY($1)", cases)
            return bool(count == len(cases))

        await client.eventually("every case filed in the archive", filed, timeout_s=180)
    finally:
        await conn.close()


async def _checkpoint_all() -> None:
    for service in SERVICES:
        await audit.publish_checkpoint(service)


async def _quiescent(stable_s: float = 3.0, timeout_s: float = 120.0) -> None:
    """Until no service appends (the scenario's reactions have all been applied): a store tampered
    with while it still grows would have its tampered heads signed by the next periodic checkpoint."""
    conn = await asyncpg.connect(settings.postgres().dsn())
    try:
        loop = asyncio.get_running_loop()
        deadline, last, since = loop.time() + timeout_s, None, loop.time()
        while loop.time() < deadline:
            counts = [await conn.fetchval(f"SELECT count(*) FROM {s}.events") for s in SERVICES]
            if counts != last:
                last, since = counts, loop.time()
            elif loop.time() - since >= stable_s:
                return
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


async def test_scenario_is_big_enough_and_verifies(scenario_cases: list[str]) -> None:
    assert await _events_of(scenario_cases) >= EVENTS_WANTED
    await _checkpoint_all()
    report = await audit.verify_trail()
    assert report.ok, "\n".join(report.lines())
    assert sum(c["events"] for c in report.checked.values()) >= EVENTS_WANTED
    assert all(c["checkpoints"] >= 1 for c in report.checked.values())


async def test_one_altered_event_is_named(scenario_cases: list[str]) -> None:
    conn = await asyncpg.connect(settings.postgres().dsn())
    try:
        row = await conn.fetchrow(
            "SELECT event_id, stream_id, stream_version, payload::text AS payload, hash"
            " FROM clarification.events WHERE case_id = $1 AND event_type = 'ClarificationPerformed'",
            scenario_cases[7],
        )
        assert row is not None
        await conn.execute(
            "UPDATE clarification.events SET payload = jsonb_set(payload, '{scope}', '\"全县\"')"
            " WHERE event_id = $1",
            row["event_id"],
        )
        try:
            report = await audit.verify_trail()
        finally:
            await conn.execute(
                "UPDATE clarification.events SET payload = $2::jsonb WHERE event_id = $1",
                row["event_id"],
                row["payload"],
            )
    finally:
        await conn.close()
    assert not report.ok
    first = report.breaks[0]
    assert (first.service, first.stream_id, first.stream_version) == (
        "clarification",
        row["stream_id"],
        row["stream_version"],
    )
    assert first.found == row["hash"] and first.expected != row["hash"]
    assert "BROKEN clarification" in report.lines()[-1]
    assert (await audit.verify_trail()).ok


async def test_one_deleted_event_is_found(scenario_cases: list[str]) -> None:
    conn = await asyncpg.connect(settings.postgres().dsn())
    try:
        # The last event of a stream: no later link points at it, so only the Kafka copy and the
        # checkpoint can tell it is gone.
        row = await conn.fetchrow(
            "SELECT * FROM archive.events WHERE case_id = $1 ORDER BY stream_version DESC LIMIT 1",
            scenario_cases[3],
        )
        assert row is not None
        await conn.execute("DELETE FROM archive.events WHERE event_id = $1", row["event_id"])
        try:
            report = await audit.verify_trail()
        finally:
            columns = list(row.keys())
            await conn.execute(
                f"INSERT INTO archive.events ({', '.join(columns)}) VALUES"
                f" ({', '.join(f'${i + 1}' for i in range(len(columns)))})",
                *row.values(),
            )
    finally:
        await conn.close()
    assert not report.ok
    assert any(b.service == "archive" and b.stream_id == row["stream_id"] for b in report.breaks)
    assert (await audit.verify_trail()).ok


async def test_a_consistently_rewritten_stream_is_caught_by_the_signed_checkpoint(
    scenario_cases: list[str],
) -> None:
    await _quiescent()
    await _checkpoint_all()
    conn = await asyncpg.connect(settings.postgres().dsn())
    try:
        stream = f"verification-{scenario_cases[11]}"
        rows = await conn.fetch(
            "SELECT * FROM review.events WHERE stream_id = $1 ORDER BY stream_version", stream
        )
        originals = [(r["event_id"], r["payload"], r["prev_hash"], r["hash"]) for r in rows]
        # Rewrite history with fresh, self-consistent hashes: the chain alone cannot tell.
        prev = GENESIS_HASH
        for r in rows:
            payload = json.loads(r["payload"])
            if r["event_type"] == "FindingRecorded":
                payload["basis"] = "经核实，反映问题属实"
            body = {
                "event_id": str(r["event_id"]),
                "event_type": r["event_type"],
                "schema_version": r["schema_version"],
                "stream_id": r["stream_id"],
                "stream_version": r["stream_version"],
                "case_id": r["case_id"],
                "jurisdiction": r["jurisdiction"],
                "occurred_at": r["occurred_at"].isoformat().replace("+00:00", "Z"),
                "actor": json.loads(r["actor"]),
                "correlation_id": str(r["correlation_id"]),
                "causation_id": str(r["causation_id"]) if r["causation_id"] else None,
                "payload": payload,
            }
            new_hash = chain_hash(prev, body)
            await conn.execute(
                "UPDATE review.events SET payload = $2::jsonb, prev_hash = $3, hash = $4 WHERE event_id = $1",
                r["event_id"],
                json.dumps(payload, ensure_ascii=False),
                prev,
                new_hash,
            )
            prev = new_hash
        try:
            from shared.store import EventStore

            pool = await audit.service_pool("review")
            try:
                # The chain alone cannot tell; the signatures over the old hashes can.
                broken = await EventStore(pool, schema="review", context="review").verify()
                assert broken is not None and broken.stream_id == stream
                assert "bad_signature" in broken.reason
            finally:
                await pool.close()
            report = await audit.verify_trail()
        finally:
            for event_id, payload, prev_hash, hash_ in originals:
                await conn.execute(
                    "UPDATE review.events SET payload = $2::jsonb, prev_hash = $3, hash = $4"
                    " WHERE event_id = $1",
                    event_id,
                    payload,
                    prev_hash,
                    hash_,
                )
    finally:
        await conn.close()
    checkpoint_breaks = [b for b in report.breaks if "signed checkpoint" in b.reason]
    assert checkpoint_breaks and checkpoint_breaks[0].stream_id == stream
    # Restored: vouched for again (a periodic checkpoint may have signed the rewrite meanwhile, as
    # it would sign any state the store holds; the latest checkpoint is what the trail is held to).
    await _checkpoint_all()
    assert (await audit.verify_trail()).ok


async def test_replay_rebuilds_equal_read_models_and_publishes_nothing(scenario_cases: list[str]) -> None:
    before = await _end_offsets("zm.")
    for service in SERVICES:
        result = await audit.replay(service, show_progress=False, keep_schema=True)
        try:
            assert result.equal, "\n".join(result.lines())
            assert result.events >= 1000
            if service in ("intake", "archive"):
                # Foreign events no read model of theirs uses are skipped on their header, unread
                # (the read models are equal all the same).
                assert result.ignored > 0, service
            if service == "clarification":
                # Its projector evolves the row in hand (replay writes its schema alone): writes
                # in bulk, no read back per event (which had been one round trip per event).
                assert result.round_trips < result.events / 10, (result.round_trips, result.events)
            conn = await asyncpg.connect(settings.postgres().dsn())
            try:
                assert await conn.fetchval(f"SELECT count(*) FROM {result.schema}.outbox") == 0
            finally:
                await conn.close()
        finally:
            await audit.drop_schema(result.schema)
    after = await _end_offsets("zm.")
    public = {tp: n for tp, n in after.items() if ".public." in tp.topic or ".events" in tp.topic}
    assert public == {tp: before.get(tp, 0) for tp in public}, "replay sent something to Kafka"


async def test_time_travel_shows_the_case_before_and_after_its_clarification(
    client: Client, scenario_cases: list[str]
) -> None:
    case_id = scenario_cases[0]
    j = case_id.split("-")[0]
    state = await client.ok(
        "GET", "clarification", f"/clarifications/{case_id}", role="auditor", jurisdiction=j
    )
    performed = date.fromisoformat(state["performed_on"])
    before = await audit.time_travel(audit.noon_before(performed), case=case_id)
    after = await audit.time_travel(audit.noon_before(performed + timedelta(days=30)), case=case_id)
    assert before["clarification"]["clarifications"][0]["state"] == "approved"
    assert "filings" not in before["archive"]
    assert after["clarification"]["clarifications"][0]["state"] == "filed"
    assert after["archive"]["filings"][0]["case_id"] == case_id


async def test_erasure_keeps_the_trail_verifiable(client: Client, scenario_cases: list[str]) -> None:
    case_id = scenario_cases[1]
    j = case_id.split("-")[0]
    report = await client.ok("GET", "intake", f"/reports/{case_id}", role="letters_office", jurisdiction=j)
    reporter_id = report["reporter_subject_id"]
    await client.ok(
        "POST",
        "intake",
        f"/reporters/{reporter_id}/erase",
        role="letters_office",
        jurisdiction=j,
        body={"erased_on": day(12, 30).isoformat()},
    )
    entries = await audit.case_timeline(case_id, role="letters_office", jurisdiction=j)
    received = next(e for e in entries if e.event_type == "ReportReceived")
    assert received.payload["reporter"] == {"erased": True}
    assert all(e.hash_ok for e in entries)
    verified = await audit.verify_trail()
    assert verified.ok, "\n".join(verified.lines())


async def test_replay_names_a_damaged_read_model_row_and_switch_repairs_it(
    client: Client, scenario_cases: list[str]
) -> None:
    """An operator recovering from a bad deploy: a read model was damaged, replay names the row,
    --switch puts the rebuilt read models live, the service answers right again."""
    case_id = scenario_cases[5]
    j = case_id.split("-")[0]
    conn = await asyncpg.connect(settings.postgres().dsn())
    try:
        await conn.execute("UPDATE review.verifications SET state = 'open' WHERE case_id = $1", case_id)
    finally:
        await conn.close()
    damaged = await client.ok("GET", "review", f"/verifications/{case_id}", role="auditor", jurisdiction=j)
    assert damaged["state"] == "open"

    found = await audit.replay("review", show_progress=False)
    assert not found.equal
    diff = next(d for d in found.diffs if d.table == "verifications")
    assert any(case_id in row for row in diff.only_live) and any(case_id in row for row in diff.only_replayed)

    switched = await audit.replay("review", show_progress=False, switch=True)
    assert switched.switched
    repaired = await client.ok("GET", "review", f"/verifications/{case_id}", role="auditor", jurisdiction=j)
    assert repaired["state"] == "concluded"
    assert (await audit.replay("review", show_progress=False)).equal
