"""The relay marks published rows in bulk, and only after their Kafka transaction committed."""

from __future__ import annotations

import asyncio
import json
import uuid

import asyncpg
import pytest
from aiokafka.errors import MessageSizeTooLargeError

from shared import outbox, settings
from shared.outbox import OutboxRelay, TermSpoiled
from shared.settings import RelaySettings
from shared.store import EventStore, NewEvent
from shared.topics import events_topic
from tests.integration.conftest import ACTOR, create_topics, read_topic

J = "331122"
BATCH = 40


async def _append(store: EventStore, n: int, cases: str = "case") -> None:
    for k in range(n // 10):
        await store.append(
            f"{cases}-{k}",
            0,
            [NewEvent("Noted", 1, {"i": i}) for i in range(10)],
            case_id=f"{cases}-{k}",
            jurisdiction=J,
            actor=ACTOR,
            correlation_id=uuid.uuid4(),
        )


def _relay(pool: asyncpg.Pool, schema: str) -> OutboxRelay:
    return OutboxRelay(pool, settings.kafka(), schema=schema, settings=RelaySettings(batch_size=BATCH))


async def _on_a_topic(pool: asyncpg.Pool, schema: str, context: str) -> tuple[str, EventStore]:
    """The context's events topic, created, and its store."""
    topic = events_topic(J, context)
    await create_topics(topic)
    return topic, EventStore(pool, schema=schema, context=context)


async def test_one_drain_marks_every_published_row_one_statement_per_batch(
    pool: asyncpg.Pool, schema: str, context: str
) -> None:
    topic, store = await _on_a_topic(pool, schema, context)
    await _append(store, 250)
    relay = _relay(pool, schema)

    assert await relay.drain() == 250

    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0
    # One UPDATE per batch: its rows share the statement's transaction time.
    marks = await pool.fetchval("SELECT count(DISTINCT published_at) FROM outbox")
    assert marks == -(-250 // BATCH)
    records = await read_topic(topic, 250)
    assert len(records) == 250


async def test_records_that_fill_many_batches_keep_each_key_in_order_on_the_partition_send_picks(
    pool: asyncpg.Pool, schema: str, context: str
) -> None:
    """The relay fills record batches itself: bodies of 40 to 300 kB fill a batch every few rows
    (one, 300 kB, is larger than a batch and goes on its own), across partitions, in one term."""
    topic, store = await _on_a_topic(pool, schema, context)
    probe_topic = f"{topic}.probe"
    await create_topics(probe_topic)
    sizes = [40_000, 90_000, 1_000, outbox.MAX_BATCH_BYTES + 40_000, 120_000]
    async with pool.acquire() as conn:
        for i in range(60):
            body = json.dumps({"i": i}).encode() + b" " * sizes[i % len(sizes)]
            await store.enqueue_integration(
                conn, topic=topic, key=f"case-{i % 7}", body=body, message_id=uuid.uuid4()
            )
    relay = OutboxRelay(pool, settings.kafka(), schema=schema, settings=RelaySettings(batch_size=25))

    assert await relay.drain() == 60

    # Where a plain `send` of each key lands, on a topic of as many partitions.
    probe = outbox.make_producer(settings.kafka())
    await probe.start()
    try:
        send_picks = {
            f"case-{k}".encode(): (
                await probe.send_and_wait(probe_topic, b"", key=f"case-{k}".encode())
            ).partition
            for k in range(7)
        }
    finally:
        await probe.stop()
    records = await read_topic(topic, 60)
    assert sorted(json.loads(value)["i"] for _, value, _ in records) == list(range(60))  # each once
    for key, picked in send_picks.items():
        on_kafka = [(json.loads(value)["i"], partition) for k, value, partition in records if k == key]
        assert [i for i, _ in on_kafka] == [i for i in range(60) if f"case-{i % 7}".encode() == key]
        assert {partition for _, partition in on_kafka} == {picked}
    assert len({picked for picked in send_picks.values()}) > 1  # the keys spread over partitions


async def test_a_failed_kafka_transaction_marks_none_of_its_rows(
    pool: asyncpg.Pool, schema: str, context: str
) -> None:
    topic, store = await _on_a_topic(pool, schema, context)
    await _append(store, 20)
    # A record beyond the producer's request size fails the batch it is in, after the others
    # were handed to the producer.
    async with pool.acquire() as conn:
        await store.enqueue_integration(
            conn, topic=topic, key="case-0", body=b"x" * (2 * 1024 * 1024), message_id=uuid.uuid4()
        )
    relay = _relay(pool, schema)

    async with relay.producing():
        with pytest.raises(MessageSizeTooLargeError):
            await relay.publish_pending()

    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NOT NULL") == 0
    assert await read_topic(topic, 0, timeout_s=2) == []


async def test_a_term_after_a_clean_one_has_nothing_to_reconcile(
    pool: asyncpg.Pool, schema: str, context: str
) -> None:
    topic, store = await _on_a_topic(pool, schema, context)
    await _append(store, 50)
    first = _relay(pool, schema)
    assert await first.drain() == 50
    await _append(store, 20, cases="later")

    second = _relay(pool, schema)
    assert await second.drain() == 20

    # The first term after the migrations trusts no earlier one (it finds nothing pending).
    assert (first.reconciliations, second.reconciliations) == (1, 0)
    assert len(await read_topic(topic, 70)) == 70
    assert tuple(await pool.fetchrow("SELECT term, clean FROM relay_term") or ()) == (2, True)


async def test_a_term_whose_last_marking_failed_makes_the_next_one_reconcile(
    pool: asyncpg.Pool, schema: str, context: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic, store = await _on_a_topic(pool, schema, context)
    await _append(store, 30)
    first = _relay(pool, schema)
    real_mark = outbox._mark

    async def database_gone(conn: object, ids: list[int]) -> None:
        if ids:
            raise OSError("connection lost")

    async with first.producing():
        assert await first.publish_pending() == 30  # committed on Kafka, marked at the term's end
        monkeypatch.setattr(outbox, "_mark", database_gone)
    monkeypatch.setattr(outbox, "_mark", real_mark)
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 30
    assert await pool.fetchval("SELECT clean FROM relay_term") is False

    second = _relay(pool, schema)
    assert await second.drain() == 30  # found on Kafka and marked, not sent again

    assert (second.reconciliations, second.reconciled) == (1, 30)
    assert len(await read_topic(topic, 30)) == 30
    assert len(await read_topic(topic, 31, timeout_s=2)) == 30


async def test_an_older_term_ending_late_cannot_vouch_for_a_newer_one(
    pool: asyncpg.Pool, schema: str, context: str
) -> None:
    topic, store = await _on_a_topic(pool, schema, context)
    await _append(store, 10)
    async with pool.acquire() as conn:
        await store.enqueue_integration(
            conn, topic=topic, key="case-0", body=b"x" * (2 * 1024 * 1024), message_id=uuid.uuid4()
        )
    older = _relay(pool, schema)
    newer = _relay(pool, schema)

    # The newer term fences the older one and ends unsure: its batch failed.
    async with older.producing(), newer.producing():
        with pytest.raises(MessageSizeTooLargeError):
            await newer.publish_pending()
    # The older term ended between batches, but its number is no longer the latest.
    assert tuple(await pool.fetchrow("SELECT term, clean FROM relay_term") or ()) == (2, False)

    await pool.execute("DELETE FROM outbox WHERE length(body) > 1024 * 1024")
    last = _relay(pool, schema)
    assert await last.drain() == 10
    assert last.reconciliations == 1


async def test_a_producer_outside_the_terms_makes_the_next_term_reconcile(
    pool: asyncpg.Pool, schema: str, context: str
) -> None:
    """A relay of an older release (or a database restored to before later terms) publishes under
    the same transactional id without recording a term: the clean end recorded before it is not
    trusted, since the next term's producer epoch is not the one right after the clean term's."""
    topic, store = await _on_a_topic(pool, schema, context)
    await _append(store, 50)
    first = _relay(pool, schema)
    assert await first.drain() == 50
    assert await pool.fetchval("SELECT clean FROM relay_term") is True
    await _append(store, 20, cases="later")

    outsider = outbox.make_producer(settings.kafka(), linger_ms=0, transactional_id=first.transactional_id)
    await outsider.start()
    try:
        async with pool.acquire() as conn:
            rows = await outbox._pending(conn, 100)
        async with outsider.transaction():
            await asyncio.gather(*await outbox._send_all(outsider, rows))
    finally:
        await outsider.stop()  # committed on Kafka, never marked

    second = _relay(pool, schema)
    assert await second.drain() == 20  # found on Kafka and marked, not sent again
    assert (second.reconciliations, second.reconciled) == (1, 20)
    assert len(await read_topic(topic, 71, timeout_s=3)) == 70


async def test_a_batch_failing_after_its_commit_ends_the_term(
    pool: asyncpg.Pool, schema: str, context: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The marking of batch A fails beside the sending of batch B, which commits: the term may
    not reconcile (a read of the topics' tails may end before B's commit markers); it ends, and
    the next one, whose producer fenced it, reconciles A and B and sends the rest once."""
    topic, store = await _on_a_topic(pool, schema, context)
    await _append(store, 100)
    relay = _relay(pool, schema)
    real = outbox._mark_and_read

    async def marking_fails(conn: asyncpg.Connection, committed: list[int], *args: object) -> object:
        if committed:
            raise OSError("connection lost")
        return await real(conn, committed, *args)  # type: ignore[arg-type]

    async with relay.producing():
        assert await relay.publish_pending() == BATCH  # A
        monkeypatch.setattr(outbox, "_mark_and_read", marking_fails)
        with pytest.raises(OSError):
            await relay.publish_pending()  # B committed on Kafka, A unmarked
        monkeypatch.setattr(outbox, "_mark_and_read", real)
        with pytest.raises(TermSpoiled):
            await relay.publish_pending()
    assert relay.reconciliations == 1  # the term's first, none after the failure
    assert await pool.fetchval("SELECT clean FROM relay_term") is False

    following = _relay(pool, schema)
    assert await following.drain() == 100
    assert (following.reconciliations, following.reconciled) == (1, 2 * BATCH)
    assert len(await read_topic(topic, 101, timeout_s=3)) == 100
