"""HTTP entrypoint of the clarification service (澄清正名): the chain's commands, the quarterly rounds
and the read models; thin: parse, authorise, hand on."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from services.clarification import handlers, projections
from services.clarification.commands import (
    Acknowledge,
    Approve,
    ApproveContent,
    Assess,
    CorrectTreatment,
    Decline,
    DraftContent,
    File,
    GiveFeedback,
    HoldRound,
    Perform,
    RefuseApproval,
    RequestConsent,
    ReReview,
    ReturnContent,
    SendBackApproval,
    Start,
    Withdraw,
)
from services.clarification.documents import Layout
from services.clarification.domain import (
    CONTENT_STATE_NAMES,
    Clarification,
    State,
    reaches,
    required_level,
)
from services.clarification.formats import MEDIA_TYPES, Format, content_disposition
from services.clarification.formats import render as render_format
from services.clarification.handlers import answer
from services.clarification.reporters import IdentityCheck, IdentityCheckUnavailable, IntakeIdentityCheck
from services.clarification.views import MatterAnswer
from shared.auth import Principal
from shared.bounded import BusinessDate, NoControl
from shared.errors import NotFound
from shared.http import (
    RETRY_AFTER_S,
    CommandContext,
    acting,
    check_jurisdiction,
    create_app,
    problem_response,
    require,
)
from shared.problems import language_of
from shared.runtime import Runtime, decision

READ_ROLES = ("handling_department", "case_trial", "case_management", "letters_office", "head", "auditor")
QUALITY_GROUP_ROLES = ("case_trial", "case_management", "letters_office")

Reader = Annotated[Principal, Depends(require(*READ_ROLES))]
Department = Annotated[CommandContext, Depends(acting("handling_department"))]
QualityGroup = Annotated[CommandContext, Depends(acting(*QUALITY_GROUP_ROLES))]
Head = Annotated[CommandContext, Depends(acting("head"))]
CaseTrial = Annotated[CommandContext, Depends(acting("case_trial"))]
Filer = Annotated[CommandContext, Depends(acting("handling_department", "case_management"))]

CaseId = Annotated[
    str,
    Path(min_length=1, max_length=100, description="the matter id, e.g. 331122-2023-000001"),
    NoControl,
]
JurisdictionQuery = Annotated[str, Query(pattern=r"^\d{6}$", description="e.g. 331122")]
DocId = Annotated[str, Path(max_length=200, description="e.g. 331122-2023-000001-notice"), NoControl]


def cadre_level(matter: dict[str, Any]) -> Any:
    """The cadre-management level of the matter's person, once the clarification started."""
    person = matter.get("person")
    return person.get("cadre_level") if person else None


def content_view(matter: Clarification) -> dict[str, Any]:
    """The 澄清内容 of a matter as a reader sees it: its state, the latest wording and what the
    case-trial office did with it."""
    draft, approval, returned = matter.content, matter.content_approval, matter.content_return
    return {
        "state": matter.content_state,
        "state_name": CONTENT_STATE_NAMES[matter.content_state],
        "drafted_on": draft.drafted_on if draft else None,
        "points": dict(draft.points) if draft else {},
        "approved_on": approval.approved_on if approval else None,
        "approver": approval.approver if approval else None,
        "returned": returned.model_dump(mode="json") if returned else None,
    }


def build_api(runtime: Runtime, identity_check: IdentityCheck | None = None) -> FastAPI:
    """The API; `identity_check` asks whether a 澄清内容 reveals the reporter (default: intake over
    HTTP, at ZM_INTAKE_URL or the stack's own intake)."""
    check = identity_check or IntakeIdentityCheck()
    app = create_app(
        "clarification",
        title="zhengming clarification (澄清正名)",
        description="The candidate pool (备选库), the chain 申请—评估—复核—审批—澄清—反馈—备案, "
        "quarterly concentrated rounds (集中澄清) and the uniform documents (统一文书).",
    )

    @app.exception_handler(IdentityCheckUnavailable)
    async def _no_check(request: Request, exc: IdentityCheckUnavailable) -> JSONResponse:
        # Never accepted unchecked: the caller tries again when intake answers.
        return problem_response(
            503,
            "identity_check_unavailable",
            "intake did not answer whether the wording reveals the reporter; try again shortly",
            detail_zh="检举控告受理部门（intake）暂时无法核对澄清内容是否含有检举控告人身份信息，请稍后重试",
            language=language_of(request.scope),
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )

    @app.post(
        "/clarifications/{case_id}/consent-request",
        summary="拟澄清告知书: ask a reported person for consent before the start (issues the notice)",
        response_model=MatterAnswer,
    )
    async def request_consent(ctx: Department, case_id: CaseId, body: RequestConsent) -> dict[str, Any]:
        return await runtime.command(ctx, partial(handlers.request_consent, case_id=case_id), body)

    @app.post(
        "/clarifications/{case_id}/start",
        summary="申请: start a candidate's clarification (consent needed)",
        response_model=MatterAnswer,
    )
    async def start(ctx: Department, case_id: CaseId, body: Start) -> dict[str, Any]:
        return answer(await runtime.command(ctx, decision(Clarification(case_id), Clarification.start), body))

    @app.post(
        "/clarifications/{case_id}/decline",
        summary="本人不同意澄清: the person's refusal before the start (the matter leaves the pool)",
        response_model=MatterAnswer,
    )
    async def decline(ctx: Department, case_id: CaseId, body: Decline) -> dict[str, Any]:
        return answer(
            await runtime.command(ctx, decision(Clarification(case_id), Clarification.decline), body)
        )

    @app.post(
        "/clarifications/{case_id}/withdraw",
        summary="本人撤回: the person withdraws after the start, before the clarification is performed",
        response_model=MatterAnswer,
    )
    async def withdraw(ctx: Department, case_id: CaseId, body: Withdraw) -> dict[str, Any]:
        return answer(
            await runtime.command(ctx, decision(Clarification(case_id), Clarification.withdraw), body)
        )

    @app.post(
        "/clarifications/{case_id}/assess",
        summary="评估 against the positive/negative lists (a refusal is answered 200 with its reasons)",
        response_model=MatterAnswer,
    )
    async def assess(ctx: Department, case_id: CaseId, body: Assess) -> dict[str, Any]:
        return answer(
            await runtime.command(ctx, decision(Clarification(case_id), Clarification.assess), body)
        )

    @app.post(
        "/clarifications/{case_id}/re-review",
        summary="复核: one member of the quality-evaluation group signs for their own office (信访室, 审理室,"
        " 案管室); a failed check sends the matter back, the third passing signature issues the 审批表",
        response_model=MatterAnswer,
    )
    async def re_review(ctx: QualityGroup, case_id: CaseId, body: ReReview) -> dict[str, Any]:
        return await runtime.command(ctx, partial(handlers.re_review, case_id=case_id), body)

    @app.post(
        "/clarifications/{case_id}/approve",
        summary="Approval by the head at the level of cadre-management authority, naming the forms and"
        " scope (default: the proposed ones)",
        response_model=MatterAnswer,
    )
    async def approve(ctx: Head, case_id: CaseId, body: Approve) -> dict[str, Any]:
        return await runtime.command(ctx, partial(handlers.approve, case_id=case_id), body)

    @app.post(
        "/clarifications/{case_id}/refuse-approval",
        summary="主要负责人不予批准: the head refuses the clarification, with the reason (the matter ends)",
        response_model=MatterAnswer,
    )
    async def refuse_approval(ctx: Head, case_id: CaseId, body: RefuseApproval) -> dict[str, Any]:
        return await runtime.command(ctx, partial(handlers.refuse_approval, case_id=case_id), body)

    @app.post(
        "/clarifications/{case_id}/send-back",
        summary="主要负责人退回: the head sends the matter back to the department for a new re-review",
        response_model=MatterAnswer,
    )
    async def send_back(ctx: Head, case_id: CaseId, body: SendBackApproval) -> dict[str, Any]:
        return await runtime.command(ctx, partial(handlers.send_back_approval, case_id=case_id), body)

    @app.post(
        "/clarifications/{case_id}/content",
        summary="澄清内容: the department drafts the wording of each point verified untrue (refused when"
        " a wording contains the reporter's identity; a new draft needs approval again)",
        response_model=MatterAnswer,
    )
    async def draft_content(ctx: Department, case_id: CaseId, body: DraftContent) -> dict[str, Any]:
        return await handlers.draft_content(runtime, ctx, check, body, case_id=case_id)

    @app.post(
        "/clarifications/{case_id}/content/approve",
        summary="审理室 approves the drafted 澄清内容 (the documents print only approved wording)",
        response_model=MatterAnswer,
    )
    async def approve_content(ctx: CaseTrial, case_id: CaseId, body: ApproveContent) -> dict[str, Any]:
        return await runtime.command(ctx, partial(handlers.approve_content, case_id=case_id), body)

    @app.post(
        "/clarifications/{case_id}/content/return",
        summary="审理室 returns the drafted 澄清内容 to the department, with the reason",
        response_model=MatterAnswer,
    )
    async def return_content(ctx: CaseTrial, case_id: CaseId, body: ReturnContent) -> dict[str, Any]:
        return await runtime.command(ctx, partial(handlers.return_content, case_id=case_id), body)

    @app.post(
        "/clarifications/{case_id}/perform",
        summary="澄清: clarify the untrue points (issues the 澄清通知书)",
        response_model=MatterAnswer,
    )
    async def perform(ctx: Department, case_id: CaseId, body: Perform) -> dict[str, Any]:
        return await runtime.command(ctx, partial(handlers.perform, case_id=case_id), body)

    @app.post(
        "/clarifications/{case_id}/feedback",
        summary="反馈 to the unit's party committee and its head (issues the 关于失实检举控告澄清的函)",
        response_model=MatterAnswer,
    )
    async def feedback(ctx: Department, case_id: CaseId, body: GiveFeedback) -> dict[str, Any]:
        return await runtime.command(ctx, partial(handlers.give_feedback, case_id=case_id), body)

    @app.post(
        "/clarifications/{case_id}/acknowledge",
        summary="The person's acknowledgement of the clarification",
        response_model=MatterAnswer,
    )
    async def acknowledge(ctx: Department, case_id: CaseId, body: Acknowledge) -> dict[str, Any]:
        return answer(
            await runtime.command(ctx, decision(Clarification(case_id), Clarification.acknowledge), body)
        )

    @app.post(
        "/clarifications/{case_id}/file",
        summary="备案: file the clarification with the archive",
        response_model=MatterAnswer,
    )
    async def file(ctx: Filer, case_id: CaseId, body: File) -> dict[str, Any]:
        return answer(await runtime.command(ctx, decision(Clarification(case_id), Clarification.file), body))

    @app.post(
        "/clarifications/{case_id}/corrections",
        summary="纠正错误处理: a treatment based on the untrue report, corrected by the organ that made it"
        " (notified to the organisation department)",
        response_model=MatterAnswer,
    )
    async def correct_treatment(ctx: Department, case_id: CaseId, body: CorrectTreatment) -> dict[str, Any]:
        return answer(
            await runtime.command(
                ctx, decision(Clarification(case_id), Clarification.correct_treatment), body
            )
        )

    @app.post(
        "/rounds", summary="集中澄清: clarify every approved matter of a jurisdiction in one quarterly batch"
    )
    async def hold_round(ctx: Department, body: HoldRound) -> dict[str, Any]:
        check_jurisdiction(ctx.principal, body.jurisdiction)
        return await runtime.command(ctx, handlers.hold_round, body)

    @app.get("/rounds", summary="The quarterly rounds held in a jurisdiction")
    async def list_rounds(jurisdiction: JurisdictionQuery, principal: Reader) -> list[dict[str, Any]]:
        check_jurisdiction(principal, jurisdiction)
        async with runtime.pool.acquire() as conn:
            return await projections.rounds(conn, jurisdiction)

    @app.get("/pool", summary="备选库: candidates not yet started, priority first, then by entry date")
    async def pool(jurisdiction: JurisdictionQuery, principal: Reader) -> list[dict[str, Any]]:
        check_jurisdiction(principal, jurisdiction)
        async with runtime.pool.acquire() as conn:
            return await projections.pool(conn, jurisdiction)

    @app.get("/clarifications", summary="Matters of a jurisdiction, optionally in one state")
    async def list_clarifications(
        jurisdiction: JurisdictionQuery, principal: Reader, state: State | None = None
    ) -> list[dict[str, Any]]:
        check_jurisdiction(principal, jurisdiction)
        async with runtime.pool.acquire() as conn:
            return await projections.clarifications(conn, jurisdiction, state)

    @app.get(
        "/clarifications/awaiting-approval",
        summary="Re-reviewed matters the caller, a head, is the one to approve (审批): their own"
        " jurisdictions' county-managed cadres, and for the city's head every county's city-managed ones",
    )
    async def awaiting_approval(
        principal: Annotated[Principal, Depends(require("head"))],
    ) -> list[dict[str, Any]]:
        async with runtime.pool.acquire() as conn:
            rows = await projections.in_state(conn, "re_reviewed")
        return [
            r
            for r in rows
            if reaches(principal, r["jurisdiction"], cadre_level(r))
            and required_level(cadre_level(r) or "county", r["jurisdiction"]) in principal.jurisdictions
        ]

    @app.get("/overdue", summary="Approved matters not clarified within 5 working days of approval")
    async def overdue(
        jurisdiction: JurisdictionQuery, as_of: Annotated[BusinessDate, Query()], principal: Reader
    ) -> list[dict[str, Any]]:
        check_jurisdiction(principal, jurisdiction)
        async with runtime.pool.acquire() as conn:
            return await projections.overdue(conn, jurisdiction, as_of)

    @app.get("/clarifications/{case_id}", summary="One matter: state, outcome, steps with dates, documents")
    async def get_clarification(case_id: CaseId, principal: Reader) -> dict[str, Any]:
        async with runtime.pool.acquire() as conn:
            found = await projections.clarification(conn, case_id)
            if found is None or not reaches(principal, found["jurisdiction"], cadre_level(found)):
                raise NotFound(f"no clarification matter {case_id}", detail_zh=f"没有澄清事项 {case_id}")
            matter = await runtime.read(conn, Clarification(case_id))
        if not principal.sees(found["jurisdiction"]):
            # The city's head reading a city-managed cadre's clarification sees that person only,
            # not the county-managed others of the matter.
            found["persons"] = [p for p in found["persons"] if p["case_id"] == case_id]
        return {**found, "content": content_view(matter)}

    async def issued(case_id: str, doc_id: str, principal: Principal) -> dict[str, Any]:
        async with runtime.pool.acquire() as conn:
            matter = await projections.clarification(conn, case_id)
            found = await projections.document(conn, case_id, doc_id) if matter else None
        if (
            found is None
            or matter is None
            or not reaches(principal, matter["jurisdiction"], cadre_level(matter))
        ):
            raise NotFound(f"no document {doc_id} in {case_id}", detail_zh=f"{case_id} 中没有文书 {doc_id}")
        return found

    async def download(case_id: str, doc_id: str, principal: Principal, fmt: Format) -> Response:
        found = await issued(case_id, doc_id, principal)
        if found["layout"] is None:
            raise NotFound(
                f"{doc_id} was issued as text only (before documents had a layout)",
                detail_zh=f"文书 {doc_id} 只有文本版（在文书版式启用之前印发）",
            )
        layout = Layout.model_validate(found["layout"])
        # Rendering is CPU work of up to a second: off the event loop.
        content = await asyncio.to_thread(render_format, layout, fmt)
        disposition = content_disposition(doc_id, found["title"], fmt)
        return Response(content, media_type=MEDIA_TYPES[fmt], headers={"Content-Disposition": disposition})

    binary = {"description": "the document", "content": {t: {} for t in MEDIA_TYPES.values()}}

    # The two formats come before the preview, whose {doc_id} would match "….pdf" too.
    @app.get(
        "/clarifications/{case_id}/documents/{doc_id}.docx",
        summary="An issued document as Word (DOCX, from the office's template)",
        response_class=Response,
        responses={200: binary},
    )
    async def get_document_docx(case_id: CaseId, doc_id: DocId, principal: Reader) -> Response:
        return await download(case_id, doc_id, principal, "docx")

    @app.get(
        "/clarifications/{case_id}/documents/{doc_id}.pdf",
        summary="An issued document as PDF (GB/T 9704-2012 layout)",
        response_class=Response,
        responses={200: binary},
    )
    async def get_document_pdf(case_id: CaseId, doc_id: DocId, principal: Reader) -> Response:
        return await download(case_id, doc_id, principal, "pdf")

    @app.get(
        "/clarifications/{case_id}/documents/{doc_id}",
        summary="The text preview of an issued document",
        response_class=PlainTextResponse,
    )
    async def get_document(case_id: CaseId, doc_id: DocId, principal: Reader) -> PlainTextResponse:
        found = await issued(case_id, doc_id, principal)
        return PlainTextResponse(found["body"], media_type="text/plain; charset=utf-8")

    return app
