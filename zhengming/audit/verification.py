"""The verification of every hash chain against Kafka, the consumers' rejections and the
signed checkpoints."""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from pydantic import ValidationError

from shared import checkpoint, rejections, settings, signing
from shared.envelope import JURISDICTIONS, EventEnvelope
from shared.outbox import MESSAGE_ID_HEADER
from shared.settings import SERVICES
from shared.store import EventStore, Vouched
from shared.topics import CHECKPOINTS_TOPIC, events_topic, parse_events_topic
from zhengming.audit.sources import read_topics, service_pool


@dataclass
class Break:
    """The first broken link found."""

    service: str
    stream_id: str
    stream_version: int | None
    expected: str
    found: str
    reason: str

    def line(self) -> str:
        version = "-" if self.stream_version is None else self.stream_version
        return (
            f"BROKEN {self.service} stream {self.stream_id} version {version}: {self.reason};"
            f" expected {self.expected}, found {self.found}"
        )


@dataclass
class VerifyReport:
    checked: dict[str, dict[str, int]] = field(default_factory=dict)
    breaks: list[Break] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaks

    def lines(self) -> list[str]:
        out = [
            f"{service}: {c['events']} events in {c['streams']} streams, {c['kafka']} on Kafka,"
            f" {c['checkpoints']} signed checkpoints"
            for service, c in self.checked.items()
        ]
        out += self.notes
        out += [b.line() for b in self.breaks[:20]]
        out.append(
            "trail verified: every chain, Kafka copy and checkpoint holds"
            if self.ok
            else f"trail BROKEN: {len(self.breaks)} problem(s); first: {self.breaks[0].line()}"
        )
        return out


async def _wait_outbox_drained(pool: asyncpg.Pool, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    while True:
        pending: int = await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        if pending == 0 or time.monotonic() > deadline:
            return pending
        await asyncio.sleep(0.5)


async def verify_trail(
    jurisdiction: str | None = None,
    *,
    drain_timeout_s: float = 30,
    schemas: dict[str, str] | None = None,
    deployment: str | None = None,
) -> VerifyReport:
    """Every stream's chain and signatures in every service, the Kafka copy of every event (same
    ids and hashes, signed by the service owning the topic, none missing, none extra, each key in
    order), the events consumers rejected as forged, and the signed checkpoints. `schemas` maps a
    service to its schema when it is not the service's name; `deployment` is the checkpoints'
    (default: this deployment's group prefix)."""
    report = VerifyReport()
    keyring = signing.Keyring.load()
    codes = [jurisdiction] if jurisdiction else sorted(JURISDICTIONS)
    checkpoints = [
        checkpoint.Checkpoint.model_validate_json(r.value) for r in await read_topics([CHECKPOINTS_TOPIC])
    ]
    deployment = deployment or settings.services().group_prefix
    checkpoints = [c for c in checkpoints if c.deployment == deployment]
    for service in SERVICES:
        schema = (schemas or {}).get(service, service)
        pool = await service_pool(schema)
        try:
            await _verify_service(
                service, schema, pool, codes, jurisdiction, checkpoints, keyring, report, drain_timeout_s
            )
        finally:
            await pool.close()
    return report


async def verify_service(
    service: str, schema: str, pool: asyncpg.Pool, keyring: signing.Keyring, codes: list[str] | None = None
) -> VerifyReport:
    """One service's chains and signatures and the Kafka copy of its events, without signed
    checkpoints and without waiting for its outbox (what the bench times)."""
    report = VerifyReport()
    await _verify_service(service, schema, pool, codes or sorted(JURISDICTIONS), None, [], keyring, report, 0)
    return report


def _kafka_integrity(
    envelope: EventEnvelope,
    topic: str,
    service: str,
    keyring: signing.Keyring,
    row: asyncpg.Record | None,
    unsigned_before: int,
    signed_in_store: dict[str, Vouched],
) -> tuple[str, str] | None:
    """Why a Kafka record does not vouch for itself (code, reason), or None when it does. An
    unsigned copy passes only as the copy of a stored event older than signing.
    `signed_in_store`: by event id, what the store's check verified."""
    if not envelope.hash_ok():
        return "hash_mismatch", f"content does not match hash {envelope.hash}"
    owner = parse_events_topic(topic)
    if owner is None or owner != (envelope.jurisdiction, service):
        return "wrong_topic", f"event of {envelope.jurisdiction} on {topic}"
    if (
        envelope.signature is not None
        and row is not None
        and (vouched := signed_in_store.get(str(row["event_id"]))) is not None
        and (vouched.key_id, vouched.hash, vouched.signature)
        == (envelope.key_id, envelope.hash, envelope.signature)
    ):
        # The very check the store's verification passed for this row: the same key (hence the
        # same owner), signature and signed hash. Ed25519 verification is deterministic.
        return None
    if (
        envelope.signature is None
        and row is not None
        and row["global_position"] <= unsigned_before
        and row["hash"] == envelope.hash
    ):
        return None
    try:
        keyring.check(envelope, service)
    except signing.SignatureProblem as problem:
        return problem.code, problem.reason
    return None


async def _verify_service(
    service: str,
    schema: str,
    pool: asyncpg.Pool,
    codes: list[str],
    jurisdiction: str | None,
    checkpoints: list[checkpoint.Checkpoint],
    keyring: signing.Keyring,
    report: VerifyReport,
    drain_timeout_s: float,
) -> None:
    store = EventStore(pool, schema=schema, context=service)
    signed: dict[str, Vouched] = {}
    broken = await store.verify(keyring, signed=signed)
    unsigned_before = await store.unsigned_before()
    if broken is not None:
        report.breaks.append(
            Break(
                service,
                broken.stream_id,
                broken.stream_version,
                broken.expected,
                broken.found,
                f"hash chain ({broken.reason})",
            )
        )
    pending = await _wait_outbox_drained(pool, drain_timeout_s)
    rows = await pool.fetch(
        "SELECT event_id, hash, stream_id, stream_version, case_id, jurisdiction, global_position,"
        " key_id, signature FROM events" + (" WHERE jurisdiction = $1" if jurisdiction else ""),
        *([jurisdiction] if jurisdiction else []),
    )
    in_db = {str(r["event_id"]): r for r in rows}
    unpublished = {
        str(r["event_id"]) for r in await pool.fetch("SELECT event_id FROM outbox WHERE published_at IS NULL")
    }
    if pending:
        report.notes.append(f"{service}: {pending} event(s) still in the outbox, not yet on Kafka")
    seen: set[str] = set()
    last_position: dict[tuple[str, int, bytes], int] = {}
    records = await read_topics([events_topic(j, service) for j in codes])
    for record in records:
        where = f"Kafka {record.topic}[{record.partition}]@{record.offset}"
        vouched_id = _verified_copy(record, service, signed, in_db)
        if vouched_id is not None:
            # Byte for byte an event the store's check verified, on its own topic: nothing to
            # decode, hash or verify again; it only has to be where and when it belongs.
            if vouched_id not in seen:
                seen.add(vouched_id)
                _check_key_order(report, service, record, in_db[vouched_id], last_position, where)
            continue
        try:
            envelope = EventEnvelope.from_bytes(record.value)
        except ValidationError:
            report.breaks.append(
                Break(
                    service,
                    "?",
                    None,
                    "an event envelope",
                    "undecodable record",
                    f"Kafka {record.topic}[{record.partition}]@{record.offset}",
                )
            )
            continue
        event_id = str(envelope.event_id)
        row = in_db.get(event_id)
        # Before the redelivery check: a forged copy may reuse the id of a genuine event.
        problem = _kafka_integrity(envelope, record.topic, service, keyring, row, unsigned_before, signed)
        if problem is not None:
            code, reason = problem
            report.breaks.append(
                Break(
                    service,
                    envelope.stream_id,
                    envelope.stream_version,
                    f"an event signed by {service}",
                    envelope.key_id or "(unsigned)",
                    f"forged or altered event {event_id} on {where}: {code}: {reason}",
                )
            )
            continue
        if event_id in seen:
            continue  # a redelivery by the at-least-once relay: the same event, consumers drop it
        seen.add(event_id)
        if row is None:
            report.breaks.append(
                Break(
                    service,
                    envelope.stream_id,
                    envelope.stream_version,
                    "(not in store)",
                    envelope.hash,
                    f"event {event_id} on Kafka but not in the store ({where})",
                )
            )
            continue
        if row["hash"] != envelope.hash:
            report.breaks.append(
                Break(
                    service,
                    row["stream_id"],
                    row["stream_version"],
                    envelope.hash,
                    row["hash"],
                    f"store and Kafka disagree ({where})",
                )
            )
        _check_key_order(report, service, record, row, last_position, where)
    for event_id, row in in_db.items():
        if event_id not in seen and event_id not in unpublished:
            report.breaks.append(
                Break(
                    service,
                    row["stream_id"],
                    row["stream_version"],
                    row["hash"],
                    "(missing)",
                    f"event {event_id} in the store but not on Kafka",
                )
            )
    async with pool.acquire() as conn:
        rejected = await rejections.listed(conn, jurisdiction)
    for r in rejected:
        report.breaks.append(
            Break(service, "(consumer)", None, "no forged or altered event on its topics", r.code, r.line())
        )
    ok_checkpoints = await _check_checkpoints(service, pool, checkpoints, keyring, report)
    report.checked[service] = {
        "events": len(in_db),
        "streams": len({r["stream_id"] for r in rows}),
        "kafka": len(seen),
        "checkpoints": ok_checkpoints,
    }


def _verified_copy(
    record: Any, service: str, signed: dict[str, Vouched], in_db: dict[str, asyncpg.Record]
) -> str | None:
    """The id of the verified event `record` is a byte-equal copy of, on that event's own topic;
    None when it is not (it is then decoded and checked in full)."""
    claimed: bytes | None = next((v for k, v in record.headers or () if k == MESSAGE_ID_HEADER), None)
    if not claimed or record.value is None:
        return None
    try:
        event_id = claimed.decode()
    except UnicodeDecodeError:
        return None
    vouched, row = signed.get(event_id), in_db.get(event_id)
    if vouched is None or row is None or vouched.wire != hashlib.sha256(record.value).digest():
        return None
    if parse_events_topic(record.topic) != (row["jurisdiction"], service):
        return None
    return event_id


def _check_key_order(
    report: VerifyReport,
    service: str,
    record: Any,
    row: asyncpg.Record,
    last_position: dict[tuple[str, int, bytes], int],
    where: str,
) -> None:
    """A key's events come on Kafka in the order the store gave them (global position)."""
    key = (record.topic, record.partition, record.key or b"")
    if last_position.get(key, 0) > row["global_position"]:
        report.breaks.append(
            Break(
                service,
                row["stream_id"],
                row["stream_version"],
                "key order",
                "out of order",
                f"key {key[2]!r} reordered on Kafka ({where})",
            )
        )
    last_position[key] = row["global_position"]


async def _check_checkpoints(
    service: str,
    pool: asyncpg.Pool,
    checkpoints: list[checkpoint.Checkpoint],
    keyring: signing.Keyring,
    report: VerifyReport,
) -> int:
    mine = [c for c in checkpoints if c.service == service]
    if not mine:
        report.notes.append(f"{service}: no signed checkpoint published yet")
        return 0
    for c in mine:
        if not checkpoint.signed_by_service(c, keyring):
            report.breaks.append(
                Break(
                    service,
                    "(checkpoint)",
                    None,
                    "a valid Ed25519 signature",
                    "invalid signature",
                    f"checkpoint of {c.taken_at.isoformat()}",
                )
            )
            return len(mine)
    latest = max(mine, key=lambda c: (c.taken_at, c.events))
    stored = {
        (r["stream_id"], r["stream_version"]): r["hash"]
        for r in await pool.fetch("SELECT stream_id, stream_version, hash FROM events")
    }
    for head in latest.heads:
        found = stored.get((head.stream_id, head.version))
        if found != head.hash:
            report.breaks.append(
                Break(
                    service,
                    head.stream_id,
                    head.version,
                    head.hash,
                    found or "(missing)",
                    f"differs from the signed checkpoint of {latest.taken_at.isoformat()}",
                )
            )
            break
    return len(mine)
