"""Consumer runner: applies each event exactly once (inbox + effect in one transaction), then
commits the Kafka offset; poison messages go to a dead-letter topic, every other failure retries.

The one invariant: a committed offset never passes a message that was neither applied nor
dead-lettered. Whatever goes wrong while a message is in hand (the database or the broker away, an
exception class nobody expected, a stray cancellation), the runner retries that message with
backoff and handles nothing after it; when the retry deadline passes it rewinds the partition to
the message, stops consuming and reports itself in `failure` (the service's /readyz turns 503).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from faststream import AckPolicy
from faststream.exceptions import StopConsume
from faststream.kafka import KafkaBroker, KafkaMessage
from pydantic import BaseModel, ValidationError

from shared import rejections, tracing
from shared.db import Conn, database_away
from shared.envelope import EventEnvelope
from shared.errors import DomainError, InvalidEvent, OutOfRange, UnknownEventType, without_values
from shared.logging import get_logger, outages
from shared.registry import EventRegistry
from shared.settings import ConsumerSettings
from shared.signing import Keyring, SignatureProblem
from shared.topics import dead_letter_topic, parse_events_topic

log = get_logger(__name__)

Apply = Callable[[Conn, EventEnvelope, BaseModel], Awaitable[None]]
T = TypeVar("T")

# Errors that are a property of the message: retrying cannot fix them, so the message goes to the
# dead-letter topic. Everything else (connection loss, shutdown, a bug) is retried.
REJECTED: tuple[type[Exception], ...] = (
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    ValueError,
)


class DeadLetter(Exception):
    """A message that can never be applied; `code` and the message go into the DLQ headers."""

    def __init__(self, code: str, reason: str, event_id: str | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.event_id = event_id


class GaveUp(Exception):
    """The retry deadline passed with the message still in hand: the consumer stops."""


@dataclass
class Outcome:
    """What the runner did with one message (returned for tests and counted for metrics)."""

    status: str  # applied | duplicate | dead_letter | skipped
    event_id: str | None = None
    reason: str | None = None


class EventConsumer:
    """Runs one consumer (one group, one inbox name) over one or more topics."""

    def __init__(
        self,
        name: str,
        pool: asyncpg.Pool,
        registry: EventRegistry,
        apply: Apply,
        *,
        settings: ConsumerSettings | None = None,
        event_types: frozenset[str] | None = None,
        keyring: Keyring | None = None,
    ) -> None:
        self.name = name
        # The public keys of the producers (SigningSettings' keyring unless given).
        self.keyring = keyring or Keyring.load()
        self.event_types = event_types
        self.pool = pool
        self.registry = registry
        self.apply = apply
        self.settings = settings or ConsumerSettings()
        self.broker: KafkaBroker | None = None
        self.counts: dict[str, int] = {"applied": 0, "duplicate": 0, "dead_letter": 0, "skipped": 0}
        self.retries = 0
        # Set when the consumer stopped on a message it could not settle before the deadline.
        self.failure: str | None = None

    def subscribe(
        self,
        broker: KafkaBroker,
        *topics: str,
        pattern: str | None = None,
        group_id: str | None = None,
    ) -> None:
        """Declare the FastStream subscriber; offsets are committed by hand after the apply."""
        self.broker = broker
        subscriber = broker.subscriber(
            *topics,
            pattern=pattern,
            group_id=group_id or self.name,
            auto_offset_reset="earliest",
            # Relays publish in transactions: never read a batch a fenced relay left aborted.
            isolation_level="read_committed",
            ack_policy=AckPolicy.MANUAL,
            parser=_tolerant_headers,
            decoder=_raw_body,
            title=f"{self.name}",
            description=f"zhengming consumer {self.name}: applies events once, dead-letters poison",
        )

        async def handle(body: bytes, msg: KafkaMessage) -> None:
            await self.handle(msg)

        subscriber(handle)

    async def handle(self, msg: KafkaMessage) -> Outcome:
        """Settle one message (applied, duplicate, dead-lettered or skipped), then commit its offset.

        Anything escaping the settling rewinds the partition to this message first, so neither
        this process nor the next owner of the partition can step over it.
        """
        record = _record(msg)
        with tracing.consuming(self.name, record) as span:
            try:
                outcome = await self.settle(msg, record)
            except GaveUp as exc:
                self._rewind(msg, record)
                self.failure = str(exc)
                log.critical("consumer.stopped", consumer=self.name, reason=self.failure, **_position(record))
                raise StopConsume from exc
            except BaseException:
                self._rewind(msg, record)
                raise
            tracing.outcome(span, outcome.status)
            await self._commit_offset(msg, record)
        return outcome

    async def settle(self, msg: KafkaMessage, record: ConsumerRecord[Any, Any]) -> Outcome:
        position = _position(record)
        try:
            # Retried like the apply: a keyring file unreadable for a while is no property of
            # the message (DeadLetter, which is, passes straight through).
            envelope, payload = await self._retrying("decode", self._decode, msg.body, record.topic)
        except DeadLetter as dead:
            await self._retrying("dead_letter", self.dead_letter, msg, dead, position)
            return Outcome("dead_letter", reason=dead.reason)
        with structlog.contextvars.bound_contextvars(
            correlation_id=str(envelope.correlation_id),
            causation_id=str(envelope.causation_id) if envelope.causation_id else None,
            case_id=envelope.case_id,
            event_id=str(envelope.event_id),
            event_type=envelope.event_type,
            consumer=self.name,
        ):
            if self.event_types is not None and envelope.event_type not in self.event_types:
                # Nothing to apply: the offset moves on without a transaction or an inbox row.
                self.counts["skipped"] += 1
                return Outcome("skipped", str(envelope.event_id))
            try:
                status = await self._retrying("apply", self.apply_once, envelope, payload, position)
            except DeadLetter as dead:
                await self._retrying("dead_letter", self.dead_letter, msg, dead, position)
                return Outcome("dead_letter", str(envelope.event_id), dead.reason)
            self.counts[status] += 1
            self.after_apply(envelope, status)
            return Outcome(status, str(envelope.event_id))

    def after_apply(self, envelope: EventEnvelope, status: str) -> None:
        """Hook between the database commit and the offset commit (fault-injection tests)."""

    async def _decode(self, body: bytes, topic: str) -> tuple[EventEnvelope, BaseModel]:
        return self.decode(body, topic)

    def decode(self, body: bytes, topic: str) -> tuple[EventEnvelope, BaseModel]:
        try:
            envelope = EventEnvelope.from_bytes(body)
        except ValidationError as exc:
            raise DeadLetter("undecodable", _short(exc)) from exc
        event_id = str(envelope.event_id)
        if not envelope.hash_ok():
            raise DeadLetter(
                "hash_mismatch", f"hash of {envelope.event_id} does not match its content", event_id
            )
        self.verify_origin(envelope, topic)
        try:
            payload = self.registry.decode(envelope)
        except UnknownEventType as exc:
            raise DeadLetter("unknown_event_type", f"unknown event type {exc}") from exc
        except InvalidEvent as exc:
            raise DeadLetter("invalid_event", str(exc)) from exc
        return envelope, payload

    def verify_origin(self, envelope: EventEnvelope, topic: str) -> None:
        """The event was written by the service whose context owns the topic, for the topic's
        jurisdiction: its signature is by a key the keyring gives to that context."""
        event_id = str(envelope.event_id)
        owner = parse_events_topic(topic)
        if owner is None:
            raise DeadLetter(
                "wrong_topic", f"event {event_id} on {topic}, which is no events topic", event_id
            )
        jurisdiction, context = owner
        if envelope.jurisdiction != jurisdiction:
            raise DeadLetter(
                "wrong_topic",
                f"event {event_id} of jurisdiction {envelope.jurisdiction} on {topic}",
                event_id,
            )
        try:
            self.keyring.check(envelope, context)
        except SignatureProblem as problem:
            raise DeadLetter(problem.code, f"{problem.reason} (on {topic})", event_id) from problem

    async def apply_once(self, envelope: EventEnvelope, payload: BaseModel, position: dict[str, Any]) -> str:
        """Inbox row and effect in one transaction: 'applied', or 'duplicate' when the inbox
        already holds the event. Raises DeadLetter when the effect refuses the event itself."""
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                fresh = await conn.fetchval(
                    "INSERT INTO inbox (consumer, event_id, topic, kafka_partition, kafka_offset)"
                    " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING 1",
                    self.name,
                    envelope.event_id,
                    position["topic"],
                    position["partition"],
                    position["offset"],
                )
                if not fresh:
                    log.info("event.duplicate")
                    return "duplicate"
                await self.apply(conn, envelope, payload)
        except DomainError as refused:  # the rules refuse what the message asks: it is poison
            raise DeadLetter("invalid_event", f"{refused.code}: {refused.detail}") from refused
        except OutOfRange as exc:  # e.g. a deadline in a year the working-day calendar lacks
            raise DeadLetter(exc.code, str(exc)) from exc
        except REJECTED as exc:
            raise DeadLetter("rejected", _short(exc)) from exc
        log.info("event.applied")
        return "applied"

    async def _retrying(self, step: str, action: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run `action` until it succeeds or raises DeadLetter; any other failure is retried with
        exponential backoff until the deadline, then GaveUp. A CancelledError that nobody asked
        for (the task has no pending cancellation) is a failure like any other; a real one
        propagates."""
        delay = self.settings.retry_initial_s
        deadline = time.monotonic() + self.settings.retry_deadline_s
        while True:
            try:
                result = await action(*args)
            except DeadLetter:
                raise
            except asyncio.CancelledError as exc:
                task = asyncio.current_task()
                if task is None or task.cancelling():
                    raise
                error: BaseException = exc
            except Exception as exc:
                error = exc
            else:
                outages.up("database")
                return result
            if time.monotonic() + delay > deadline:
                raise GaveUp(f"{step}: {error!r} (retried for {self.settings.retry_deadline_s:g}s)")
            self.retries += 1
            if database_away(error):  # one line per outage for the process, not one per retry
                outages.down("database", error)
            else:
                log.warning("event.retry", step=step, error=repr(error), delay_s=round(delay, 2))
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.settings.retry_max_s)

    async def _commit_offset(self, msg: KafkaMessage, record: ConsumerRecord[Any, Any]) -> None:
        """Commit exactly this message's partition up to and including it. A failure here loses
        nothing: the message is settled, and a redelivery is a duplicate the inbox drops."""
        partition = TopicPartition(record.topic, record.partition)
        try:
            await _kafka(msg).commit({partition: record.offset + 1})
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            log.warning("offset.commit_failed", error="CancelledError()", **_position(record))
        except Exception as exc:
            log.warning("offset.commit_failed", error=repr(exc), **_position(record))

    def _rewind(self, msg: KafkaMessage, record: ConsumerRecord[Any, Any]) -> None:
        """Put the partition back on this message so the next fetch hands it out again."""
        try:
            _kafka(msg).seek(TopicPartition(record.topic, record.partition), record.offset)
        except Exception as exc:  # revoked or stopped: the next owner starts at the committed offset
            log.info("consumer.rewind_skipped", error=repr(exc), **_position(record))

    async def dead_letter(self, msg: KafkaMessage, dead: DeadLetter, position: dict[str, Any]) -> None:
        assert self.broker is not None
        log.warning("event.dead_letter", code=dead.code, reason=dead.reason, **position)
        if dead.code in rejections.INTEGRITY_CODES:
            # Kept where verify looks, before the offset moves on: a forgery is named, not just parked.
            async with self.pool.acquire() as conn:
                await rejections.record(conn, self.name, position, dead.code, dead.reason, dead.event_id)
        record = _record(msg)
        await self.broker.publish(
            msg.body,
            topic=dead_letter_topic(self.name),
            key=record.key,
            headers={
                "zm-dlq-code": dead.code,
                "zm-dlq-reason": dead.reason[:2000],
                "zm-dlq-consumer": self.name,
                "zm-dlq-event-id": dead.event_id or "",
                "zm-original-topic": position["topic"],
                "zm-original-partition": str(position["partition"]),
                "zm-original-offset": str(position["offset"]),
            },
        )
        self.counts["dead_letter"] += 1


def _record(msg: KafkaMessage) -> ConsumerRecord[Any, Any]:
    raw = msg.raw_message
    return raw[0] if isinstance(raw, tuple) else raw


def _kafka(msg: KafkaMessage) -> AIOKafkaConsumer:
    """The aiokafka consumer that fetched `msg` (FastStream types it as a narrower protocol)."""
    consumer: AIOKafkaConsumer = msg.consumer
    return consumer


def _position(record: ConsumerRecord[Any, Any]) -> dict[str, Any]:
    return {"topic": record.topic, "partition": record.partition, "offset": record.offset}


async def _tolerant_headers(
    record: ConsumerRecord[Any, Any], original: Callable[[ConsumerRecord[Any, Any]], Awaitable[Any]]
) -> Any:
    """FastStream decodes every header value as UTF-8 before any handler runs and drops the
    message, unseen, when one is binary or empty: the next offset commit would then pass it.
    Such values are handed on replaced (the body is untouched), so the runner settles the message
    like any other: applied when its envelope holds, else dead-lettered with the reason."""
    headers = record.headers or ()
    if all(isinstance(v, bytes) and _utf8(v) for _, v in headers):
        return await original(record)
    clean = tuple((k, (v or b"").decode("utf-8", "replace").encode()) for k, v in headers)
    return await original(dataclasses.replace(record, headers=clean))


def _utf8(value: bytes) -> bool:
    try:
        value.decode()
    except UnicodeDecodeError:
        return False
    return True


def _raw_body(msg: Any) -> bytes:
    """Hand the handler the bytes as they came: decoding is the runner's job (to dead-letter)."""
    body: bytes = msg.body
    return body


def _short(exc: Exception) -> str:
    """The reason of a refusal without the message's values (the reason travels in a dead-letter
    header and reaches operators, who see no case data): pydantic's errors by place and kind, a
    database error by its class and SQLSTATE, a rule's own message as written."""
    if isinstance(exc, ValidationError):
        return without_values(exc)
    if isinstance(exc, asyncpg.PostgresError):
        constraint = getattr(exc, "constraint_name", None)
        return f"{type(exc).__name__} (SQLSTATE {exc.sqlstate})" + (f" on {constraint}" if constraint else "")
    return str(exc).replace("\n", " ")[:1000]
