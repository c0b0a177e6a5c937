"""PostgreSQL event store: append with expected version, load, outbox rows, per-stream hash chain."""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from shared import metrics, tracing
from shared.db import Conn
from shared.envelope import GENESIS_HASH, Actor, EventEnvelope, seal
from shared.errors import ConcurrencyError
from shared.signing import Keyring, ServiceKey, SignatureProblem, service_key
from shared.topics import events_topic


@dataclass(frozen=True)
class NewEvent:
    """An event decided by an aggregate, before the store gives it a place in its stream."""

    event_type: str
    schema_version: int
    payload: dict[str, Any]
    occurred_at: datetime | None = None
    event_id: uuid.UUID | None = None


@dataclass(frozen=True)
class ChainBreak:
    """The first link of a stream's hash chain that does not hold."""

    stream_id: str
    stream_version: int
    expected: str
    found: str
    reason: str
    event_id: str | None = None


def case_lock_key(schema: str, case_id: str) -> int:
    """The transaction lock of one case (one Kafka key) in one service's schema: its writers take
    turns. Advisory locks are database-wide, so the schema keeps the services' locks apart."""
    key = f"case:{schema}:{case_id}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big", signed=True)


@contextlib.asynccontextmanager
async def _transaction(pool: asyncpg.Pool, conn: Conn | None) -> AsyncIterator[Conn]:
    """The caller's connection (inside its transaction), or one of the pool's in a transaction."""
    if conn is not None:
        yield conn
        return
    async with pool.acquire() as own, own.transaction():
        yield own


def outbox_channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel that wakes a schema's relay."""
    return f"zm_outbox_{schema}"


_INSERT_EVENT = """
INSERT INTO events (event_id, stream_id, stream_version, event_type, schema_version, case_id,
                    jurisdiction, occurred_at, actor, correlation_id, causation_id, payload,
                    prev_hash, hash, key_id, signature)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
"""
_INSERT_OUTBOX = "INSERT INTO outbox (event_id, topic, key, body, headers) VALUES ($1, $2, $3, $4, $5)"
_COLUMNS = (
    "event_id, stream_id, stream_version, event_type, schema_version, case_id, jurisdiction,"
    " occurred_at, actor, correlation_id, causation_id, payload, prev_hash, hash, key_id, signature"
)


def row_to_envelope(row: asyncpg.Record) -> EventEnvelope:
    return EventEnvelope(
        event_id=row["event_id"],
        event_type=row["event_type"],
        schema_version=row["schema_version"],
        stream_id=row["stream_id"],
        stream_version=row["stream_version"],
        case_id=row["case_id"],
        jurisdiction=row["jurisdiction"],
        occurred_at=row["occurred_at"],
        actor=Actor.model_validate(row["actor"]),
        correlation_id=row["correlation_id"],
        causation_id=row["causation_id"],
        payload=row["payload"],
        prev_hash=row["prev_hash"],
        hash=row["hash"],
        key_id=row["key_id"],
        signature=row["signature"],
    )


class EventStore:
    """The append-only store of one service schema (the pool's search path selects it)."""

    def __init__(
        self, pool: asyncpg.Pool, *, schema: str, context: str, signer: ServiceKey | None = None
    ) -> None:
        self.pool = pool
        self.schema = schema
        self.context = context
        self._signer = signer

    @property
    def signer(self) -> ServiceKey:
        """The context's signing key (the deployment's, from SigningSettings, unless given)."""
        if self._signer is None:
            self._signer = service_key(self.context)
        return self._signer

    async def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[NewEvent],
        *,
        case_id: str,
        jurisdiction: str,
        actor: Actor,
        correlation_id: uuid.UUID,
        causation_id: uuid.UUID | None = None,
        conn: Conn | None = None,
    ) -> list[EventEnvelope]:
        """Append `events` after `expected_version`; the outbox rows commit with them.

        Raises ConcurrencyError when the stream has moved on. When `conn` is given the caller's
        transaction is used (a unit of work spanning more than one append).
        """
        async with _transaction(self.pool, conn) as writing:
            return await self._append(
                writing,
                stream_id,
                expected_version,
                events,
                case_id,
                jurisdiction,
                actor,
                correlation_id,
                causation_id,
            )

    async def _append(
        self,
        conn: Conn,
        stream_id: str,
        expected_version: int,
        events: Sequence[NewEvent],
        case_id: str,
        jurisdiction: str,
        actor: Actor,
        correlation_id: uuid.UUID,
        causation_id: uuid.UUID | None,
    ) -> list[EventEnvelope]:
        if not events:
            return []
        # Writers of one case (one Kafka key) take turns: the outbox ids of a key are then
        # allocated in commit order, so publishing in id order keeps each key's order.
        await conn.execute("SELECT pg_advisory_xact_lock($1)", case_lock_key(self.schema, case_id))
        head = await conn.fetchrow(
            "SELECT stream_version, hash FROM events WHERE stream_id = $1"
            " ORDER BY stream_version DESC LIMIT 1",
            stream_id,
        )
        version, prev_hash = (head["stream_version"], head["hash"]) if head else (0, GENESIS_HASH)
        if version != expected_version:
            raise ConcurrencyError(stream_id, expected_version, version)
        now = datetime.now(UTC)
        topic = events_topic(jurisdiction, self.context)
        sealed: list[EventEnvelope] = []
        signer = self.signer
        for new in events:
            version += 1
            envelope = seal(
                event_type=new.event_type,
                schema_version=new.schema_version,
                stream_id=stream_id,
                stream_version=version,
                case_id=case_id,
                jurisdiction=jurisdiction,
                occurred_at=new.occurred_at or now,
                actor=actor,
                correlation_id=correlation_id,
                causation_id=causation_id,
                payload=new.payload,
                prev_hash=prev_hash,
                event_id=new.event_id,
            )
            envelope = signer.sign(envelope)
            prev_hash = envelope.hash
            sealed.append(envelope)
        try:
            await conn.executemany(_INSERT_EVENT, [_event_args(e) for e in sealed])
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == "events_stream_version_key":
                raise ConcurrencyError(stream_id, expected_version, version) from exc
            raise
        await conn.executemany(
            _INSERT_OUTBOX,
            [(e.event_id, topic, e.case_id, e.to_bytes(), _headers(e)) for e in sealed],
        )
        await conn.execute("SELECT pg_notify($1, '')", outbox_channel(self.schema))
        metrics.appended(self.context, (e.event_type for e in sealed))
        return sealed

    async def enqueue_integration(
        self,
        conn: Conn,
        *,
        topic: str,
        key: str,
        body: bytes,
        message_id: uuid.UUID,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Put an outbound integration message (a public contract, not an envelope) in the outbox,
        in the caller's transaction, so it is sent exactly when the events that caused it commit."""
        await conn.execute(
            _INSERT_OUTBOX,
            message_id,
            topic,
            key,
            body,
            {"content-type": "application/json", **(headers or {}), **tracing.current_headers()},
        )
        await conn.execute("SELECT pg_notify($1, '')", outbox_channel(self.schema))

    async def load_in(self, conn: Conn, stream_id: str) -> list[EventEnvelope]:
        """Load a stream inside the caller's transaction (for a unit of work)."""
        rows = await conn.fetch(
            f"SELECT {_COLUMNS} FROM events WHERE stream_id = $1 ORDER BY stream_version", stream_id
        )
        return [row_to_envelope(r) for r in rows]

    async def load(self, stream_id: str, after_version: int = 0) -> list[EventEnvelope]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM events WHERE stream_id = $1 AND stream_version > $2"
                " ORDER BY stream_version",
                stream_id,
                after_version,
            )
        return [row_to_envelope(r) for r in rows]

    async def load_case(self, case_id: str) -> list[EventEnvelope]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM events WHERE case_id = $1 ORDER BY global_position",
                case_id,
            )
        return [row_to_envelope(r) for r in rows]

    async def iter_all(self, batch: int = 2000) -> AsyncIterator[EventEnvelope]:
        """Every event, stream by stream in version order (for verification and replay)."""
        async for _, envelope in self._iter_positioned(batch):
            yield envelope

    async def _iter_positioned(self, batch: int = 2000) -> AsyncIterator[tuple[int, EventEnvelope]]:
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
            cursor = conn.cursor(
                f"SELECT {_COLUMNS}, global_position FROM events ORDER BY stream_id, stream_version",
                prefetch=batch,
            )
            async for row in cursor:
                yield row["global_position"], row_to_envelope(row)

    async def unsigned_before(self) -> int:
        """Events up to this global position were recorded before events were signed."""
        found = await self.pool.fetchval("SELECT max(global_position) FROM unsigned_events_before")
        return int(found or 0)

    async def verify(
        self, keyring: Keyring | None = None, *, signed: set[str] | None = None
    ) -> ChainBreak | None:
        """Check every stream's chain: versions 1..n without gaps, each prev_hash the previous
        hash, each hash recomputed from the stored fields, each event signed by a key of this
        context in the keyring (SigningSettings' by default). Returns the first break, if any.
        `signed` collects the ids of the events whose signature was verified (so that the same
        check of a copy elsewhere need not be repeated)."""
        keyring = keyring or Keyring.load()
        legacy = await self.unsigned_before()
        stream: str | None = None
        expected_version = 0
        prev = GENESIS_HASH
        async for position, env in self._iter_positioned():
            if env.stream_id != stream:
                stream, expected_version, prev = env.stream_id, 0, GENESIS_HASH
            expected_version += 1
            if env.stream_version != expected_version:
                return ChainBreak(
                    env.stream_id,
                    expected_version,
                    prev,
                    "(missing)",
                    f"version {expected_version} missing",
                )
            if env.prev_hash != prev:
                return ChainBreak(
                    env.stream_id, env.stream_version, prev, env.prev_hash, "prev_hash", str(env.event_id)
                )
            recomputed = env.computed_hash()
            if recomputed != env.hash:
                return ChainBreak(
                    env.stream_id, env.stream_version, recomputed, env.hash, "hash", str(env.event_id)
                )
            if env.signature is not None or position > legacy:
                try:
                    keyring.check(env, self.context)
                except SignatureProblem as problem:
                    return ChainBreak(
                        env.stream_id,
                        env.stream_version,
                        f"a signature by a key of {self.context}",
                        env.key_id or "(unsigned)",
                        f"signature {problem.code}: {problem.reason}",
                        event_id=str(env.event_id),
                    )
                if signed is not None:
                    signed.add(str(env.event_id))
            prev = env.hash
        return None


def _event_args(e: EventEnvelope) -> tuple[Any, ...]:
    return (
        e.event_id,
        e.stream_id,
        e.stream_version,
        e.event_type,
        e.schema_version,
        e.case_id,
        e.jurisdiction,
        e.occurred_at,
        e.actor.model_dump(),
        e.correlation_id,
        e.causation_id,
        e.payload,
        e.prev_hash,
        e.hash,
        e.key_id,
        e.signature,
    )


def _headers(e: EventEnvelope) -> dict[str, str]:
    """Kafka headers for routing and tracing without opening the body."""
    return {
        "event_type": e.event_type,
        "schema_version": str(e.schema_version),
        "correlation_id": str(e.correlation_id),
        "content-type": "application/json",
        **tracing.current_headers(),
    }
