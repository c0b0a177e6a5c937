"""Consumer runner: applies each event exactly once (inbox + effect in one transaction), then
commits the Kafka offset; poison messages go to a dead-letter topic, every other failure retries.

The one invariant: a committed offset never passes a message that was neither applied nor
dead-lettered. Whatever goes wrong while a message is in hand (the database or the broker away, an
exception class nobody expected, a stray cancellation), the runner retries that message with
backoff and handles nothing after it; when the retry deadline passes it rewinds the partition to
the message, stops consuming and reports itself in `failure` (the service's /readyz turns 503).

Offsets are committed lazily: each settled message moves its partition's settled offset (the
next offset to commit, all before it settled), and the settled offsets are committed every
`commit_every_messages` messages, `commit_interval_s` after the first uncommitted one (also one
settled while a commit is in flight, and one whose commit was refused), when a partition is
revoked, when the runner gives up and when the consumer stops. Only offsets of
settled messages are ever recorded, so a commit cannot pass the message in hand; a crash before
the commit redelivers settled messages, which the inbox drops as duplicates.

A message whose `event_type` header names a type the consumer does not react to is skipped
without decoding its body; one without a readable header is decoded and settled as any other.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from faststream import AckPolicy
from faststream.exceptions import StopConsume
from faststream.kafka import KafkaBroker, KafkaMessage
from pydantic import BaseModel, ValidationError

from shared import rejections, tracing
from shared.db import Conn, database_away, transactions_only
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

EVENT_TYPE_HEADER = "event_type"
"""Set by the event store on every events-topic record (shared/store.py `_headers`)."""

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

    status: str  # applied | duplicate | dead_letter | skipped | held (out of order after a rewind)
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
        self.commits = 0  # offset commits that succeeded (tests, metrics)
        # Lazy commits: per partition, the next offset to commit (every message before it settled).
        self._settled: dict[TopicPartition, int] = {}
        self._unflushed = 0
        self._flush_timer: asyncio.Task[None] | None = None
        self._timer_waiting = False  # a commit timer is asleep: what settles now, it will take
        self._commit_lock = asyncio.Lock()  # commits land in the order they were taken
        self._kafka: AIOKafkaConsumer | None = None
        self._stopping = False  # set while the aiokafka consumer stops: no commit is retried then
        # Partitions rewound to a message that must come back before anything after it settles.
        self._rewound: dict[TopicPartition, int] = {}
        # Partitions the group took away and has not given back (the rebalance listener's).
        self._revoked: set[TopicPartition] = set()

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
            decoder=_the_message,
            # Settled offsets of a partition taken away are committed before its next owner reads it.
            listener=_CommitOnRevoke(self),
            title=f"{self.name}",
            description=f"zhengming consumer {self.name}: applies events once, dead-letters poison",
        )

        # One parameter, the message itself (what `_the_message` decodes to): no dependency to
        # resolve per message. A parameter FastStream must inject (`msg: KafkaMessage`) costs a
        # worker-thread hop per message, as does a synchronous decoder.
        async def handle(message: Any) -> None:
            await self.handle(message)

        subscriber(handle)

    async def handle(self, msg: KafkaMessage) -> Outcome:
        """Settle one message (applied, duplicate, dead-lettered or skipped), then record its offset
        as settled (committed with the next batch).

        Anything escaping the settling rewinds the partition to this message first, so neither
        this process nor the next owner of the partition can step over it.
        """
        record = _record(msg)
        self._adopt(_kafka(msg))
        tp = TopicPartition(record.topic, record.partition)
        rewound = self._rewound.pop(tp, None)
        if rewound is not None and record.offset > rewound:
            # aiokafka drops the records it holds when a partition is rewound, so this does not
            # happen; were it to, settling this message would let the next commit pass the one
            # the partition was rewound to. Rewind again and wait for that one.
            self._rewind(msg, record, rewound)
            log.warning("consumer.out_of_order", expected=rewound, **_position(record))
            return Outcome("held")
        declared = declared_type(record)
        if self.event_types is not None and declared is not None and declared not in self.event_types:
            # Nothing to apply, so nothing to decode, hash or verify. Trusting the header is safe:
            # skipping applies nothing, so a forged header can only make a message be ignored,
            # never accepted (a message the consumer reacts to is verified in full before its
            # effect); and the event store sets the header from the very envelope it sends.
            self.counts["skipped"] += 1
            await self._settled_at(tp, record.offset)
            return Outcome("skipped")
        with tracing.consuming(self.name, record) as span:
            try:
                outcome = await self.settle(msg, record)
            except GaveUp as exc:
                self._rewind(msg, record)
                await self.flush()  # what settled before it is committed; it and after are not
                self.failure = str(exc)
                log.critical("consumer.stopped", consumer=self.name, reason=self.failure, **_position(record))
                raise StopConsume from exc
            except BaseException:
                self._rewind(msg, record)
                raise
            tracing.outcome(span, outcome.status)
        await self._settled_at(tp, record.offset)
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
            async with self.pool.acquire() as conn:
                status = await self._apply_in_transaction(conn, envelope, payload, position)
                transactions_only(conn)  # back to the pool without the reset statement
        except DomainError as refused:  # the rules refuse what the message asks: it is poison
            raise DeadLetter("invalid_event", f"{refused.code}: {refused.detail}") from refused
        except OutOfRange as exc:  # e.g. a deadline in a year the working-day calendar lacks
            raise DeadLetter(exc.code, str(exc)) from exc
        except REJECTED as exc:
            raise DeadLetter("rejected", _short(exc)) from exc
        log.info("event.duplicate" if status == "duplicate" else "event.applied")
        return status

    async def _apply_in_transaction(
        self, conn: Conn, envelope: EventEnvelope, payload: BaseModel, position: dict[str, Any]
    ) -> str:
        """The inbox row, then the effect, in one transaction ("duplicate" when the inbox holds
        the event already: nothing is applied)."""
        async with conn.transaction():
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
                return "duplicate"
            await self.apply(conn, envelope, payload)
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

    async def _settled_at(self, tp: TopicPartition, offset: int) -> None:
        """The message at `offset` is settled (so is every one before it on its partition):
        commit now if the batch is full, else within `commit_interval_s`. A partition revoked while
        its message was in hand is not recorded: its next owner starts at the committed offset
        (this member too, should it come back), and an old offset kept here would later move the
        group's offset backwards (a mass redelivery, dead letters published again)."""
        if tp in self._revoked:
            return
        self._settled[tp] = offset + 1
        self._unflushed += 1
        if self._unflushed >= self.settings.commit_every_messages:
            await self.flush()
        else:
            self._commit_later()

    def _commit_later(self) -> None:
        """Commit the settled offsets within `commit_interval_s`, unless a timer is still waiting
        to. A timer that has woken takes only what had settled by then: an offset settled while
        its commit is in flight needs a timer of its own, or a quiet partition's last message
        would stay uncommitted until the next one came (and a deployment never look quiet)."""
        if not self._timer_waiting:
            self._timer_waiting = True
            self._flush_timer = asyncio.create_task(self._flush_later(), name=f"{self.name}.commit")

    async def _flush_later(self) -> None:
        try:
            await asyncio.sleep(self.settings.commit_interval_s)
        finally:
            self._timer_waiting = False
        await self.flush()

    async def flush(self, partitions: Collection[TopicPartition] | None = None) -> None:
        """Commit the settled offsets (of `partitions`, else all). A failure here loses nothing:
        the offsets are kept for the next flush, and a redelivery is a duplicate the inbox drops."""
        async with self._commit_lock:  # taken in order, committed in order: never moves backwards
            consumer = self._kafka
            if partitions is None:
                taken, self._settled, self._unflushed = self._settled, {}, 0
            else:
                taken = {tp: self._settled.pop(tp) for tp in partitions if tp in self._settled}
            if consumer is None or not taken:
                return
            # A partition no longer ours: its next owner starts at the last committed offset and
            # the inbox drops what it sees again (committing it would be refused anyway).
            assigned = consumer.assignment()
            offsets = {tp: offset for tp, offset in taken.items() if tp in assigned}
            if not offsets:
                return
            try:
                await consumer.commit(offsets)
            except asyncio.CancelledError:
                self._keep(offsets)
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
                log.warning("offset.commit_failed", error="CancelledError()", offsets=_named(offsets))
            except Exception as exc:
                self._keep(offsets)
                log.warning("offset.commit_failed", error=repr(exc), offsets=_named(offsets))
            else:
                self.commits += 1

    def _keep(self, offsets: dict[TopicPartition, int]) -> None:
        """Offsets whose commit failed, back for the next flush (unless a later one is there),
        which a timer takes unless the consumer is stopping: with no message after them, nothing
        else would, and the group would stay behind for good (a rebalance under way refuses a
        commit, and the last batch of a quiet partition is often the one refused)."""
        for tp, offset in offsets.items():
            if self._settled.get(tp, -1) < offset:
                self._settled[tp] = offset
        if not self._stopping:
            self._commit_later()

    def _adopt(self, consumer: AIOKafkaConsumer) -> None:
        """Remember the aiokafka consumer that fetches for this runner, and flush the settled
        offsets right before it stops (FastStream stops it after the message in hand settled)."""
        self._stopping = False  # a consumer that hands out messages is running
        if consumer is self._kafka:
            return
        self._kafka, self._settled, self._unflushed = consumer, {}, 0
        stop = consumer.stop

        async def flush_then_stop() -> None:
            self._stopping = True
            if self._flush_timer is not None:
                self._flush_timer.cancel()  # cancelled before it ran, it would never clear its flag
            self._timer_waiting = False
            await self.flush()
            await stop()

        consumer.stop = flush_then_stop

    def _rewind(self, msg: KafkaMessage, record: ConsumerRecord[Any, Any], offset: int | None = None) -> None:
        """Put the partition back on this message so the next fetch hands it out again."""
        tp = TopicPartition(record.topic, record.partition)
        to = record.offset if offset is None else offset
        self._rewound[tp] = to
        try:
            _kafka(msg).seek(tp, to)
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


class _CommitOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """Commits a partition's settled offset before the group hands it to another member."""

    def __init__(self, runner: EventConsumer) -> None:
        self.runner = runner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.runner.flush(revoked)
        for tp in revoked:  # the next owner (maybe this one) starts at the committed offset
            self.runner._rewound.pop(tp, None)
            self.runner._settled.pop(tp, None)  # a commit that failed just now is not kept for later
        self.runner._revoked |= revoked

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.runner._revoked -= assigned


def declared_type(record: ConsumerRecord[Any, Any]) -> str | None:
    """The event type the record's header names; None without a (readable, non-empty) one."""
    for key, value in record.headers or ():
        if key == EVENT_TYPE_HEADER:
            if not value:
                return None
            try:
                return str(value.decode())
            except UnicodeDecodeError:
                return None
    return None


def _named(offsets: dict[TopicPartition, int]) -> dict[str, int]:
    return {f"{tp.topic}[{tp.partition}]": offset for tp, offset in offsets.items()}


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
    # An unreadable event-type header is dropped, not replaced: the runner then decodes the body
    # (a replaced value would name no type, and the message would be skipped unseen).
    clean = tuple(
        (k, (v or b"").decode("utf-8", "replace").encode())
        for k, v in headers
        if k != EVENT_TYPE_HEADER or (isinstance(v, bytes) and _utf8(v))
    )
    return await original(dataclasses.replace(record, headers=clean))


def _utf8(value: bytes) -> bool:
    try:
        value.decode()
    except UnicodeDecodeError:
        return False
    return True


async def _the_message(msg: KafkaMessage) -> KafkaMessage:
    """Hand the handler the message as it came: decoding its body is the runner's job (to
    dead-letter). Asynchronous: FastStream runs a synchronous decoder in a worker thread."""
    return msg


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
