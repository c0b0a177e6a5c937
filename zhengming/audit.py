"""The audit trail for auditors and operators: a case's timeline across the four services, the
verification of every hash chain against Kafka and the signed checkpoints, replay of read models
from offset 0, and time travel to any instant."""

from __future__ import annotations

import asyncio
import heapq
import importlib
import itertools
import json
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import BaseModel, ValidationError
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from shared import checkpoint, rejections, settings, signing
from shared.auth import Principal, mint
from shared.db import Conn, create_pool, migrate, service_migrations
from shared.envelope import JURISDICTIONS, EventEnvelope
from shared.events import registry
from shared.runtime import Projector, ServiceDefinition
from shared.settings import SERVICES
from shared.store import _COLUMNS, EventStore, row_to_envelope
from shared.topics import CHECKPOINTS_TOPIC, events_topic, parse_events_topic

# Tables of the core migrations, not read models: replay neither rebuilds nor compares them
# (idempotency_keys holds the answers of HTTP commands, not state derived from events).
CORE_TABLES = frozenset(
    {
        "events",
        "outbox",
        "inbox",
        "subject_keys",
        "erased_subjects",
        "schema_migrations",
        "unsigned_events_before",
        "rejected_events",
        "idempotency_keys",
    }
)


# ---- timeline ---------------------------------------------------------------------------------


@dataclass
class TimelineEntry:
    """One step of a case: when, who, what, and the documents it produced."""

    service: str
    event_id: str
    event_type: str
    occurred_at: str
    recorded_at: str
    actor: dict[str, str]
    stream_id: str
    stream_version: int
    causation_id: str | None
    payload: dict[str, Any]
    hash_ok: bool
    documents: list[str] = field(default_factory=list)


def causal_order(entries: list[TimelineEntry]) -> list[TimelineEntry]:
    """Each event after its cause and after its stream predecessor; otherwise by business time,
    then by the time it was recorded."""
    by_id = {e.event_id: e for e in entries}
    after: dict[str, list[str]] = defaultdict(list)
    waiting: dict[str, int] = {e.event_id: 0 for e in entries}
    by_stream: dict[tuple[str, str], list[TimelineEntry]] = defaultdict(list)
    for e in entries:
        by_stream[(e.service, e.stream_id)].append(e)
    for stream in by_stream.values():
        stream.sort(key=lambda e: e.stream_version)
        for prev, following in itertools.pairwise(stream):
            after[prev.event_id].append(following.event_id)
            waiting[following.event_id] += 1
    for e in entries:
        if e.causation_id and e.causation_id in by_id:
            after[e.causation_id].append(e.event_id)
            waiting[e.event_id] += 1

    def rank(e: TimelineEntry) -> tuple[str, str, str]:
        return (e.occurred_at, e.recorded_at, e.event_id)

    ready = [(rank(by_id[i]), i) for i, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    ordered: list[TimelineEntry] = []
    while ready:
        _, event_id = heapq.heappop(ready)
        ordered.append(by_id[event_id])
        for nxt in after[event_id]:
            waiting[nxt] -= 1
            if waiting[nxt] == 0:
                heapq.heappush(ready, (rank(by_id[nxt]), nxt))
    return ordered


def _documents(event_type: str, payload: dict[str, Any], case_id: str) -> list[str]:
    docs = list(payload.get("documents") or [])
    if event_type == "ClarificationApproved":
        docs.append(f"{case_id}-approval_form")
    return docs


async def case_timeline(
    case_id: str, *, role: str = "auditor", jurisdiction: str, user: str | None = None
) -> list[TimelineEntry]:
    """Every event of one case in the four services, fetched over HTTP as `role` of
    `jurisdiction` (the reporter's identity is opened only for the intake role)."""
    principal = Principal(
        user_id=user or f"{role}-{jurisdiction}",
        role=role,
        unit=f"{JURISDICTIONS[jurisdiction]}纪委监委",
        jurisdictions=[jurisdiction],
    )
    headers = {"Authorization": f"Bearer {mint(principal)}"}
    entries: list[TimelineEntry] = []
    async with httpx.AsyncClient(timeout=30) as http:
        for service in SERVICES:
            url = f"{settings.services().url(service)}/audit/cases/{case_id}/events"
            response = await http.get(url, headers=headers)
            if response.status_code == 404:
                continue
            response.raise_for_status()
            for e in response.json():
                entries.append(
                    TimelineEntry(
                        service=service,
                        event_id=e["event_id"],
                        event_type=e["event_type"],
                        occurred_at=e["occurred_at"],
                        recorded_at=e["recorded_at"],
                        actor=e["actor"],
                        stream_id=e["stream_id"],
                        stream_version=e["stream_version"],
                        causation_id=e.get("causation_id"),
                        payload=e["payload"],
                        hash_ok=e["hash_ok"],
                        documents=_documents(e["event_type"], e["payload"], case_id),
                    )
                )
    return causal_order(entries)


def _what(entry: TimelineEntry) -> str:
    p = entry.payload
    reporter = p.get("reporter")
    parts: list[str] = []
    if isinstance(reporter, dict):
        if "identity" in reporter:
            parts.append(f"reporter: {reporter['identity']}")
        elif reporter.get("erased"):
            parts.append("reporter: (erased)")
        elif reporter.get("masked"):
            parts.append("reporter: (masked)")
    for key in (
        "channel",
        "method",
        "finding",
        "allegation_id",
        "state",
        "eligible",
        "passed",
        "forms",
        "level",
        "via",
        "round_id",
        "refusals",
        "reasons",
        "department",
        "visit_id",
    ):
        if key in p and p[key] not in (None, [], ""):
            parts.append(f"{key}={p[key]}")
    return ", ".join(str(x) for x in parts)


def render_timeline(entries: list[TimelineEntry]) -> Table:
    table = Table(title="audit timeline", show_lines=False)
    for column in ("when (business)", "service", "event", "who", "what", "document", "ok"):
        table.add_column(column)
    for e in entries:
        table.add_row(
            *(
                escape(cell)
                for cell in (
                    e.occurred_at[:10],
                    e.service,
                    e.event_type,
                    f"{e.actor['user_id']} ({e.actor['role']}, {e.actor['unit']})",
                    _what(e),
                    "\n".join(e.documents),
                    "✓" if e.hash_ok else "✗",
                )
            )
        )
    return table


# ---- verification -----------------------------------------------------------------------------


@dataclass
class Break:
    """The first broken link found."""

    service: str
    stream_id: str
    stream_version: int | None
    expected: str
    found: str
    reason: str

    def line(self) -> str:
        version = "-" if self.stream_version is None else self.stream_version
        return (
            f"BROKEN {self.service} stream {self.stream_id} version {version}: {self.reason};"
            f" expected {self.expected}, found {self.found}"
        )


@dataclass
class VerifyReport:
    checked: dict[str, dict[str, int]] = field(default_factory=dict)
    breaks: list[Break] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaks

    def lines(self) -> list[str]:
        out = [
            f"{service}: {c['events']} events in {c['streams']} streams, {c['kafka']} on Kafka,"
            f" {c['checkpoints']} signed checkpoints"
            for service, c in self.checked.items()
        ]
        out += self.notes
        out += [b.line() for b in self.breaks[:20]]
        out.append(
            "trail verified: every chain, Kafka copy and checkpoint holds"
            if self.ok
            else f"trail BROKEN: {len(self.breaks)} problem(s); first: {self.breaks[0].line()}"
        )
        return out


async def _service_pool(service: str) -> asyncpg.Pool:
    return await create_pool(settings.postgres(), service, min_size=1, max_size=2)


async def read_topics(
    topics: Iterable[str],
    on_record: Callable[[Any], Awaitable[None] | None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[Any]:
    """Every record of the topics from offset 0 up to their end at the time of the call."""
    wanted = sorted(set(topics))
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka().bootstrap, **settings.kafka().client_options()
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        described = await admin.describe_topics([t for t in wanted if t in existing])
    finally:
        await admin.close()
    partitions = [TopicPartition(d["topic"], p["partition"]) for d in described for p in d["partitions"]]
    records: list[Any] = []
    if not partitions:
        return records
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka().bootstrap,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_partition_fetch_bytes=32 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
        **settings.kafka().client_options(),
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        remaining = {tp for tp, end in ends.items() if end > 0}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=2000, max_records=5000)
            if not batch:
                break
            for tp, chunk in batch.items():
                for record in chunk:
                    if record.offset >= ends[tp]:
                        continue
                    if on_record is None:
                        records.append(record)
                    else:
                        result = on_record(record)
                        if result is not None:
                            await result
                if progress is not None:
                    progress(len(chunk))
            # Positions, not record offsets: a transaction's commit marker takes an offset too.
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return records


async def _wait_outbox_drained(pool: asyncpg.Pool, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    while True:
        pending: int = await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        if pending == 0 or time.monotonic() > deadline:
            return pending
        await asyncio.sleep(0.5)


async def verify_trail(
    jurisdiction: str | None = None,
    *,
    drain_timeout_s: float = 30,
    schemas: dict[str, str] | None = None,
    deployment: str | None = None,
) -> VerifyReport:
    """Every stream's chain and signatures in every service, the Kafka copy of every event (same
    ids and hashes, signed by the service owning the topic, none missing, none extra, each key in
    order), the events consumers rejected as forged, and the signed checkpoints. `schemas` maps a
    service to its schema when it is not the service's name; `deployment` is the checkpoints'
    (default: this deployment's group prefix)."""
    report = VerifyReport()
    keyring = signing.Keyring.load()
    codes = [jurisdiction] if jurisdiction else sorted(JURISDICTIONS)
    checkpoints = [
        checkpoint.Checkpoint.model_validate_json(r.value) for r in await read_topics([CHECKPOINTS_TOPIC])
    ]
    deployment = deployment or settings.services().group_prefix
    checkpoints = [c for c in checkpoints if c.deployment == deployment]
    for service in SERVICES:
        schema = (schemas or {}).get(service, service)
        pool = await _service_pool(schema)
        try:
            await _verify_service(
                service, schema, pool, codes, jurisdiction, checkpoints, keyring, report, drain_timeout_s
            )
        finally:
            await pool.close()
    return report


def _kafka_integrity(
    envelope: EventEnvelope,
    topic: str,
    service: str,
    keyring: signing.Keyring,
    row: asyncpg.Record | None,
    unsigned_before: int,
) -> tuple[str, str] | None:
    """Why a Kafka record does not vouch for itself (code, reason), or None when it does. An
    unsigned copy passes only as the copy of a stored event older than signing."""
    if not envelope.hash_ok():
        return "hash_mismatch", f"content does not match hash {envelope.hash}"
    owner = parse_events_topic(topic)
    if owner is None or owner != (envelope.jurisdiction, service):
        return "wrong_topic", f"event of {envelope.jurisdiction} on {topic}"
    if (
        envelope.signature is None
        and row is not None
        and row["global_position"] <= unsigned_before
        and row["hash"] == envelope.hash
    ):
        return None
    try:
        keyring.check(envelope, service)
    except signing.SignatureProblem as problem:
        return problem.code, problem.reason
    return None


async def _verify_service(
    service: str,
    schema: str,
    pool: asyncpg.Pool,
    codes: list[str],
    jurisdiction: str | None,
    checkpoints: list[checkpoint.Checkpoint],
    keyring: signing.Keyring,
    report: VerifyReport,
    drain_timeout_s: float,
) -> None:
    store = EventStore(pool, schema=schema, context=service)
    broken = await store.verify(keyring)
    unsigned_before = await store.unsigned_before()
    if broken is not None:
        report.breaks.append(
            Break(
                service,
                broken.stream_id,
                broken.stream_version,
                broken.expected,
                broken.found,
                f"hash chain ({broken.reason})",
            )
        )
    pending = await _wait_outbox_drained(pool, drain_timeout_s)
    rows = await pool.fetch(
        "SELECT event_id, hash, stream_id, stream_version, case_id, jurisdiction, global_position"
        " FROM events" + (" WHERE jurisdiction = $1" if jurisdiction else ""),
        *([jurisdiction] if jurisdiction else []),
    )
    in_db = {str(r["event_id"]): r for r in rows}
    unpublished = {
        str(r["event_id"]) for r in await pool.fetch("SELECT event_id FROM outbox WHERE published_at IS NULL")
    }
    if pending:
        report.notes.append(f"{service}: {pending} event(s) still in the outbox, not yet on Kafka")
    seen: dict[str, Any] = {}
    last_position: dict[tuple[str, int, bytes], int] = {}
    records = await read_topics([events_topic(j, service) for j in codes])
    for record in records:
        try:
            envelope = EventEnvelope.from_bytes(record.value)
        except ValidationError:
            report.breaks.append(
                Break(
                    service,
                    "?",
                    None,
                    "an event envelope",
                    "undecodable record",
                    f"Kafka {record.topic}[{record.partition}]@{record.offset}",
                )
            )
            continue
        event_id = str(envelope.event_id)
        row = in_db.get(event_id)
        where = f"Kafka {record.topic}[{record.partition}]@{record.offset}"
        # Before the redelivery check: a forged copy may reuse the id of a genuine event.
        problem = _kafka_integrity(envelope, record.topic, service, keyring, row, unsigned_before)
        if problem is not None:
            code, reason = problem
            report.breaks.append(
                Break(
                    service,
                    envelope.stream_id,
                    envelope.stream_version,
                    f"an event signed by {service}",
                    envelope.key_id or "(unsigned)",
                    f"forged or altered event {event_id} on {where}: {code}: {reason}",
                )
            )
            continue
        if event_id in seen:
            continue  # a redelivery by the at-least-once relay: the same event, consumers drop it
        seen[event_id] = envelope
        if row is None:
            report.breaks.append(
                Break(
                    service,
                    envelope.stream_id,
                    envelope.stream_version,
                    "(not in store)",
                    envelope.hash,
                    f"event {event_id} on Kafka but not in the store ({where})",
                )
            )
            continue
        if row["hash"] != envelope.hash:
            report.breaks.append(
                Break(
                    service,
                    row["stream_id"],
                    row["stream_version"],
                    envelope.hash,
                    row["hash"],
                    f"store and Kafka disagree ({where})",
                )
            )
        key = (record.topic, record.partition, record.key or b"")
        if last_position.get(key, 0) > row["global_position"]:
            report.breaks.append(
                Break(
                    service,
                    row["stream_id"],
                    row["stream_version"],
                    "key order",
                    "out of order",
                    f"key {key[2]!r} reordered on Kafka ({where})",
                )
            )
        last_position[key] = row["global_position"]
    for event_id, row in in_db.items():
        if event_id not in seen and event_id not in unpublished:
            report.breaks.append(
                Break(
                    service,
                    row["stream_id"],
                    row["stream_version"],
                    row["hash"],
                    "(missing)",
                    f"event {event_id} in the store but not on Kafka",
                )
            )
    async with pool.acquire() as conn:
        rejected = await rejections.listed(conn, jurisdiction)
    for r in rejected:
        report.breaks.append(
            Break(service, "(consumer)", None, "no forged or altered event on its topics", r.code, r.line())
        )
    ok_checkpoints = await _check_checkpoints(service, pool, checkpoints, keyring, report)
    report.checked[service] = {
        "events": len(in_db),
        "streams": len({r["stream_id"] for r in rows}),
        "kafka": len(seen),
        "checkpoints": ok_checkpoints,
    }


async def _check_checkpoints(
    service: str,
    pool: asyncpg.Pool,
    checkpoints: list[checkpoint.Checkpoint],
    keyring: signing.Keyring,
    report: VerifyReport,
) -> int:
    mine = [c for c in checkpoints if c.service == service]
    if not mine:
        report.notes.append(f"{service}: no signed checkpoint published yet")
        return 0
    for c in mine:
        if not checkpoint.signed_by_service(c, keyring):
            report.breaks.append(
                Break(
                    service,
                    "(checkpoint)",
                    None,
                    "a valid Ed25519 signature",
                    "invalid signature",
                    f"checkpoint of {c.taken_at.isoformat()}",
                )
            )
            return len(mine)
    latest = max(mine, key=lambda c: (c.taken_at, c.events))
    stored = {
        (r["stream_id"], r["stream_version"]): r["hash"]
        for r in await pool.fetch("SELECT stream_id, stream_version, hash FROM events")
    }
    for head in latest.heads:
        found = stored.get((head.stream_id, head.version))
        if found != head.hash:
            report.breaks.append(
                Break(
                    service,
                    head.stream_id,
                    head.version,
                    head.hash,
                    found or "(missing)",
                    f"differs from the signed checkpoint of {latest.taken_at.isoformat()}",
                )
            )
            break
    return len(mine)


async def publish_checkpoint(service: str) -> checkpoint.Checkpoint:
    """Take and publish a checkpoint now (what the services do periodically)."""
    pool = await _service_pool(service)
    producer = checkpoint.make_checkpoint_producer(settings.kafka())
    await producer.start()
    try:
        async with pool.acquire() as conn:
            deployment = settings.services().group_prefix
            key = signing.service_key(service)
            taken = await checkpoint.take(conn, service, key.private, deployment, key.key_id)
        await producer.send_and_wait(
            CHECKPOINTS_TOPIC, taken.model_dump_json().encode(), key=f"{deployment}/{service}".encode()
        )
        return taken
    finally:
        await producer.stop()
        await pool.close()


# ---- replay -----------------------------------------------------------------------------------


@dataclass
class TableDiff:
    table: str
    only_live: list[str]
    only_replayed: list[str]


@dataclass
class ReplayReport:
    service: str
    schema: str
    events: int
    seconds: float
    diffs: list[TableDiff]
    tables: list[str]
    switched: bool = False

    @property
    def equal(self) -> bool:
        return not self.diffs

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def lines(self) -> list[str]:
        out = [
            f"{self.service}: replayed {self.events} events in {self.seconds:.1f}s"
            f" ({self.rate:,.0f} events/s) into {self.schema}; tables {', '.join(self.tables)}"
        ]
        if self.equal:
            out.append(f"{self.service}: read models equal to the live ones")
        for d in self.diffs:
            out.append(
                f"{self.service}.{d.table}: {len(d.only_live)} row(s) only live,"
                f" {len(d.only_replayed)} only replayed"
            )
            out += [f"  live:     {row}" for row in d.only_live[:3]]
            out += [f"  replayed: {row}" for row in d.only_replayed[:3]]
        if self.switched:
            out.append(f"{self.service}: switched over to the rebuilt read models")
        return out


def definition_of(service: str) -> ServiceDefinition:
    definition = importlib.import_module(f"services.{service}.main").definition
    assert isinstance(definition, ServiceDefinition)
    return definition


def replay_plan(service: str) -> tuple[dict[str, Projector], set[str]]:
    """Which foreign contexts feed pure read models of a service, and which tables are not
    projections (kept out of the comparison)."""
    module = importlib.import_module(f"services.{service}.main")
    foreign: dict[str, Projector] = dict(getattr(module, "REPLAY_FOREIGN", {}))
    exclude: set[str] = set(getattr(module, "REPLAY_EXCLUDE", set()))
    return foreign, exclude


async def read_model_tables(conn: Conn, schema: str, exclude: set[str]) -> list[str]:
    rows = await conn.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = $1"
        " AND table_type = 'BASE TABLE' ORDER BY table_name",
        schema,
    )
    return [r["table_name"] for r in rows if r["table_name"] not in CORE_TABLES | exclude]


async def _has_column(conn: Conn, schema: str, table: str, column: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT 1 FROM information_schema.columns"
            " WHERE table_schema = $1 AND table_name = $2 AND column_name = $3",
            schema,
            table,
            column,
        )
    )


async def compare_read_models(
    conn: Conn, live: str, rebuilt: str, tables: list[str], jurisdiction: str | None
) -> list[TableDiff]:
    diffs = []
    for table in tables:
        where = ""
        args: list[Any] = []
        if jurisdiction and await _has_column(conn, live, table, "jurisdiction"):
            where, args = " WHERE t.jurisdiction = $1", [jurisdiction]
        live_rows = {
            r[0] for r in await conn.fetch(f"SELECT to_jsonb(t)::text FROM {live}.{table} t{where}", *args)
        }
        new_rows = {
            r[0] for r in await conn.fetch(f"SELECT to_jsonb(t)::text FROM {rebuilt}.{table} t{where}", *args)
        }
        if live_rows != new_rows:
            diffs.append(TableDiff(table, sorted(live_rows - new_rows), sorted(new_rows - live_rows)))
    return diffs


class Replayer:
    """Applies events to a fresh schema's read models: own events through the service's projector,
    foreign ones through its pure read-model functions. Never a reaction, never the outbox."""

    def __init__(self, service: str, pool: asyncpg.Pool) -> None:
        self.service = service
        self.pool = pool
        self.definition = definition_of(service)
        self.foreign, self.exclude = replay_plan(service)
        self.applied = 0

    def contexts(self) -> list[str]:
        return [self.service, *sorted(self.foreign)]

    async def apply_batch(self, envelopes: list[EventEnvelope]) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            for envelope in envelopes:
                fresh = await conn.fetchval(
                    "INSERT INTO inbox (consumer, event_id, topic, kafka_partition, kafka_offset)"
                    " VALUES ('replay', $1, '', 0, 0) ON CONFLICT DO NOTHING RETURNING 1",
                    envelope.event_id,
                )
                if not fresh:
                    continue
                payload = registry.decode(envelope)
                context = _context_of(payload)
                if context == self.service:
                    if self.definition.projector is not None:
                        await self.definition.projector(conn, envelope, payload)
                elif context in self.foreign:
                    await self.foreign[context](conn, envelope, payload)
                self.applied += 1


def _context_of(payload: BaseModel) -> str:
    return type(payload).__module__.rsplit(".", 1)[-1]


async def _fresh_schema(service: str, label: str) -> str:
    schema = f"{service}_{label}_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(settings.postgres().dsn())
    try:
        await migrate(conn, schema, service_migrations(service))
    finally:
        await conn.close()
    return schema


async def drop_schema(schema: str) -> None:
    conn = await asyncpg.connect(settings.postgres().dsn())
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await conn.close()


async def replay(
    service: str,
    *,
    jurisdiction: str | None = None,
    switch: bool = False,
    keep_schema: bool = False,
    show_progress: bool = True,
) -> ReplayReport:
    """Rebuild a service's read models from Kafka offset 0 into a fresh schema, compare them
    with the live ones, and optionally switch the live read models over to the rebuilt ones."""
    schema = await _fresh_schema(service, "replay")
    pool = await create_pool(settings.postgres(), schema, min_size=1, max_size=2)
    replayer = Replayer(service, pool)
    codes = [jurisdiction] if jurisdiction else sorted(JURISDICTIONS)
    topics = [events_topic(j, c) for j in codes for c in replayer.contexts()]
    batch: list[EventEnvelope] = []
    started = time.monotonic()
    progress = Progress(
        TextColumn(f"replay {service}"),
        BarColumn(),
        TextColumn("{task.completed:,} records"),
        TextColumn("{task.fields[rate]} events/s"),
        TimeElapsedColumn(),
        disable=not show_progress,
        transient=True,
    )
    task = progress.add_task("replay", total=None, rate="0")
    records = 0

    async def on_record(record: Any) -> None:
        nonlocal records
        records += 1
        batch.append(EventEnvelope.from_bytes(record.value))
        if len(batch) >= 500:
            await replayer.apply_batch(batch)
            batch.clear()

    def advance(n: int) -> None:
        elapsed = max(time.monotonic() - started, 1e-6)
        progress.update(task, advance=n, rate=f"{records / elapsed:,.0f}")

    try:
        with progress:
            await read_topics(topics, on_record, advance)
            if batch:
                await replayer.apply_batch(batch)
        seconds = time.monotonic() - started
        async with pool.acquire() as conn:
            tables = await read_model_tables(conn, service, replayer.exclude)
            diffs = await compare_read_models(conn, service, schema, tables, jurisdiction)
            switched = False
            if switch and jurisdiction is None:
                await _switch(conn, service, schema, tables)
                switched = True
    finally:
        await pool.close()
        if not keep_schema:
            await drop_schema(schema)
    return ReplayReport(service, schema, records, seconds, diffs, tables, switched)


async def _switch(conn: Conn, live: str, rebuilt: str, tables: list[str]) -> None:
    """Replace the live read models by the rebuilt ones in one transaction (the event store stays)."""
    async with conn.transaction():
        for table in tables:
            await conn.execute(f"LOCK TABLE {live}.{table} IN ACCESS EXCLUSIVE MODE")
        for table in tables:
            await conn.execute(f"DELETE FROM {live}.{table}")
            await conn.execute(f"INSERT INTO {live}.{table} SELECT * FROM {rebuilt}.{table}")


# ---- time travel ------------------------------------------------------------------------------


async def as_of(instant: datetime, services: Iterable[str] = SERVICES) -> dict[str, str]:
    """Rebuild the read models of `services` from the stores with every event whose business
    time is at or before `instant`; returns the scratch schema of each (drop them when done)."""
    schemas: dict[str, str] = {}
    for service in services:
        schema = await _fresh_schema(service, "asof")
        pool = await create_pool(settings.postgres(), schema, min_size=1, max_size=2)
        try:
            replayer = Replayer(service, pool)
            for context in replayer.contexts():
                source = await create_pool(settings.postgres(), context, min_size=1, max_size=2)
                try:
                    async with source.acquire() as conn, conn.transaction(isolation="repeatable_read"):
                        cursor = conn.cursor(
                            f"SELECT {_COLUMNS} FROM events WHERE occurred_at <= $1 ORDER BY global_position",
                            instant,
                            prefetch=2000,
                        )
                        chunk: list[EventEnvelope] = []
                        async for row in cursor:
                            chunk.append(row_to_envelope(row))
                            if len(chunk) >= 1000:
                                await replayer.apply_batch(chunk)
                                chunk = []
                        if chunk:
                            await replayer.apply_batch(chunk)
                finally:
                    await source.close()
        finally:
            await pool.close()
        schemas[service] = schema
    return schemas


CASE_COLUMNS = ("case_id", "report_id", "matter_id")


async def rows_about(schema: str, column_values: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """Rows of every table of `schema` whose column equals the given value (the first column of
    `column_values` each table has)."""
    conn = await asyncpg.connect(settings.postgres().dsn())
    try:
        out: dict[str, list[dict[str, Any]]] = {}
        service = schema.split("_asof_")[0]
        _, exclude = replay_plan(service)
        for table in await read_model_tables(conn, schema, exclude):
            for column, value in column_values.items():
                if await _has_column(conn, schema, table, column):
                    rows = await conn.fetch(
                        f"SELECT to_jsonb(t)::text AS row FROM {schema}.{table} t WHERE t.{column} = $1",
                        value,
                    )
                    if rows:
                        out[table] = [json.loads(r["row"]) for r in rows]
                    break
        return out
    finally:
        await conn.close()


async def time_travel(
    instant: datetime,
    *,
    case: str | None = None,
    person: str | None = None,
    quarter: str | None = None,
    jurisdiction: str | None = None,
) -> dict[str, Any]:
    """Read models rebuilt from every event up to `instant`, then the rows asked for."""
    services = list(SERVICES) if case else ["archive"]
    schemas = await as_of(instant, services)
    try:
        if case is not None:
            return {
                "as_of": instant.isoformat(),
                "case_id": case,
                **{
                    s: await rows_about(schema, {c: case for c in CASE_COLUMNS})
                    for s, schema in schemas.items()
                },
            }
        if person is not None:
            return {
                "as_of": instant.isoformat(),
                "subject_id": person,
                "archive": await rows_about(schemas["archive"], {"subject_id": person}),
            }
        assert quarter is not None
        from services.archive import views
        from services.archive.domain import parse_quarter

        period = parse_quarter(quarter)
        codes = [jurisdiction] if jurisdiction else sorted(JURISDICTIONS)
        pool = await create_pool(settings.postgres(), schemas["archive"], min_size=1, max_size=1)
        try:
            async with pool.acquire() as conn:
                facts = await views.quarter_facts(conn, codes, period)
        finally:
            await pool.close()
        report = views.statistics_report(period, facts, rows_for=codes, city_wide=jurisdiction is None)
        return {"as_of": instant.isoformat(), "statistics": report.model_dump(mode="json")}
    finally:
        for schema in schemas.values():
            await drop_schema(schema)


def noon_before(day: Any) -> datetime:
    """The instant just before the business time of `day` (events of a day are at noon, China time)."""
    from datetime import time as clock

    from shared.events.common import BUSINESS_TZ

    return datetime.combine(day, clock(11, 59), tzinfo=BUSINESS_TZ)
