"""Read models of the clarification service, fed by its own events (rebuildable from them alone:
dates come from the payloads, never the clock), and the queries over them."""

from __future__ import annotations

from datetime import date
from typing import Any, NamedTuple

from pydantic import BaseModel

from services.clarification.domain import State, next_state
from shared.db import Conn, sole_writer
from shared.envelope import EventEnvelope, matter_of
from shared.events.clarification import (
    AcknowledgementRecorded,
    ApplicationDeclined,
    ApplicationNoted,
    ApprovalRefused,
    ApprovalSentBack,
    AssessmentRecorded,
    CandidateAdded,
    ClarificationApproved,
    ClarificationDeclined,
    ClarificationDiscontinued,
    ClarificationFiled,
    ClarificationPerformed,
    ClarificationStarted,
    ClarificationWithdrawn,
    ConsentRequested,
    FeedbackGiven,
    OutcomeNoted,
    PriorityNoted,
    QuarterlyRoundHeld,
    ReReviewRecorded,
    ReReviewSigned,
    TreatmentCorrected,
)
from shared.recent import Recent
from shared.workdays import working_days_between

COLUMNS = (
    "jurisdiction",
    "state",
    "version",
    "eligible",
    "concluded_on",
    "outcome",
    "candidate_via",
    "added_on",
    "priority_flags",
    "applications",
    "person",
    "approved_on",
    "clarify_by",
    "performed_on",
    "round_id",
    "steps",
)
_UPDATE = (
    "UPDATE clarifications SET "
    + ", ".join(f"{c} = ${i}" for i, c in enumerate(COLUMNS, start=2))
    + " WHERE case_id = $1"
)


def _step(envelope: EventEnvelope, name: str, on: date, **details: Any) -> dict[str, Any]:
    return {
        "step": name,
        "on": on.isoformat(),
        "by": envelope.actor.user_id,
        "role": envelope.actor.role,
        "version": envelope.stream_version,
        **details,
    }


def evolve(row: dict[str, Any], envelope: EventEnvelope, payload: BaseModel) -> dict[str, Any]:
    """The matter's row after one of its events (pure: the same events give the same row)."""
    new = dict(row)
    state: State = row["state"]
    new["state"] = next_state(state, payload)
    new["version"] = envelope.stream_version
    applications: dict[str, dict[str, Any]] = {k: dict(v) for k, v in row["applications"].items()}
    steps: list[dict[str, Any]] = list(row["steps"])
    match payload:
        case OutcomeNoted():
            new["outcome"] = payload.model_dump(mode="json")
            new["eligible"] = payload.eligible_for_pool
            new["concluded_on"] = payload.concluded_on
            if payload.revision:
                steps.append(
                    _step(
                        envelope,
                        "outcome_revised",
                        payload.concluded_on,
                        revision=payload.revision,
                        eligible=payload.eligible_for_pool,
                        findings=payload.findings,
                    )
                )
        case ApplicationNoted():
            applications[payload.application_id] = {
                "application_id": payload.application_id,
                "applicant": payload.applicant.name,
                "untrue_points": payload.untrue_points,
                "request": payload.request,
                "filed_on": payload.filed_on.isoformat(),
                "status": "pending" if row["candidate_via"] is None else "in_pool",
                "reason": "",
            }
        case ApplicationDeclined():
            applications[payload.application_id].update(status="declined", reason=payload.reason)
        case PriorityNoted():
            flags = list(row["priority_flags"])
            new["priority_flags"] = flags + [f for f in payload.priority_flags if f not in flags]
        case CandidateAdded():
            new["candidate_via"] = payload.via
            new["added_on"] = payload.added_on
            for application in applications.values():
                if application["status"] == "pending":
                    application["status"] = "in_pool"
        case ConsentRequested():
            steps.append(
                _step(
                    envelope,
                    "consent_requested",
                    payload.requested_on,
                    person=payload.person.name,
                    documents=payload.documents,
                )
            )
        case ClarificationStarted():
            new["person"] = payload.person.model_dump(mode="json")
            steps.append(
                _step(
                    envelope,
                    "started",
                    payload.started_on,
                    initiated_by=payload.initiated_by,
                    consent_note=payload.consent_note,
                )
            )
        case AssessmentRecorded():
            steps.append(
                _step(
                    envelope,
                    "assessed",
                    payload.assessed_on,
                    eligible=payload.eligible,
                    bad_effects=payload.bad_effects,
                    refusals=payload.refusals,
                    reason=payload.reason,
                    proposed_forms=payload.proposed_forms,
                    proposed_scope=payload.proposed_scope,
                )
            )
        case ReReviewSigned():
            steps.append(
                _step(
                    envelope,
                    "re_review_signed",
                    payload.signed_on,
                    office=payload.office,
                    member_name=payload.member_name,
                    passed=not payload.reasons,
                    reasons=payload.reasons,
                    note=payload.note,
                )
            )
        case ReReviewRecorded():
            steps.append(
                _step(
                    envelope,
                    "re_reviewed",
                    payload.reviewed_on,
                    passed=payload.passed,
                    reasons=payload.reasons,
                    members=payload.members,
                    documents=payload.documents,
                )
            )
        case ClarificationApproved():
            new["approved_on"] = payload.approved_on
            new["clarify_by"] = payload.clarify_by
            steps.append(
                _step(
                    envelope,
                    "approved",
                    payload.approved_on,
                    approver=payload.approver,
                    level=payload.level,
                    clarify_by=payload.clarify_by.isoformat(),
                    forms=payload.forms,
                    scope=payload.scope,
                )
            )
        case ClarificationDeclined():
            new["person"] = payload.person.model_dump(mode="json")
            steps.append(_step(envelope, "declined", payload.declined_on, reason=payload.reason))
        case ClarificationWithdrawn():
            steps.append(_step(envelope, "withdrawn", payload.withdrawn_on, reason=payload.reason))
        case TreatmentCorrected():
            steps.append(
                _step(
                    envelope,
                    "treatment_corrected",
                    payload.corrected_on,
                    person=payload.person.name,
                    treatment=payload.treatment,
                    organ=payload.organ,
                    correction=payload.correction,
                )
            )
        case ClarificationDiscontinued():
            steps.append(
                _step(
                    envelope,
                    "discontinued",
                    payload.discontinued_on,
                    revision=payload.revision,
                    reason=payload.reason,
                )
            )
        case ApprovalRefused():
            steps.append(
                _step(
                    envelope,
                    "refused_by_head",
                    payload.refused_on,
                    approver=payload.approver,
                    level=payload.level,
                    reason=payload.reason,
                )
            )
        case ApprovalSentBack():
            steps.append(
                _step(
                    envelope,
                    "returned_by_head",
                    payload.sent_back_on,
                    approver=payload.approver,
                    level=payload.level,
                    reason=payload.reason,
                )
            )
        case ClarificationPerformed():
            new["performed_on"] = payload.performed_on
            new["round_id"] = payload.round_id
            steps.append(
                _step(
                    envelope,
                    "performed",
                    payload.performed_on,
                    forms=payload.forms,
                    scope=payload.scope,
                    on_time=payload.on_time,
                    round_id=payload.round_id,
                    documents=payload.documents,
                )
            )
        case FeedbackGiven():
            steps.append(
                _step(
                    envelope,
                    "feedback",
                    payload.given_on,
                    party_committee=payload.party_committee,
                    unit_head=payload.unit_head,
                    documents=payload.documents,
                )
            )
        case AcknowledgementRecorded():
            steps.append(_step(envelope, "acknowledged", payload.acknowledged_on, note=payload.note))
        case ClarificationFiled():
            steps.append(_step(envelope, "filed", payload.filed_on))
    new["applications"] = applications
    new["steps"] = steps
    return new


class _Seen(NamedTuple):
    """A matter's row as this process last wrote it, and the hash of the event it ends at."""

    hash: str
    row: dict[str, Any]


_SEEN_MAX = 4096
_seen: Recent[str, _Seen] = Recent(_SEEN_MAX)
"""The rows this process wrote last (the newest last): a matter's next event evolves the row in
hand instead of reading it again. A row is a pure function of its stream's events, and a hash
names one stream prefix (the chain), so a row whose hash is the next event's `prev_hash` is the
row that prefix left, whoever wrote it; the UPDATE's version condition finds out when the table
no longer holds that prefix's row (another process, a replay, a transaction rolled back), and
the row is then read as before."""

_NEW_ROW: dict[str, Any] = {c: None for c in COLUMNS} | {
    "state": "awaiting_outcome",
    "version": 0,
    "priority_flags": [],
    "applications": {},
    "steps": [],
}
"""A matter's row before its first event (the table's defaults)."""

_RETURNING = "*, xmin::text AS row_xmin"
"""The row and the transaction that wrote it: the row in hand is written over only while the
table still holds that very row version (a `replay --switch` rewrites rows with the same
`version` under a new xmin, so the next event reads the switched row instead)."""

_INSERT_NEW = (
    f"INSERT INTO clarifications (case_id, {', '.join(COLUMNS)})"
    f" VALUES ({', '.join(f'${i}' for i in range(1, len(COLUMNS) + 2))})"
    f" ON CONFLICT (case_id) DO NOTHING RETURNING {_RETURNING}"
)
_UPDATE_AFTER = (
    f"{_UPDATE} AND version = ${len(COLUMNS) + 2} AND xmin::text = ${len(COLUMNS) + 3} RETURNING {_RETURNING}"
)
_LOCKED_ROW = (
    "INSERT INTO clarifications (case_id, jurisdiction, state, version)"
    " VALUES ($1, $2, 'awaiting_outcome', 0)"
    f" ON CONFLICT (case_id) DO UPDATE SET version = clarifications.version RETURNING {_RETURNING}"
)


_replayed: Recent[tuple[str, str], _Seen] = Recent(_SEEN_MAX)
"""`_seen` for a connection that is its schema's sole writer (replay), by (run, case): the row as
evolved, with no table row version to check, so never mixed with `_seen` nor with another run's."""

_INSERT_ROW = (
    f"INSERT INTO clarifications (case_id, {', '.join(COLUMNS)})"
    f" VALUES ({', '.join(f'${i}' for i in range(1, len(COLUMNS) + 2))}) ON CONFLICT (case_id) DO NOTHING"
)


async def _project_alone(run: str, conn: Conn, envelope: EventEnvelope, payload: BaseModel) -> bool:
    """Replay's way, one write and no read: the row in hand (or a first event's new row)
    evolved and written. False when neither is there (the caller reads the row)."""
    case_id, version = envelope.case_id, envelope.stream_version
    key = (run, case_id)
    kept = _replayed.get(key)
    if kept is not None and kept.row["version"] >= version:
        return True  # already projected (a second first event, say): as the live path skips it
    if kept is not None and kept.hash == envelope.prev_hash and kept.row["version"] == version - 1:
        new = evolve(kept.row, envelope, payload)
        await conn.execute(_UPDATE, case_id, *(new[c] for c in COLUMNS))
    elif version == 1:
        new = evolve(
            {**_NEW_ROW, "case_id": case_id, "jurisdiction": envelope.jurisdiction}, envelope, payload
        )
        await conn.execute(_INSERT_ROW, case_id, *(new[c] for c in COLUMNS))
    else:
        return False
    _replayed.put(key, _Seen(envelope.hash, {**new, "case_id": case_id}))
    return True


async def project(conn: Conn, envelope: EventEnvelope, payload: BaseModel) -> None:
    """Projector of the clarification service's own events (same transaction as the append).

    One statement per event in the common case: the row in hand evolved and written if the
    table still holds it (`_seen`), a first event's row inserted; otherwise the row is read
    (created, locked) and written (two)."""
    if isinstance(payload, QuarterlyRoundHeld):
        await conn.execute(
            "INSERT INTO rounds (round_id, jurisdiction, quarter, held_on, matters)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            payload.round_id,
            envelope.jurisdiction,
            payload.quarter,
            payload.held_on,
            payload.matters,
        )
        return
    run = sole_writer(conn)
    if run is not None and await _project_alone(run, conn, envelope, payload):
        return
    case_id, version = envelope.case_id, envelope.stream_version
    seen = _seen.get(case_id)
    written = None
    if seen is not None and seen.hash == envelope.prev_hash and seen.row["version"] == version - 1:
        new = evolve(seen.row, envelope, payload)
        written = await conn.fetchrow(
            _UPDATE_AFTER, case_id, *(new[c] for c in COLUMNS), version - 1, seen.row["row_xmin"]
        )
    elif version == 1:
        new = evolve(
            {**_NEW_ROW, "case_id": case_id, "jurisdiction": envelope.jurisdiction}, envelope, payload
        )
        written = await conn.fetchrow(_INSERT_NEW, case_id, *(new[c] for c in COLUMNS))
    if written is None:
        row = await conn.fetchrow(_LOCKED_ROW, case_id, envelope.jurisdiction)
        assert row is not None
        if row["version"] >= version:
            return  # already projected (a replay over a live read model)
        new = evolve(dict(row), envelope, payload)
        written = await conn.fetchrow(
            f"{_UPDATE} RETURNING {_RETURNING}", case_id, *(new[c] for c in COLUMNS)
        )
    assert written is not None  # the row is locked and ours
    _seen.put(case_id, _Seen(envelope.hash, dict(written)))


# --- Queries -------------------------------------------------------------------------------------


def _subjects(outcome: dict[str, Any] | None) -> list[dict[str, Any]]:
    return list(outcome["subjects"]) if outcome else []


async def pool(conn: Conn, jurisdiction: str) -> list[dict[str, Any]]:
    """备选库: candidates not yet started, priority-flagged first, then by the day they entered."""
    rows = await conn.fetch(
        "SELECT case_id, candidate_via, added_on, priority_flags, concluded_on, outcome, applications"
        " FROM clarifications"
        " WHERE jurisdiction = $1 AND state = 'candidate'"
        " ORDER BY jsonb_array_length(priority_flags) > 0 DESC, added_on, case_id",
        jurisdiction,
    )
    return [
        {
            "case_id": r["case_id"],
            "via": r["candidate_via"],
            "added_on": r["added_on"],
            # 绿色通道: the person applied, whichever way the matter entered the pool.
            "applied_on": min(
                (a["filed_on"] for a in r["applications"].values() if a.get("status") != "declined"),
                default=None,
            ),
            "priority": bool(r["priority_flags"]),
            "priority_flags": r["priority_flags"],
            "concluded_on": r["concluded_on"],
            "subjects": _subjects(r["outcome"]),
            "untrue_points": r["outcome"]["untrue_points"] if r["outcome"] else [],
        }
        for r in rows
    ]


EXIT_STEPS = ("declined", "withdrawn", "refused_by_head", "discontinued")


def _ending(steps: list[dict[str, Any]]) -> dict[str, Any] | None:
    """How the matter left the chain early (the person's refusal or withdrawal, the head's refusal, a
    revised conclusion that no longer allows it)."""
    for step in reversed(steps):
        if step["step"] in EXIT_STEPS:
            return {"exit": step["step"], "on": step["on"], "by": step["by"], "reason": step["reason"]}
    return None


def _summary(r: Any) -> dict[str, Any]:
    return {
        "case_id": r["case_id"],
        "jurisdiction": r["jurisdiction"],
        "state": r["state"],
        "person": r["person"],
        "added_on": r["added_on"],
        "priority": bool(r["priority_flags"]),
        "approved_on": r["approved_on"],
        "clarify_by": r["clarify_by"],
        "performed_on": r["performed_on"],
        "round_id": r["round_id"],
        "ended": _ending(r["steps"]),
    }


async def clarifications(conn: Conn, jurisdiction: str, state: str | None) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT * FROM clarifications WHERE jurisdiction = $1 AND ($2::text IS NULL OR state = $2)"
        " ORDER BY case_id",
        jurisdiction,
        state,
    )
    return [_summary(r) for r in rows]


async def in_state(conn: Conn, state: str) -> list[dict[str, Any]]:
    """Matters of every jurisdiction in one state (the callers filter what they may see)."""
    rows = await conn.fetch("SELECT * FROM clarifications WHERE state = $1 ORDER BY case_id", state)
    return [_summary(r) for r in rows]


async def clarification(conn: Conn, case_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow("SELECT * FROM clarifications WHERE case_id = $1", case_id)
    if row is None:
        return None
    documents = await conn.fetch(
        "SELECT doc_id, kind, title, number, created_on FROM documents WHERE case_id = $1"
        " ORDER BY created_on, doc_id",
        case_id,
    )
    applications = sorted(row["applications"].values(), key=lambda a: (a["filed_on"], a["application_id"]))
    return {
        **_summary(row),
        "version": row["version"],
        "eligible": row["eligible"],
        "outcome": row["outcome"],
        "candidate": (
            {"via": row["candidate_via"], "added_on": row["added_on"]} if row["candidate_via"] else None
        ),
        "priority_flags": row["priority_flags"],
        "applications": applications,
        "steps": row["steps"],
        "documents": [dict(d) for d in documents],
        "matter_id": matter_of(case_id),
        "persons": await persons_of(conn, matter_of(case_id)),
    }


async def persons_of(conn: Conn, matter_id: str) -> list[dict[str, Any]]:
    """The clarifications of a matter's persons (and units), each of its own: id, person, state."""
    rows = await conn.fetch(
        "SELECT case_id, state, outcome FROM clarifications WHERE case_id = $1 OR case_id LIKE $2"
        " ORDER BY length(case_id), case_id",
        matter_id,
        f"{matter_id}-%",
    )
    persons = []
    for r in rows:
        outcome = r["outcome"] or {}
        own = outcome.get("person_subject_id")
        subject = next((s for s in outcome.get("subjects", []) if s["subject_id"] == own), None)
        persons.append(
            {
                "case_id": r["case_id"],
                "state": r["state"],
                "subject_id": own,
                "name": subject["name"] if subject else None,
            }
        )
    return persons


async def document(conn: Conn, case_id: str, doc_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT doc_id, case_id, kind, title, number, body, layout, created_on FROM documents"
        " WHERE case_id = $1 AND doc_id = $2",
        case_id,
        doc_id,
    )
    return dict(row) if row else None


async def overdue(conn: Conn, jurisdiction: str, as_of: date) -> list[dict[str, Any]]:
    """Approved, not yet clarified, and past the 5 working days after approval."""
    rows = await conn.fetch(
        "SELECT * FROM clarifications WHERE jurisdiction = $1 AND state = 'approved' AND clarify_by < $2"
        " ORDER BY clarify_by, case_id",
        jurisdiction,
        as_of,
    )
    return [{**_summary(r), "working_days_late": working_days_between(r["clarify_by"], as_of)} for r in rows]


async def approved_matters(conn: Conn, jurisdiction: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT case_id FROM clarifications WHERE jurisdiction = $1 AND state = 'approved' ORDER BY case_id",
        jurisdiction,
    )
    return [r["case_id"] for r in rows]


async def rounds(conn: Conn, jurisdiction: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT round_id, jurisdiction, quarter, held_on, matters FROM rounds WHERE jurisdiction = $1"
        " ORDER BY quarter",
        jurisdiction,
    )
    return [dict(r) for r in rows]
