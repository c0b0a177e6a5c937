"""Dead letters an operator can work off (运维): what a consumer's dead-letter topic holds, one
entry's reason, a replay of entries through the very consumer that refused them, and a purge.

A replay runs the entry's original bytes through the consumer's own decode and `apply_once`, as
if it came again from its original topic: the signature, the hash and the rules are checked again,
and the inbox decides, so an entry replayed twice (or already applied) is applied once. Nothing is
published again: an events topic holds only what its producer wrote. A purge deletes the records
of a partition before an offset (Kafka keeps a log, not a set): by default only the prefix whose
entries a replay settled; `everything` also the unsettled ones, with a reason that is recorded.
Operators see positions, codes, reasons and event types, never a payload."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from pydantic import BaseModel, Field

from shared import settings
from shared.consumer import DeadLetter, EventConsumer
from shared.db import Conn
from shared.envelope import EventEnvelope
from shared.topics import dead_letter_topic

READ_TIMEOUT_S = 10.0
"""How long reading a dead-letter topic to its end may take."""
MAX_ENTRIES = 1000
"""Entries read from one dead-letter topic at most (its oldest first)."""


class EntryState(StrEnum):
    pending = "pending"
    """Never replayed."""
    applied = "applied"
    duplicate = "duplicate"
    """The inbox already held the event: applied before, not again."""
    skipped = "skipped"
    """An event type the consumer does not apply."""
    failed = "failed"
    """Replayed and refused again (the replay's code and reason)."""


SETTLED = frozenset({EntryState.applied, EntryState.duplicate, EntryState.skipped})


class EntryNotFound(Exception):
    """The dead-letter topic holds no entry at (partition, offset)."""

    def __init__(self, partition: int, offset: int) -> None:
        super().__init__(f"no entry at {partition}@{offset}")
        self.partition, self.offset = partition, offset


class EntryRef(BaseModel):
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)


class DeadLetterEntry(BaseModel):
    consumer: str
    topic: str = Field(description="the dead-letter topic")
    partition: int
    offset: int
    dead_lettered_at: datetime
    code: str = Field(description="why the consumer refused it (zm-dlq-code)")
    reason: str
    event_id: str | None
    event_type: str | None = Field(description="when the bytes decode as an event envelope")
    original_topic: str | None
    original_partition: int | None
    original_offset: int | None
    size: int = Field(description="bytes of the message")
    state: EntryState
    replayed_at: datetime | None = None
    replayed_by: str | None = None
    replay_code: str | None = Field(default=None, description="why the last replay was refused")
    replay_reason: str | None = None
    attempts: int = 0


class PurgedPartition(BaseModel):
    partition: int
    before_offset: int = Field(description="records before this offset are gone")
    removed: int
    unresolved: int = Field(description="of them, entries no replay had settled")


class PurgeResult(BaseModel):
    consumer: str
    topic: str
    partitions: list[PurgedPartition]
    left: int = Field(description="entries still in the topic")


def _headers(record: ConsumerRecord[Any, Any]) -> dict[str, str]:
    return {k: (v or b"").decode("utf-8", "replace") for k, v in record.headers or ()}


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _event_type(body: bytes) -> str | None:
    try:
        return EventEnvelope.from_bytes(body).event_type
    except Exception:  # an inbound report or garbage: no event type to name
        return None


async def read_records(topic: str, limit: int = MAX_ENTRIES) -> list[ConsumerRecord[Any, Any]]:
    """Every record of `topic` (up to `limit`, oldest first per partition); [] when it does not
    exist (a consumer that never dead-lettered has no topic yet)."""
    kafka = settings.kafka()
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap, **kafka.client_options())
    reader = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap, group_id=None, enable_auto_commit=False, **kafka.client_options()
    )
    try:
        await admin.start()
        if topic not in set(await admin.list_topics()):
            return []
        described = await admin.describe_topics([topic])
        parts = [TopicPartition(topic, p["partition"]) for p in described[0]["partitions"]]
        await reader.start()
        reader.assign(parts)
        first = await reader.beginning_offsets(parts)
        ends = await reader.end_offsets(parts)
        records: list[ConsumerRecord[Any, Any]] = []
        # Each partition its share of the limit, so a crowded partition hides no other.
        share = max(1, limit // max(1, len(parts)))
        got_of: dict[TopicPartition, int] = dict.fromkeys(parts, 0)
        remaining = {tp for tp in parts if ends[tp] > first[tp]}
        for tp in parts:
            reader.seek(tp, first[tp])
        async with asyncio.timeout(READ_TIMEOUT_S):
            while remaining:
                batch = await reader.getmany(*remaining, timeout_ms=500, max_records=limit)
                for tp, got in batch.items():
                    kept = [r for r in got if r.offset < ends[tp]][: share - got_of[tp]]
                    records += kept
                    got_of[tp] += len(kept)
                for tp in list(remaining):
                    if got_of[tp] >= share or await reader.position(tp) >= ends[tp]:
                        remaining.discard(tp)
        records.sort(key=lambda r: (r.partition, r.offset))
        return records
    finally:
        await reader.stop()
        await admin.close()


async def _replays(conn: Conn, consumer: str) -> dict[tuple[int, int], Any]:
    rows = await conn.fetch("SELECT * FROM dead_letter_replays WHERE consumer = $1", consumer)
    return {(r["kafka_partition"], r["kafka_offset"]): r for r in rows}


def _entry(consumer: str, record: ConsumerRecord[Any, Any], replay: Any | None) -> DeadLetterEntry:
    h = _headers(record)
    body: bytes = record.value or b""
    return DeadLetterEntry(
        consumer=consumer,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        dead_lettered_at=datetime.fromtimestamp(record.timestamp / 1000, UTC),
        code=h.get("zm-dlq-code", "?"),
        reason=h.get("zm-dlq-reason", ""),
        event_id=h.get("zm-dlq-event-id") or None,
        event_type=_event_type(body),
        original_topic=h.get("zm-original-topic"),
        original_partition=_int(h.get("zm-original-partition")),
        original_offset=_int(h.get("zm-original-offset")),
        size=len(body),
        state=EntryState(replay["outcome"]) if replay else EntryState.pending,
        replayed_at=replay["replayed_at"] if replay else None,
        replayed_by=replay["replayed_by"] if replay else None,
        replay_code=replay["code"] if replay else None,
        replay_reason=replay["reason"] if replay else None,
        attempts=replay["attempts"] if replay else 0,
    )


async def entries(consumer: EventConsumer, limit: int = MAX_ENTRIES) -> list[DeadLetterEntry]:
    """What the consumer's dead-letter topic holds, each with what replays made of it."""
    records = await read_records(dead_letter_topic(consumer.name), limit)
    async with consumer.pool.acquire() as conn:
        replays = await _replays(conn, consumer.name)
    return [_entry(consumer.name, r, replays.get((r.partition, r.offset))) for r in records]


async def pending_count(conn: Conn, consumer: str, first: dict[int, int], ends: dict[int, int]) -> int:
    """Entries of the topic (partition -> [first, end) offsets) that no replay has settled."""
    settled = await conn.fetch(
        "SELECT kafka_partition, kafka_offset FROM dead_letter_replays"
        " WHERE consumer = $1 AND outcome = ANY($2::text[])",
        consumer,
        [str(s) for s in SETTLED],
    )
    done = sum(
        1
        for r in settled
        if first.get(r["kafka_partition"], 0) <= r["kafka_offset"] < ends.get(r["kafka_partition"], 0)
    )
    return sum(ends[p] - first.get(p, 0) for p in ends) - done


async def replay(
    consumer: EventConsumer, refs: Iterable[EntryRef] | None, actor: str
) -> list[DeadLetterEntry]:
    """Run the chosen entries (every one not yet settled when None) through the consumer again;
    returns them with their new state. An entry named that the topic does not hold is EntryNotFound."""
    records = await read_records(dead_letter_topic(consumer.name))
    by_position = {(r.partition, r.offset): r for r in records}
    async with consumer.pool.acquire() as conn:
        replays = await _replays(conn, consumer.name)
    if refs is None:
        chosen = [
            r
            for r in records
            if (r.partition, r.offset) not in replays
            or EntryState(replays[(r.partition, r.offset)]["outcome"]) not in SETTLED
        ]
    else:
        wanted = [(ref.partition, ref.offset) for ref in refs]
        missing = [w for w in wanted if w not in by_position]
        if missing:
            raise EntryNotFound(*missing[0])
        chosen = [by_position[w] for w in dict.fromkeys(wanted)]
    out = []
    for record in chosen:
        outcome, code, reason = await _replay_one(consumer, record)
        async with consumer.pool.acquire() as conn:
            row = await conn.fetchrow(
                "INSERT INTO dead_letter_replays"
                " (consumer, kafka_partition, kafka_offset, outcome, code, reason, replayed_by)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7)"
                " ON CONFLICT (consumer, kafka_partition, kafka_offset) DO UPDATE SET"
                " outcome = EXCLUDED.outcome, code = EXCLUDED.code, reason = EXCLUDED.reason,"
                " replayed_by = EXCLUDED.replayed_by, replayed_at = now(),"
                " attempts = dead_letter_replays.attempts + 1"
                " RETURNING *",
                consumer.name,
                record.partition,
                record.offset,
                str(outcome),
                code,
                reason,
                actor,
            )
        out.append(_entry(consumer.name, record, row))
    return out


async def _replay_one(
    consumer: EventConsumer, record: ConsumerRecord[Any, Any]
) -> tuple[EntryState, str | None, str | None]:
    h = _headers(record)
    position: dict[str, Any] = {
        "topic": h.get("zm-original-topic", ""),
        "partition": _int(h.get("zm-original-partition")) or 0,
        "offset": _int(h.get("zm-original-offset")) or 0,
    }
    try:
        envelope, payload = consumer.decode(record.value or b"", position["topic"])
        if consumer.event_types is not None and envelope.event_type not in consumer.event_types:
            return EntryState.skipped, None, None
        status = await consumer.apply_once(envelope, payload, position)
    except DeadLetter as dead:
        return EntryState.failed, dead.code, dead.reason[:2000]
    consumer.counts[status] += 1
    return EntryState(status), None, None


async def purge(consumer: EventConsumer, actor: str, *, everything: bool, reason: str | None) -> PurgeResult:
    """Delete the settled prefix of each partition of the consumer's dead-letter topic (or, with
    `everything`, every record: then `reason` says why, and the purge is recorded either way)."""
    topic = dead_letter_topic(consumer.name)
    records = await read_records(topic)
    async with consumer.pool.acquire() as conn:
        replays = await _replays(conn, consumer.name)
    by_partition: dict[int, list[ConsumerRecord[Any, Any]]] = {}
    for r in records:
        by_partition.setdefault(r.partition, []).append(r)
    cut: dict[int, tuple[int, int, int]] = {}  # partition -> (before_offset, removed, unresolved)
    for partition, got in sorted(by_partition.items()):
        before, removed, unresolved = got[0].offset, 0, 0
        for r in got:
            replayed = replays.get((r.partition, r.offset))
            settled = replayed is not None and EntryState(replayed["outcome"]) in SETTLED
            if not settled and not everything:
                break
            before, removed, unresolved = r.offset + 1, removed + 1, unresolved + (not settled)
        if removed:
            cut[partition] = (before, removed, unresolved)
    if cut:
        kafka = settings.kafka()
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap, **kafka.client_options())
        try:
            await admin.start()
            await admin.delete_records(
                {TopicPartition(topic, p): RecordsToDelete(before) for p, (before, _, _) in cut.items()},
                timeout_ms=int(READ_TIMEOUT_S * 1000),
            )
        finally:
            await admin.close()
        async with consumer.pool.acquire() as conn:
            await conn.executemany(
                "INSERT INTO dead_letter_purges"
                " (consumer, kafka_partition, before_offset, removed, unresolved, reason, purged_by)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7)",
                [(consumer.name, p, b, n, u, reason, actor) for p, (b, n, u) in cut.items()],
            )
    return PurgeResult(
        consumer=consumer.name,
        topic=topic,
        partitions=[
            PurgedPartition(partition=p, before_offset=b, removed=n, unresolved=u)
            for p, (b, n, u) in cut.items()
        ],
        left=len(records) - sum(n for _, n, _ in cut.values()),
    )


def consumer_named(consumers: Sequence[EventConsumer], name: str) -> EventConsumer | None:
    return next((c for c in consumers if c.name == name), None)
