"""Where the audit reads: a service's schema in PostgreSQL and the Kafka topics from offset 0."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared import settings
from shared.db import create_pool


async def service_pool(service: str) -> asyncpg.Pool:
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
        # What the fetcher buffers ahead is bounded by partition (it fetches for every partition
        # whose records were handed out): memory stays flat in the number of events.
        max_partition_fetch_bytes=1024 * 1024,
        fetch_max_bytes=16 * 1024 * 1024,
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
