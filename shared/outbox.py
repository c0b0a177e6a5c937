"""Outbox relay: publishes committed outbox rows to Kafka in id order, never skipping one.

It selects every row not yet marked published (never "id > last sent"), so a row whose id was
allocated early but committed late is still found on a later pass. Each key's order holds because
the event store serialises the writers of one case, and only one relay per schema runs at a time
(a session advisory lock); the producer is idempotent with acks=all. A crash between sending and
marking resends the batch: Kafka may then hold a duplicate, which consumers drop by event id.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from shared.logging import get_logger, outages
from shared.settings import KafkaSettings, RelaySettings
from shared.store import outbox_channel

log = get_logger(__name__)


def make_producer(settings: KafkaSettings, *, linger_ms: int = 5, **extra: Any) -> AIOKafkaProducer:
    """The idempotent producer every zhengming publisher uses."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap,
        enable_idempotence=True,
        acks="all",
        linger_ms=linger_ms,
        max_batch_size=256 * 1024,
        **settings.client_options(),
        **extra,
    )


def _relay_lock(schema: str) -> int:
    return int.from_bytes(hashlib.sha256(f"relay:{schema}".encode()).digest()[:8], "big", signed=True)


class OutboxRelay:
    """Moves outbox rows of one schema to Kafka."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        *,
        schema: str,
        settings: RelaySettings | None = None,
    ) -> None:
        self.pool = pool
        self.producer = producer
        self.schema = schema
        self.settings = settings or RelaySettings()
        self.published = 0
        self._wake = asyncio.Event()

    async def publish_pending(self) -> int:
        """Publish one batch of pending rows in id order; returns how many were published."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT id, topic, key, body, headers FROM outbox WHERE published_at IS NULL"
                " ORDER BY id LIMIT $1",
                self.settings.batch_size,
            )
            if not rows:
                return 0
            futures = []
            for row in rows:
                headers = [(k, str(v).encode()) for k, v in row["headers"].items()]
                futures.append(
                    await self.producer.send(
                        row["topic"], value=row["body"], key=row["key"].encode(), headers=headers
                    )
                )
            await asyncio.gather(*futures)
            await conn.execute(
                "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])",
                [r["id"] for r in rows],
            )
        self.published += len(rows)
        return len(rows)

    async def drain(self) -> int:
        """Publish until nothing is pending."""
        total = 0
        while n := await self.publish_pending():
            total += n
        return total

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until `stop` is set: woken by NOTIFY from appends, polling as a fallback.

        Only the holder of the schema's relay lock publishes. The lock lives in one database
        session; when that session dies the lock is gone and another instance may take it, so
        leadership is checked before every batch and lost leadership means contending again.
        """
        while not stop.is_set():
            try:
                await self._lead(stop)
            # InternalClientError: asyncpg's state on a session terminated mid-operation.
            except (
                OSError,
                asyncpg.PostgresError,
                asyncpg.InterfaceError,
                asyncpg.InternalClientError,
            ) as exc:
                # Every half second while the database is away: one line per outage, not per try.
                if not outages.is_down("database"):
                    log.warning("relay.leadership_lost", schema=self.schema, error=repr(exc))
                outages.down("database", exc)
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
                while not stop.is_set():
                    # Raises when our session (and with it the lock) is gone: stop publishing.
                    await leader.fetchval("SELECT 1")
                    self._wake.clear()
                    try:
                        if await self.publish_pending():
                            outages.up("broker")
                            continue
                    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                        log.warning("relay.retry", error=str(exc))
                    except Exception as exc:  # broker errors: retry, never drop
                        outages.down("broker", exc)
                    await _wait_any(stop, self._wake, self.settings.poll_interval_s)
            finally:
                with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    await leader.remove_listener(outbox_channel(self.schema), self._notified)
                    await leader.execute("SELECT pg_advisory_unlock($1)", lock)

    def _notified(self, *_: object) -> None:
        self._wake.set()


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
