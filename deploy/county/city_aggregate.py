"""City-level aggregation (市级汇总) by topic pattern: counts the events of every jurisdiction on the
shared cluster, whichever deployment wrote them, without a consumer group and without writing.

    .venv/bin/python deploy/county/city_aggregate.py [--context review] [--json]   # (project installed)

The city principal needs READ and DESCRIBE on topics with the prefix `zm.` (see README.md); the
Kafka connection and its security come from the ZM_KAFKA_* settings like every other client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
from collections import Counter

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared import settings
from shared.envelope import EventEnvelope
from shared.settings import SERVICES
from shared.topics import events_pattern


async def aggregate(contexts: list[str]) -> Counter[tuple[str, str]]:
    """(jurisdiction, event type) -> count, from offset 0 to the end at the time of the call."""
    patterns = [re.compile(events_pattern(c)) for c in contexts]  # None: every jurisdiction
    kafka = settings.kafka()
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap, **kafka.client_options())
    await admin.start()
    try:
        # Only the topics this principal may DESCRIBE are listed: the city sees every `zm.` topic.
        topics = sorted(t for t in await admin.list_topics() if any(p.match(t) for p in patterns))
        described = await admin.describe_topics(topics) if topics else []
    finally:
        await admin.close()
    partitions = [TopicPartition(d["topic"], p["partition"]) for d in described for p in d["partitions"]]
    counts: Counter[tuple[str, str]] = Counter()
    if not partitions:
        return counts
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        **kafka.client_options(),
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        remaining = {tp for tp, end in ends.items() if end > 0}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=2000, max_records=10_000)
            if not batch:
                break
            for tp, records in batch.items():
                for record in records:
                    if record.offset < ends[tp]:
                        envelope = EventEnvelope.from_bytes(record.value or b"")
                        counts[(envelope.jurisdiction, envelope.event_type)] += 1
                if records and records[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--context", action="append", choices=SERVICES, help="default: all four")
    parser.add_argument("--json", action="store_true", help="JSON instead of lines")
    args = parser.parse_args()
    counts = asyncio.run(aggregate(args.context or list(SERVICES)))
    rows = [{"jurisdiction": j, "event_type": t, "count": n} for (j, t), n in sorted(counts.items())]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for row in rows:
        print(f"{row['jurisdiction']}  {row['event_type']:<32} {row['count']:>8}")


if __name__ == "__main__":
    main()
