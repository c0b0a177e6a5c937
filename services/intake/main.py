"""Composition root of the intake service (检举控告): `zhengming serve intake` runs it."""

from __future__ import annotations

from pydantic import BaseModel

from services.intake.api import build_api
from services.intake.consumers import consumers
from services.intake.inbound import InboundReportV1
from services.intake.projections import project
from shared.runtime import ServiceDefinition
from shared.topics import inbound_reports_topic

definition = ServiceDefinition(name="intake", build_api=build_api, consumers=consumers, projector=project)

# Inbound integration contract other agencies publish to (documented in the AsyncAPI document).
PUBLIC_CONTRACTS: dict[str, tuple[str, type[BaseModel]]] = {
    "inbound.reports.v1": (inbound_reports_topic("{jurisdiction}"), InboundReportV1),
}
