"""Kafka topic names: one place for the naming scheme of events, dead letters and public topics."""

from __future__ import annotations

import re
from collections.abc import Iterable

PREFIX = "zm"


def events_topic(jurisdiction: str, context: str) -> str:
    """Domain events of one bounded context in one jurisdiction, e.g. zm.331122.review.events.

    The jurisdiction comes first so a county deployment can be limited by a topic-prefix ACL
    (zm.331122.) and the city level can subscribe by pattern.
    """
    return f"{PREFIX}.{jurisdiction}.{context}.events"


_EVENTS_TOPIC = re.compile(rf"^{PREFIX}\.(\d{{6}})\.([A-Za-z0-9_-]+)\.events$")


def parse_events_topic(topic: str) -> tuple[str, str] | None:
    """(jurisdiction, context) of an events topic, None for any other topic: the context named
    in the topic owns it, so only that context's service may sign what it carries."""
    found = _EVENTS_TOPIC.match(topic)
    return (found.group(1), found.group(2)) if found else None


def events_pattern(context: str, jurisdictions: Iterable[str] | None = None) -> str:
    """Regular expression matching the events topics of `context` in the given jurisdictions
    (every jurisdiction when None): how the city level aggregates its counties."""
    codes = r"\d{6}" if jurisdictions is None else "(?:" + "|".join(sorted(jurisdictions)) + ")"
    return rf"^{PREFIX}\.{codes}\.{re.escape(context)}\.events$"


def inbound_reports_topic(jurisdiction: str) -> str:
    """Reports published by another agency's system for this jurisdiction (inbound integration)."""
    return f"{PREFIX}.{jurisdiction}.inbound.reports"


def inbound_reports_pattern(jurisdictions: Iterable[str] | None = None) -> str:
    codes = r"\d{6}" if jurisdictions is None else "(?:" + "|".join(sorted(jurisdictions)) + ")"
    return rf"^{PREFIX}\.{codes}\.inbound\.reports$"


def personnel_notices_topic(jurisdiction: str) -> str:
    """Public, versioned contract for the organisation department (outbound integration)."""
    return f"{PREFIX}.{jurisdiction}.public.personnel-notices.v1"


def dead_letter_topic(consumer: str) -> str:
    """Messages a consumer could not decode, did not know or could not validate."""
    return f"{PREFIX}.dlq.{consumer}"


CHECKPOINTS_TOPIC = f"{PREFIX}.audit.checkpoints"


def provisioned_topics(jurisdictions: Iterable[str], contexts: Iterable[str]) -> list[str]:
    """Every topic a deployment creates up front: pattern subscribers only see topics that
    exist, so an inbound or public topic made on first use would be missed for a while."""
    codes, names = sorted(jurisdictions), sorted(contexts)
    topics = [events_topic(j, c) for j in codes for c in names]
    topics += [inbound_reports_topic(j) for j in codes]
    topics += [personnel_notices_topic(j) for j in codes]
    topics.append(CHECKPOINTS_TOPIC)
    return topics
