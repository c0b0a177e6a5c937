"""Archive consumers: filing on ClarificationFiled, and the statistics facts of every context."""

from __future__ import annotations

from pydantic import BaseModel

from services.archive import projections
from services.archive.handlers import file_clarification
from services.archive.settings import ArchiveSettings
from shared.db import Conn
from shared.envelope import EventEnvelope
from shared.events.clarification import CandidateAdded, ClarificationFiled, ClarificationPerformed
from shared.events.intake import ReportReceived
from shared.events.review import FalseAccusationReferred, VerificationConcluded
from shared.runtime import ConsumerSpec, Runtime
from shared.topics import events_pattern


async def intake_facts(conn: Conn, envelope: EventEnvelope, payload: BaseModel) -> None:
    if isinstance(payload, ReportReceived):
        await projections.note_report(conn, envelope, payload)


async def review_facts(conn: Conn, envelope: EventEnvelope, payload: BaseModel) -> None:
    if isinstance(payload, VerificationConcluded):
        await projections.note_conclusion(conn, envelope, payload)
    elif isinstance(payload, FalseAccusationReferred):
        await projections.note_false_accusation(conn, envelope, payload)


async def clarification_facts(conn: Conn, envelope: EventEnvelope, payload: BaseModel) -> None:
    if isinstance(payload, CandidateAdded):
        await projections.note_candidate(conn, envelope, payload)
    elif isinstance(payload, ClarificationPerformed):
        await projections.note_clarification(conn, envelope, payload)


def consumers(runtime: Runtime) -> list[ConsumerSpec]:
    settings = ArchiveSettings()

    async def filing(conn: Conn, envelope: EventEnvelope, payload: BaseModel) -> None:
        if isinstance(payload, ClarificationFiled):
            await file_clarification(runtime, conn, envelope, payload, settings)

    return [
        ConsumerSpec(
            name="archive.clarification",
            apply=filing,
            pattern=events_pattern("clarification", runtime.jurisdictions),
            event_types=frozenset({"ClarificationFiled"}),
        ),
        ConsumerSpec(
            name="archive.stats-intake",
            apply=intake_facts,
            pattern=events_pattern("intake", runtime.jurisdictions),
            event_types=frozenset({"ReportReceived"}),
        ),
        ConsumerSpec(
            name="archive.stats-review",
            apply=review_facts,
            pattern=events_pattern("review", runtime.jurisdictions),
            event_types=frozenset({"VerificationConcluded", "FalseAccusationReferred"}),
        ),
        ConsumerSpec(
            name="archive.stats-clarification",
            apply=clarification_facts,
            pattern=events_pattern("clarification", runtime.jurisdictions),
            event_types=frozenset({"CandidateAdded", "ClarificationPerformed"}),
        ),
    ]
