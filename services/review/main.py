"""Composition root of the review service (核查): `zhengming serve review`."""

from __future__ import annotations

from services.review.api import build_api
from services.review.handlers import open_on_handover, receive_objection, reopen_on_re_review
from services.review.projections import project
from shared.events.clarification import ReReviewRecorded
from shared.events.intake import ObjectionLodged, ReportHandedOver
from shared.runtime import ServiceDefinition, Subscription, events_of

definition = ServiceDefinition(
    name="review",
    build_api=build_api,
    projector=project,
    # Every other intake (and clarification) event is intake's (clarification's) own business. One
    # consumer for the handover and the objection, so a matter's objection never overtakes its
    # handover (one key, one partition, one order).
    subscriptions=(
        Subscription(
            "review.handover",
            events_of("intake"),
            {ReportHandedOver: open_on_handover, ObjectionLodged: receive_objection},
        ),
        # 复核 sending the matter back because the verification is incomplete: 补充核查.
        Subscription("review.re-review", events_of("clarification"), {ReReviewRecorded: reopen_on_re_review}),
    ),
)
