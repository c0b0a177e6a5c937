"""Intake HTTP API: register and dispose of reports, notify reporters, green-channel applications.

Request bodies are never logged: they hold the reporter's identity.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from services.intake import handlers
from services.intake.domain import AllegationDraft, NoticeKind, Report, ReporterIdentity, ReportState
from services.intake.inbound import public_key_pem
from shared.auth import Principal
from shared.bounded import BusinessDate, Identifier, NoControl, Offset
from shared.events.common import Channel, Subject
from shared.http import check_jurisdiction, command_context, create_app, require
from shared.runtime import Runtime

OFFICE = ("letters_office",)
OVERDUE_ROLES = ("letters_office", "auditor")
ALL_ROLES = (*handlers.READ_ROLES, "organisation_department")

JurisdictionCode = Annotated[str, Field(pattern=r"^\d{6}$")]
MatterId = Annotated[str, Field(pattern=r"^\d{6}-\d{4}-\d{6}$")]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReportIn(Body):
    jurisdiction: JurisdictionCode
    channel: Channel
    received_on: BusinessDate
    real_name: bool
    reporter: ReporterIdentity | None = None
    subjects: list[Subject] = Field(min_length=1, max_length=50)
    allegations: list[AllegationDraft] = Field(min_length=1, max_length=100)
    summary: Annotated[str, Field(max_length=8000), NoControl] = ""


class LogIn(Body):
    logged_on: BusinessDate


class AcceptIn(Body):
    accepted_on: BusinessDate


class SendIn(Body):
    sent_on: BusinessDate
    to_jurisdiction: JurisdictionCode


class MergeIn(Body):
    merged_on: BusinessDate
    repeats_matter_id: MatterId


class HandOverIn(Body):
    department: Annotated[str, Field(min_length=1, max_length=200), NoControl]
    handed_on: BusinessDate


class NotifyIn(Body):
    kind: NoticeKind
    notified_on: BusinessDate


class EraseIn(Body):
    erased_on: BusinessDate


class ApplicationIn(Body):
    jurisdiction: JurisdictionCode
    matter_id: MatterId
    applicant: Subject
    untrue_points: list[Annotated[str, Field(min_length=1, max_length=50), NoControl]] = Field(
        min_length=1, max_length=100
    )
    request: Annotated[str, Field(min_length=1, max_length=4000), NoControl]
    filed_on: BusinessDate


class OverdueOut(BaseModel):
    report_id: str
    kind: Literal["disposition", "acceptance_notice", "result_notice", "sent_down_response"]
    due_on: date
    days_overdue: int


Office = Annotated[Principal, Depends(require(*OFFICE))]
Reader = Annotated[Principal, Depends(require(*handlers.READ_ROLES))]


def build_api(runtime: Runtime) -> FastAPI:
    app = create_app(
        "intake",
        title="zhengming intake (检举控告)",
        description="Reports from every channel, their disposition, real-name notices, reporter "
        "confidentiality and green-channel applications.",
    )

    def answer(report: Report) -> dict[str, Any]:
        return handlers.report_state(report)

    @app.post("/reports", status_code=201, tags=["reports"], summary="Register a report (接收)")
    async def register(body: ReportIn, principal: Office, request: Request) -> dict[str, Any]:
        check_jurisdiction(principal, body.jurisdiction)
        report = await handlers.register_report(
            runtime,
            command_context(principal, request),
            jurisdiction=body.jurisdiction,
            channel=body.channel,
            received_on=body.received_on,
            real_name=body.real_name,
            reporter=body.reporter,
            subjects=body.subjects,
            allegations=body.allegations,
            summary=body.summary,
        )
        return answer(report)

    @app.post("/reports/{report_id}/log", tags=["reports"], summary="Log a report (登记)")
    async def log_report(
        report_id: Identifier, body: LogIn, principal: Office, request: Request
    ) -> dict[str, Any]:
        ctx = command_context(principal, request)
        return answer(await handlers.log_report(runtime, ctx, report_id, body.logged_on))

    @app.post("/reports/{report_id}/accept", tags=["reports"], summary="Accept a logged report (受理)")
    async def accept(
        report_id: Identifier, body: AcceptIn, principal: Office, request: Request
    ) -> dict[str, Any]:
        ctx = command_context(principal, request)
        return answer(await handlers.accept_report(runtime, ctx, report_id, body.accepted_on))

    @app.post(
        "/reports/{report_id}/send-up",
        tags=["reports"],
        summary="Send a county report up to the city (报送上级)",
    )
    async def send_up(
        report_id: Identifier, body: SendIn, principal: Office, request: Request
    ) -> dict[str, Any]:
        ctx = command_context(principal, request)
        return answer(await handlers.send_up(runtime, ctx, report_id, body.sent_on, body.to_jurisdiction))

    @app.post(
        "/reports/{report_id}/send-down",
        tags=["reports"],
        summary="Send a city report down to a county, which gets a report of its own (转送下级)",
    )
    async def send_down(
        report_id: Identifier, body: SendIn, principal: Office, request: Request
    ) -> dict[str, Any]:
        ctx = command_context(principal, request)
        return answer(await handlers.send_down(runtime, ctx, report_id, body.sent_on, body.to_jurisdiction))

    @app.post("/reports/{report_id}/merge", tags=["reports"], summary="Merge a report as a repeat (重复件)")
    async def merge(
        report_id: Identifier, body: MergeIn, principal: Office, request: Request
    ) -> dict[str, Any]:
        ctx = command_context(principal, request)
        return answer(
            await handlers.merge_as_repeat(runtime, ctx, report_id, body.merged_on, body.repeats_matter_id)
        )

    @app.post(
        "/reports/{report_id}/hand-over",
        tags=["reports"],
        summary="Hand an accepted report to the handling department (移送承办)",
    )
    async def hand_over(
        report_id: Identifier, body: HandOverIn, principal: Office, request: Request
    ) -> dict[str, Any]:
        ctx = command_context(principal, request)
        return answer(await handlers.hand_over(runtime, ctx, report_id, body.handed_on, body.department))

    @app.post(
        "/reports/{report_id}/notify",
        tags=["reports"],
        summary="Record that a real-name reporter was told of acceptance or of the result",
    )
    async def notify(
        report_id: Identifier, body: NotifyIn, principal: Office, request: Request
    ) -> dict[str, Any]:
        ctx = command_context(principal, request)
        return answer(await handlers.notify_reporter(runtime, ctx, report_id, body.kind, body.notified_on))

    @app.get(
        "/reports/{report_id}",
        tags=["reports"],
        summary="One report; the reporter only for the letters office",
    )
    async def get_report(report_id: Identifier, principal: Reader) -> dict[str, Any]:
        return await handlers.report_detail(runtime, principal, report_id)

    @app.get("/reports", tags=["reports"], summary="Reports of a jurisdiction, optionally in one state")
    async def list_reports(
        principal: Reader,
        jurisdiction: Annotated[str, Query(pattern=r"^\d{6}$")],
        state: ReportState | None = None,
        limit: Annotated[int, Query(ge=1, le=5000)] = 500,
        offset: Annotated[Offset, Query()] = 0,
    ) -> list[dict[str, Any]]:
        check_jurisdiction(principal, jurisdiction)
        return await handlers.list_reports(runtime, jurisdiction, state, limit, offset)

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
        items = await handlers.overdue_list(runtime, jurisdiction, as_of)
        return [
            OverdueOut(report_id=i.report_id, kind=i.kind, due_on=i.due_on, days_overdue=i.days_overdue)
            for i in items
        ]

    @app.post(
        "/reporters/{reporter_subject_id}/erase",
        tags=["reporters"],
        summary="Erase a reporter's identity by destroying their key (crypto-shredding)",
    )
    async def erase(
        reporter_subject_id: Identifier, body: EraseIn, principal: Office, request: Request
    ) -> dict[str, Any]:
        ctx = command_context(principal, request)
        reports = await handlers.erase_reporter(runtime, ctx, reporter_subject_id, body.erased_on)
        return {"reporter_subject_id": reporter_subject_id, "erased": True, "reports": reports}

    @app.post(
        "/applications",
        status_code=201,
        tags=["green channel"],
        summary="Register the reported person's written application for clarification (绿色通道)",
    )
    async def file_application(body: ApplicationIn, principal: Office, request: Request) -> dict[str, Any]:
        check_jurisdiction(principal, body.jurisdiction)
        return await handlers.file_clarification_application(
            runtime,
            command_context(principal, request),
            jurisdiction=body.jurisdiction,
            matter_id=body.matter_id,
            applicant=body.applicant,
            untrue_points=body.untrue_points,
            request=body.request,
            filed_on=body.filed_on,
        )

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
