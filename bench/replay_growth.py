"""How replay's cost grows with work (issue 14, part 6; append, relay and verify: bench/growth.py):

- `replay_growth_generate` clones the workflow's events into new cases until there are 100,000 of
  them: every UUID of an envelope (event, correlation, causation ids) and every matter number
  (331122-2023-000001, in case ids, stream ids, payloads and the ids derived from them) mapped to a
  fresh one per clone, each event sealed again in its clone's chain and signed with its context's
  local key (shared/envelope.py seal, shared/signing.py service_key), produced to throwaway topics
  of their own, one set a size (`zm.bench-growth.<events>.<context>`: as many partitions at every
  size, so that memory compares), so that the service's real topics, and the replay figures
  measured on them, stay what the workflow made. Events of
  streams that are not a case's (quarterly rounds, notices) are not cloned: their ids are per
  jurisdiction and period, not per case.
- `replay_growth_figures` replays each size (10k, 50k, 100k events) in a subprocess of its own
  (`python -m bench.replay_growth replay <service> <events>`) that reports its
  events/s and its peak RSS, against the database's ceiling (COPY of the rows that replay wrote,
  into the same tables of a fresh schema) and a bare consumer of the same topics.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from rich.console import Console

from bench.common import Figure
from bench.replay import bare_read, copy_ceiling, replay_contexts, replay_topics
from shared import settings
from shared.envelope import EventEnvelope, seal
from shared.outbox import make_producer
from shared.signing import ServiceKey, service_key
from zhengming.audit import drop_schema, read_topics, replay
from zhengming.local import ensure_topics

REPLAY_GROWTH_SERVICE = "archive"
"""The service whose replay reads every context (its own and the three its statistics follow)."""
REPLAY_GROWTH_SIZES = (10_000, 50_000, 100_000)

_MATTER = re.compile(r"\b(\d{6})-(\d{4})-(\d{6})\b")
_CASE = re.compile(r"^\d{6}-\d{4}-\d{6}(-\d+)?$")
_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
_CLONES = uuid.UUID("5d1c0b1e-6a39-4f7e-9c55-0b3c1f0e6a14")
_UNSEALED = ("hash", "prev_hash", "key_id", "signature")


def replay_growth_topic(size: int, context: str) -> str:
    return f"zm.bench-growth.{size}.{context}"


def replay_growth_topics(size: int, contexts: list[str]) -> list[str]:
    return [replay_growth_topic(size, c) for c in contexts]


@dataclass
class _Template:
    context: str
    prev_hash: str
    hash: str
    body: str
    """The envelope's JSON without its seal, where the ids are replaced."""


def _template(envelope: EventEnvelope, context: str) -> _Template:
    body = envelope.model_dump(mode="json", exclude=set(_UNSEALED))
    return _Template(context, envelope.prev_hash, envelope.hash, json.dumps(body, ensure_ascii=False))


def _context_of_topic(topic: str) -> str:
    """zm.<jurisdiction>.<context>.events (shared/topics.py events_topic)."""
    return topic.split(".")[2]


def _clone(
    template: _Template, clone: int, stride: int, hashes: dict[str, str], keys: dict[str, ServiceKey]
) -> EventEnvelope:
    body = _UUID.sub(lambda m: str(uuid.uuid5(_CLONES, f"{clone}/{m[0]}")), template.body)
    body = _MATTER.sub(lambda m: f"{m[1]}-{m[2]}-{int(m[3]) + clone * stride:06d}", body)
    fields = json.loads(body)
    # The clone's chain: after the clone of the event the template followed.
    sealed = seal(**fields, prev_hash=hashes.get(template.prev_hash, template.prev_hash))
    hashes[template.hash] = sealed.hash
    return keys[template.context].sign(sealed)


@dataclass
class GrowthEvents:
    sizes: tuple[int, ...]
    events: int
    clones: int
    templates: int
    skipped: int
    seconds: float


async def replay_growth_generate(
    service: str = REPLAY_GROWTH_SERVICE, sizes: tuple[int, ...] = REPLAY_GROWTH_SIZES
) -> GrowthEvents:
    """Each size's number of events cloned from the service's replay topics into its topics."""
    started = time.perf_counter()
    templates: list[_Template] = []
    skipped = 0
    for record in await read_topics(replay_topics(service)):
        envelope = EventEnvelope.from_bytes(record.value)
        if not _CASE.match(envelope.case_id):
            skipped += 1
            continue
        templates.append(_template(envelope, _context_of_topic(record.topic)))
    if not templates:
        raise RuntimeError(f"no events of cases on {service}'s topics to clone")
    # Matter numbers of clone n are the template's plus n × stride: never one another's.
    stride = 1 + max(int(m[3]) for t in templates for m in _MATTER.finditer(t.body))
    contexts = replay_contexts(service)
    await ensure_topics(settings.kafka(), [t for n in sizes for t in replay_growth_topics(n, contexts)])
    keys = {c: service_key(c) for c in contexts}
    producer = make_producer(settings.kafka(), linger_ms=20)
    await producer.start()
    clones = 0
    try:
        for size in sizes:
            sent: list[asyncio.Future[Any]] = []
            # Whole clones but the last, cut short (its cases end early, as the cases of a replay
            # taken mid-way would); each key's events in order on one topic.
            clone = 0
            while len(sent) < size:
                clone += 1
                if (clone + 1) * stride > 999_999:
                    raise RuntimeError("too few matter numbers left for another clone")
                hashes: dict[str, str] = {}
                for template in templates[: size - len(sent)]:
                    cloned = _clone(template, clone, stride, hashes, keys)
                    sent.append(
                        await producer.send(
                            replay_growth_topic(size, template.context),
                            value=cloned.to_bytes(),
                            key=cloned.case_id.encode(),
                            headers=[("content-type", b"application/json")],
                        )
                    )
            await asyncio.gather(*sent)
            clones = max(clones, clone)
    finally:
        await producer.stop()
    return GrowthEvents(
        sizes,
        sum(sizes),
        clones,
        len(templates),
        skipped,
        time.perf_counter() - started,
    )


async def replay_growth_drop(
    service: str = REPLAY_GROWTH_SERVICE, sizes: tuple[int, ...] = REPLAY_GROWTH_SIZES
) -> None:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka().bootstrap, **settings.kafka().client_options()
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [t for n in sizes for t in replay_growth_topics(n, replay_contexts(service))]
        doomed = [t for t in wanted if t in existing]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()


def _rss_kb(field: str = "VmRSS:") -> int:
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    return 0


async def replay_growth_child(service: str, size: int) -> dict[str, Any]:
    """One replay of a size's growth topics, in this process: events/s, RSS, COPY."""
    rss_start = _rss_kb()
    topics = replay_growth_topics(size, replay_contexts(service))
    report = await replay(service, topics=topics, compare=False, keep_schema=True, show_progress=False)
    try:
        # VmHWM: the peak of this program's own memory (getrusage's maxrss also counts the pages
        # of the bench process this one was forked from, before its exec: 823 MB at every size).
        rss_peak = _rss_kb("VmHWM:")
        rss_end = _rss_kb()
        copied = await copy_ceiling(service, report.schema, report.tables)
    finally:
        await drop_schema(report.schema)
    return {
        "events": report.events,
        "seconds": report.seconds,
        "statements": report.statements,
        "round_trips": report.round_trips,
        "rss_start_kb": rss_start,
        "rss_end_kb": rss_end,
        "rss_peak_kb": rss_peak,
        "copy_rows": copied.rows,
        "copy_seconds": copied.seconds,
    }


async def _run_child(service: str, size: int) -> dict[str, Any]:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.replay_growth",
        "replay",
        service,
        str(size),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"replay growth child ({size} events) exited {child.returncode}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def replay_growth_figures(
    console: Console, service: str = REPLAY_GROWTH_SERVICE, sizes: tuple[int, ...] = REPLAY_GROWTH_SIZES
) -> tuple[list[Figure], dict[str, Any]]:
    """Replay at 10k, 50k and 100k events (generated first, dropped after)."""
    with console.status(f"replay growth: cloning {sum(sizes):,} events…"):
        generated = await replay_growth_generate(service, sizes)
    figures: list[Figure] = []
    try:
        for size in sizes:
            topics = replay_growth_topics(size, replay_contexts(service))
            with console.status(f"replay growth: {size:,} events…"):
                bare = await bare_read(topics)
                child = await _run_child(service, size)
            figures.append(
                Figure(
                    name=f"replay {service}, growth: {child['events']:,} events",
                    label=f"replay growth {child['events'] // 1000}k",
                    unit="events/s",
                    count=int(child["events"]),
                    ours_s=float(child["seconds"]),
                    baseline_name=(
                        "COPY (asyncpg copy_records_to_table) of the rows replay wrote into the same"
                        " tables of a fresh schema, one transaction"
                    ),
                    baseline_label="COPY ceiling",
                    baseline_s=float(child["copy_seconds"]),
                    notes=(
                        f"zhengming.audit.replay({service!r}) of {size:,} growth events in a"
                        " subprocess of its own (peak RSS of that process); events cloned from the"
                        " workflow's into new cases, sealed and signed again"
                    ),
                    extra={
                        "copy_rows": child["copy_rows"],
                        "bare_consumer_s": round(bare.seconds, 4),
                        "bare_consumer_records": bare.records,
                        "ratio_to_bare_consumer": round(
                            (child["events"] / child["seconds"]) / (bare.records / bare.seconds), 3
                        )
                        if child["seconds"] and bare.seconds and bare.records
                        else 0.0,
                        "rss_start_mb": round(child["rss_start_kb"] / 1024, 1),
                        "rss_end_mb": round(child["rss_end_kb"] / 1024, 1),
                        "rss_peak_mb": round(child["rss_peak_kb"] / 1024, 1),
                        "statements": child["statements"],
                        "round_trips": child["round_trips"],
                    },
                )
            )
    finally:
        await replay_growth_drop(service, sizes)
    info = {
        "service": service,
        "templates": generated.templates,
        "skipped_not_case_events": generated.skipped,
        "clones": generated.clones,
        "generated_events": generated.events,
        "generate_s": round(generated.seconds, 2),
    }
    return figures, info


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "replay":
        print(json.dumps(asyncio.run(replay_growth_child(argv[1], int(argv[2])))))
        return 0
    print("usage: python -m bench.replay_growth replay <service> <events>", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
