"""Replay of a service's read models from Kafka offset 0 into a fresh schema, compared with the
live ones and optionally switched over."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from pydantic import BaseModel, TypeAdapter, ValidationError
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from services.definitions import definition_of
from shared import settings
from shared.consumer import declared_type
from shared.db import Conn, create_pool, migrate, service_migrations
from shared.envelope import JURISDICTIONS, EventEnvelope
from shared.events import registry
from shared.runtime import Projector
from shared.topics import events_topic, parse_events_topic
from zhengming.audit.bulk import BulkApplier, Step
from zhengming.audit.sources import read_topics

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
        "relay_term",
    }
)


BATCH_SIZE = 5_000
"""Events per transaction of a replay."""
_ENVELOPES = TypeAdapter(list[EventEnvelope])
"""A batch of records decoded in one call."""


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
    compared: bool = True
    statements: int = 0
    """The projectors' statements (writes and reads) and the round trips that carried them."""
    round_trips: int = 0
    ignored: int = 0
    """Records of foreign contexts skipped unread: their header names a type no read model uses."""

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
        if not self.compared:
            out.append(f"{self.service}: not compared with the live read models")
        elif self.equal:
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


async def read_model_tables(conn: Conn, schema: str, exclude: set[str]) -> list[str]:
    rows = await conn.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = $1"
        " AND table_type = 'BASE TABLE' ORDER BY table_name",
        schema,
    )
    return [r["table_name"] for r in rows if r["table_name"] not in CORE_TABLES | exclude]


async def has_column(conn: Conn, schema: str, table: str, column: str) -> bool:
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
        if jurisdiction and await has_column(conn, live, table, "jurisdiction"):
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
    foreign ones through its pure read-model functions. Never a reaction, never the outbox.

    In bulk (zhengming/audit/bulk.py): each batch in one transaction, the projectors' writes sent
    with one executemany per run of the same SQL. Duplicates (a record the relay sent twice) are
    told apart by event id in memory, as the inbox does live: the scratch schema keeps no inbox,
    which nothing reads (the comparison and the switch leave the core tables alone)."""

    def __init__(self, service: str, pool: asyncpg.Pool) -> None:
        self.service = service
        self.pool = pool
        self.definition = definition_of(service)
        self.foreign = dict(self.definition.foreign_read_models)
        self.exclude = set(self.definition.replay_exclude)
        self.run = uuid.uuid4().hex  # this replay writes its schema alone (shared/db.py sole_writer)
        # By foreign context, the types the service's live consumers of its events decode (None:
        # every record). Replay skips a record on its header only where they skip it too, so a
        # header that lies about its body cannot make replay differ from the live read models.
        self._live_types: dict[str, frozenset[str] | None] = {}
        for subscription in self.definition.subscriptions:
            context = getattr(subscription.topics, "context", None)
            if context is None:
                continue
            types, known = subscription.event_types, self._live_types.get(context, frozenset())
            self._live_types[context] = None if types is None or known is None else known | types
        self.applied = 0
        self.ignored = 0  # records skipped unread on their header (`ignores`)
        self.statements = 0
        self.round_trips = 0
        # 128-bit ints, not UUID objects: the one thing replay keeps per event (about 60 bytes).
        self._seen: set[int] = set()

    def contexts(self) -> list[str]:
        return [self.service, *sorted(self.foreign)]

    def ignores(self, record: Any) -> bool:
        """A record of a foreign context whose `event_type` header names a type none of its
        read models uses: nothing to apply, so nothing to decode (as the live consumers skip)."""
        owner = parse_events_topic(record.topic)
        if owner is None or owner[1] == self.service:
            return False
        used = getattr(self.foreign.get(owner[1]), "event_types", None)
        live = self._live_types.get(owner[1], frozenset())
        if used is None or live is None:
            return False
        declared = declared_type(record)
        return declared is not None and declared not in used and declared not in live

    def _projector_of(self, payload: BaseModel) -> Projector | None:
        context = _context_of(payload)
        if context == self.service:
            return self.definition.projector
        return self.foreign.get(context)

    async def apply_batch(self, envelopes: Sequence[EventEnvelope]) -> None:
        steps: list[tuple[str, Step]] = []
        for envelope in envelopes:
            event = envelope.event_id.int
            if event in self._seen:
                continue
            self._seen.add(event)
            payload = registry.decode(envelope)
            projector = self._projector_of(payload)
            if projector is not None:
                # The case is the Kafka key: the unit whose order the read models may rely on.
                steps.append((envelope.case_id, _step(projector, envelope, payload)))
            self.applied += 1
        if not steps:
            return
        async with self.pool.acquire() as conn, conn.transaction():
            # A scratch schema until compared or switched: a crash loses nothing that matters.
            await conn.execute("SET LOCAL synchronous_commit = off")
            applier = BulkApplier(conn, owner=self.run)
            await applier.apply(steps)
            await applier.flush()
        self.statements += applier.queue.statements + applier.reads
        self.round_trips += applier.queue.round_trips + applier.reads


def _step(projector: Projector, envelope: EventEnvelope, payload: BaseModel) -> Step:
    async def step(conn: Conn) -> None:
        await projector(conn, envelope, payload)

    return step


def _context_of(payload: BaseModel) -> str:
    return type(payload).__module__.rsplit(".", 1)[-1]


async def fresh_schema(service: str, label: str) -> str:
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


def decode_batch(values: Sequence[bytes | None]) -> list[EventEnvelope]:
    """The envelopes of a batch of record values, decoded in one call as one JSON array. Each
    value must be exactly one envelope: a value holding two (`{...},{...}`), none, or a null
    (tombstone) makes the counts differ or the array fail, and the batch is decoded value by
    value instead, so such a record fails replay as it fails the live consumer's decoding."""
    if all(v is not None for v in values):
        try:
            envelopes = _ENVELOPES.validate_json(b"[" + b",".join(v for v in values if v is not None) + b"]")
        except ValidationError:
            envelopes = []
        if len(envelopes) == len(values):
            return envelopes
    return [EventEnvelope.model_validate_json(v if v is not None else b"null") for v in values]


async def replay(
    service: str,
    *,
    jurisdiction: str | None = None,
    switch: bool = False,
    keep_schema: bool = False,
    show_progress: bool = True,
    topics: Sequence[str] | None = None,
    batch_size: int = BATCH_SIZE,
    compare: bool = True,
) -> ReplayReport:
    """Rebuild a service's read models from Kafka offset 0 into a fresh schema, compare them
    with the live ones, and optionally switch the live read models over to the rebuilt ones.

    `topics` and `compare=False` are the bench's growth runs: other topics than the service's own
    and foreign ones, whose read models the live ones are not expected to equal."""
    schema = await fresh_schema(service, "replay")
    pool = await create_pool(settings.postgres(), schema, min_size=1, max_size=2)
    replayer = Replayer(service, pool)
    codes = [jurisdiction] if jurisdiction else sorted(JURISDICTIONS)
    if topics is None:
        topics = [events_topic(j, c) for j in codes for c in replayer.contexts()]
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
    raw: list[bytes] = []
    # One batch applied while the next is read and decoded (never more: memory stays flat).
    applying: asyncio.Future[None] | None = None

    async def submit() -> None:
        nonlocal applying
        envelopes = decode_batch(raw)
        raw.clear()
        if applying is not None:
            await applying
        applying = asyncio.ensure_future(replayer.apply_batch(envelopes))

    async def on_record(record: Any) -> None:
        nonlocal records
        records += 1
        if replayer.ignores(record):
            replayer.ignored += 1
            return
        raw.append(record.value)
        if len(raw) >= batch_size:
            await submit()

    def advance(n: int) -> None:
        elapsed = max(time.monotonic() - started, 1e-6)
        progress.update(task, advance=n, rate=f"{records / elapsed:,.0f}")

    try:
        with progress:
            try:
                await read_topics(topics, on_record, advance)
                if raw:
                    await submit()
                if applying is not None:
                    await applying
            finally:
                if applying is not None and not applying.done():
                    applying.cancel()
                    await asyncio.gather(applying, return_exceptions=True)
        seconds = time.monotonic() - started
        async with pool.acquire() as conn:
            tables = await read_model_tables(conn, service, replayer.exclude)
            diffs = await compare_read_models(conn, service, schema, tables, jurisdiction) if compare else []
            switched = False
            if switch and compare and jurisdiction is None:
                await _switch(conn, service, schema, tables)
                switched = True
    finally:
        await pool.close()
        if not keep_schema:
            await drop_schema(schema)
    return ReplayReport(
        service,
        schema,
        records,
        seconds,
        diffs,
        tables,
        switched,
        compare,
        replayer.statements,
        replayer.round_trips,
        replayer.ignored,
    )


async def _switch(conn: Conn, live: str, rebuilt: str, tables: list[str]) -> None:
    """Replace the live read models by the rebuilt ones in one transaction (the event store stays)."""
    async with conn.transaction():
        for table in tables:
            await conn.execute(f"LOCK TABLE {live}.{table} IN ACCESS EXCLUSIVE MODE")
        for table in tables:
            await conn.execute(f"DELETE FROM {live}.{table}")
            await conn.execute(f"INSERT INTO {live}.{table} SELECT * FROM {rebuilt}.{table}")
