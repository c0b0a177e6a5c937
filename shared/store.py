"""PostgreSQL event store: append with expected version, load, outbox rows, per-stream hash chain."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import hashlib
import os
import signal
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing import get_context
from typing import Any, NamedTuple

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from shared import metrics, tracing
from shared.db import Conn, jsonb_text, jsonb_value
from shared.envelope import GENESIS_HASH, Actor, EventEnvelope, draft, sealed
from shared.errors import ConcurrencyError
from shared.signing import Keyring, ServiceKey, SignatureProblem, TrustedKey, service_key
from shared.topics import events_topic


@dataclass(frozen=True)
class NewEvent:
    """An event decided by an aggregate, before the store gives it a place in its stream."""

    event_type: str
    schema_version: int
    payload: dict[str, Any]
    occurred_at: datetime | None = None
    event_id: uuid.UUID | None = None


class Head(NamedTuple):
    """A stream's last version and hash (0 and the genesis hash for a stream not begun)."""

    version: int
    hash: str

    @classmethod
    def of(cls, events: Sequence[EventEnvelope]) -> Head:
        """The head the loaded stream ends at."""
        if not events:
            return cls(0, GENESIS_HASH)
        return cls(events[-1].stream_version, events[-1].hash)


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


_INSERT_OUTBOX = "INSERT INTO outbox (event_id, topic, key, body, headers) VALUES ($1, $2, $3, $4, $5)"
_ENQUEUE = f"WITH o AS ({_INSERT_OUTBOX}) SELECT pg_notify($6, '')"
# One append in one statement: the events, their outbox rows and the relay's wake-up call. The
# per-event values come as arrays (one row each, in version order: `n` keeps the order, so the
# global positions and the outbox ids run in version order too); what all events of an append
# share comes once. Data-modifying CTEs always run to completion; the NOTIFY is delivered at commit.
# `_APPEND_LOCKING` also takes the case's lock ($21), as an init plan: before the first row, so
# before any outbox id is drawn.
_APPEND_ROWS = """
    SELECT * FROM unnest($1::uuid[], $2::int[], $3::text[], $4::int[], $5::timestamptz[],
                         $6::text[], $7::text[], $8::text[], $9::text[], $10::bytea[], $11::text[])
        WITH ORDINALITY AS u(event_id, stream_version, event_type, schema_version, occurred_at,
                             payload, prev_hash, hash, signature, body, headers, n)
"""
_APPEND_WRITES = """), e AS (
    INSERT INTO events (event_id, stream_id, stream_version, event_type, schema_version, case_id,
                        jurisdiction, occurred_at, actor, correlation_id, causation_id, payload,
                        prev_hash, hash, key_id, signature)
    SELECT event_id, $12, stream_version, event_type, schema_version, $13, $14, occurred_at,
           $15::jsonb, $16, $17, payload::jsonb, prev_hash, hash, $18, signature
    FROM new ORDER BY n
), o AS (
    INSERT INTO outbox (event_id, topic, key, body, headers)
    SELECT event_id, $19, $13, body, headers::jsonb FROM new ORDER BY n
)
SELECT pg_notify($20, '')
"""
_APPEND = "WITH new AS (" + _APPEND_ROWS + _APPEND_WRITES
_APPEND_LOCKING = (
    "WITH new AS ("
    + _APPEND_ROWS
    + "    WHERE (SELECT true FROM pg_advisory_xact_lock($21::bigint))\n"
    + _APPEND_WRITES
)
_COLUMNS = (
    "event_id, stream_id, stream_version, event_type, schema_version, case_id, jurisdiction,"
    " occurred_at, actor, correlation_id, causation_id, payload, prev_hash, hash, key_id, signature"
)


def row_to_envelope(row: asyncpg.Record | Mapping[str, Any]) -> EventEnvelope:
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
        head: Head | None = None,
        locked: bool = False,
    ) -> list[EventEnvelope]:
        """Append `events` after `expected_version`; the outbox rows commit with them.

        Raises ConcurrencyError when the stream has moved on. When `conn` is given the caller's
        transaction is used (a unit of work spanning more than one append). `head` is the stream's
        head as the caller read it in that transaction while holding the case's lock (`load_locked`):
        the store then neither takes the lock again nor reads the head again. `locked`: the caller's
        transaction holds the case's lock already (a stream expected to begin is then appended
        without taking it again).
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
                head,
                locked,
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
        head: Head | None,
        locked: bool,
    ) -> list[EventEnvelope]:
        if not events:
            return []
        # Writers of one case (one Kafka key) take turns: the outbox ids of a key are then
        # allocated in commit order, so publishing in id order keeps each key's order. A head the
        # caller hands over was read under that lock in this transaction (a unit of work's `get`).
        # A stream expected to begin needs no head read: the append statement takes the lock, and
        # the unique (stream_id, stream_version) constraint refuses it if the stream did begin.
        # (A head read of a case already locked takes the lock again in the same round trip: a
        # transaction lock is re-entrant.)
        lock: int | None = None
        if head is None and expected_version == 0:
            head, lock = Head(0, GENESIS_HASH), None if locked else case_lock_key(self.schema, case_id)
        elif head is None:
            head = await self.locked_head(conn, stream_id, case_id)
        version, prev_hash = head
        if version != expected_version:
            raise ConcurrencyError(stream_id, expected_version, version)
        now = datetime.now(UTC)
        envelopes: list[EventEnvelope] = []
        wires: list[bytes] = []
        vouch = self.signer.vouch
        ids = new_event_ids(len(events))
        for new, fresh_id in zip(events, ids, strict=True):
            version += 1
            envelope, wire = sealed(
                draft(
                    event_id=new.event_id or fresh_id,
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
                ),
                vouch,
            )
            prev_hash = envelope.hash
            envelopes.append(envelope)
            wires.append(wire)
        # The unique (stream_id, stream_version) constraint is the last word on a concurrent
        # writer (one that did not take the lock, or a head read outside it).
        try:
            await conn.execute(
                *self._append_args(envelopes, wires, stream_id, case_id, jurisdiction, actor, lock)
            )
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == "events_stream_version_key":
                raise ConcurrencyError(stream_id, expected_version, version) from exc
            raise
        metrics.appended(self.context, (e.event_type for e in envelopes))
        return envelopes

    def _append_args(
        self,
        sealed: Sequence[EventEnvelope],
        wires: list[bytes],
        stream_id: str,
        case_id: str,
        jurisdiction: str,
        actor: Actor,
        lock: int | None,
    ) -> tuple[Any, ...]:
        """`_APPEND` and its arguments: the events' own values as arrays, the shared ones once;
        with `lock`, the statement that takes that lock first. `wires`: the events' `to_bytes()`."""
        first = sealed[0]
        trace = tracing.current_headers()
        return (
            _APPEND if lock is None else _APPEND_LOCKING,
            [e.event_id for e in sealed],
            [e.stream_version for e in sealed],
            [e.event_type for e in sealed],
            [e.schema_version for e in sealed],
            [e.occurred_at for e in sealed],
            [jsonb_text(e.payload) for e in sealed],
            [e.prev_hash for e in sealed],
            [e.hash for e in sealed],
            [e.signature for e in sealed],
            wires,
            [jsonb_text(_headers(e, trace)) for e in sealed],
            stream_id,
            case_id,
            jurisdiction,
            actor.model_dump(),
            first.correlation_id,
            first.causation_id,
            first.key_id,
            events_topic(jurisdiction, self.context),
            outbox_channel(self.schema),
            *(() if lock is None else (lock,)),
        )

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
            _ENQUEUE,
            message_id,
            topic,
            key,
            body,
            {"content-type": "application/json", **(headers or {}), **tracing.current_headers()},
            outbox_channel(self.schema),
        )

    async def locked_head(self, conn: Conn, stream_id: str, case_id: str) -> Head:
        """Take the case's transaction lock, then read the stream's head (one round trip)."""
        row = await conn.fetchrow(
            "SELECT version, hash FROM zm_locked_head($1, $2)", case_lock_key(self.schema, case_id), stream_id
        )
        if row is None or row["version"] is None:
            return Head(0, GENESIS_HASH)
        return Head(row["version"], row["hash"])

    async def load_locked(self, conn: Conn, stream_id: str, case_id: str) -> list[EventEnvelope]:
        """Take the case's transaction lock, then load the stream (one round trip): its last event
        is the head an append in the same transaction starts from (`Head.of`)."""
        rows = await conn.fetch(
            f"SELECT {_COLUMNS} FROM zm_locked_stream($1, $2) ORDER BY stream_version",
            case_lock_key(self.schema, case_id),
            stream_id,
        )
        return [row_to_envelope(r) for r in rows]

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
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
            cursor = conn.cursor(
                f"SELECT {_COLUMNS} FROM events ORDER BY stream_id, stream_version", prefetch=batch
            )
            async for row in cursor:
                yield row_to_envelope(row)

    async def unsigned_before(self) -> int:
        """Events up to this global position were recorded before events were signed."""
        found = await self.pool.fetchval("SELECT max(global_position) FROM unsigned_events_before")
        return int(found or 0)

    async def verify(
        self, keyring: Keyring | None = None, *, signed: dict[str, Vouched] | None = None
    ) -> ChainBreak | None:
        """Check every stream's chain: versions 1..n without gaps, each prev_hash the previous
        hash, each hash recomputed from the stored fields, each event signed by a key of this
        context in the keyring (SigningSettings' by default). Returns the first break, if any.
        `signed` collects, by event id, what was verified of each event whose checks passed
        (Vouched), so that the same checks of a copy elsewhere need not be repeated.

        Hashes and signatures are checked by chunks of SIGNATURE_CHUNK rows in worker processes
        while the loop goes on reading and linking; the first break in trail order is the one
        returned, whichever check found it."""
        keyring = keyring or Keyring.load()
        checks = _RowChecks(keyring, self.context, await self.unsigned_before(), signed)
        try:
            chain_break = await self._verify_chains(checks)
        except BaseException:
            await checks.abandon()
            raise
        # Rows after a break of the links are not the trail's: their hashes and signatures are
        # not asked about; a row before it whose hash or signature fails comes first.
        return await checks.first_break() or chain_break

    async def _verify_chains(self, checks: _RowChecks) -> ChainBreak | None:
        """The first break of versions or prev_hash, read from the stored columns; each row handed
        to `checks` meanwhile, which recomputes its hash and checks its signature."""
        stream: str | None = None
        expected_version = 0
        prev = GENESIS_HASH
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
            cursor = conn.cursor(
                f"SELECT {_CHECKED_COLUMNS} FROM events ORDER BY stream_id, stream_version", prefetch=2000
            )
            async for record in cursor:
                row: CheckedRow = tuple(record)
                stream_id, stream_version, prev_hash = row[_STREAM], row[_VERSION], row[_PREV]
                if stream_id != stream:
                    stream, expected_version, prev = stream_id, 0, GENESIS_HASH
                expected_version += 1
                if stream_version != expected_version:
                    return ChainBreak(
                        stream_id, expected_version, prev, "(missing)", f"version {expected_version} missing"
                    )
                if prev_hash != prev:
                    return ChainBreak(stream_id, stream_version, prev, prev_hash, "prev_hash", str(row[0]))
                await checks.add(row)
                if checks.found is not None:
                    return None  # a worker found an earlier break: the rest is not the trail's
                prev = row[_HASH]
        return None


def new_event_ids(count: int) -> list[uuid.UUID]:
    """`count` random (version 4) UUIDs out of one read of the system's randomness, where
    uuid4() reads it once per id (a tenth of a batch append's CPU)."""
    randomness = os.urandom(16 * count)
    return [uuid.UUID(bytes=randomness[i : i + 16], version=4) for i in range(0, 16 * count, 16)]


class Vouched(NamedTuple):
    """What store.verify checked of one event: its key id, hash and signature as verified, and
    the SHA-256 of its wire bytes (EventEnvelope.to_bytes, what the relay sent), so that a Kafka
    record byte-equal to them is known to be this very event without being decoded again."""

    key_id: str
    hash: str
    signature: str
    wire: bytes


SIGNATURE_CHUNK = 500
"""Rows whose hashes and signatures one worker-process call checks (store.verify)."""


_PR_SET_PDEATHSIG = 1


def _signature_worker_start(parent: int) -> None:
    """A forked worker: dies with the process that forked it (even a SIGKILLed one, where an
    orphan would wait on its queue for ever), and takes no part in that process's signals (the
    loop's wakeup descriptor, Ctrl-C: the parent stops its workers itself)."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(0)
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def signature_workers() -> ProcessPoolExecutor:
    """Worker processes for the audit's hash and signature checks (`check_rows`), one per core (at
    most four): the loop that feeds them only reads rows and links them. Forked: a worker is up
    in milliseconds with what the program has imported, where a spawned one would import it
    all again first."""
    return ProcessPoolExecutor(
        max(1, min(4, len(os.sched_getaffinity(0)))),
        mp_context=get_context("fork"),
        initializer=_signature_worker_start,
        initargs=(os.getpid(),),
    )


CheckedRow = tuple[Any, ...]
"""A row of _CHECKED_COLUMNS, as the audit's worker processes check it: an event's stored columns
and its global position. The ids come as text and actor and payload as jsonb's text, decoded in
the worker: a UUID object costs more to send to a worker than the whole rest of the row."""

_FIELDS = tuple(_COLUMNS.replace(" ", "").split(","))
_AS_TEXT = ("event_id", "actor", "correlation_id", "causation_id", "payload")
_CHECKED_COLUMNS = (
    ", ".join(f"{name}::text" if name in _AS_TEXT else name for name in _FIELDS) + ", global_position"
)
_STREAM, _VERSION, _PREV, _HASH, _KEY, _SIGNATURE = (
    _FIELDS.index(name)
    for name in ("stream_id", "stream_version", "prev_hash", "hash", "key_id", "signature")
)
_POSITION = len(_FIELDS)


class RowsChecked(NamedTuple):
    """What a worker found of a chunk of rows: the SHA-256 of the wire form of each row that
    passed, in order (empty bytes unless asked for), and the first that did not, as a ChainBreak."""

    wires: list[bytes]
    broken: ChainBreak | None


def check_rows(
    rows: Sequence[CheckedRow], context: str, keys: dict[str, tuple[str, bytes]], legacy: int, wires: bool
) -> RowsChecked:
    """Each row decoded into its envelope, its hash recomputed from the stored fields, and its
    signature checked against `keys` (key id: its service and raw public key), up to the first
    row that fails. A row recorded before signing (global position up to `legacy`) without a
    signature needs none. A row that is no event envelope (altered in the database) is a break,
    not an error. Runs in the audit's worker processes: a function of plain values."""
    keyring = Keyring(
        {
            key_id: TrustedKey(key_id, service, Ed25519PublicKey.from_public_bytes(raw))
            for key_id, (service, raw) in keys.items()
        }
    )
    digests: list[bytes] = []
    for row in rows:
        fields = dict(zip(_FIELDS, row, strict=False))
        try:
            fields["actor"], fields["payload"] = jsonb_value(fields["actor"]), jsonb_value(fields["payload"])
            env = row_to_envelope(fields)
        except ValueError as invalid:  # a row altered in the database into no event at all
            broken = ChainBreak(
                row[_STREAM],
                row[_VERSION],
                "an event envelope",
                "undecodable row",
                f"undecodable row: {_why_undecodable(invalid)}",
                event_id=row[0],
            )
            return RowsChecked(digests, broken)
        recomputed, wire = env.hash_and_wire() if wires else (env.computed_hash(), b"")
        if recomputed != env.hash:
            broken = ChainBreak(
                env.stream_id, env.stream_version, recomputed, env.hash, "hash", str(env.event_id)
            )
            return RowsChecked(digests, broken)
        if env.signature is not None or row[_POSITION] > legacy:
            try:
                keyring.check(env, context)
            except SignatureProblem as problem:
                broken = ChainBreak(
                    env.stream_id,
                    env.stream_version,
                    f"a signature by a key of {context}",
                    env.key_id or "(unsigned)",
                    f"signature {problem.code}: {problem.reason}",
                    event_id=str(env.event_id),
                )
                return RowsChecked(digests, broken)
        digests.append(hashlib.sha256(wire).digest() if wires else b"")
    return RowsChecked(digests, None)


def _why_undecodable(invalid: ValueError) -> str:
    """The field and the problem of a row that is no envelope (its actor is validated apart, so
    its errors' locations are prefixed here); a value JSON cannot give back (an integer of
    thousands of digits) as itself."""
    if not isinstance(invalid, ValidationError):
        return f"payload or actor: {invalid}"
    first = invalid.errors()[0]
    location = (["actor"] if invalid.title == Actor.__name__ else []) + [str(part) for part in first["loc"]]
    return f"{'.'.join(location)}: {first['msg']}"


class _RowChecks:
    """The hash and signature checks of a trail's rows in trail order, by chunks in worker
    processes (`check_rows`); at most IN_FLIGHT chunks wait at a time, so memory stays flat
    however long the trail.

    The loop only reads the rows and checks their links (versions, prev_hash); decoding, hashing
    and the Ed25519 check, nine tenths of the CPU, run on every core in the workers: in the loop
    they made the verification a single core's work (about 370 us of CPU an event)."""

    IN_FLIGHT = 4

    def __init__(
        self, keyring: Keyring, context: str, legacy: int, signed: dict[str, Vouched] | None
    ) -> None:
        self.keyring = keyring
        self.context = context
        self.legacy = legacy
        self.signed = signed
        self.found: ChainBreak | None = None
        self._chunk: list[CheckedRow] = []
        self._running: collections.deque[tuple[list[CheckedRow], asyncio.Future[RowsChecked]]] = (
            collections.deque()
        )
        self._workers: ProcessPoolExecutor | None = None

    async def add(self, row: CheckedRow) -> None:
        self._chunk.append(row)
        if len(self._chunk) >= SIGNATURE_CHUNK:
            self._submit()
        while self._running and (self._running[0][1].done() or len(self._running) > self.IN_FLIGHT):
            await self._settle()

    def _submit(self) -> None:
        if not self._chunk:
            return
        chunk, self._chunk = self._chunk, []
        # The keys the chunk names, looked up here: a key rotated in reloads the keyring once.
        keys = {
            key_id: (trusted.service, trusted.raw)
            for key_id in {row[_KEY] for row in chunk if row[_KEY]}
            if (trusted := self.keyring.get(key_id)) is not None
        }
        if self._workers is None:
            self._workers = signature_workers()
        future = asyncio.get_running_loop().run_in_executor(
            self._workers, check_rows, chunk, self.context, keys, self.legacy, self.signed is not None
        )
        self._running.append((chunk, future))

    async def _settle(self) -> None:
        """The oldest chunk's result: its rows into `signed` up to the first that failed, and that
        one (if it is the first failure) as the break."""
        chunk, future = self._running.popleft()
        checked = await future
        if self.found is not None:
            return
        if self.signed is not None:
            for row, digest in zip(chunk, checked.wires, strict=False):
                if row[_KEY] is not None and row[_SIGNATURE] is not None:
                    self.signed[str(row[0])] = Vouched(row[_KEY], row[_HASH], row[_SIGNATURE], digest)
        self.found = checked.broken

    async def first_break(self) -> ChainBreak | None:
        """Waits for every chunk; the first row whose hash or signature fails, as a ChainBreak."""
        try:
            self._submit()
            while self._running:
                await self._settle()
            return self.found
        finally:
            self.close()

    async def abandon(self) -> None:
        """Let the chunks in flight finish (a worker's call cannot be stopped), results unread."""
        while self._running:
            future = self._running.popleft()[1]
            with contextlib.suppress(Exception):
                await future
        self.close()

    def close(self) -> None:
        if self._workers is not None:
            self._workers.shutdown(wait=False, cancel_futures=True)
            self._workers = None


def _headers(e: EventEnvelope, trace: dict[str, str]) -> dict[str, str]:
    """Kafka headers for routing and tracing without opening the body."""
    return {
        "event_type": e.event_type,
        "schema_version": str(e.schema_version),
        "correlation_id": str(e.correlation_id),
        "content-type": "application/json",
        **trace,
    }
