"""Replay skips a foreign record unread on its `event_type` header only where the service's live
consumers skip it too (zhengming/audit/replays.py `Replayer.ignores`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import asyncpg
import pytest

from shared.topics import events_topic
from zhengming.audit.replays import Replayer


@dataclass
class Record:
    topic: str
    headers: list[tuple[str, bytes | None]]


@pytest.mark.parametrize(
    ("service", "context", "event_type", "skipped"),
    [
        # intake's read model of review's events uses VerificationConcluded only ...
        ("intake", "review", "VerificationOpened", True),
        ("intake", "review", "VerificationConcluded", False),
        # ... but its live consumer decodes ObjectionExamined: a header naming it is decoded,
        # so a header lying about its body reads the same in replay as live.
        ("intake", "review", "ObjectionExamined", False),
        ("intake", "intake", "ReportReceived", False),  # its own events: all of them
        ("archive", "clarification", "DocumentIssued", True),
        ("archive", "clarification", "ClarificationFiled", False),
        ("archive", "intake", "ReportReceived", False),
    ],
)
def test_replay_skips_where_the_live_consumers_skip(
    service: str, context: str, event_type: str, skipped: bool
) -> None:
    replayer = Replayer(service, cast(asyncpg.Pool, None))
    record = Record(events_topic("331122", context), [("event_type", event_type.encode())])
    assert replayer.ignores(record) is skipped


@pytest.mark.parametrize(
    "headers", [[], [("event_type", b"")], [("event_type", None)], [("event_type", b"\xff")]]
)
def test_a_record_without_a_readable_type_is_decoded(headers: list[tuple[str, Any]]) -> None:
    replayer = Replayer("intake", cast(asyncpg.Pool, None))
    assert not replayer.ignores(Record(events_topic("331122", "review"), headers))
