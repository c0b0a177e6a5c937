"""Composition root of the review service (核查): `zhengming serve review`."""

from __future__ import annotations

from services.review.api import build_api
from services.review.handlers import open_on_handover, reopen_on_re_review
from services.review.projections import project
from shared.events.clarification import ReReviewRecorded
from shared.events.intake import ReportHandedOver
from shared.runtime import ServiceDefinition, Subscription, events_of

definition = ServiceDefinition(
    name="review",
    build_api=build_api,
    projector=project,
    # Every other intake (and clarification) event is intake's (clarification's) own business.
    subscriptions=(
        Subscription("review.handover", events_of("intake"), {ReportHandedOver: open_on_handover}),
        # 复核 sending the matter back because the verification is incomplete: 补充核查.
        Subscription("review.re-review", events_of("clarification"), {ReReviewRecorded: reopen_on_re_review}),
    ),
)
