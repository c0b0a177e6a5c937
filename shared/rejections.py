"""Events a consumer refused because they do not vouch for themselves (altered, unsigned, signed by
an unknown key or by a service that does not own the topic): recorded so verify names them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from shared.db import Conn
from shared.topics import parse_events_topic

# Dead-letter codes that mean "someone wrote what its producer did not": a forgery or tampering,
# not a schema problem (undecodable, unknown_event_type, invalid_event are not recorded here).
INTEGRITY_CODES = frozenset(
    {"hash_mismatch", "unsigned", "unknown_key", "bad_signature", "wrong_producer", "wrong_topic"}
)


@dataclass(frozen=True)
class Rejected:
    consumer: str
    topic: str
    partition: int
    offset: int
    event_id: str | None
    code: str
    reason: str

    def line(self) -> str:
        event = f"event {self.event_id}" if self.event_id else "a message"
        return (
            f"{self.consumer} rejected {event} at {self.topic}[{self.partition}]@{self.offset}:"
            f" {self.code}: {self.reason}"
        )


async def record(
    conn: Conn,
    consumer: str,
    position: dict[str, Any],
    code: str,
    reason: str,
    event_id: uuid.UUID | str | None,
) -> None:
    """Once per message and consumer (a redelivery of the same offset adds nothing)."""
    await conn.execute(
        "INSERT INTO rejected_events (consumer, topic, kafka_partition, kafka_offset, event_id, code, reason)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        consumer,
        position["topic"],
        position["partition"],
        position["offset"],
        uuid.UUID(str(event_id)) if event_id else None,
        code,
        reason[:2000],
    )


async def listed(conn: Conn, jurisdiction: str | None = None, limit: int = 100) -> list[Rejected]:
    """The rejections of this schema's consumers, oldest first (only those read from the
    jurisdiction's topics when one is given)."""
    rows = await conn.fetch(
        "SELECT consumer, topic, kafka_partition, kafka_offset, event_id, code, reason FROM rejected_events"
        " ORDER BY rejected_at, topic, kafka_partition, kafka_offset"
    )
    found = [
        Rejected(
            r["consumer"],
            r["topic"],
            r["kafka_partition"],
            r["kafka_offset"],
            str(r["event_id"]) if r["event_id"] else None,
            r["code"],
            r["reason"],
        )
        for r in rows
        if jurisdiction is None or (parse_events_topic(r["topic"]) or ("", ""))[0] == jurisdiction
    ]
    return found[:limit]
