"""Archive read models: the files (一人一档) fed by the archive's own events, and the statistics
facts fed by the events of intake, review and clarification. Rebuildable from the events alone."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel

from services.archive.domain import working_days_to_clarify
from shared.db import Conn
from shared.envelope import EventEnvelope
from shared.events.archive import (
    FilesMerged,
    FilingRecorded,
    IntegrityFileEntered,
    PersonnelNoticeIssued,
    ReturnVisitRecorded,
    ReturnVisitScheduled,
)
from shared.events.clarification import (
    ApprovalRefused,
    ApprovalSentBack,
    AssessmentRecorded,
    CandidateAdded,
    ClarificationDeclined,
    ClarificationDiscontinued,
    ClarificationPerformed,
    ClarificationStarted,
    ClarificationWithdrawn,
    TreatmentCorrected,
)
from shared.events.common import UNTRUE_FINDINGS
from shared.events.intake import ObjectionLodged, ReportMergedAsRepeat, ReportReceived
from shared.events.review import (
    FalseAccusationReferred,
    ObjectionExamined,
    VerificationConcluded,
    VerificationReopened,
)


async def project(conn: Conn, envelope: EventEnvelope, payload: BaseModel) -> None:
    """The archive's own events, in the transaction that appends them."""
    if isinstance(payload, FilingRecorded):
        await conn.execute(
            "INSERT INTO filings (case_id, jurisdiction, subject_id, kind, name, post, unit, points,"
            " forms, filed_on, concluded_on, clarified_on, event_id, person_key)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            envelope.case_id,
            envelope.jurisdiction,
            payload.person.subject_id,
            payload.person.kind,
            payload.person.name,
            payload.person.post,
            payload.person.unit,
            [p.model_dump(mode="json") for p in payload.points],
            list(payload.forms),
            payload.filed_on,
            payload.concluded_on,
            payload.clarified_on,
            envelope.event_id,
            payload.person.person_key,
        )
    elif isinstance(payload, IntegrityFileEntered):
        # In the file of the filing's person (the filing precedes its entry in the stream).
        await conn.execute(
            "INSERT INTO integrity_entries (event_id, case_id, jurisdiction, subject_id, entered_on,"
            " summary, person_key) VALUES ($1, $2, $3, $4, $5, $6,"
            " COALESCE((SELECT person_key FROM filings WHERE case_id = $2), $4))",
            envelope.event_id,
            envelope.case_id,
            envelope.jurisdiction,
            payload.subject_id,
            payload.entered_on,
            payload.summary,
        )
    elif isinstance(payload, ReturnVisitScheduled):
        # The filing precedes its visits in the stream, so its row is there to name the subject.
        await conn.execute(
            "INSERT INTO visits (visit_id, case_id, jurisdiction, subject_id, visit_with, clarified_on,"
            " due_on, scheduled_event_id, person_key)"
            " SELECT $1, f.case_id, $3, f.subject_id, $4, f.clarified_on, $5, $6, f.person_key"
            " FROM filings f WHERE f.case_id = $2",
            payload.visit_id,
            envelope.case_id,
            envelope.jurisdiction,
            payload.visit_with,
            payload.due_on,
            envelope.event_id,
        )
    elif isinstance(payload, ReturnVisitRecorded):
        await conn.execute(
            "UPDATE visits SET visited_on = $2, state_of_mind = $3, work = $4, leader_views = $5,"
            " colleague_views = $6, recorded_event_id = $7 WHERE visit_id = $1",
            payload.visit_id,
            payload.visited_on,
            payload.state_of_mind,
            payload.work,
            payload.leader_views,
            payload.colleague_views,
            envelope.event_id,
        )
    elif isinstance(payload, FilesMerged):
        await conn.execute(
            "INSERT INTO file_merges (event_id, case_id, jurisdiction, person_key, other_key, merged_on,"
            " reason, merged_by, merged_by_name) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            envelope.event_id,
            envelope.case_id,
            envelope.jurisdiction,
            payload.person_key,
            payload.other_key,
            payload.merged_on,
            payload.reason,
            envelope.actor.user_id,
            envelope.actor.name,
        )
    elif isinstance(payload, PersonnelNoticeIssued):
        await conn.execute(
            "INSERT INTO notices (notice_id, jurisdiction, period, issued_on, entries, event_id,"
            " corrections) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            payload.notice_id,
            envelope.jurisdiction,
            payload.period,
            payload.issued_on,
            [e.model_dump(mode="json") for e in payload.entries],
            envelope.event_id,
            [c.model_dump(mode="json") for c in payload.corrections],
        )


# --- facts of other contexts (called by the statistics consumers) ------------------------------------
# Each insert is keyed by the event id and ignores a second copy, so even a delivery that slipped
# past the inbox could not count twice; the figures are computed when asked, never incremented.


async def _note(conn: Conn, envelope: EventEnvelope, table: str, **columns: object) -> None:
    """One fact of `table`, keyed by its event (with the event's case and jurisdiction), once."""
    names = ["event_id", "case_id", "jurisdiction", *columns]
    values = [envelope.event_id, envelope.case_id, envelope.jurisdiction, *columns.values()]
    placeholders = ", ".join(f"${i}" for i in range(1, len(names) + 1))
    await conn.execute(
        f"INSERT INTO {table} ({', '.join(names)}) VALUES ({placeholders}) ON CONFLICT (event_id) DO NOTHING",
        *values,
    )


async def note_report(conn: Conn, envelope: EventEnvelope, payload: ReportReceived) -> None:
    await _note(conn, envelope, "stat_reports", channel=payload.channel, received_on=payload.received_on)


async def note_conclusion(conn: Conn, envelope: EventEnvelope, payload: VerificationConcluded) -> None:
    untrue = sum(1 for finding in payload.findings.values() if finding in UNTRUE_FINDINGS)
    if untrue == 0:
        return  # only conclusions with an untrue point are counted
    # A revised conclusion of a matter already counted is not counted again (its stream is read
    # in order); the check and the insert are one statement.
    await conn.execute(
        "INSERT INTO stat_conclusions (event_id, case_id, jurisdiction, concluded_on, untrue_points)"
        " SELECT $1, $2, $3, $4, $5 WHERE NOT ($6 AND EXISTS"
        " (SELECT 1 FROM stat_conclusions WHERE case_id = $2 AND event_id <> $1))"
        " ON CONFLICT (event_id) DO NOTHING",
        envelope.event_id,
        envelope.case_id,
        envelope.jurisdiction,
        payload.concluded_on,
        untrue,
        bool(payload.revision),
    )


async def note_false_accusation(
    conn: Conn, envelope: EventEnvelope, payload: FalseAccusationReferred
) -> None:
    await _note(
        conn,
        envelope,
        "stat_false_accusations",
        allegation_id=payload.allegation_id,
        referred_on=payload.referred_on,
    )


async def note_reopening(conn: Conn, envelope: EventEnvelope, payload: VerificationReopened) -> None:
    """补充核查: a concluded verification reopened."""
    await _note(conn, envelope, "stat_reopenings", origin=payload.origin, reopened_on=payload.reopened_on)


async def note_candidate(conn: Conn, envelope: EventEnvelope, payload: CandidateAdded) -> None:
    await _note(conn, envelope, "stat_candidates", added_on=payload.added_on, via=payload.via)


async def note_clarification(conn: Conn, envelope: EventEnvelope, payload: ClarificationPerformed) -> None:
    await _note(
        conn,
        envelope,
        "stat_clarifications",
        subject_id=payload.person.subject_id,
        kind=payload.person.kind,
        forms=list(payload.forms),
        on_time=payload.on_time,
        concluded_on=payload.concluded_on,
        performed_on=payload.performed_on,
        working_days=working_days_to_clarify(payload.concluded_on, payload.performed_on),
        person_key=payload.person.person_key,
    )


async def note_repeat(conn: Conn, envelope: EventEnvelope, payload: ReportMergedAsRepeat) -> None:
    await _note(conn, envelope, "stat_repeats", merged_on=payload.merged_on)


async def note_assessment(conn: Conn, envelope: EventEnvelope, payload: AssessmentRecorded) -> None:
    """Only refusals are facts of the figures (不予澄清, by the negative list's reasons)."""
    if payload.eligible:
        return
    await _note(conn, envelope, "stat_refusals", assessed_on=payload.assessed_on, refusals=payload.refusals)


async def note_start(conn: Conn, envelope: EventEnvelope, payload: ClarificationStarted) -> None:
    await _note(conn, envelope, "stat_starts", started_on=payload.started_on)


async def _note_exit(conn: Conn, envelope: EventEnvelope, exit: str, exited_on: date) -> None:
    await _note(conn, envelope, "stat_exits", exit=exit, exited_on=exited_on)


async def note_decline(conn: Conn, envelope: EventEnvelope, payload: ClarificationDeclined) -> None:
    """本人不同意澄清: out of the pool (counted as declined)."""
    await _note_exit(conn, envelope, "declined", payload.declined_on)


async def note_withdrawal(conn: Conn, envelope: EventEnvelope, payload: ClarificationWithdrawn) -> None:
    """本人撤回 (counted as declined)."""
    await _note_exit(conn, envelope, "withdrawn", payload.withdrawn_on)


async def note_discontinuation(
    conn: Conn, envelope: EventEnvelope, payload: ClarificationDiscontinued
) -> None:
    """终止澄清 after a revised conclusion (counted as discontinued)."""
    await _note_exit(conn, envelope, "discontinued", payload.discontinued_on)


async def note_correction(conn: Conn, envelope: EventEnvelope, payload: TreatmentCorrected) -> None:
    """纠正错误处理: in the person's file and the period's notice to the organisation department."""
    person = payload.person
    await _note(
        conn,
        envelope,
        "corrections",
        subject_id=person.subject_id,
        person_key=person.person_key,
        kind=person.kind,
        name=person.name,
        post=person.post,
        unit=person.unit,
        treatment=payload.treatment,
        organ=payload.organ,
        correction=payload.correction,
        corrected_on=payload.corrected_on,
    )


async def note_head_refusal(conn: Conn, envelope: EventEnvelope, payload: ApprovalRefused) -> None:
    """主要负责人不予批准 (counted as returned by the head)."""
    await _note_exit(conn, envelope, "refused_by_head", payload.refused_on)


async def note_head_return(conn: Conn, envelope: EventEnvelope, payload: ApprovalSentBack) -> None:
    """主要负责人退回 (counted as returned by the head)."""
    await _note_exit(conn, envelope, "returned_by_head", payload.sent_back_on)


async def note_objection(conn: Conn, envelope: EventEnvelope, payload: ObjectionLodged) -> None:
    """异议 lodged by a real-name reporter (counted by the date lodged)."""
    await _note(
        conn, envelope, "stat_objections", objection_id=payload.objection_id, lodged_on=payload.lodged_on
    )


async def note_objection_examined(conn: Conn, envelope: EventEnvelope, payload: ObjectionExamined) -> None:
    """异议 re-examined, upheld or not (an upheld one counted by the date examined)."""
    await _note(
        conn,
        envelope,
        "stat_objection_results",
        objection_id=payload.objection_id,
        examined_on=payload.examined_on,
        upheld=payload.upheld,
    )
