"""The one list of zhengming's services, in the order a case passes through them."""

from __future__ import annotations

from services.archive.main import definition as archive
from services.clarification.main import definition as clarification
from services.intake.main import definition as intake
from services.review.main import definition as review
from shared.runtime import ServiceDefinition

DEFINITIONS: dict[str, ServiceDefinition] = {d.name: d for d in (intake, review, clarification, archive)}


def definition_of(service: str) -> ServiceDefinition:
    """The service of that name; KeyError names the four when there is none."""
    try:
        return DEFINITIONS[service]
    except KeyError:
        raise KeyError(f"unknown service {service}; one of {', '.join(DEFINITIONS)}") from None
