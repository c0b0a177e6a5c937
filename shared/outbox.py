"""Outbox relay: publishes committed outbox rows to Kafka in id order, never skipping one and
never publishing one twice.

It selects every row not yet marked published (never "id > last sent"), so a row whose id was
allocated early but committed late is still found on a later pass. Each key's order holds because
the event store serialises the writers of one case, and only one relay per schema runs at a time
(a session advisory lock).

Exactly once on the topics, not only in the consumers' inboxes (outside agencies reading a public
topic have no inbox): each batch goes out in one Kafka transaction under a transactional id of the
schema's own, and every record carries its outbox row id in the `zm-message-id` header. A relay
that takes the lead starts a new producer under that id, which fences the producer of any earlier
leader and aborts whatever transaction it left open; it then reconciles: the rows still unmarked
are looked up at the tail of their topics (read_committed) and those found are marked instead of
sent again. The same reconciliation follows any failed batch, whose fate on Kafka is unknown (a
commit that landed while the marking failed, say). Readers use isolation.level=read_committed.
A term that ends between batches, with its last batch marked, says so (the `relay_term` row);
the next term then has nothing to reconcile and skips it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import ProducerFenced
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder

from shared import tracing
from shared.db import Conn
from shared.logging import get_logger, outages
from shared.settings import KafkaSettings, RelaySettings
from shared.store import outbox_channel

log = get_logger(__name__)

MESSAGE_ID_HEADER = "zm-message-id"
"""Header naming the outbox row (the event id, or the public message's id) of every record."""

# InternalClientError: asyncpg's state on a session terminated mid-operation.
DB_DOWN = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError)


MAX_BATCH_BYTES = 256 * 1024
"""A record batch's size (the producer's `max_batch_size`); the relay sends a record at least this
large through `send` instead, which applies the producer's request-size check."""


def make_producer(settings: KafkaSettings, *, linger_ms: int = 5, **extra: Any) -> AIOKafkaProducer:
    """The idempotent producer every zhengming publisher uses."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap,
        enable_idempotence=True,
        acks="all",
        linger_ms=linger_ms,
        max_batch_size=MAX_BATCH_BYTES,
        **settings.client_options(),
        **extra,
    )


_END_CLEAN = "UPDATE relay_term SET clean = true, producer_id = $2, producer_epoch = $3 WHERE term = $1"


class TermSpoiled(Exception):
    """A batch of this term failed after its Kafka transaction began: rows may be on Kafka
    unmarked, and only a new term (a fresh producer, whose start fences this one and waits for
    its last commit's markers) can reconcile them; within the term, a read of the topics' tails
    could end before the markers of a commit Kafka has already acknowledged."""


def _producer_identity(producer: AIOKafkaProducer) -> tuple[int, int]:
    """The producer id and epoch Kafka gave this transactional producer when it fenced the last
    one (aiokafka keeps them in its transaction manager: no public accessor)."""
    txn = producer._txn_manager
    assert txn is not None, "a transactional producer"
    return txn.producer_id, txn.producer_epoch


def _relay_lock(schema: str) -> int:
    return int.from_bytes(hashlib.sha256(f"relay:{schema}".encode()).digest()[:8], "big", signed=True)


class OutboxRelay:
    """Moves outbox rows of one schema to Kafka."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        kafka: KafkaSettings,
        *,
        schema: str,
        settings: RelaySettings | None = None,
        deployment: str = "zm",
    ) -> None:
        self.pool = pool
        self.kafka = kafka
        self.schema = schema
        self.settings = settings or RelaySettings()
        # One id per schema and deployment: whoever publishes for this outbox fences the others.
        self.transactional_id = f"{deployment}.relay.{schema}"
        self.published = 0
        self.reconciled = 0
        self.reconciliations = 0  # terms that had to read the topics' tails
        self._producer: AIOKafkaProducer | None = None
        self._unsure = True  # rows may be on Kafka unmarked: reconcile before sending
        self._sent_in_term = False  # a Kafka transaction began in this term: no more reconciling
        self._backlog = True  # the last read found a full batch (or none was made yet)
        # Pipelining (see publish_pending): the rows of the last batch committed on Kafka, to be
        # marked, and the next batch, read while that one was sent (rows still pending then and
        # not in it). Both dropped whenever the relay is unsure: reconciling covers them.
        self._committed: list[int] = []
        self._ahead: list[asyncpg.Record] | None = None
        self._wake = asyncio.Event()

    @contextlib.asynccontextmanager
    async def producing(self) -> AsyncIterator[AIOKafkaProducer]:
        """A transactional producer for one term of publishing; starting it fences earlier ones."""
        producer = make_producer(
            self.kafka, linger_ms=self.settings.linger_ms, transactional_id=self.transactional_id
        )
        await producer.start()
        # start() does not wait for the producer id: an empty transaction does, and with it the
        # fencing (a commit the previous holder had begun is complete before we reconcile).
        await producer.begin_transaction()
        await producer.abort_transaction()
        try:
            # Fenced now: no earlier term can commit anything more. If the last one ended clean,
            # every row on Kafka is marked and there is nothing to reconcile.
            term, after_clean = await self._begin_term(_producer_identity(producer))
            self._producer, self._unsure, self._committed, self._ahead = producer, not after_clean, [], None
            self._sent_in_term = False
            try:
                yield producer
            finally:
                self._producer = None
                if not self._unsure:
                    # Between batches: mark the last one (rather than reconcile it later) and,
                    # once that has landed, record that this term ended clean, and by whom.
                    with contextlib.suppress(*DB_DOWN):
                        async with self.pool.acquire() as conn:
                            await _mark(conn, self._committed)
                            await conn.execute(_END_CLEAN, term, *_producer_identity(producer))
                self._committed = []
        finally:
            with contextlib.suppress(Exception):
                await producer.stop()

    async def _begin_term(self, identity: tuple[int, int]) -> tuple[int, bool]:
        """A new term's number, and whether the term before it ended clean and was the last on
        Kafka before this one: its producer has this one's id and the epoch before this one's
        (migration 0007). Read under the row's lock, so two terms starting at once see each
        other: the second finds the first's `false`."""
        producer_id, epoch = identity
        async with self.pool.acquire() as conn, conn.transaction():
            last = await conn.fetchrow("SELECT clean, producer_id, producer_epoch FROM relay_term FOR UPDATE")
            assert last is not None, "migration 0006 seeds the row"
            previous = (last["producer_id"], last["producer_epoch"])
            clean = bool(last["clean"]) and previous == (producer_id, epoch - 1)
            term: int = await conn.fetchval(
                "UPDATE relay_term SET term = term + 1, clean = false RETURNING term"
            )
        return term, clean

    async def publish_pending(self) -> int:
        """Publish one batch of pending rows in id order, in one Kafka transaction; returns how
        many rows were published (or found already published and marked).

        Pipelined: the batch's records are all handed to the producer before any is awaited.
        Meanwhile, on the database connection, the previous batch (committed on Kafka) is marked
        published in one statement and the next batch is read, kept for the next call. A call
        that finds nothing more to send marks what it holds, so a drain leaves no row unmarked.
        """
        producer = self._producer
        assert producer is not None, "publish inside `producing()`"
        limit = self.settings.batch_size
        if self._unsure and self._sent_in_term:
            raise TermSpoiled(f"relay {self.schema}: a batch failed; a new term reconciles")
        async with self.pool.acquire() as conn:
            if self._unsure:
                self._ahead, self._committed = None, []
                found = await self.reconcile(conn, producer)
                self._unsure = False
                if found:
                    return found
            committed, self._committed = self._committed, []
            # An empty read ahead is read again: rows may have committed since.
            rows = self._ahead or await _pending(conn, limit, committed, backlog=self._backlog)
            self._ahead = None
            self._backlog = len(rows) >= limit
            if not rows:
                self._unsure = True  # until the marking is known to have landed
                await _mark(conn, committed)
                self._unsure = False
                return 0
            self._sent_in_term = True
            ids = [row["id"] for row in rows]
            # Any failure from here (Kafka's or the database's) ends the term (TermSpoiled); the
            # next term's reconciliation also marks `committed` if this marking does not land.
            self._unsure = True
            beside: asyncio.Task[list[asyncpg.Record]] | None = None
            try:
                async with producer.transaction():
                    beside = asyncio.create_task(_mark_and_read(conn, committed, limit, ids, self._backlog))
                    await asyncio.sleep(0)  # its statement goes out before the sending loop
                    sent = await _send_all(producer, rows)
                    # Every record acknowledged before the commit: aiokafka commits a transaction
                    # even when one of its batches failed, and that record would then be marked
                    # unsent.
                    await asyncio.gather(*sent)
                following = await beside
            finally:
                # The connection goes back to the pool only once the task is done with it.
                if beside is not None:
                    await asyncio.wait([beside])
                    if not beside.cancelled():
                        beside.exception()  # retrieved: a failed batch is what is raised
            self._unsure, self._committed, self._ahead = False, ids, following
        self.published += len(rows)
        return len(rows)

    async def reconcile(self, conn: Conn, producer: AIOKafkaProducer) -> int:
        """Mark the pending rows that are already on their topics (committed); returns how many.

        A row's record can only have been written after the row was, so each topic is read from
        the oldest pending row's time (less a margin for clock skew) to its end.
        """
        self.reconciliations += 1
        pending = await conn.fetch(
            "SELECT id, event_id, topic, created_at FROM outbox WHERE published_at IS NULL"
        )
        if not pending:
            return 0
        by_topic: dict[str, dict[str, int]] = defaultdict(dict)
        since: dict[str, float] = {}
        for row in pending:
            by_topic[row["topic"]][str(row["event_id"])] = row["id"]
            start = (row["created_at"] - timedelta(seconds=self.settings.reconcile_margin_s)).timestamp()
            since[row["topic"]] = min(since.get(row["topic"], start), start)
        found: list[int] = []
        reader = AIOKafkaConsumer(
            bootstrap_servers=self.kafka.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            **self.kafka.client_options(),
        )
        await reader.start()
        try:
            for topic, ids in by_topic.items():
                partitions = [TopicPartition(topic, p) for p in sorted(await producer.partitions_for(topic))]
                on_kafka = await _message_ids_since(reader, partitions, since[topic])
                found.extend(row_id for message_id, row_id in ids.items() if message_id in on_kafka)
        finally:
            await reader.stop()
        if found:
            await _mark(conn, found)
            self.reconciled += len(found)
            log.info("relay.reconciled", schema=self.schema, already_published=len(found))
        return len(found)

    async def drain(self) -> int:
        """Publish until nothing is pending (one term of its own, without the leader lock)."""
        total = 0
        async with self.producing():
            while n := await self.publish_pending():
                total += n
        return total

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until `stop` is set: woken by NOTIFY from appends, polling as a fallback.

        Only the holder of the schema's relay lock publishes. The lock lives in one database
        session; when that session dies the lock is gone and another instance may take it, so
        leadership is checked before every batch and lost leadership means contending again.
        A fenced producer (another instance took the lead) also ends the term.
        """
        while not stop.is_set():
            try:
                await self._lead(stop)
            except (*DB_DOWN, ProducerFenced) as exc:
                # Every half second while the database is away: one line per outage, not per try.
                if isinstance(exc, ProducerFenced) or not outages.is_down("database"):
                    log.warning("relay.leadership_lost", schema=self.schema, error=repr(exc))
                if not isinstance(exc, ProducerFenced):
                    outages.down("database", exc)
                await _wait(stop, self.settings.poll_interval_s)
            except Exception as exc:  # the broker away, a dead producer: a new term, never a drop
                outages.down("broker", exc)
                await _wait(stop, self.settings.poll_interval_s)

    async def _lead(self, stop: asyncio.Event) -> None:
        lock = _relay_lock(self.schema)
        async with self.pool.acquire() as leader:
            while not stop.is_set():
                if await leader.fetchval("SELECT pg_try_advisory_lock($1)", lock):
                    break
                await _wait(stop, self.settings.poll_interval_s * 4)
            if stop.is_set():
                return
            outages.up("database")
            log.info("relay.leader", schema=self.schema)
            await leader.add_listener(outbox_channel(self.schema), self._notified)
            try:
                async with self.producing():
                    await self._publish_while_leading(leader, stop)
            finally:
                with contextlib.suppress(*DB_DOWN):
                    await leader.remove_listener(outbox_channel(self.schema), self._notified)
                    await leader.execute("SELECT pg_advisory_unlock($1)", lock)

    async def _publish_while_leading(self, leader: Conn, stop: asyncio.Event) -> None:
        while not stop.is_set():
            # Raises when our session (and with it the lock) is gone: stop publishing.
            await leader.fetchval("SELECT 1")
            self._wake.clear()
            try:
                if await self.publish_pending():
                    outages.up("broker")
                    continue
            except TermSpoiled as exc:
                log.warning("relay.new_term", schema=self.schema, reason=str(exc))
                return
            except DB_DOWN as exc:
                log.warning("relay.retry", error=str(exc))
            # Anything else (the broker away, a producer in a fatal state) ends the term: the next
            # one starts a fresh producer, since aiokafka's cannot leave a fatal error behind.
            await _wait_any(stop, self._wake, self.settings.poll_interval_s)

    def _notified(self, *_: object) -> None:
        self._wake.set()


# The read of the next batch walks the pending index in id order and stops at the batch's end,
# whatever the planner believes: on a table whose statistics lag a backlog (a freshly filled
# outbox, a relay back from an outage), it would sort every pending row for each batch instead.
# And with a custom plan the array of rows in flight is a constant PostgreSQL hashes, where a
# generic plan compares each row with every element (2,000 x 2,000 for a full batch).
_INDEX_ORDER = (
    "SET LOCAL enable_sort = off; SET LOCAL enable_bitmapscan = off;"
    " SET LOCAL plan_cache_mode = force_custom_plan"
)


_PENDING = (
    "SELECT id, event_id, topic, key, body, headers FROM outbox WHERE published_at IS NULL"
    " AND id <> ALL($2::bigint[]) ORDER BY id LIMIT $1"
)


async def _pending(
    conn: Conn, limit: int, in_flight: list[int] | None = None, *, backlog: bool = True
) -> list[asyncpg.Record]:
    """The first `limit` unmarked rows in id order, but for those `in_flight`. `backlog`: more
    than a batch may be pending (as the last read found), so the read is made to walk the index
    (_INDEX_ORDER, in a transaction of its own); live, a few rows at a time, it is one statement
    (whatever the plan, a few rows are read at once), a third of the round trips."""
    if not backlog:
        return await conn.fetch(_PENDING, limit, in_flight or [])
    async with conn.transaction():
        await conn.execute(_INDEX_ORDER)
        return await conn.fetch(_PENDING, limit, in_flight or [])


async def _mark_and_read(
    conn: Conn, committed: list[int], limit: int, in_flight: list[int], backlog: bool
) -> list[asyncpg.Record]:
    """Mark the previous batch, then read the next: the rows pending but for those in flight, a
    snapshot in id order. A key's later rows commit (and take ids) after its earlier ones, so
    they come in this snapshot or a later one, never ahead of the earlier ones."""
    await _mark(conn, committed)
    return await _pending(conn, limit, in_flight, backlog=backlog)


async def _send_all(producer: AIOKafkaProducer, rows: list[asyncpg.Record]) -> list[asyncio.Future[Any]]:
    """Hand the rows' records to the producer in id order (returns once all are handed over,
    waiting only while a partition's previous batch is still queued); the futures resolve when the
    broker has them, one a record batch."""
    batches = _Batches(producer)
    for row in rows:
        stored: dict[str, Any] = row["headers"]
        if not tracing.carries_trace(stored):  # the common case: no span to open
            await batches.add(row, stored)
            continue
        with tracing.publishing(row["topic"], row["key"], stored) as carried:
            await batches.add(row, carried)
    return await batches.close()


_PARTITIONER = DefaultPartitioner()
"""The producer's own partitioner (murmur2 of the key, as Kafka's Java client): a key's records go
to the partition a `send` of them would choose."""


class _Batches:
    """Records appended to one open record batch per partition, each full batch handed to the
    producer at once (aiokafka's batch API): a record costs its encoding only, not a `send`'s
    future, partitioner call and accumulator step (a quarter of the CPU, bench/run.py's relay
    figure). A partition's batches are queued in order, so a key's records keep the rows' order."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer
        self.open: dict[tuple[str, int], BatchBuilder] = {}
        self.partitions: dict[str, list[int]] = {}
        self.partition_of: dict[tuple[str, str], int] = {}
        self.futures: list[asyncio.Future[Any]] = []

    async def add(self, row: asyncpg.Record, headers: dict[str, Any]) -> None:
        topic, key, body = row["topic"], row["key"], row["body"]
        key_bytes = key.encode()
        partition = self.partition_of.get((topic, key))
        if partition is None:
            partitions = self.partitions.get(topic)
            if partitions is None:
                partitions = self.partitions[topic] = sorted(await self.producer.partitions_for(topic))
            partition = self.partition_of[topic, key] = _PARTITIONER(key_bytes, partitions, partitions)
        record_headers = [(k, str(v).encode()) for k, v in headers.items()]
        record_headers.append((MESSAGE_ID_HEADER, str(row["event_id"]).encode()))
        if len(body) >= MAX_BATCH_BYTES:  # after the partition's earlier records, on its own
            await self._hand_over(topic, partition)
            future = await self.producer.send(
                topic, value=body, key=key_bytes, partition=partition, headers=record_headers
            )
            self.futures.append(future)
            return
        builder = self.open.get((topic, partition))
        if builder is None:
            builder = self.open[topic, partition] = self.producer.create_batch()
        if builder.append(timestamp=None, key=key_bytes, value=body, headers=record_headers) is None:
            await self._hand_over(topic, partition)  # full
            builder = self.open[topic, partition] = self.producer.create_batch()
            builder.append(timestamp=None, key=key_bytes, value=body, headers=record_headers)

    async def close(self) -> list[asyncio.Future[Any]]:
        for topic, partition in list(self.open):
            await self._hand_over(topic, partition)
        return self.futures

    async def _hand_over(self, topic: str, partition: int) -> None:
        builder = self.open.pop((topic, partition), None)
        if builder is not None:
            self.futures.append(await self.producer.send_batch(builder, topic, partition=partition))
            await asyncio.sleep(0)  # the connection's statements beside go on between batches


async def _mark(conn: Conn, ids: list[int]) -> None:
    """Mark rows published: one statement for a whole batch."""
    if not ids:
        return
    await conn.execute("UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])", ids)


async def _message_ids_since(
    reader: AIOKafkaConsumer, partitions: list[TopicPartition], since_s: float
) -> set[str]:
    """The `zm-message-id` of every committed record of `partitions` written since `since_s`."""
    reader.assign(partitions)
    starts = await reader.offsets_for_times({tp: int(since_s * 1000) for tp in partitions})
    ends = await reader.end_offsets(partitions)
    todo: dict[TopicPartition, int] = {}
    for tp in partitions:
        start = starts.get(tp)
        if start is not None and start.offset < ends[tp]:
            reader.seek(tp, start.offset)
            todo[tp] = ends[tp]
    seen: set[str] = set()
    deadline = time.monotonic() + 60
    while todo:
        if time.monotonic() > deadline:
            raise TimeoutError(f"reconciling {partitions[0].topic}: tail not read within 60 s")
        batch = await reader.getmany(*todo, timeout_ms=500, max_records=5000)
        for records in batch.values():
            for record in records:
                for name, value in record.headers or ():
                    if name == MESSAGE_ID_HEADER:
                        seen.add(value.decode())
        for tp in list(todo):
            if await reader.position(tp) >= todo[tp]:
                del todo[tp]
    return seen


async def _wait(stop: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout)


async def _wait_any(stop: asyncio.Event, wake: asyncio.Event, timeout: float) -> None:
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
