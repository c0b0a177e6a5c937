"""Composition root of the intake service (检举控告): `zhengming serve intake` runs it."""

from __future__ import annotations

from pydantic import BaseModel

from services.intake.api import build_api
from services.intake.consumers import consumers
from services.intake.inbound import InboundReportV1
from services.intake.projections import project, record_conclusion
from shared.db import Conn
from shared.envelope import EventEnvelope
from shared.events.review import VerificationConcluded
from shared.runtime import Projector, ServiceDefinition
from shared.topics import inbound_reports_topic

definition = ServiceDefinition(name="intake", build_api=build_api, consumers=consumers, projector=project)

# Inbound integration contract other agencies publish to (documented in the AsyncAPI document).
PUBLIC_CONTRACTS: dict[str, tuple[str, type[BaseModel]]] = {
    "inbound.reports.v1": (inbound_reports_topic("{jurisdiction}"), InboundReportV1),
}


async def _conclusion(conn: Conn, envelope: EventEnvelope, payload: BaseModel) -> None:
    """Replay of review's conclusions into intake's `conclusions` read model (no reaction)."""
    if isinstance(payload, VerificationConcluded):
        await record_conclusion(conn, envelope.case_id, envelope.jurisdiction, payload.concluded_on)


# Replay (zhengming audit replay): foreign events that feed pure read models of intake.
REPLAY_FOREIGN: dict[str, Projector] = {"review": _conclusion}
