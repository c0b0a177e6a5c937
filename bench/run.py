"""`make bench`: every figure of zhengming with its baseline, measured in the same run on the same
machine, on a fresh stack of the bench's own (.local/bench/stack: Kafka on 21092, PostgreSQL on
17432, the four services on 9201-9204) that it wipes, starts and stops (also on failure or Ctrl-C).

1. Event store appends (events/s), against the `eventsourcing` library's PostgreSQL application
   recorder (its own fresh schema), with the same payload bytes and the same stream layout:
   single (one event per append and transaction, sequential) and batch (100 events per append).
2. Outbox relay to Kafka (events/s): `OutboxRelay.drain()` of rows the store wrote beforehand,
   against a bare idempotent aiokafka producer (same settings) sending the same keys, bodies
   and headers, all futures gathered.
   Audit verification (events/s): zhengming.audit.verification.verify_service of one service
   (chains, signatures, the Kafka copy of every event) against a bare read of the same rows
   and the same topic. Growth (bench/growth.py): append (batch), relay and verify again at each
   `--growth` size (10k, 50k and 100k events; --quick 1k, 5k and 10k), each beside its baseline.
   (1 and 2 run before the services start, on Kafka and PostgreSQL alone.)
3. Workflow (reports/s and per-step latency) through the four running services over HTTP, at a
   stated offered load: a closed loop and an open loop; against the bare-HTTP ceiling, /healthz
   of the same service and a bare Kafka round trip (see bench/workflow.py).
4. The officers' console under 50 sessions at once: page loads of 待办 and of a case page, against
   the console's /healthz at the same concurrency, and the service calls per page (bench/console.py).
5. Replay of each service's read models from Kafka offset 0 after the workflow, against a bare
   aiokafka consumer reading the same topics and against COPY of the rows it wrote (the
   database's ceiling); replay's read models must equal the live ones. Then replay at 10k, 50k
   and 100k events cloned from the workflow's (bench/replay_growth.py), with each run's peak RSS.

Usage: python -m bench.run [--quick] [--cases N] [--concurrency C] [--rate R] [--duration S] ...

Results go to bench/results/<UTC timestamp>.json and bench/results/latest.json. Nothing here
asserts a timing: the figures are recorded and printed, never judged. The exit code is non-zero
only when something did not work (a case failed, a replay differs from the live read models).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import Any

import asyncpg
import psycopg
from aiokafka.admin import AIOKafkaAdminClient
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from rich.console import Console
from rich.table import Table

from bench import stack
from bench.common import Figure, latency_summary
from bench.workflow import StepRow, WorkflowParams, WorkflowResult
from shared import settings
from shared.db import CORE_MIGRATIONS, create_pool, migrate
from shared.envelope import Actor, canonical_json
from shared.outbox import OutboxRelay, make_producer
from shared.settings import PROJECT_ROOT, RelaySettings
from shared.signing import Keyring, ServiceKey
from shared.store import _COLUMNS as STORE_COLUMNS
from shared.store import EventStore, NewEvent
from shared.topics import events_topic
from zhengming import audit
from zhengming.audit.verification import verify_service
from zhengming.local import ensure_topics

RESULTS = PROJECT_ROOT / "bench" / "results"
JURISDICTION = "331122"
CONTEXT = "bench"
EVENT_TYPE = "ReportReceived"
STREAM_LENGTH = 100  # events per stream, in both modes and for both stores
BATCH = 100  # events per append in batch mode
PARTITIONS = 3
WARMUP_STREAMS = 5
ACTOR = Actor(user_id="bench", role="letters_office", unit="缙云县纪委监委信访室")

DEFAULTS = {"single": 5000, "batch": 20000, "relay": 20000, "verify": 20000}
QUICK = {"single": 500, "batch": 2000, "relay": 2000, "verify": 2000}
WORKFLOW_QUICK = {"cases": 40, "duration_s": 20.0}
GROWTH: tuple[int, ...] = (10000, 50000, 100000)  # events: append, relay and verify at each (bench/growth.py)
GROWTH_QUICK: tuple[int, ...] = (1000, 5000, 10000)


@dataclass(frozen=True)
class Params:
    single: int
    batch: int
    relay: int
    verify: int = DEFAULTS["verify"]
    batch_size: int = BATCH
    stream_length: int = STREAM_LENGTH
    relay_batch_size: int = field(default_factory=lambda: RelaySettings().batch_size)
    linger_ms: int = field(default_factory=lambda: RelaySettings().linger_ms)
    partitions: int = PARTITIONS
    growth: tuple[int, ...] = GROWTH
    workflow: WorkflowParams = field(default_factory=WorkflowParams)


def payload(i: int) -> dict[str, Any]:
    """A realistic event payload: about 300 bytes of JSON, mostly Chinese text."""
    return {
        "case_no": f"丽纪信〔2023〕{i:05d}号",
        "jurisdiction": JURISDICTION,
        "official": {"name": "张某某", "position": "壶镇镇党委副书记"},
        "summary": "反映其在征地拆迁补偿中优亲厚友，经核实所反映问题与事实不符，拟予澄清正名。",
        "channel": "来信",
        "received_on": "2023-02-14",
        "seq": i,
    }


def payload_bytes(i: int) -> bytes:
    return canonical_json(payload(i))


# --- PostgreSQL helpers -----------------------------------------------------------------------


def _schema(kind: str) -> str:
    return f"zm_bench_{kind}_{uuid.uuid4().hex[:8]}"


async def _connect() -> asyncpg.Connection:
    return await asyncpg.connect(settings.postgres().dsn(), timeout=10)


async def _execute(sql: str) -> None:
    conn = await _connect()
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _migrated(schema: str) -> None:
    conn = await _connect()
    try:
        await migrate(conn, schema, [CORE_MIGRATIONS])
    finally:
        await conn.close()


async def _drop_schema(schema: str) -> None:
    await _execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


async def _checkpoint() -> None:
    """Start each timed phase with clean shared buffers (needs superuser; skipped otherwise)."""
    with contextlib.suppress(asyncpg.PostgresError):
        await _execute("CHECKPOINT")


def _checkpoint_sync(datastore: PostgresDatastore) -> None:
    with contextlib.suppress(psycopg.Error), datastore.get_connection() as conn:
        conn.execute("CHECKPOINT")


# --- 1. event store ---------------------------------------------------------------------------


def _stream(mode: str, k: int) -> str:
    return f"{mode}-{k:05d}"


async def _append_streams(store: EventStore, mode: str, events: int, per_append: int) -> list[float]:
    """Append `events` to streams of STREAM_LENGTH, `per_append` per call; returns call latencies."""
    latencies: list[float] = []
    for start in range(0, events, per_append):
        k, version = divmod(start, STREAM_LENGTH)
        stream = _stream(mode, k)
        t0 = time.perf_counter()
        new = [NewEvent(EVENT_TYPE, 1, payload(i)) for i in range(start, min(start + per_append, events))]
        await store.append(
            stream,
            version,
            new,
            case_id=stream,
            jurisdiction=JURISDICTION,
            actor=ACTOR,
            correlation_id=uuid.uuid4(),
        )
        latencies.append(time.perf_counter() - t0)
    return latencies


async def bench_store_ours(params: Params) -> dict[str, tuple[float, list[float]]]:
    schema = _schema("store")
    await _migrated(schema)
    pool = await create_pool(settings.postgres(), schema, min_size=1, max_size=2)
    try:
        store = EventStore(pool, schema=schema, context=CONTEXT)
        await _append_streams(store, "warm", WARMUP_STREAMS * STREAM_LENGTH, 10)
        out: dict[str, tuple[float, list[float]]] = {}
        for mode, events, per_append in (("single", params.single, 1), ("batch", params.batch, BATCH)):
            await _checkpoint()
            t0 = time.perf_counter()
            latencies = await _append_streams(store, mode, events, per_append)
            out[mode] = (time.perf_counter() - t0, latencies)
        stored = await pool.fetchval("SELECT count(*) FROM events WHERE stream_id NOT LIKE 'warm-%'")
        assert stored == params.single + params.batch, f"{stored} events stored"
        return out
    finally:
        await pool.close()
        await _drop_schema(schema)


def _theirs_append(
    recorder: PostgresApplicationRecorder, mode: str, events: int, per_append: int
) -> list[float]:
    """The same streams and payload bytes through the eventsourcing recorder (synchronous)."""
    latencies: list[float] = []
    for start in range(0, events, per_append):
        k, version = divmod(start, STREAM_LENGTH)
        originator = uuid.uuid5(uuid.NAMESPACE_URL, f"zm-bench:{_stream(mode, k)}")
        t0 = time.perf_counter()
        batch = [
            StoredEvent(
                originator_id=originator,
                originator_version=version + (i - start) + 1,
                topic=f"bench.domain:{EVENT_TYPE}",
                state=payload_bytes(i),
            )
            for i in range(start, min(start + per_append, events))
        ]
        recorder.insert_events(batch)
        latencies.append(time.perf_counter() - t0)
    return latencies


def bench_store_theirs(params: Params, schema: str) -> dict[str, tuple[float, list[float]]]:
    """eventsourcing's PostgresApplicationRecorder: table lock, NOTIFY and insert per transaction."""
    pg = settings.postgres()
    datastore = PostgresDatastore(
        pg.database, pg.host, pg.port, pg.user, pg.password, schema=schema, pool_size=1
    )
    try:
        recorder = PostgresApplicationRecorder(datastore, events_table_name="stored_events")
        recorder.create_table()
        _theirs_append(recorder, "warm", WARMUP_STREAMS * STREAM_LENGTH, 10)
        out: dict[str, tuple[float, list[float]]] = {}
        for mode, events, per_append in (("single", params.single, 1), ("batch", params.batch, BATCH)):
            _checkpoint_sync(datastore)
            t0 = time.perf_counter()
            latencies = _theirs_append(recorder, mode, events, per_append)
            out[mode] = (time.perf_counter() - t0, latencies)
        notifications = recorder.max_notification_id()
        expected = WARMUP_STREAMS * STREAM_LENGTH + params.single + params.batch
        assert notifications == expected, f"{notifications} events recorded, {expected} written"
        return out
    finally:
        datastore.close()


async def bench_store(params: Params) -> list[Figure]:
    ours = await bench_store_ours(params)
    schema = _schema("es")
    await _execute(f"CREATE SCHEMA {schema}")
    try:
        theirs = await asyncio.to_thread(bench_store_theirs, params, schema)
    finally:
        await _drop_schema(schema)
    baseline = f"eventsourcing {metadata.version('eventsourcing')} PostgresApplicationRecorder (psycopg 3)"
    notes = (
        "ours: per append an advisory lock, head read, hash-chained envelopes, events + outbox rows,"
        " NOTIFY (asyncpg); theirs: per insert_events a transaction with LOCK TABLE, NOTIFY and"
        " one row per event (psycopg 3 pipeline); same payload bytes, streams of"
        f" {STREAM_LENGTH} events"
    )
    figures = []
    for mode, events, per_append in (("single", params.single, 1), ("batch", params.batch, BATCH)):
        (ours_s, ours_lat), (theirs_s, theirs_lat) = ours[mode], theirs[mode]
        figures.append(
            Figure(
                name=f"store append, {mode} ({per_append}/append)",
                label=f"append {mode} ({per_append}/tx)",
                unit="events/s",
                baseline_label="eventsourcing",
                count=events,
                ours_s=ours_s,
                baseline_name=baseline,
                baseline_s=theirs_s,
                notes=notes,
                extra={
                    "events_per_append": per_append,
                    "append_latency": {
                        "ours": latency_summary(ours_lat),
                        "baseline": latency_summary(theirs_lat),
                    },
                },
            )
        )
    return figures


# --- 2. outbox relay --------------------------------------------------------------------------


async def _topic_count(topic: str, partitions: int) -> int:
    """Committed records on the topic, read (offsets also count transaction markers)."""
    return len(await audit.read_topics([topic]))


async def _delete_topics(names: list[str]) -> None:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka().bootstrap, **settings.kafka().client_options()
    )
    try:
        await admin.start()
        await admin.delete_topics(names)
    except Exception as exc:  # best effort: a leftover bench topic is harmless
        print(f"could not delete topics {names}: {exc!r}", file=sys.stderr)
    finally:
        await admin.close()


RELAY_RUNS = 3
"""Runs of the relay and of the bare producer, alternated; the figure is each one's median (the bare
producer's own rate varied by 2x between runs of one bench)."""


async def _time_relay(
    pool: asyncpg.Pool, schema: str, relay_settings: RelaySettings, topic: str, expected: int
) -> float:
    """Seconds for one term of the relay to publish every pending row."""
    relay = OutboxRelay(pool, settings.kafka(), schema=schema, settings=relay_settings)
    async with relay.producing() as producer:
        await producer.partitions_for(topic)
        await _checkpoint()
        t0 = time.perf_counter()
        drained = 0
        while n := await relay.publish_pending():
            drained += n
        ours_s = time.perf_counter() - t0
    pending = await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
    assert drained == expected and pending == 0, f"relay drained {drained}, {pending} pending"
    return ours_s


async def _time_bare_producer(
    messages: list[tuple[bytes, bytes, list[tuple[str, bytes]]]], topic: str, linger_ms: int
) -> float:
    """Seconds for a bare producer to send the same records, their futures gathered."""
    bare = make_producer(settings.kafka(), linger_ms=linger_ms)
    await bare.start()
    try:
        await bare.partitions_for(topic)
        t0 = time.perf_counter()
        futures = [
            await bare.send(topic, value=body, key=key, headers=headers) for key, body, headers in messages
        ]
        await asyncio.gather(*futures)
        return time.perf_counter() - t0
    finally:
        await bare.stop()


async def bench_relay(params: Params) -> Figure:
    schema = _schema("relay")
    tag = uuid.uuid4().hex[:8]
    relay_topic, bare_topic = f"zm.bench.relay.{tag}", f"zm.bench.bare.{tag}"
    await _migrated(schema)
    await ensure_topics(settings.kafka(), [relay_topic, bare_topic], params.partitions)
    pool = await create_pool(settings.postgres(), schema, min_size=1, max_size=2)
    try:
        # Not timed: the store fills the outbox (its topic is then pointed at the bench topic).
        store = EventStore(pool, schema=schema, context=CONTEXT)
        await _append_streams(store, "relay", params.relay, BATCH)
        await pool.execute("UPDATE outbox SET topic = $1", relay_topic)
        # That rewrote every row: leave the table as the store left it (no dead versions).
        await pool.execute("VACUUM ANALYZE outbox")
        rows = await pool.fetch("SELECT key, body, headers FROM outbox ORDER BY id")
        messages = [
            (
                row["key"].encode(),
                bytes(row["body"]),
                [(k, str(v).encode()) for k, v in row["headers"].items()],
            )
            for row in rows
        ]
        body_bytes = statistics.mean(len(m[1]) for m in messages)

        relay_settings = RelaySettings(batch_size=params.relay_batch_size, linger_ms=params.linger_ms)
        ours_runs, bare_runs = [], []
        for run in range(RELAY_RUNS):
            if run:
                # Not timed: every row pending again, the table as the store left it.
                await pool.execute("UPDATE outbox SET published_at = NULL")
                await pool.execute("VACUUM ANALYZE outbox")
            ours_runs.append(await _time_relay(pool, schema, relay_settings, relay_topic, params.relay))
            bare_runs.append(await _time_bare_producer(messages, bare_topic, params.linger_ms))
        ours_s, bare_s = statistics.median(ours_runs), statistics.median(bare_runs)

        on_topics = {
            relay_topic: await _topic_count(relay_topic, params.partitions),
            bare_topic: await _topic_count(bare_topic, params.partitions),
        }
        return Figure(
            name="outbox relay to Kafka",
            label="relay to Kafka",
            unit="events/s",
            baseline_label="bare producer",
            count=params.relay,
            ours_s=ours_s,
            baseline_name=f"aiokafka {metadata.version('aiokafka')} via make_producer, futures gathered",
            baseline_s=bare_s,
            notes=(
                f"OutboxRelay.drain(), batches of {params.relay_batch_size} (select, send, gather,"
                " mark published); both: enable_idempotence, acks=all,"
                f" linger_ms={params.linger_ms}, {params.partitions} partitions,"
                f" {params.relay // STREAM_LENGTH} keys; median of {RELAY_RUNS} runs of each, alternated"
            ),
            extra={
                "mean_body_bytes": round(body_bytes, 1),
                "records_on_topics": on_topics,
                "runs_s": {
                    "ours": [round(t, 3) for t in ours_runs],
                    "baseline": [round(t, 3) for t in bare_runs],
                },
            },
        )
    finally:
        await pool.close()
        await _drop_schema(schema)
        await _delete_topics([relay_topic, bare_topic])


# --- 3. audit verification -------------------------------------------------------------------


async def filled_and_relayed(
    pool: asyncpg.Pool, schema: str, context: str, events: int, signer: ServiceKey
) -> str:
    """Not timed: `events` appended (streams of STREAM_LENGTH, signed by `signer`) and relayed to
    the context's events topic; returns the topic."""
    topic = events_topic(JURISDICTION, context)
    await ensure_topics(settings.kafka(), [topic], PARTITIONS)
    store = EventStore(pool, schema=schema, context=context, signer=signer)
    await _append_streams(store, "verify", events, BATCH)
    relay = OutboxRelay(pool, settings.kafka(), schema=schema, settings=RelaySettings(batch_size=2000))
    assert await relay.drain() == events
    return topic


async def time_verify(pool: asyncpg.Pool, schema: str, context: str, keyring: Keyring) -> tuple[float, float]:
    """(ours, bare) seconds: the audit's verification of one service (chains, signatures, the
    Kafka copy of every event), against a bare read of the same rows and the same topics."""
    topic = events_topic(JURISDICTION, context)
    await _checkpoint()
    t0 = time.perf_counter()
    report = await verify_service(context, schema, pool, keyring, [JURISDICTION])
    ours_s = time.perf_counter() - t0
    assert report.ok, report.lines()
    t0 = time.perf_counter()
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        rows = [r async for r in conn.cursor(f"SELECT {STORE_COLUMNS} FROM events", prefetch=2000)]
    records = await audit.read_topics([topic])
    bare_s = time.perf_counter() - t0
    assert len(rows) == len(records) == report.checked[context]["events"], (len(rows), len(records))
    return ours_s, bare_s


async def bench_verify(params: Params) -> Figure:
    tag = uuid.uuid4().hex[:8]
    schema, context = _schema("verify"), f"bench{tag}"
    signer = ServiceKey(context, Ed25519PrivateKey.generate())
    await _migrated(schema)
    pool = await create_pool(settings.postgres(), schema, min_size=1, max_size=2)
    try:
        await filled_and_relayed(pool, schema, context, params.verify, signer)
        ours_s, bare_s = await time_verify(pool, schema, context, Keyring.of(signer))
        return Figure(
            name="audit verification of one service",
            label="audit verify",
            unit="events/s",
            baseline_label="bare read",
            count=params.verify,
            ours_s=ours_s,
            baseline_name="asyncpg cursor over the same columns of events + read_topics of the same topic",
            baseline_s=bare_s,
            notes=(
                "ours: zhengming.audit.verify_service (each stream's versions, prev_hash, recomputed"
                " hash and Ed25519 signature; each Kafka copy decoded, hash-checked, its signature"
                " checked, matched to its row, key order); baseline: the same rows and records read"
                " without any check"
            ),
        )
    finally:
        await pool.close()
        await _drop_schema(schema)
        await _delete_topics([events_topic(JURISDICTION, context)])


# --- environment and output -------------------------------------------------------------------


def _first_line(path: str, prefix: str) -> str | None:
    with contextlib.suppress(OSError):
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
    return None


def _kafka_version() -> str | None:
    jars = sorted(settings.local().kafka_libs.glob("kafka-clients-*.jar"))
    return jars[0].stem.removeprefix("kafka-clients-") if jars else None


def _git() -> dict[str, Any]:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            # The bench's own results (the last run's latest.json) do not make the code dirty.
            ["git", "status", "--porcelain", "--", ".", ":!bench/results"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return {}
    return {"commit": head, "dirty": bool(dirty)}


async def _postgres_info() -> dict[str, Any]:
    conn = await _connect()
    try:
        info: dict[str, Any] = {"version": await conn.fetchval("SHOW server_version")}
        for name in ("synchronous_commit", "fsync", "shared_buffers", "wal_level"):
            info[name] = await conn.fetchval(f"SHOW {name}")
        return info
    finally:
        await conn.close()


def _versions(*packages: str) -> dict[str, str]:
    out = {}
    for name in packages:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


def machine_info(postgres: dict[str, Any]) -> dict[str, Any]:
    mem = _first_line("/proc/meminfo", "MemTotal")
    return {
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_count": os.cpu_count(),
        "cpu_model": _first_line("/proc/cpuinfo", "model name") or platform.processor() or None,
        "memory": mem,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "postgres": postgres,
        "kafka": {"version": _kafka_version(), "bootstrap": settings.kafka().bootstrap},
        "packages": _versions(
            "asyncpg", "aiokafka", "eventsourcing", "psycopg", "pydantic", "fastapi", "uvicorn", "httpx"
        ),
    }


def _loadavg() -> list[float]:
    with contextlib.suppress(OSError):
        return [round(x, 2) for x in os.getloadavg()]
    return []


def print_rates(figures: Sequence[Figure], console: Console) -> None:
    table = Table(title="zhengming bench: rates; ratio = ours / baseline, same run, same machine")
    table.add_column("figure", no_wrap=True)
    table.add_column("n", justify="right")
    table.add_column("ours /s", justify="right", style="bold")
    table.add_column("baseline", no_wrap=True)
    table.add_column("base /s", justify="right")
    table.add_column("ratio", justify="right", style="bold")
    table.add_column("unit")
    for f in figures:
        table.add_row(
            f.label,
            f"{f.count:,}",
            f"{f.ours_rate:,.0f}" if f.ours_rate >= 100 else f"{f.ours_rate:,.2f}",
            f.baseline_label,
            f"{f.baseline_rate:,.0f}" if f.baseline_rate >= 100 else f"{f.baseline_rate:,.2f}",
            f"{f.ratio:.2f}x",
            f.unit,
        )
    console.print(table)
    for label, name in dict((f.baseline_label, f.baseline_name) for f in figures).items():
        console.print(f"  {label}: {name}", soft_wrap=True)


def _ms(row: StepRow | None, key: str, summary: str = "ours") -> str:
    if row is None:
        return "-"
    value = (row.ours if summary == "ours" else row.baseline).get(key)
    return "-" if value is None else f"{float(value):,.1f}"


BASELINE_SHORT = {"command": "/healthz", "hop": "kafka rtt", "case": "15x /healthz"}


def print_latency(result: WorkflowResult, p: WorkflowParams, console: Console) -> None:
    table = Table(
        title=(
            f"workflow latency, ms: closed loop ({p.concurrency} at a time) and open loop"
            f" ({p.rate:g}/s); baseline sampled during the closed loop; ratio = ours p50 / baseline p50"
        )
    )
    for name, justify in (
        ("step", "left"),
        ("service", "left"),
        ("n", "right"),
        ("closed p50", "right"),
        ("closed p99", "right"),
        ("open p50", "right"),
        ("open p99", "right"),
        ("baseline", "left"),
        ("base p50", "right"),
        ("base p99", "right"),
        ("ratio", "right"),
    ):
        table.add_column(name, justify=justify, no_wrap=name in ("step", "baseline"))  # type: ignore[arg-type]
    opened = {r.step: r for r in result.open_rows}
    for kind in ("command", "hop", "case"):
        for row in (r for r in result.closed_rows if r.kind == kind):
            other = opened.get(row.step)
            ratio = row.ratio("p50_ms")
            table.add_row(
                row.step,
                row.service,
                str(row.ours.get("n", 0)),
                _ms(row, "p50_ms"),
                _ms(row, "p99_ms"),
                _ms(other, "p50_ms"),
                _ms(other, "p99_ms"),
                BASELINE_SHORT[row.kind],
                _ms(row, "p50_ms", "baseline"),
                _ms(row, "p99_ms", "baseline"),
                "-" if ratio is None else f"{ratio:.1f}x",
                style="bold" if kind == "case" else None,
            )
        if kind != "case":
            table.add_section()
    console.print(table)
    console.print(
        f"  hops: from the command's response to the first poll that sees the effect, polled every"
        f" {p.poll_ms:g} ms (resolution: the interval plus one GET); /healthz and the Kafka round trip"
        f" sampled every {p.sample_ms:g} ms each while the loop ran",
        soft_wrap=True,
    )


def print_notes(
    figures: Sequence[Figure], params: Params, result: WorkflowResult | None, console: Console
) -> None:
    console.print(
        f"store/relay: payload {len(payload_bytes(0))} bytes of JSON; streams of {params.stream_length}"
        f" events; relay batch {params.relay_batch_size}, linger {params.linger_ms} ms,"
        f" {params.partitions} partitions",
        soft_wrap=True,
    )
    for f in figures:
        if "equal" in f.extra and f.label != "replay all":
            console.print(
                f"{f.label}: {f.count:,} events; read models equal to the live ones: {f.extra['equal']}",
                soft_wrap=True,
            )
    if result is not None:
        for f in result.figures:
            console.print(
                f"{f.label}: {f.extra['completed']} completed, {f.extra['failed']} failed,"
                f" {f.extra['http_commands']:,} commands, {f.extra['concurrency_retries']} retries"
                f" on concurrency conflicts, {f.extra['polls']:,} polls"
                + (f", peak {f.extra['peak_in_flight']} in flight" if "peak_in_flight" in f.extra else ""),
                soft_wrap=True,
            )
        for f in result.figures:
            cpu = f.extra["cpu"]
            per_case = ", ".join(f"{k} {v:g}" for k, v in cpu["cpu_ms_per_case"].items())
            console.print(
                f"{f.label}: CPU ms per case: {per_case}; everything together kept"
                f" {100 * cpu['stack_share_of_cores']:.0f}% of {cpu['cores']} cores busy",
                soft_wrap=True,
            )
        idle = ", ".join(f"{k} {1000 * v:g}" for k, v in result.json["idle_cpu_s_per_s"].items())
        console.print(f"idle stack (nothing offered), CPU ms per second: {idle}", soft_wrap=True)
        for failure in result.failures[:5]:
            console.print(f"[red]failed[/]: {failure}", soft_wrap=True, highlight=False)


def parse_args(argv: Sequence[str] | None = None) -> Params:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"small sizes: {QUICK}, workflow {WORKFLOW_QUICK}",
    )
    parser.add_argument(
        "--events",
        type=int,
        help=f"batch-append and relay events (single appends: a quarter of it); default {DEFAULTS['batch']}",
    )
    parser.add_argument("--single", type=int, help="events appended one per append")
    parser.add_argument("--batch", type=int, help=f"events appended {BATCH} per append")
    parser.add_argument("--relay", type=int, help="events relayed to Kafka")
    parser.add_argument("--verify", type=int, help="events whose audit verification is timed")
    parser.add_argument(
        "--growth",
        help=(
            f"comma-separated event counts at which append, relay and verify are measured again"
            f" (default {','.join(map(str, GROWTH))}; --quick {','.join(map(str, GROWTH_QUICK))};"
            " 'none' to skip)"
        ),
    )
    w = WorkflowParams()
    parser.add_argument("--cases", type=int, help=f"closed-loop cases (default {w.cases})")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=w.concurrency,
        help="closed-loop cases at a time (default %(default)s)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=w.rate,
        help="open-loop reports started per second (default %(default)s)",
    )
    parser.add_argument(
        "--duration", type=float, help=f"open-loop seconds of arrivals (default {w.duration_s:g})"
    )
    parser.add_argument(
        "--poll-ms", type=float, default=w.poll_ms, help="poll interval of the hops (default %(default)s)"
    )
    parser.add_argument(
        "--sample-ms",
        type=float,
        default=w.sample_ms,
        help="baseline sampling interval per service during the loops (default %(default)s)",
    )
    args = parser.parse_args(argv)
    sizes = dict(QUICK if args.quick else DEFAULTS)
    if args.events is not None:
        sizes = {k: args.events for k in DEFAULTS} | {"single": args.events // 4}
    for name in sizes:
        if getattr(args, name) is not None:
            sizes[name] = getattr(args, name)
    # Whole streams, so both stores see the same layout; at least one stream each.
    rounded = {k: max(STREAM_LENGTH, v // STREAM_LENGTH * STREAM_LENGTH) for k, v in sizes.items()}
    workflow = WorkflowParams(
        cases=args.cases or int(WORKFLOW_QUICK["cases"] if args.quick else w.cases),
        concurrency=max(1, args.concurrency),
        rate=args.rate,
        duration_s=args.duration or (WORKFLOW_QUICK["duration_s"] if args.quick else w.duration_s),
        poll_ms=args.poll_ms,
        sample_ms=args.sample_ms,
    )
    growth = GROWTH_QUICK if args.quick else GROWTH
    if args.growth is not None:
        growth = () if args.growth == "none" else tuple(int(n) for n in args.growth.split(",") if n)
    # Whole streams here too.
    growth = tuple(max(STREAM_LENGTH, n // STREAM_LENGTH * STREAM_LENGTH) for n in growth)
    return Params(**rounded, growth=growth, workflow=workflow)


async def run_store_relay(params: Params, console: Console) -> tuple[list[Figure], dict[str, Any]]:
    postgres = await _postgres_info()
    figures: list[Figure] = []
    with console.status("event store appends (ours, then eventsourcing)…"):
        figures += await bench_store(params)
    with console.status("outbox relay to Kafka (relay, then bare producer)…"):
        figures.append(await bench_relay(params))
    with console.status("audit verification (verify, then bare read)…"):
        figures.append(await bench_verify(params))
    if params.growth:
        from bench.growth import store_relay_verify_growth  # it builds on this module

        with console.status(f"growth: append, relay and verify at {params.growth} events…"):
            figures += await store_relay_verify_growth(params, params.growth)
    return figures, postgres


class Interrupted(Exception):
    """SIGTERM: stop like on Ctrl-C."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    from bench.console import bench_console
    from bench.replay import bench_replay
    from bench.replay_growth import replay_growth_figures
    from bench.workflow import bench_workflow

    env = stack.STACK.environment()
    dropped = stack.use_environment(env, only=True)
    params = parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 200)
    err = Console(stderr=True)
    started = datetime.now(UTC)
    load_before = _loadavg()
    phases: dict[str, float] = {}
    figures: list[Figure] = []
    workflow: WorkflowResult | None = None
    settled: dict[str, Any] = {}
    postgres: dict[str, Any] = {}
    console_info: dict[str, Any] = {}
    replay_growth: dict[str, Any] = {}

    def phase(name: str, since: float) -> None:
        phases[name] = round(time.perf_counter() - since, 2)

    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        t = time.perf_counter()
        stack.STACK.prepare()
        stack.start(with_services=False)
        phase("start Kafka and PostgreSQL", t)
        t = time.perf_counter()
        store_relay, postgres = asyncio.run(run_store_relay(params, console))
        figures += store_relay
        phase("store and relay", t)
        t = time.perf_counter()
        stack.start(with_services=True)
        phase("start the services", t)
        t = time.perf_counter()
        workflow = asyncio.run(bench_workflow(params.workflow, console))
        figures += workflow.figures
        phase("workflow", t)
        t = time.perf_counter()
        pages, console_info = asyncio.run(bench_console(console))
        figures += pages
        phase("console", t)
        t = time.perf_counter()
        replayed, settled = asyncio.run(bench_replay(console))
        figures += replayed
        phase("replay", t)
        if params.growth:  # replay at the --growth sizes (bench/replay_growth.py)
            t = time.perf_counter()
            grown, replay_growth = asyncio.run(replay_growth_figures(console, sizes=params.growth))
            figures += grown
            phase("replay growth", t)
    except (KeyboardInterrupt, Interrupted):
        err.print("\ninterrupted; stopping the bench's stack")
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave processes behind
        try:
            t = time.perf_counter()
            stack.stop()
            phase("stop", t)
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, previous)

    arguments = list(sys.argv[1:] if argv is None else argv)
    all_equal = all(bool(f.extra.get("equal", True)) for f in figures)
    failures = workflow.failures if workflow is not None else []
    result: dict[str, Any] = {
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": shlex.join(["python", "-m", "bench.run", *arguments]),
        "argv": [sys.executable, "-m", "bench.run", *arguments],
        "cwd": os.getcwd(),
        "git": _git(),
        "machine": {**machine_info(postgres), "loadavg_before": load_before, "loadavg_after": _loadavg()},
        "stack": {"environment": env, "dropped_from_environment": dropped},
        "parameters": {**asdict(params), "payload_bytes": len(payload_bytes(0))},
        "phases_s": phases,
        "figures": [f.as_json() for f in figures],
        "workflow": workflow.json if workflow is not None else None,
        "replay": {**settled, "all_equal": all_equal, "growth": replay_growth},
        "console": console_info,
        "workflow_failures": len(failures),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, ensure_ascii=False, indent=2) + "\n"
    path = RESULTS / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(text, encoding="utf-8")
    (RESULTS / "latest.json").write_text(text, encoding="utf-8")
    print_rates(figures, console)
    if workflow is not None:
        print_latency(workflow, params.workflow, console)
    print_notes(figures, params, workflow, console)
    console.print(
        f"machine: {result['machine']['nproc']} cores, load average {load_before} before and"
        f" {result['machine']['loadavg_after']} after; phases (s): {phases}",
        soft_wrap=True,
    )
    console.print(f"written: {path.relative_to(PROJECT_ROOT)} and bench/results/latest.json")
    if failures or not all_equal:
        console.print(
            "[bold red]problems[/]: "
            + "; ".join(
                ([f"{len(failures)} workflow case(s) failed"] if failures else [])
                + ([] if all_equal else ["a replay differs from the live read models"])
            )
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
