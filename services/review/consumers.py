"""Review's Kafka entrypoint: the intake events it reacts to (移送承办 opens a verification)."""

from __future__ import annotations

from pydantic import BaseModel

from services.review import handlers
from shared.db import Conn
from shared.envelope import EventEnvelope
from shared.events.intake import ReportHandedOver
from shared.runtime import ConsumerSpec, Runtime
from shared.topics import events_pattern


def consumers(runtime: Runtime) -> list[ConsumerSpec]:
    async def on_intake_event(conn: Conn, envelope: EventEnvelope, payload: BaseModel) -> None:
        # Every other intake event is intake's own business.
        if isinstance(payload, ReportHandedOver):
            await handlers.open_on_handover(runtime, conn, envelope, payload)

    return [
        ConsumerSpec(
            name="review.handover",
            apply=on_intake_event,
            pattern=events_pattern("intake", runtime.jurisdictions),
            event_types=frozenset({"ReportHandedOver"}),
        )
    ]
