"""Composition root of the intake service (检举控告): `zhengming serve intake` runs it."""

from __future__ import annotations

from services.intake.api import build_api
from services.intake.handlers import on_objection_examined, on_verification_concluded, register_inbound
from services.intake.inbound import InboundConsumer, InboundReportV1
from services.intake.projections import note_conclusion, project
from shared.events.review import ObjectionExamined, VerificationConcluded
from shared.runtime import ServiceDefinition, Subscription, events_of, read_models
from shared.topics import inbound_reports_pattern, inbound_reports_topic

definition = ServiceDefinition(
    name="intake",
    build_api=build_api,
    projector=project,
    subscriptions=(
        Subscription(
            "intake.results",
            events_of("review"),
            {VerificationConcluded: on_verification_concluded, ObjectionExamined: on_objection_examined},
        ),
        Subscription(
            "intake.inbound",
            inbound_reports_pattern,
            {InboundReportV1: register_inbound},
            consumer_class=InboundConsumer,
        ),
    ),
    # Replay: review's conclusions feed the `conclusions` read model (the reaction never reruns).
    foreign_read_models={"review": read_models({VerificationConcluded: note_conclusion})},
    # The inbound contract other agencies publish to (documented in the AsyncAPI document).
    public_contracts={"inbound.reports.v1": (inbound_reports_topic("{jurisdiction}"), InboundReportV1)},
)
