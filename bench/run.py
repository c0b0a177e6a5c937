"""Throughput of the event store and the outbox relay on the real PostgreSQL and Kafka.

Every figure comes with a baseline measured in the same run, on the same database or broker:

1. Event store appends (events/s), against the `eventsourcing` library's PostgreSQL application
   recorder (its own fresh schema), with the same payload bytes and the same stream layout:
   single (one event per append and transaction, sequential) and batch (100 events per append).
2. Outbox relay to Kafka (events/s): `OutboxRelay.drain()` of rows the store wrote beforehand,
   against a bare idempotent aiokafka producer (same settings) sending the same keys, bodies
   and headers, all futures gathered.

Usage: python -m bench.run [--events N] [--quick]   (`make bench` starts the infrastructure first)

Results go to bench/results/<UTC timestamp>.json and bench/results/latest.json. Nothing here
asserts a timing: the figures are recorded and printed, never judged.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shlex
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
from typing import Any

import asyncpg
import psycopg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from rich.console import Console
from rich.table import Table

from shared import settings
from shared.db import CORE_MIGRATIONS, create_pool, migrate
from shared.envelope import Actor, canonical_json
from shared.outbox import OutboxRelay, make_producer
from shared.settings import PROJECT_ROOT, RelaySettings
from shared.store import EventStore, NewEvent
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

DEFAULTS = {"single": 5000, "batch": 20000, "relay": 20000}
QUICK = {"single": 500, "batch": 2000, "relay": 2000}


@dataclass(frozen=True)
class Params:
    single: int
    batch: int
    relay: int
    batch_size: int = BATCH
    stream_length: int = STREAM_LENGTH
    relay_batch_size: int = field(default_factory=lambda: RelaySettings().batch_size)
    linger_ms: int = field(default_factory=lambda: RelaySettings().linger_ms)
    partitions: int = PARTITIONS


@dataclass
class Figure:
    """One measured figure and its baseline from the same run."""

    name: str
    events: int
    ours_s: float
    baseline_name: str
    baseline_s: float
    label: str
    baseline_label: str
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ours_eps(self) -> float:
        return self.events / self.ours_s

    @property
    def baseline_eps(self) -> float:
        return self.events / self.baseline_s

    @property
    def ratio(self) -> float:
        return self.ours_eps / self.baseline_eps

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "unit": "events/s",
            "events": self.events,
            "ours": {"seconds": round(self.ours_s, 4), "events_per_s": round(self.ours_eps, 1)},
            "baseline": {
                "name": self.baseline_name,
                "seconds": round(self.baseline_s, 4),
                "events_per_s": round(self.baseline_eps, 1),
            },
            "ratio_ours_over_baseline": round(self.ratio, 3),
            "notes": self.notes,
            **self.extra,
        }


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


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _latencies(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": _ms(statistics.median(ordered)),
        "p99_ms": _ms(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]),
        "max_ms": _ms(ordered[-1]),
    }


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
                baseline_label="eventsourcing",
                events=events,
                ours_s=ours_s,
                baseline_name=baseline,
                baseline_s=theirs_s,
                notes=notes,
                extra={
                    "events_per_append": per_append,
                    "append_latency": {"ours": _latencies(ours_lat), "baseline": _latencies(theirs_lat)},
                },
            )
        )
    return figures


# --- 2. outbox relay --------------------------------------------------------------------------


async def _topic_count(topic: str, partitions: int) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka().bootstrap, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        ends = await consumer.end_offsets(tps)
        begins = await consumer.beginning_offsets(tps)
        return sum(int(ends[tp]) - int(begins[tp]) for tp in tps)
    finally:
        await consumer.stop()


async def _delete_topics(names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka().bootstrap)
    try:
        await admin.start()
        await admin.delete_topics(names)
    except Exception as exc:  # best effort: a leftover bench topic is harmless
        print(f"could not delete topics {names}: {exc!r}", file=sys.stderr)
    finally:
        await admin.close()


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
        producer = make_producer(settings.kafka(), linger_ms=params.linger_ms)
        await producer.start()
        try:
            await producer.partitions_for(relay_topic)
            relay = OutboxRelay(pool, producer, schema=schema, settings=relay_settings)
            await _checkpoint()
            t0 = time.perf_counter()
            drained = await relay.drain()
            ours_s = time.perf_counter() - t0
        finally:
            await producer.stop()
        pending = await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        assert drained == params.relay and pending == 0, f"relay drained {drained}, {pending} pending"

        bare = make_producer(settings.kafka(), linger_ms=params.linger_ms)
        await bare.start()
        try:
            await bare.partitions_for(bare_topic)
            t0 = time.perf_counter()
            futures = [
                await bare.send(bare_topic, value=body, key=key, headers=headers)
                for key, body, headers in messages
            ]
            await asyncio.gather(*futures)
            bare_s = time.perf_counter() - t0
        finally:
            await bare.stop()

        on_topics = {
            relay_topic: await _topic_count(relay_topic, params.partitions),
            bare_topic: await _topic_count(bare_topic, params.partitions),
        }
        return Figure(
            name="outbox relay to Kafka",
            label="relay to Kafka",
            baseline_label="bare producer",
            events=params.relay,
            ours_s=ours_s,
            baseline_name=f"aiokafka {metadata.version('aiokafka')} via make_producer, futures gathered",
            baseline_s=bare_s,
            notes=(
                f"OutboxRelay.drain(), batches of {params.relay_batch_size} (select, send, gather,"
                " mark published); both: enable_idempotence, acks=all,"
                f" linger_ms={params.linger_ms}, {params.partitions} partitions,"
                f" {params.relay // STREAM_LENGTH} keys"
            ),
            extra={
                "mean_body_bytes": round(body_bytes, 1),
                "records_on_topics": on_topics,
            },
        )
    finally:
        await pool.close()
        await _drop_schema(schema)
        await _delete_topics([relay_topic, bare_topic])


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
            ["git", "status", "--porcelain"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
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
        "packages": _versions("asyncpg", "aiokafka", "eventsourcing", "psycopg", "pydantic"),
    }


def print_table(figures: Sequence[Figure], params: Params, console: Console) -> None:
    table = Table(title="zhengming bench: events/s, ratio = ours/baseline (same run)")
    table.add_column("figure", no_wrap=True)
    table.add_column("events", justify="right")
    table.add_column("ours ev/s", justify="right", style="bold")
    table.add_column("baseline", no_wrap=True)
    table.add_column("base ev/s", justify="right")
    table.add_column("ratio", justify="right", style="bold")
    for f in figures:
        table.add_row(
            f.label,
            f"{f.events:,}",
            f"{f.ours_eps:,.0f}",
            f.baseline_label,
            f"{f.baseline_eps:,.0f}",
            f"{f.ratio:.2f}x",
        )
    console.print(table)
    for label, name in dict((f.baseline_label, f.baseline_name) for f in figures).items():
        console.print(f"  {label}: {name}")
    console.print(
        f"payload {len(payload_bytes(0))} bytes of JSON; streams of {params.stream_length} events;"
        f" relay batch {params.relay_batch_size}, linger {params.linger_ms} ms,"
        f" {params.partitions} partitions"
    )


def parse_args(argv: Sequence[str] | None = None) -> Params:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--events",
        type=int,
        help=f"batch-append and relay events (single appends: a quarter of it); default {DEFAULTS['batch']}",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: " + str(QUICK))
    parser.add_argument("--single", type=int, help="events appended one per append")
    parser.add_argument("--batch", type=int, help=f"events appended {BATCH} per append")
    parser.add_argument("--relay", type=int, help="events relayed to Kafka")
    args = parser.parse_args(argv)
    sizes = dict(QUICK if args.quick else DEFAULTS)
    if args.events is not None:
        sizes = {"single": args.events // 4, "batch": args.events, "relay": args.events}
    for name in sizes:
        if getattr(args, name) is not None:
            sizes[name] = getattr(args, name)
    # Whole streams, so both stores see the same layout; at least one stream each.
    rounded = {k: max(STREAM_LENGTH, v // STREAM_LENGTH * STREAM_LENGTH) for k, v in sizes.items()}
    return Params(**rounded)


async def _check_infrastructure() -> str | None:
    try:
        conn = await _connect()
        await conn.close()
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"PostgreSQL at {settings.postgres().host}:{settings.postgres().port}: {exc}"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka().bootstrap, request_timeout_ms=5000)
    try:
        await asyncio.wait_for(admin.start(), 10)
    except Exception as exc:
        return f"Kafka at {settings.kafka().bootstrap}: {exc!r}"
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
    return None


async def run_all(params: Params, console: Console) -> tuple[list[Figure], dict[str, Any]]:
    if problem := await _check_infrastructure():
        raise SystemExit(f"{problem}\nStart the infrastructure: `zhengming up` (or run `make bench`).")
    postgres = await _postgres_info()
    figures: list[Figure] = []
    with console.status("event store appends (ours, then eventsourcing)…"):
        figures += await bench_store(params)
    with console.status("outbox relay to Kafka (relay, then bare producer)…"):
        figures.append(await bench_relay(params))
    return figures, postgres


def main(argv: Sequence[str] | None = None) -> int:
    params = parse_args(argv)
    console = Console()
    started = datetime.now(UTC)
    figures, postgres = asyncio.run(run_all(params, console))
    arguments = list(sys.argv[1:] if argv is None else argv)
    result = {
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": shlex.join(["python", "-m", "bench.run", *arguments]),
        "argv": [sys.executable, "-m", "bench.run", *arguments],
        "cwd": os.getcwd(),
        "git": _git(),
        "machine": machine_info(postgres),
        "parameters": {**asdict(params), "payload_bytes": len(payload_bytes(0))},
        "figures": [f.as_json() for f in figures],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, ensure_ascii=False, indent=2) + "\n"
    path = RESULTS / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(text, encoding="utf-8")
    (RESULTS / "latest.json").write_text(text, encoding="utf-8")
    print_table(figures, params, console)
    console.print(f"written: {path.relative_to(PROJECT_ROOT)} and bench/results/latest.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
