"""Composition root of the archive service (备案, 回访, 档案): `zhengming serve archive`."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel

from services.archive import projections
from services.archive.api import build_api
from services.archive.handlers import file_clarification
from services.archive.projections import project
from shared.events.archive import PersonnelNoticeV1
from shared.events.clarification import (
    ApprovalRefused,
    ApprovalSentBack,
    AssessmentRecorded,
    CandidateAdded,
    ClarificationDeclined,
    ClarificationDiscontinued,
    ClarificationFiled,
    ClarificationPerformed,
    ClarificationStarted,
    ClarificationWithdrawn,
    TreatmentCorrected,
)
from shared.events.intake import ObjectionLodged, ReportMergedAsRepeat, ReportReceived
from shared.events.review import (
    FalseAccusationReferred,
    ObjectionExamined,
    VerificationConcluded,
    VerificationReopened,
)
from shared.runtime import ServiceDefinition, Subscription, Update, events_of, read_model, read_models
from shared.topics import personnel_notices_topic

# The statistics facts each context's events feed: consumed live, and run alone on replay.
STATISTICS: dict[str, Mapping[type[BaseModel], Update]] = {
    "intake": {
        ReportReceived: projections.note_report,
        ReportMergedAsRepeat: projections.note_repeat,
        ObjectionLodged: projections.note_objection,
    },
    "review": {
        VerificationConcluded: projections.note_conclusion,
        FalseAccusationReferred: projections.note_false_accusation,
        ObjectionExamined: projections.note_objection_examined,
        VerificationReopened: projections.note_reopening,
    },
    "clarification": {
        CandidateAdded: projections.note_candidate,
        ClarificationStarted: projections.note_start,
        AssessmentRecorded: projections.note_assessment,
        ClarificationPerformed: projections.note_clarification,
        ClarificationDeclined: projections.note_decline,
        ClarificationWithdrawn: projections.note_withdrawal,
        ClarificationDiscontinued: projections.note_discontinuation,
        TreatmentCorrected: projections.note_correction,
        ApprovalRefused: projections.note_head_refusal,
        ApprovalSentBack: projections.note_head_return,
    },
}

definition = ServiceDefinition(
    name="archive",
    build_api=build_api,
    projector=project,
    subscriptions=(
        Subscription(
            "archive.clarification", events_of("clarification"), {ClarificationFiled: file_clarification}
        ),
        *(
            Subscription(
                f"archive.stats-{context}",
                events_of(context),
                {event: read_model(update) for event, update in updates.items()},
            )
            for context, updates in STATISTICS.items()
        ),
    ),
    foreign_read_models={context: read_models(updates) for context, updates in STATISTICS.items()},
    public_contracts={
        "public.personnel-notices.v1": (personnel_notices_topic("{jurisdiction}"), PersonnelNoticeV1),
    },
)
