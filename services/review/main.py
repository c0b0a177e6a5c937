"""Composition root of the review service (核查): `zhengming serve review`."""

from __future__ import annotations

from services.review.api import build_api
from services.review.consumers import consumers
from services.review.projections import project
from shared.runtime import ServiceDefinition

definition = ServiceDefinition(name="review", build_api=build_api, consumers=consumers, projector=project)
