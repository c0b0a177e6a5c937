"""Kafka entrypoint of the clarification service: the review and intake events that feed the pool."""

from __future__ import annotations

from pydantic import BaseModel

from services.clarification import handlers
from shared.db import Conn
from shared.envelope import EventEnvelope
from shared.runtime import ConsumerSpec, Runtime
from shared.topics import events_pattern


def consumers(runtime: Runtime) -> list[ConsumerSpec]:
    async def from_review(conn: Conn, envelope: EventEnvelope, payload: BaseModel) -> None:
        await handlers.on_review_event(runtime, conn, envelope, payload)

    async def from_intake(conn: Conn, envelope: EventEnvelope, payload: BaseModel) -> None:
        await handlers.on_intake_event(runtime, conn, envelope, payload)

    return [
        ConsumerSpec(
            name="clarification.review",
            apply=from_review,
            pattern=events_pattern("review", runtime.jurisdictions),
            event_types=frozenset({"VerificationConcluded", "CandidateScreened"}),
        ),
        ConsumerSpec(
            name="clarification.intake",
            apply=from_intake,
            pattern=events_pattern("intake", runtime.jurisdictions),
            event_types=frozenset({"ClarificationApplicationFiled"}),
        ),
    ]
