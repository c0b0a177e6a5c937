"""Kafka topic naming: events per jurisdiction and context, the city-level pattern, dead letters."""

from __future__ import annotations

import re

import pytest

from shared.envelope import JURISDICTIONS
from shared.topics import dead_letter_topic, events_pattern, events_topic


def test_events_topic_puts_the_jurisdiction_first() -> None:
    assert events_topic("331122", "review") == "zm.331122.review.events"


@pytest.mark.parametrize("jurisdiction", sorted(JURISDICTIONS))
def test_events_pattern_matches_every_jurisdictions_topic(jurisdiction: str) -> None:
    assert re.fullmatch(events_pattern("review"), events_topic(jurisdiction, "review"))


@pytest.mark.parametrize(
    "topic",
    [
        "zm.331122.intake.events",
        "zm.dlq.review",
        "zm.33112.review.events",
        "zm.3311222.review.events",
        "zm.331122.review.events.retry",
        "xzm.331122.review.events",
        "zm.331122.reviewXevents",
    ],
)
def test_events_pattern_rejects_other_topics(topic: str) -> None:
    assert re.search(events_pattern("review"), topic) is None


def test_events_pattern_escapes_the_context() -> None:
    pattern = events_pattern("a.b")
    assert re.search(pattern, "zm.331122.a.b.events")
    assert re.search(pattern, "zm.331122.aXb.events") is None


def test_dead_letter_topic() -> None:
    assert dead_letter_topic("review") == "zm.dlq.review"
    assert re.search(events_pattern("review"), dead_letter_topic("review")) is None
