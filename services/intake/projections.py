"""Intake read models: reports, numbering, green-channel applications, conclusions; and their queries.

Projections use only the events (no clock, no randomness), so a rebuild gives the same tables.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import asyncpg
from pydantic import BaseModel

from services.intake.domain import Deadlines, acceptance_notice_due, report_id
from shared.db import Conn
from shared.envelope import EventEnvelope
from shared.events.intake import (
    ClarificationApplicationFiled,
    ReportAccepted,
    ReporterErased,
    ReporterNotified,
    ReportHandedOver,
    ReportLogged,
    ReportMergedAsRepeat,
    ReportReceived,
    ReportResultDue,
    ReportSentDown,
    ReportSentUp,
)
from shared.events.review import VerificationConcluded

# The report and the number it took, in one statement (the sequence remembers the highest seen).
_RECEIVED = """
WITH report AS (
    INSERT INTO reports (report_id, jurisdiction, state, channel, received_on, real_name,
                         reporter_subject_id, subjects, allegations, summary, source_agency,
                         source_reference, acceptance_notice_due)
    VALUES ($1, $2, 'received', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
    ON CONFLICT (report_id) DO NOTHING
)
INSERT INTO report_sequences (jurisdiction, year, last) VALUES ($13, $14, $15)
ON CONFLICT (jurisdiction, year) DO UPDATE SET last = GREATEST(report_sequences.last, EXCLUDED.last)
"""


async def project(conn: Conn, envelope: EventEnvelope, payload: BaseModel) -> None:
    """Update the read models for one intake event, in the transaction that recorded it."""
    rid = envelope.case_id
    match payload:
        case ReportReceived():
            jurisdiction, year, sequence = payload.report_id.split("-")
            await conn.execute(
                _RECEIVED,
                payload.report_id,
                envelope.jurisdiction,
                payload.channel,
                payload.received_on,
                payload.real_name,
                payload.reporter_subject_id,
                [s.model_dump(mode="json") for s in payload.subjects],
                [a.model_dump(mode="json") for a in payload.allegations],
                payload.summary,
                payload.source_agency,
                payload.source_reference,
                acceptance_notice_due(payload.received_on) if payload.real_name else None,
                jurisdiction,
                int(year),
                int(sequence),
            )
        case ReportLogged():
            await conn.execute(
                "UPDATE reports SET state = 'logged', logged_on = $2, disposition_due = $3,"
                " acceptance_notice_due = COALESCE($4, acceptance_notice_due) WHERE report_id = $1",
                rid,
                payload.logged_on,
                payload.disposition_due,
                payload.acceptance_notice_due,
            )
        case ReportAccepted():
            await conn.execute(
                "UPDATE reports SET state = 'accepted', accepted_on = $2, disposed_on = $2"
                " WHERE report_id = $1",
                rid,
                payload.accepted_on,
            )
        case ReportSentUp():
            await conn.execute(
                "UPDATE reports SET state = 'sent_up', disposed_on = $2, sent_to = $3 WHERE report_id = $1",
                rid,
                payload.sent_on,
                payload.to_jurisdiction,
            )
        case ReportSentDown():
            await conn.execute(
                "UPDATE reports SET state = 'sent_down', disposed_on = $2, sent_to = $3,"
                " lower_report_id = $4, response_due = $5 WHERE report_id = $1",
                rid,
                payload.sent_on,
                payload.to_jurisdiction,
                payload.lower_report_id,
                payload.response_due,
            )
        case ReportMergedAsRepeat():
            await conn.execute(
                "UPDATE reports SET state = 'repeat', disposed_on = $2, repeats_matter_id = $3"
                " WHERE report_id = $1",
                rid,
                payload.merged_on,
                payload.repeats_matter_id,
            )
        case ReportHandedOver():
            await conn.execute(
                "UPDATE reports SET state = 'handed_over', handed_on = $2, department = $3"
                " WHERE report_id = $1",
                rid,
                payload.handed_on,
                payload.department,
            )
        case ReporterNotified():
            column = "acceptance_notified_on" if payload.kind == "acceptance" else "result_notified_on"
            await conn.execute(
                f"UPDATE reports SET {column} = $2 WHERE report_id = $1", rid, payload.notified_on
            )
        case ReportResultDue():
            await conn.execute(
                "UPDATE reports SET concluded_on = $2, result_notice_due = $3 WHERE report_id = $1",
                rid,
                payload.concluded_on,
                payload.result_notice_due,
            )
        case ReporterErased():
            await conn.execute("UPDATE reports SET reporter_erased = true WHERE report_id = $1", rid)
        case ClarificationApplicationFiled():
            await conn.execute(
                "INSERT INTO applications (application_id, matter_id, jurisdiction, applicant,"
                " untrue_points, request, filed_on) VALUES ($1, $2, $3, $4, $5, $6, $7)"
                " ON CONFLICT (application_id) DO NOTHING",
                payload.application_id,
                payload.matter_id,
                envelope.jurisdiction,
                payload.applicant.model_dump(mode="json"),
                payload.untrue_points,
                payload.request,
                payload.filed_on,
            )


# ---- numbering ------------------------------------------------------------------------------


async def next_report_id(conn: Conn, jurisdiction: str, year: int) -> str:
    """Take the next matter number of a jurisdiction and year (the row lock orders registrations)."""
    sequence: int = await conn.fetchval(
        "INSERT INTO report_sequences (jurisdiction, year, last) VALUES ($1, $2, 1)"
        " ON CONFLICT (jurisdiction, year) DO UPDATE SET last = report_sequences.last + 1"
        " RETURNING last",
        jurisdiction,
        year,
    )
    return report_id(jurisdiction, year, sequence)


# ---- conclusions (review's events) ----------------------------------------------------------


async def record_conclusion(conn: Conn, matter_id: str, jurisdiction: str, concluded_on: date) -> date:
    """Remember a matter's conclusion; the first one stays (later ones converge on it)."""
    await conn.execute(
        "INSERT INTO conclusions (matter_id, jurisdiction, concluded_on) VALUES ($1, $2, $3)"
        " ON CONFLICT (matter_id) DO NOTHING",
        matter_id,
        jurisdiction,
        concluded_on,
    )
    stored: date = await conn.fetchval("SELECT concluded_on FROM conclusions WHERE matter_id = $1", matter_id)
    return stored


async def note_conclusion(conn: Conn, envelope: EventEnvelope, concluded: VerificationConcluded) -> None:
    """Review's conclusion into the `conclusions` read model alone (replay; the reaction also
    settles the result notices due)."""
    await record_conclusion(conn, envelope.case_id, envelope.jurisdiction, concluded.concluded_on)


async def conclusion_of(conn: Conn, matter_id: str) -> date | None:
    concluded: date | None = await conn.fetchval(
        "SELECT concluded_on FROM conclusions WHERE matter_id = $1", matter_id
    )
    return concluded


# ---- queries --------------------------------------------------------------------------------

_SUMMARY_COLUMNS = (
    "report_id, jurisdiction, state, channel, received_on, real_name, logged_on, subjects, allegations,"
    " source_agency, source_reference, repeats_matter_id, lower_report_id"
)


async def report_row(conn: Conn, rid: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow("SELECT * FROM reports WHERE report_id = $1", rid)
    return row


async def list_reports(
    conn: Conn, jurisdiction: str, state: str | None, limit: int, offset: int
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT {_SUMMARY_COLUMNS} FROM reports WHERE jurisdiction = $1 AND ($2::text IS NULL OR state = $2)"
        " ORDER BY report_id LIMIT $3 OFFSET $4",
        jurisdiction,
        state,
        limit,
        offset,
    )
    return [dict(r) for r in rows]


async def repeats_of(conn: Conn, matter_id: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT report_id FROM reports WHERE repeats_matter_id = $1 ORDER BY report_id", matter_id
    )
    return [r["report_id"] for r in rows]


async def applications_of(conn: Conn, matter_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT application_id, applicant, untrue_points, request, filed_on FROM applications"
        " WHERE matter_id = $1 ORDER BY filed_on, application_id",
        matter_id,
    )
    return [dict(r) for r in rows]


async def application_count(conn: Conn, matter_id: str) -> int:
    count: int = await conn.fetchval("SELECT count(*) FROM applications WHERE matter_id = $1", matter_id)
    return count


async def reports_of_reporter(conn: Conn, reporter_subject_id: str) -> list[tuple[str, str]]:
    """(report id, jurisdiction) of every report of one reporter (sent-down copies included)."""
    rows = await conn.fetch(
        "SELECT report_id, jurisdiction FROM reports WHERE reporter_subject_id = $1 ORDER BY report_id",
        reporter_subject_id,
    )
    return [(r["report_id"], r["jurisdiction"]) for r in rows]


async def report_from_source(conn: Conn, source_agency: str, source_reference: str) -> str | None:
    """The report an agency already transferred under this reference, if any."""
    found: str | None = await conn.fetchval(
        "SELECT report_id FROM reports WHERE channel = 'agency_transfer' AND source_agency = $1"
        " AND source_reference = $2",
        source_agency,
        source_reference,
    )
    return found


async def deadlines(conn: Conn, jurisdiction: str) -> list[Deadlines]:
    """Deadline facts of a jurisdiction's reports, with each sent-down report's lower disposition."""
    rows = await conn.fetch(
        "SELECT r.report_id, r.state, r.real_name, r.disposition_due, r.disposed_on,"
        " r.acceptance_notice_due, r.acceptance_notified_on, r.result_notice_due, r.result_notified_on,"
        " r.response_due, lower_report.disposed_on AS lower_disposed_on"
        " FROM reports r LEFT JOIN reports lower_report ON lower_report.report_id = r.lower_report_id"
        " WHERE r.jurisdiction = $1 ORDER BY r.report_id",
        jurisdiction,
    )
    return [Deadlines(**dict(r)) for r in rows]
