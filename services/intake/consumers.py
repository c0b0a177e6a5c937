"""Intake's Kafka entrypoints: review's conclusions (result notices due) and inbound agency reports."""

from __future__ import annotations

from pydantic import BaseModel

from services.intake import handlers
from services.intake.inbound import InboundConsumer, InboundReportV1
from shared.db import Conn
from shared.envelope import EventEnvelope
from shared.events.review import VerificationConcluded
from shared.runtime import ConsumerSpec, Runtime
from shared.topics import events_pattern, inbound_reports_pattern


def consumers(runtime: Runtime) -> list[ConsumerSpec]:
    async def results(conn: Conn, envelope: EventEnvelope, payload: BaseModel) -> None:
        if isinstance(payload, VerificationConcluded):
            await handlers.on_verification_concluded(runtime, conn, envelope, payload)

    async def inbound(conn: Conn, envelope: EventEnvelope, payload: BaseModel) -> None:
        if isinstance(payload, InboundReportV1):
            await handlers.register_inbound(runtime, conn, envelope, payload)

    return [
        ConsumerSpec(
            name="intake.results",
            apply=results,
            pattern=events_pattern("review", runtime.jurisdictions),
            event_types=frozenset({"VerificationConcluded"}),
        ),
        ConsumerSpec(
            name="intake.inbound",
            apply=inbound,
            pattern=inbound_reports_pattern(runtime.jurisdictions),
            consumer_class=InboundConsumer,
        ),
    ]
