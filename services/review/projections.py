"""Review read models: verifications, referred false accusations and quarterly results, fed by the
service's own events (rebuildable from the store), and the queries that read them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, cast

from pydantic import BaseModel

from shared.db import Conn
from shared.envelope import EventEnvelope
from shared.events.common import Finding
from shared.events.review import (
    CandidateScreened,
    FalseAccusationProposed,
    FalseAccusationReferred,
    FalseAccusationRefused,
    FindingRecorded,
    HandlingDecided,
    HandlingProposed,
    HandlingSentBack,
    ObjectionExamined,
    ObjectionReceived,
    ResultsReportedBack,
    VerificationConcluded,
    VerificationOpened,
    VerificationReopened,
)

# The verification's version, after another table's statement (its CTE) in the same round trip.
_VERSION = "UPDATE verifications SET version = $2 WHERE case_id = $1"


async def project(conn: Conn, envelope: EventEnvelope, payload: BaseModel) -> None:
    """Update the read models for one review event, in the transaction that recorded it."""
    case_id, version = envelope.case_id, envelope.stream_version
    match payload:
        case VerificationOpened():
            await conn.execute(
                "INSERT INTO verifications (case_id, jurisdiction, department, state, opened_on,"
                " received_on, real_name, subjects, allegations, version)"
                " VALUES ($1, $2, $3, 'open', $4, $5, $6, $7, $8, $9)",
                case_id,
                envelope.jurisdiction,
                payload.department,
                payload.opened_on,
                payload.received_on,
                payload.real_name,
                [s.model_dump(mode="json") for s in payload.subjects],
                [a.model_dump(mode="json") for a in payload.allegations],
                version,
            )
        case HandlingProposed():
            proposal = {**payload.model_dump(mode="json"), "proposed_by": envelope.actor.user_id}
            await conn.execute(
                "UPDATE verifications SET state = 'proposed', proposal = $2, version = $3 WHERE case_id = $1",
                case_id,
                proposal,
                version,
            )
        case HandlingSentBack():
            sent_back = {**payload.model_dump(mode="json"), "sent_back_by": envelope.actor.user_id}
            await conn.execute(
                "UPDATE verifications SET state = 'open', proposal = NULL,"
                " sent_back = sent_back || jsonb_build_array($2::jsonb), version = $3 WHERE case_id = $1",
                case_id,
                sent_back,
                version,
            )
        case HandlingDecided():
            await conn.execute(
                "UPDATE verifications SET state = 'decided', method = $2, decided_on = $3,"
                " approved_by = $4, decision_note = $5, approved_on = $6, approver_name = $7,"
                " proposal = NULL, version = $8 WHERE case_id = $1",
                case_id,
                payload.method,
                payload.decided_on,
                payload.approved_by,
                payload.note,
                payload.approved_on,
                payload.approver_name,
                version,
            )
        case FalseAccusationProposed():
            proposed = {**payload.model_dump(mode="json"), "proposed_by": envelope.actor.user_id}
            await conn.execute(
                "UPDATE verifications SET false_accusation_proposals = false_accusation_proposals"
                " || jsonb_build_object($2::text, $3::jsonb), version = $4 WHERE case_id = $1",
                case_id,
                payload.allegation_id,
                proposed,
                version,
            )
        case FalseAccusationRefused():
            refused = {**payload.model_dump(mode="json"), "refused_by": envelope.actor.user_id}
            await conn.execute(
                "UPDATE verifications SET false_accusation_proposals = false_accusation_proposals - $2::text,"
                " false_accusation_refusals = false_accusation_refusals || jsonb_build_array($3::jsonb),"
                " version = $4 WHERE case_id = $1",
                case_id,
                payload.allegation_id,
                refused,
                version,
            )
        case FindingRecorded():
            # A later finding of the same allegation (诬告陷害 after the conclusion, 补充核查)
            # replaces the earlier one.
            await conn.execute(
                "UPDATE verifications SET findings = findings || jsonb_build_object($2::text, $3::jsonb),"
                " false_accusation_proposals = false_accusation_proposals - $2::text,"
                " version = $4 WHERE case_id = $1",
                case_id,
                payload.allegation_id,
                payload.model_dump(mode="json"),
                version,
            )
        case FalseAccusationReferred():
            # The finding it follows was projected just before, in the same transaction.
            await conn.execute(
                "WITH referred AS (INSERT INTO false_accusations (case_id, allegation_id, jurisdiction,"
                " referred_on, referred_to, basis, approved_by, approval_jurisdiction)"
                " SELECT case_id, $2, jurisdiction, $3, $4, findings -> $2 ->> 'basis',"
                " findings -> $2 ->> 'approved_by', findings -> $2 ->> 'approval_jurisdiction'"
                " FROM verifications WHERE case_id = $1)"
                " UPDATE verifications SET version = $5 WHERE case_id = $1",
                case_id,
                payload.allegation_id,
                payload.referred_on,
                payload.referred_to,
                version,
            )
        case VerificationConcluded():
            await conn.execute(
                "UPDATE verifications SET state = 'concluded', concluded_on = $2, eligible_for_pool = $3,"
                " untrue_points = $4, revision = $5, version = $6 WHERE case_id = $1",
                case_id,
                payload.concluded_on,
                payload.eligible_for_pool,
                [a.model_dump(mode="json") for a in payload.untrue_points],
                payload.revision,
                version,
            )
        case VerificationReopened():
            reopening = payload.model_dump(mode="json", exclude={"trigger"})
            await conn.execute(
                "UPDATE verifications SET state = 'reopened',"
                " reopenings = reopenings || jsonb_build_array($2::jsonb), version = $3 WHERE case_id = $1",
                case_id,
                reopening,
                version,
            )
        case CandidateScreened():
            await conn.execute(
                "UPDATE verifications SET screenings = screenings || jsonb_build_array($2::jsonb),"
                " version = $3 WHERE case_id = $1",
                case_id,
                payload.model_dump(mode="json"),
                version,
            )
        case ObjectionReceived():
            await conn.execute(
                "WITH lodged AS (INSERT INTO verification_objections (objection_id, case_id,"
                " jurisdiction, lodged_on, grounds, new_evidence) VALUES ($6, $1, $3, $4, $5, $7))"
                f" {_VERSION}",
                case_id,
                version,
                envelope.jurisdiction,
                payload.lodged_on,
                payload.grounds,
                payload.objection_id,
                payload.new_evidence,
            )
        case ObjectionExamined():
            await conn.execute(
                "WITH examined AS (UPDATE verification_objections SET examined_on = $3, upheld = $4,"
                " reason = $5 WHERE objection_id = $6)"
                f" {_VERSION}",
                case_id,
                version,
                payload.examined_on,
                payload.upheld,
                payload.reason,
                payload.objection_id,
            )
        case ResultsReportedBack():
            await conn.execute(
                "INSERT INTO results_reports (jurisdiction, quarter, reported_on, matters)"
                " VALUES ($1, $2, $3, $4)",
                envelope.jurisdiction,
                payload.quarter,
                payload.reported_on,
                payload.matters,
            )


# -- queries -------------------------------------------------------------------------------------

_VERIFICATION_COLUMNS = (
    "case_id, jurisdiction, department, state, opened_on, received_on, real_name, subjects,"
    " allegations, proposal, sent_back, method, decided_on, approved_by, approved_on, approver_name,"
    " decision_note, findings, false_accusation_proposals, false_accusation_refusals, concluded_on,"
    " eligible_for_pool, untrue_points, revision, reopenings, screenings, version"
)
# 异议 of each verification with their re-examination, oldest first.
_OBJECTIONS_COLUMN = (
    ", COALESCE((SELECT jsonb_agg(jsonb_build_object('objection_id', o.objection_id,"
    " 'lodged_on', o.lodged_on, 'grounds', o.grounds, 'new_evidence', o.new_evidence,"
    " 'examined_on', o.examined_on, 'upheld', o.upheld, 'reason', o.reason)"
    " ORDER BY o.lodged_on, o.objection_id) FROM verification_objections o"
    " WHERE o.case_id = verifications.case_id), '[]'::jsonb) AS objections"
)


async def verification(conn: Conn, case_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        f"SELECT {_VERIFICATION_COLUMNS}{_OBJECTIONS_COLUMN} FROM verifications WHERE case_id = $1",
        case_id,
    )
    return dict(row) if row is not None else None


async def verifications(
    conn: Conn, jurisdictions: Sequence[str], state: str | None = None
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT {_VERIFICATION_COLUMNS}{_OBJECTIONS_COLUMN} FROM verifications"
        " WHERE jurisdiction = ANY($1::text[]) AND ($2::text IS NULL OR state = $2)"
        " ORDER BY jurisdiction, opened_on, case_id",
        list(jurisdictions),
        state,
    )
    return [dict(r) for r in rows]


async def awaiting_false_accusation_approval(conn: Conn) -> list[dict[str, Any]]:
    """Verifications of every jurisdiction with a 诬告陷害 proposed and not yet decided."""
    rows = await conn.fetch(
        f"SELECT {_VERIFICATION_COLUMNS}{_OBJECTIONS_COLUMN} FROM verifications"
        " WHERE false_accusation_proposals <> '{}'::jsonb ORDER BY jurisdiction, opened_on, case_id"
    )
    return [dict(r) for r in rows]


async def sweep_candidates(conn: Conn, jurisdiction: str, start: date, end: date) -> list[str]:
    """Verifications of `jurisdiction` concluded eligible between `start` and `end` (inclusive)."""
    rows = await conn.fetch(
        "SELECT case_id FROM verifications WHERE jurisdiction = $1 AND state = 'concluded'"
        " AND eligible_for_pool AND concluded_on BETWEEN $2 AND $3 ORDER BY concluded_on, case_id",
        jurisdiction,
        start,
        end,
    )
    return [r["case_id"] for r in rows]


async def concluded_between(
    conn: Conn, jurisdiction: str, start: date, end: date
) -> dict[str, list[Finding]]:
    """The findings of each matter of `jurisdiction` concluded between `start` and `end`."""
    rows = await conn.fetch(
        "SELECT case_id, findings FROM verifications WHERE jurisdiction = $1 AND state = 'concluded'"
        " AND concluded_on BETWEEN $2 AND $3 ORDER BY case_id",
        jurisdiction,
        start,
        end,
    )
    return {r["case_id"]: [cast(Finding, f["finding"]) for f in r["findings"].values()] for r in rows}


async def false_accusations(conn: Conn, jurisdictions: Sequence[str]) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT case_id, allegation_id, jurisdiction, referred_on, referred_to, basis, approved_by,"
        " approval_jurisdiction FROM false_accusations WHERE jurisdiction = ANY($1::text[])"
        " ORDER BY referred_on, case_id, allegation_id",
        list(jurisdictions),
    )
    return [dict(r) for r in rows]


async def results_reports(
    conn: Conn, jurisdictions: Sequence[str], quarter: str | None = None
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT jurisdiction, quarter, reported_on, matters FROM results_reports"
        " WHERE jurisdiction = ANY($1::text[]) AND ($2::text IS NULL OR quarter = $2)"
        " ORDER BY quarter, jurisdiction",
        list(jurisdictions),
        quarter,
    )
    return [dict(r) for r in rows]
