"""Intake HTTP API: register and dispose of reports, notify reporters, green-channel applications.

Request bodies are never logged: they hold the reporter's identity.
"""

from __future__ import annotations

from datetime import date
from functools import partial
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query
from pydantic import BaseModel

from services.intake import handlers, queries
from services.intake.commands import (
    AcceptReport,
    EraseReporter,
    FeedBackObjection,
    FileApplication,
    HandOver,
    IdentityCheck,
    LodgeObjection,
    LogReport,
    MergeAsRepeat,
    NotifyReporter,
    RegisterReport,
    SendDown,
    SendUp,
)
from services.intake.domain import Report, ReportState
from services.intake.inbound import public_key_pem
from services.intake.queries import READ_ROLES
from services.intake.views import ReportDetail, ReportView
from shared.auth import Principal
from shared.bounded import BusinessDate, Identifier, Offset
from shared.http import CommandContext, acting, check_jurisdiction, create_app, require
from shared.runtime import Decided, Runtime, decision

OFFICE = ("letters_office",)
OVERDUE_ROLES = ("letters_office", "auditor")
IDENTITY_CHECKERS = ("handling_department", "case_trial")
"""Who drafts and approves what is sent out of the matter (the 澄清内容)."""
ALL_ROLES = (*READ_ROLES, "organisation_department")


class IdentityCheckOut(BaseModel):
    contains: bool
    """Whether the text contains a reporter identity of the matter (never which one, nor where)."""


class OverdueOut(BaseModel):
    report_id: str
    kind: Literal["disposition", "acceptance_notice", "result_notice", "sent_down_response"]
    due_on: date
    days_overdue: int


Office = Annotated[CommandContext, Depends(acting(*OFFICE))]
Reader = Annotated[Principal, Depends(require(*READ_ROLES))]


def answer(outcome: Report | Decided[Report]) -> ReportView:
    """A report as commands answer it (never the reporter)."""
    return ReportView.model_validate(
        queries.report_state(outcome.state if isinstance(outcome, Decided) else outcome)
    )


def build_api(runtime: Runtime) -> FastAPI:
    app = create_app(
        "intake",
        title="zhengming intake (检举控告)",
        description="Reports from every channel, their disposition, real-name notices, reporter "
        "confidentiality and green-channel applications.",
    )

    @app.post("/reports", status_code=201, tags=["reports"], summary="Register a report (接收)")
    async def register(body: RegisterReport, ctx: Office) -> ReportView:
        check_jurisdiction(ctx.principal, body.jurisdiction)
        return answer(await runtime.command(ctx, handlers.register_report, body))

    @app.post("/reports/{report_id}/log", tags=["reports"], summary="Log a report (登记)")
    async def log_report(report_id: Identifier, body: LogReport, ctx: Office) -> ReportView:
        return answer(await runtime.command(ctx, decision(Report(report_id), Report.log), body))

    @app.post("/reports/{report_id}/accept", tags=["reports"], summary="Accept a logged report (受理)")
    async def accept(report_id: Identifier, body: AcceptReport, ctx: Office) -> ReportView:
        return answer(await runtime.command(ctx, decision(Report(report_id), Report.accept), body))

    @app.post(
        "/reports/{report_id}/send-up",
        tags=["reports"],
        summary="Send a county report up to the city (报送上级)",
    )
    async def send_up(report_id: Identifier, body: SendUp, ctx: Office) -> ReportView:
        return answer(await runtime.command(ctx, decision(Report(report_id), Report.send_up), body))

    @app.post(
        "/reports/{report_id}/send-down",
        tags=["reports"],
        summary="Send a city report down to a county, which gets a report of its own (转送下级)",
    )
    async def send_down(report_id: Identifier, body: SendDown, ctx: Office) -> ReportView:
        return answer(await runtime.command(ctx, partial(handlers.send_down, report_id=report_id), body))

    @app.post("/reports/{report_id}/merge", tags=["reports"], summary="Merge a report as a repeat (重复件)")
    async def merge(report_id: Identifier, body: MergeAsRepeat, ctx: Office) -> ReportView:
        return answer(
            await runtime.command(ctx, partial(handlers.merge_as_repeat, report_id=report_id), body)
        )

    @app.post(
        "/reports/{report_id}/hand-over",
        tags=["reports"],
        summary="Hand an accepted report to the handling department (移送承办)",
    )
    async def hand_over(report_id: Identifier, body: HandOver, ctx: Office) -> ReportView:
        return answer(await runtime.command(ctx, partial(handlers.hand_over, report_id=report_id), body))

    @app.post(
        "/reports/{report_id}/notify",
        tags=["reports"],
        summary="Record that a real-name reporter was told of acceptance or of the result",
    )
    async def notify(report_id: Identifier, body: NotifyReporter, ctx: Office) -> ReportView:
        return answer(await runtime.command(ctx, decision(Report(report_id), Report.notify), body))

    @app.post(
        "/reports/{report_id}/objections",
        status_code=201,
        tags=["objections"],
        summary="Record a real-name reporter's objection (异议) with new facts or evidence",
    )
    async def lodge_objection(report_id: Identifier, body: LodgeObjection, ctx: Office) -> ReportView:
        lodge = partial(handlers.lodge_objection, report_id=report_id)
        return answer(await runtime.command(ctx, lodge, body))

    @app.post(
        "/reports/{report_id}/objections/{objection_id}/feedback",
        tags=["objections"],
        summary="Record that the reporter was told the result of the re-examination (反馈)",
    )
    async def feed_back_objection(
        report_id: Identifier, objection_id: Identifier, body: FeedBackObjection, ctx: Office
    ) -> ReportView:
        feed_back = partial(handlers.feed_back_objection, report_id=report_id, objection_id=objection_id)
        return answer(await runtime.command(ctx, feed_back, body))

    @app.post(
        "/reports/{report_id}/identity-check",
        tags=["reporters"],
        summary="Whether a text contains the identity of a reporter of the matter (name, contact or ID"
        " number, of the report or of a repeat merged into it; the answer never names it)",
        response_model=IdentityCheckOut,
    )
    async def identity_check(
        report_id: Identifier,
        body: IdentityCheck,
        principal: Annotated[Principal, Depends(require(*IDENTITY_CHECKERS))],
    ) -> IdentityCheckOut:
        return IdentityCheckOut(contains=await handlers.check_identity(runtime, principal, report_id, body))

    @app.get(
        "/reports/{report_id}",
        tags=["reports"],
        summary="One report; the reporter only for the letters office",
    )
    async def get_report(report_id: Identifier, principal: Reader) -> ReportDetail:
        return ReportDetail.model_validate(await queries.report_detail(runtime, principal, report_id))

    @app.get("/reports", tags=["reports"], summary="Reports of a jurisdiction, optionally in one state")
    async def list_reports(
        principal: Reader,
        jurisdiction: Annotated[str, Query(pattern=r"^\d{6}$")],
        state: ReportState | None = None,
        limit: Annotated[int, Query(ge=1, le=5000)] = 500,
        offset: Annotated[Offset, Query()] = 0,
    ) -> list[dict[str, Any]]:
        check_jurisdiction(principal, jurisdiction)
        return await queries.list_reports(runtime, jurisdiction, state, limit, offset)

    @app.get(
        "/overdue",
        tags=["reports"],
        summary="What is late at a date: dispositions, notices, sent-down responses",
    )
    async def overdue(
        principal: Annotated[Principal, Depends(require(*OVERDUE_ROLES))],
        jurisdiction: Annotated[str, Query(pattern=r"^\d{6}$")],
        as_of: BusinessDate,
    ) -> list[OverdueOut]:
        check_jurisdiction(principal, jurisdiction)
        items = await queries.overdue_list(runtime, jurisdiction, as_of)
        return [
            OverdueOut(report_id=i.report_id, kind=i.kind, due_on=i.due_on, days_overdue=i.days_overdue)
            for i in items
        ]

    @app.post(
        "/reporters/{reporter_subject_id}/erase",
        tags=["reporters"],
        summary="Erase a reporter's identity by destroying their key (crypto-shredding)",
    )
    async def erase(reporter_subject_id: Identifier, body: EraseReporter, ctx: Office) -> dict[str, Any]:
        erase = partial(handlers.erase_reporter, reporter_subject_id=reporter_subject_id)
        reports = await runtime.command(ctx, erase, body)
        return {"reporter_subject_id": reporter_subject_id, "erased": True, "reports": reports}

    @app.post(
        "/applications",
        status_code=201,
        tags=["green channel"],
        summary="Register the reported person's written application for clarification (绿色通道)",
    )
    async def file_application(body: FileApplication, ctx: Office) -> dict[str, Any]:
        check_jurisdiction(ctx.principal, body.jurisdiction)
        return await runtime.command(ctx, handlers.file_application, body)

    @app.get(
        "/inbound/public-key",
        tags=["integration"],
        summary="Intake's X25519 public key (PEM) that agencies encrypt reporter identities to",
    )
    async def inbound_public_key(
        principal: Annotated[Principal, Depends(require(*ALL_ROLES))],
    ) -> dict[str, str]:
        return {"algorithm": "X25519+HKDF-SHA256+AES-256-GCM", "public_key_pem": public_key_pem()}

    return app
