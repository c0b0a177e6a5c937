"""What an operator of a deployment watches, on every service: each consumer's lag (the records
of its topics it has not committed yet) and the depth of its dead-letter topic (运维, role
`operator` only; no case data)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from shared import settings
from shared.auth import Principal
from shared.http import require, unavailable_response
from shared.problems import language_of
from shared.topics import dead_letter_topic, parse_events_topic

if TYPE_CHECKING:
    from shared.runtime import Runtime

OPERATORS = ("operator",)
BROKER_TIMEOUT_S = 20.0


class ConsumerState(BaseModel):
    consumer: str
    group_id: str
    partitions: int = Field(description="partitions the group has committed offsets on")
    lag: int = Field(description="records of those partitions after the committed offsets")
    dead_letters: int = Field(description="records in the consumer's dead-letter topic")
    dead_letter_topic: str
    applied: int = Field(description="events applied by this process since it started")
    duplicates: int
    stopped: str | None = Field(description="why the consumer stopped, if it did")


async def consumer_states(runtime: Runtime) -> list[ConsumerState]:
    kafka = settings.kafka()
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap, **kafka.client_options())
    probe = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        **kafka.client_options(),
    )
    try:
        await admin.start()
        await probe.start()
        topics = set(await admin.list_topics())
        out = []
        for c in runtime.consumers:
            group = settings.services().group_id(c.name)
            committed = {
                tp: meta.offset
                for tp, meta in (await admin.list_consumer_group_offsets(group)).items()
                if meta.offset >= 0 and tp.topic in topics  # a deleted topic has no end to compare
            }
            ends = await probe.end_offsets(list(committed)) if committed else {}
            dlq = dead_letter_topic(c.name)
            depth = 0
            if dlq in topics:
                parts = [TopicPartition(dlq, p) for p in probe.partitions_for_topic(dlq) or ()]
                if not parts:
                    described = await admin.describe_topics([dlq])
                    parts = [TopicPartition(dlq, p["partition"]) for p in described[0]["partitions"]]
                first = await probe.beginning_offsets(parts)
                last = await probe.end_offsets(parts)
                depth = sum(last[tp] - first[tp] for tp in parts)
            out.append(
                ConsumerState(
                    consumer=c.name,
                    group_id=group,
                    partitions=len(committed),
                    lag=await _unread(probe, committed, ends),
                    dead_letters=depth,
                    dead_letter_topic=dlq,
                    applied=c.counts.get("applied", 0),
                    duplicates=c.counts.get("duplicate", 0),
                    stopped=c.failure,
                )
            )
        return out
    finally:
        # Either may not have started: stopping a client that never started is harmless.
        await probe.stop()
        await admin.close()


READ_DEADLINE_S = 1.5
"""How long the unread records of the partitions behind are read before their offsets count."""
COUNTED_LAG = 1000
"""Up to this many offsets behind, a partition's unread records are read and counted; beyond,
the offsets are (a transaction's commit marker takes an offset but is no record)."""


async def _unread(
    probe: AIOKafkaConsumer, committed: dict[TopicPartition, int], ends: dict[TopicPartition, int]
) -> int:
    """Records after the committed offsets. The relays write the events topics in transactions,
    whose commit marker takes an offset but is no record: a partition read to its end is one
    offset short of it. So one offset behind on an events topic is nothing unread; a partition
    further behind (up to COUNTED_LAG) has what is there read and counted; beyond, its offsets
    are counted."""
    behind = {tp: ends[tp] - offset for tp, offset in committed.items() if ends.get(tp, 0) > offset}
    near = [
        tp for tp, n in behind.items() if n <= COUNTED_LAG and (n > 1 or parse_events_topic(tp.topic) is None)
    ]
    total = sum(n for n in behind.values() if n > COUNTED_LAG)
    if not near:
        return total
    probe.assign(near)
    for tp in near:
        probe.seek(tp, committed[tp])
    remaining = set(near)
    deadline = asyncio.get_running_loop().time() + READ_DEADLINE_S
    # The position moves past what was read, commit markers included: a partition is done when
    # its position reaches the end it had when asked.
    while remaining and asyncio.get_running_loop().time() < deadline:
        batch = await probe.getmany(*remaining, timeout_ms=200, max_records=COUNTED_LAG)
        for tp, records in batch.items():
            total += sum(1 for r in records if r.offset < ends[tp])
        for tp in list(remaining):
            if await probe.position(tp) >= ends[tp]:
                remaining.discard(tp)
    return total + sum(behind[tp] for tp in remaining)  # not read in time: counted by offsets


def add_ops_routes(app: FastAPI, runtime: Runtime) -> None:
    @app.get(
        "/ops/consumers",
        tags=["operations"],
        summary="Each consumer's lag and dead-letter depth (运维; operators only)",
        response_model=list[ConsumerState],
    )
    async def consumers(
        request: Request, principal: Annotated[Principal, Depends(require(*OPERATORS))]
    ) -> list[ConsumerState] | JSONResponse:
        try:
            async with asyncio.timeout(BROKER_TIMEOUT_S):
                return await consumer_states(runtime)
        except (KafkaError, OSError, TimeoutError):
            return unavailable_response("broker", language_of(request.scope))
