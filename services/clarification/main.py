"""Composition root of the clarification service: `zhengming serve clarification`."""

from __future__ import annotations

from services.clarification.api import build_api
from services.clarification.consumers import consumers
from services.clarification.projections import project
from shared.runtime import ServiceDefinition

definition = ServiceDefinition(
    name="clarification", build_api=build_api, consumers=consumers, projector=project
)

# Rendered documents are written once by the command that produced them, never by a projection:
# replay leaves them alone and the comparison skips them.
REPLAY_EXCLUDE = {"documents"}
