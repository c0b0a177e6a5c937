"""What an operator of a deployment watches and works off, on every service: each consumer's lag
(the records of its topics it has not committed yet) and the depth of its dead-letter topic, and
the dead letters themselves: list, show, replay, purge (运维, role `operator` only; no case data,
see shared/dead_letters.py). `watch` keeps the figures fresh for /readyz and `zhengming status`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from shared import dead_letters, settings
from shared.auth import Principal
from shared.dead_letters import DeadLetterEntry, EntryRef, PurgeResult
from shared.errors import NotFound, RuleViolation
from shared.http import require, unavailable_response
from shared.logging import get_logger
from shared.problems import language_of
from shared.topics import dead_letter_topic, parse_events_topic

if TYPE_CHECKING:
    from shared.consumer import EventConsumer
    from shared.runtime import Runtime

log = get_logger(__name__)

OPERATORS = ("operator",)
T = TypeVar("T")
BROKER_TIMEOUT_S = 20.0


class ConsumerState(BaseModel):
    consumer: str
    group_id: str
    partitions: int = Field(description="partitions the group has committed offsets on")
    lag: int = Field(description="records of those partitions after the committed offsets")
    dead_letters: int = Field(description="records in the consumer's dead-letter topic")
    dead_letters_pending: int = Field(description="of them, the entries no replay has settled")
    dead_letter_topic: str
    applied: int = Field(description="events applied by this process since it started")
    duplicates: int
    stopped: str | None = Field(description="why the consumer stopped, if it did")


async def consumer_states(runtime: Runtime) -> list[ConsumerState]:
    kafka = settings.kafka()
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap, **kafka.client_options())
    probe = lag_probe(kafka)
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
            depth = pending = 0
            if dlq in topics:
                parts = [TopicPartition(dlq, p) for p in probe.partitions_for_topic(dlq) or ()]
                if not parts:
                    described = await admin.describe_topics([dlq])
                    parts = [TopicPartition(dlq, p["partition"]) for p in described[0]["partitions"]]
                first = await probe.beginning_offsets(parts)
                last = await probe.end_offsets(parts)
                depth = sum(last[tp] - first[tp] for tp in parts)
                async with runtime.pool.acquire() as conn:
                    pending = await dead_letters.pending_count(
                        conn,
                        c.name,
                        {tp.partition: first[tp] for tp in parts},
                        {tp.partition: last[tp] for tp in parts},
                    )
            out.append(
                ConsumerState(
                    consumer=c.name,
                    group_id=group,
                    partitions=len(committed),
                    lag=await unread_records(probe, committed, ends),
                    dead_letters=depth,
                    dead_letters_pending=pending,
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


def lag_probe(kafka: settings.KafkaSettings) -> AIOKafkaConsumer:
    """A consumer of no group that reads what the services' consumers read (committed
    transactions only), for `unread_records`."""
    return AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        **kafka.client_options(),
    )


READ_DEADLINE_S = 1.5
"""How long the unread records of the partitions behind are read before their offsets count."""
COUNTED_LAG = 1000
"""Up to this many offsets behind, a partition's unread records are read and counted; beyond,
the offsets are (a transaction's commit marker takes an offset but is no record)."""


async def unread_records(
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
        return await _on_broker(request, consumer_states(runtime))

    @app.get(
        "/ops/dead-letters/{consumer}",
        tags=["operations"],
        summary="The entries of a consumer's dead-letter topic, with what replays made of them (运维)",
        response_model=list[DeadLetterEntry],
    )
    async def dead_letter_entries(
        request: Request, consumer: str, principal: Annotated[Principal, Depends(require(*OPERATORS))]
    ) -> list[DeadLetterEntry] | JSONResponse:
        return await _on_broker(request, dead_letters.entries(_consumer(runtime, consumer)))

    @app.get(
        "/ops/dead-letters/{consumer}/{partition}/{offset}",
        tags=["operations"],
        summary="One dead letter: why it was refused, where it came from, its replays (运维)",
        response_model=DeadLetterEntry,
    )
    async def dead_letter_entry(
        request: Request,
        consumer: str,
        partition: int,
        offset: int,
        principal: Annotated[Principal, Depends(require(*OPERATORS))],
    ) -> DeadLetterEntry | JSONResponse:
        listed = await _on_broker(request, dead_letters.entries(_consumer(runtime, consumer)))
        if isinstance(listed, JSONResponse):
            return listed
        entry = next((e for e in listed if (e.partition, e.offset) == (partition, offset)), None)
        if entry is None:
            raise _no_entry(consumer, partition, offset)
        return entry

    @app.post(
        "/ops/dead-letters/{consumer}/replay",
        tags=["operations"],
        summary="Replay dead letters through their consumer; each is applied once (运维)",
        response_model=list[DeadLetterEntry],
    )
    async def replay_dead_letters(
        request: Request,
        consumer: str,
        body: ReplayRequest,
        principal: Annotated[Principal, Depends(require(*OPERATORS))],
    ) -> list[DeadLetterEntry] | JSONResponse:
        found = _consumer(runtime, consumer)
        try:
            replayed = await _on_broker(
                request, dead_letters.replay(found, body.entries, principal.user_id), BROKER_TIMEOUT_S * 3
            )
        except dead_letters.EntryNotFound as missing:
            raise _no_entry(consumer, missing.partition, missing.offset) from None
        if isinstance(replayed, JSONResponse):
            return replayed
        log.info(
            "dead_letters.replayed",
            consumer=consumer,
            actor=principal.user_id,
            outcomes=[f"{e.partition}@{e.offset}:{e.state}" for e in replayed],
        )
        return replayed

    @app.post(
        "/ops/dead-letters/{consumer}/purge",
        tags=["operations"],
        summary="Delete the settled dead letters (or, with a reason, all of them) (运维)",
        response_model=PurgeResult,
    )
    async def purge_dead_letters(
        request: Request,
        consumer: str,
        body: PurgeRequest,
        principal: Annotated[Principal, Depends(require(*OPERATORS))],
    ) -> PurgeResult | JSONResponse:
        found = _consumer(runtime, consumer)
        if body.everything and not (body.reason or "").strip():
            raise RuleViolation(
                "purging entries no replay settled needs a reason",
                detail_zh="清除尚未成功重放的死信须写明理由",
                field="reason",
                code="purge_reason_required",
            )
        result = await _on_broker(
            request,
            dead_letters.purge(found, principal.user_id, everything=body.everything, reason=body.reason),
        )
        if isinstance(result, JSONResponse):
            return result
        log.warning(
            "dead_letters.purged",
            consumer=consumer,
            actor=principal.user_id,
            removed=sum(p.removed for p in result.partitions),
            unresolved=sum(p.unresolved for p in result.partitions),
            reason=body.reason,
        )
        return result


class ReplayRequest(BaseModel):
    entries: list[EntryRef] | None = Field(
        default=None, max_length=1000, description="the entries to replay; every unsettled one when absent"
    )


class PurgeRequest(BaseModel):
    everything: bool = Field(default=False, description="also the entries no replay settled")
    reason: str | None = Field(default=None, max_length=2000, description="why (needed with everything)")


async def _on_broker(
    request: Request, work: Awaitable[T], timeout_s: float = BROKER_TIMEOUT_S
) -> T | JSONResponse:
    """`work`'s result, or 503 when the broker does not answer in time."""
    try:
        async with asyncio.timeout(timeout_s):
            return await work
    except (KafkaError, OSError, TimeoutError):
        return unavailable_response("broker", language_of(request.scope))


def _consumer(runtime: Runtime, name: str) -> EventConsumer:
    found = dead_letters.consumer_named(runtime.consumers, name)
    if found is None:
        names = ", ".join(c.name for c in runtime.consumers)
        raise NotFound(
            f"{runtime.service} runs no consumer {name} (it runs {names})",
            detail_zh=f"{runtime.service} 服务没有名为 {name} 的消费者（现有：{names}）",
            field="consumer",
            code="consumer_not_found",
        )
    return found


def _no_entry(consumer: str, partition: int, offset: int) -> NotFound:
    return NotFound(
        f"the dead-letter topic of {consumer} holds no entry at {partition}@{offset}",
        detail_zh=f"{consumer} 的死信主题中没有位于 {partition}@{offset} 的条目",
        field="offset",
        code="dead_letter_not_found",
    )


async def watch(runtime: Runtime, stop: asyncio.Event, interval_s: float) -> None:
    """Every interval, each consumer's lag and dead letters for /readyz (a failed round keeps
    the last figures and their time)."""
    while not stop.is_set():
        try:
            async with asyncio.timeout(BROKER_TIMEOUT_S):
                runtime.consumer_states = (datetime.now(UTC), await consumer_states(runtime))
        except Exception as exc:
            log.info("ops.watch_failed", error=repr(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)
