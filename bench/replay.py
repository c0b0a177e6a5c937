"""Replay of each service's read models from Kafka offset 0 (`zhengming.audit.replay`) against a
bare aiokafka consumer reading the same topics from offset 0 without processing.

Both are timed the same way: from before the topics are described to the last record (and, for
replay, its last batch applied), so both include the client's start-up; neither includes the fresh
schema replay migrates first or the comparison with the live read models it makes afterwards.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient
from rich.console import Console

from bench.common import Figure
from services.definitions import definition_of
from shared import settings
from shared.envelope import JURISDICTIONS
from shared.ops_api import lag_probe, unread_records
from shared.settings import SERVICES
from shared.topics import events_topic
from zhengming.audit import drop_schema, read_topics, replay
from zhengming.audit.replays import BATCH_SIZE, fresh_schema


def replay_contexts(service: str) -> list[str]:
    """The contexts whose events replay reads for `service` (Replayer.contexts)."""
    return [service, *sorted(definition_of(service).foreign_read_models)]


def replay_topics(service: str) -> list[str]:
    return [events_topic(j, c) for j in sorted(JURISDICTIONS) for c in replay_contexts(service)]


@dataclass
class BareRead:
    records: int
    bytes: int
    seconds: float


async def bare_read(topics: list[str]) -> BareRead:
    """Every record of the topics from offset 0 to their end, counted and dropped: the same reader
    as replay (zhengming.audit.read_topics), no decoding, no database."""
    started = time.perf_counter()
    records = size = 0

    def count(record: Any) -> None:
        nonlocal records, size
        records += 1
        size += len(record.value or b"")

    await read_topics(topics, count)
    return BareRead(records, size, time.perf_counter() - started)


@dataclass
class CopyCeiling:
    rows: int
    seconds: float


async def copy_ceiling(service: str, rebuilt: str, tables: list[str]) -> CopyCeiling:
    """The database's own ceiling for what a replay wrote: the rows of the rebuilt schema's read
    models (read beforehand, not timed) copied into the same tables of a fresh schema with COPY
    (asyncpg copy_records_to_table), in one transaction with synchronous_commit off as replay's."""
    target = await fresh_schema(service, "copy")
    conn = await asyncpg.connect(settings.postgres().dsn())
    try:
        # asyncpg's own jsonb codec (text values, binary on the wire), which COPY needs.
        contents = []
        for table in tables:
            rows = await conn.fetch(f"SELECT * FROM {rebuilt}.{table}")
            if rows:
                contents.append((table, list(rows[0].keys()), [tuple(r) for r in rows]))
        started = time.perf_counter()
        async with conn.transaction():
            await conn.execute("SET LOCAL synchronous_commit = off")
            for table, columns, records in contents:
                await conn.copy_records_to_table(table, records=records, columns=columns, schema_name=target)
        seconds = time.perf_counter() - started
    finally:
        await conn.close()
        await drop_schema(target)
    return CopyCeiling(sum(len(r) for _, _, r in contents), seconds)


# --- waiting for the services to settle ------------------------------------------------------------


async def _consumer_lag() -> int:
    """Records the services' consumer groups have not committed yet, counted as the operators'
    /ops/consumers counts them (a transaction's commit marker at a partition's end is no record)."""
    kafka = settings.kafka()
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap, **kafka.client_options())
    probe = lag_probe(kafka)
    await admin.start()
    await probe.start()
    try:
        lag = 0
        for group in await admin.list_consumer_groups():
            committed = {
                tp: meta.offset
                for tp, meta in (await admin.list_consumer_group_offsets(group[0])).items()
                if meta.offset >= 0
            }
            if committed:
                lag += await unread_records(probe, committed, await probe.end_offsets(list(committed)))
        return lag
    finally:
        await probe.stop()
        await admin.close()


async def settle(timeout_s: float = 120) -> dict[str, Any]:
    """Wait until every outbox is published, every consumer group has committed up to the end
    of its partitions, and the inboxes stopped growing: replay then compares with final read models."""
    started = time.perf_counter()
    previous: dict[str, int] | None = None
    conn = await asyncpg.connect(settings.postgres().dsn())
    try:
        while True:
            pending = {
                s: int(await conn.fetchval(f"SELECT count(*) FROM {s}.outbox WHERE published_at IS NULL"))
                for s in SERVICES
            }
            inbox = {s: int(await conn.fetchval(f"SELECT count(*) FROM {s}.inbox")) for s in SERVICES}
            lag = await _consumer_lag()
            waited = time.perf_counter() - started
            if not any(pending.values()) and lag == 0 and inbox == previous:
                return {"settled": True, "waited_s": round(waited, 2)}
            if waited > timeout_s:
                return {"settled": False, "waited_s": round(waited, 2), "outbox": pending, "lag": lag}
            previous = inbox
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


# --- the figures -----------------------------------------------------------------------------------


async def bench_replay(console: Console) -> tuple[list[Figure], dict[str, Any]]:
    with console.status("replay: waiting for the services to settle…"):
        settled = await settle()
    figures: list[Figure] = []
    ceilings: list[Figure] = []
    for service in SERVICES:
        topics = replay_topics(service)
        with console.status(f"replay {service}: bare consumer, then replay, then COPY…"):
            bare = await bare_read(topics)
            report = await replay(service, keep_schema=True, show_progress=False)
            try:
                copied = await copy_ceiling(service, report.schema, report.tables)
            finally:
                await drop_schema(report.schema)
        notes = (
            f"zhengming.audit.replay({service!r}): batches of {BATCH_SIZE:,} events decoded in one"
            " call, dedup by event id in memory, projectors' writes in one executemany per run of"
            f" one SQL ({report.statements:,} statements in {report.round_trips:,} round trips),"
            f" one transaction a batch, into a fresh schema; topics of {', '.join(replay_contexts(service))}"
            f" in {len(JURISDICTIONS)} jurisdictions"
        )
        figures.append(
            Figure(
                name=f"replay {service} from offset 0",
                label=f"replay {service}",
                unit="events/s",
                count=report.events,
                ours_s=report.seconds,
                baseline_name=(
                    f"bare aiokafka {metadata.version('aiokafka')} consumer, same topics from offset 0,"
                    " records counted, nothing decoded"
                ),
                baseline_label="bare consumer",
                baseline_s=bare.seconds,
                baseline_count=bare.records,
                notes=notes,
                extra={
                    "equal": report.equal,
                    "diffs": [
                        {
                            "table": d.table,
                            "only_live": len(d.only_live),
                            "only_replayed": len(d.only_replayed),
                        }
                        for d in report.diffs
                    ],
                    "tables": report.tables,
                    "contexts": replay_contexts(service),
                    "topics": len(topics),
                    "bare_bytes": bare.bytes,
                    "statements": report.statements,
                    "round_trips": report.round_trips,
                },
            )
        )
        ceilings.append(
            Figure(
                name=f"replay {service} against the database's ceiling",
                label=f"replay {service}",
                unit="events/s",
                count=report.events,
                ours_s=report.seconds,
                baseline_name=(
                    "COPY (asyncpg copy_records_to_table) of the rows replay wrote into the same tables"
                    " of a fresh schema, one transaction, synchronous_commit off"
                ),
                baseline_label="COPY ceiling",
                baseline_s=copied.seconds,
                notes=f"the replay above; the ceiling copies its {copied.rows:,} rows",
                extra={"rows": copied.rows},
            )
        )
    events = sum(f.count for f in figures)
    figures.append(
        Figure(
            name="replay, all four services",
            label="replay all",
            unit="events/s",
            count=events,
            ours_s=sum(f.ours_s for f in figures),
            baseline_name="bare aiokafka consumer, the same four reads",
            baseline_label="bare consumer",
            baseline_s=sum(f.baseline_s for f in figures),
            baseline_count=sum(int(f.baseline_count or 0) for f in figures),
            notes="the four replays above, summed (events of a foreign context count once per reader)",
            extra={"equal": all(bool(f.extra["equal"]) for f in figures)},
        )
    )
    ceilings.append(
        Figure(
            name="replay, all four services, against the database's ceiling",
            label="replay all",
            unit="events/s",
            count=events,
            ours_s=sum(f.ours_s for f in ceilings),
            baseline_name="COPY of the rows of the four replays, the same four copies",
            baseline_label="COPY ceiling",
            baseline_s=sum(f.baseline_s for f in ceilings),
            notes="the four figures above, summed",
            extra={"rows": sum(int(f.extra["rows"]) for f in ceilings)},
        )
    )
    return figures + ceilings, settled
