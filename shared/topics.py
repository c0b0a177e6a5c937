"""Kafka topic names: one place for the naming scheme of events, dead letters and public topics."""

from __future__ import annotations

import re

PREFIX = "zm"


def events_topic(jurisdiction: str, context: str) -> str:
    """Domain events of one bounded context in one jurisdiction, e.g. zm.331122.review.events.

    The jurisdiction comes first so a county deployment can be limited by a topic-prefix ACL
    (zm.331122.) and the city level can subscribe by pattern.
    """
    return f"{PREFIX}.{jurisdiction}.{context}.events"


def events_pattern(context: str) -> str:
    """Regular expression matching the events topics of `context` in every jurisdiction."""
    return rf"^{PREFIX}\.\d{{6}}\.{re.escape(context)}\.events$"


def dead_letter_topic(consumer: str) -> str:
    """Messages a consumer could not decode, did not know or could not validate."""
    return f"{PREFIX}.dlq.{consumer}"
