"""Intake's read side: one report as its events left it, the report lists and the overdue list."""

from __future__ import annotations

from datetime import date
from typing import Any

from services.intake import disclosure, projections
from services.intake.commands import ReporterIdentity
from services.intake.domain import REPORTER_FIELD, OverdueItem, Report, overdue
from shared.auth import Principal
from shared.errors import KeyErased
from shared.runtime import Runtime

READ_ROLES = ("letters_office", "handling_department", "case_trial", "case_management", "head", "auditor")


def reporter_view(
    principal: Principal, report: Report, opened: dict[str, Any] | None
) -> dict[str, Any] | None:
    """What of the reporter a caller sees: the identity only for the letters office."""
    if principal.role != "letters_office":
        return {"masked": True}
    if report.reporter is None:
        return None
    if report.reporter_erased or opened is None:
        return {"erased": True}
    return opened


async def report_detail(runtime: Runtime, principal: Principal, report_id: str) -> dict[str, Any]:
    """One report with its state, dates, deadlines, repeats and applications."""
    async with runtime.pool.acquire() as conn:
        report = await runtime.read(conn, Report(report_id))
        if not report.exists or not principal.sees(report.jurisdiction):
            raise report.missing()
        opened: dict[str, Any] | None = None
        if principal.role == "letters_office" and report.reporter is not None and not report.reporter_erased:
            try:
                opened = ReporterIdentity.model_validate_json(
                    await runtime.cipher.open(conn, report.reporter, field=REPORTER_FIELD)
                ).model_dump()
            except KeyErased:
                opened = None
        repeats = await projections.repeats_of(conn, report_id)
        applications = await projections.applications_of(conn, report_id)
    return {
        **report_state(report),
        # The pseudonym links a reporter's reports: only the letters office needs it (to erase).
        "reporter_subject_id": report.reporter_subject_id if principal.role == "letters_office" else None,
        "reporter": reporter_view(principal, report, opened),
        "repeats": repeats,
        "applications": applications,
    }


async def identity_check(runtime: Runtime, principal: Principal, report_id: str, text: str) -> bool:
    """Whether `text` reveals a reporter of the matter: of the report, or of a repeat merged into
    it (an erased reporter is gone for good and reveals nothing). Only the answer leaves intake."""
    async with runtime.pool.acquire() as conn:
        report = await runtime.read(conn, Report(report_id))
        if not report.exists or not principal.sees(report.jurisdiction):
            raise report.missing()
        reports = [report]
        for repeat_id in await projections.repeats_of(conn, report_id):
            reports.append(await runtime.read(conn, Report(repeat_id)))
        identities: list[ReporterIdentity] = []
        for each in reports:
            if each.reporter is None or each.reporter_erased:
                continue
            try:
                opened = await runtime.cipher.open(conn, each.reporter, field=REPORTER_FIELD)
            except KeyErased:
                continue
            identities.append(ReporterIdentity.model_validate_json(opened))
    return disclosure.reveals_any(text, identities)


def report_state(report: Report) -> dict[str, Any]:
    """A report as commands answer it: state, dates and deadlines (never the reporter)."""
    return {
        "report_id": report.report_id,
        "jurisdiction": report.jurisdiction,
        "state": report.state,
        "channel": report.channel,
        "received_on": report.received_on,
        "real_name": report.real_name,
        "reporter_subject_id": report.reporter_subject_id,
        "subjects": [s.model_dump(mode="json") for s in report.subjects],
        "allegations": [a.model_dump(mode="json") for a in report.allegations],
        "summary": report.summary,
        "source_agency": report.source_agency,
        "source_reference": report.source_reference,
        "logged_on": report.logged_on,
        "accepted_on": report.accepted_on,
        "disposed_on": report.disposed_on,
        "sent_to": report.sent_to,
        "lower_report_id": report.lower_report_id,
        "repeats_matter_id": report.repeats_matter_id,
        "handed_on": report.handed_on,
        "department": report.department,
        "concluded_on": report.concluded_on,
        "notified": dict(report.notified),
        "reporter_erased": report.reporter_erased,
        "deadlines": {
            "disposition_due": report.disposition_due,
            "acceptance_notice_due": report.acceptance_notice_due,
            "sent_down_response_due": report.response_due,
            "result_notice_due": report.result_notice_due,
        },
    }


async def list_reports(
    runtime: Runtime, jurisdiction: str, state: str | None, limit: int, offset: int
) -> list[dict[str, Any]]:
    async with runtime.pool.acquire() as conn:
        return await projections.list_reports(conn, jurisdiction, state, limit, offset)


async def overdue_list(runtime: Runtime, jurisdiction: str, as_of: date) -> list[OverdueItem]:
    """Everything of a jurisdiction that is late at `as_of`, the longest overdue first."""
    async with runtime.pool.acquire() as conn:
        facts = await projections.deadlines(conn, jurisdiction)
    items = [item for report in facts for item in overdue(report, as_of)]
    return sorted(items, key=lambda i: (i.due_on, i.report_id, i.kind))
