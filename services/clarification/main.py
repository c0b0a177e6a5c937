"""Composition root of the clarification service: `zhengming serve clarification`."""

from __future__ import annotations

from services.clarification.api import build_api
from services.clarification.handlers import on_application, on_conclusion, on_sweep
from services.clarification.projections import project
from shared.events.intake import ClarificationApplicationFiled
from shared.events.review import CandidateScreened, VerificationConcluded
from shared.runtime import ServiceDefinition, Subscription, events_of

definition = ServiceDefinition(
    name="clarification",
    build_api=build_api,
    projector=project,
    subscriptions=(
        Subscription(
            "clarification.review",
            events_of("review"),
            {VerificationConcluded: on_conclusion, CandidateScreened: on_sweep},
        ),
        Subscription(
            "clarification.intake", events_of("intake"), {ClarificationApplicationFiled: on_application}
        ),
    ),
    # Issued documents (and their numbers) are written once by the command that produced them,
    # never by a projection: replay leaves them alone and the comparison skips them.
    replay_exclude=frozenset({"documents", "document_numbers"}),
)
