"""HTTP entrypoint of the clarification service (澄清正名): the chain's commands, the quarterly rounds
and the read models; thin: parse, authorise, hand on."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Query
from fastapi.responses import PlainTextResponse

from services.clarification import handlers, projections
from services.clarification.commands import (
    Acknowledge,
    Approve,
    Assess,
    File,
    GiveFeedback,
    HoldRound,
    Perform,
    ReReview,
    Start,
)
from services.clarification.domain import Clarification, State
from services.clarification.handlers import answer
from shared.auth import Principal
from shared.bounded import BusinessDate, NoControl
from shared.errors import NotFound
from shared.http import CommandContext, acting, check_jurisdiction, create_app, require
from shared.runtime import Runtime, decision

READ_ROLES = ("handling_department", "case_trial", "case_management", "letters_office", "head", "auditor")
QUALITY_GROUP_ROLES = ("case_trial", "case_management", "letters_office")

Reader = Annotated[Principal, Depends(require(*READ_ROLES))]
Department = Annotated[CommandContext, Depends(acting("handling_department"))]
QualityGroup = Annotated[CommandContext, Depends(acting(*QUALITY_GROUP_ROLES))]
Head = Annotated[CommandContext, Depends(acting("head"))]
Filer = Annotated[CommandContext, Depends(acting("handling_department", "case_management"))]

CaseId = Annotated[
    str,
    Path(min_length=1, max_length=100, description="the matter id, e.g. 331122-2023-000001"),
    NoControl,
]
JurisdictionQuery = Annotated[str, Query(pattern=r"^\d{6}$", description="e.g. 331122")]


def build_api(runtime: Runtime) -> FastAPI:
    app = create_app(
        "clarification",
        title="zhengming clarification (澄清正名)",
        description="The candidate pool (备选库), the chain 申请—评估—复核—审批—澄清—反馈—备案, "
        "quarterly concentrated rounds (集中澄清) and the uniform documents (统一文书).",
    )

    @app.post(
        "/clarifications/{case_id}/start", summary="申请: start a candidate's clarification (consent needed)"
    )
    async def start(ctx: Department, case_id: CaseId, body: Start) -> dict[str, Any]:
        return answer(await runtime.command(ctx, decision(Clarification(case_id), Clarification.start), body))

    @app.post(
        "/clarifications/{case_id}/assess",
        summary="评估 against the positive/negative lists (a refusal is answered 200 with its reasons)",
    )
    async def assess(ctx: Department, case_id: CaseId, body: Assess) -> dict[str, Any]:
        return answer(
            await runtime.command(ctx, decision(Clarification(case_id), Clarification.assess), body)
        )

    @app.post(
        "/clarifications/{case_id}/re-review",
        summary="复核 by the quality-evaluation group (a failed check sends the matter back)",
    )
    async def re_review(ctx: QualityGroup, case_id: CaseId, body: ReReview) -> dict[str, Any]:
        return answer(
            await runtime.command(ctx, decision(Clarification(case_id), Clarification.re_review), body)
        )

    @app.post(
        "/clarifications/{case_id}/approve",
        summary="Approval by the head at the level of cadre-management authority (renders the 审批表)",
    )
    async def approve(ctx: Head, case_id: CaseId, body: Approve) -> dict[str, Any]:
        return await runtime.command(ctx, partial(handlers.approve, case_id=case_id), body)

    @app.post(
        "/clarifications/{case_id}/perform",
        summary="澄清: clarify the untrue points (renders the 澄清通知书 and the letter to the unit)",
    )
    async def perform(ctx: Department, case_id: CaseId, body: Perform) -> dict[str, Any]:
        return await runtime.command(ctx, partial(handlers.perform, case_id=case_id), body)

    @app.post("/clarifications/{case_id}/feedback", summary="反馈 to the unit's party committee and its head")
    async def feedback(ctx: Department, case_id: CaseId, body: GiveFeedback) -> dict[str, Any]:
        return answer(
            await runtime.command(ctx, decision(Clarification(case_id), Clarification.give_feedback), body)
        )

    @app.post(
        "/clarifications/{case_id}/acknowledge", summary="The person's acknowledgement of the clarification"
    )
    async def acknowledge(ctx: Department, case_id: CaseId, body: Acknowledge) -> dict[str, Any]:
        return answer(
            await runtime.command(ctx, decision(Clarification(case_id), Clarification.acknowledge), body)
        )

    @app.post("/clarifications/{case_id}/file", summary="备案: file the clarification with the archive")
    async def file(ctx: Filer, case_id: CaseId, body: File) -> dict[str, Any]:
        return answer(await runtime.command(ctx, decision(Clarification(case_id), Clarification.file), body))

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
        if found is None or not principal.sees(found["jurisdiction"]):
            raise NotFound(f"no clarification matter {case_id}", detail_zh=f"没有澄清事项 {case_id}")
        return found

    @app.get(
        "/clarifications/{case_id}/documents/{doc_id}",
        summary="The text of an issued document",
        response_class=PlainTextResponse,
    )
    async def get_document(
        case_id: CaseId, doc_id: Annotated[str, Path(max_length=200), NoControl], principal: Reader
    ) -> PlainTextResponse:
        async with runtime.pool.acquire() as conn:
            jurisdiction = await projections.jurisdiction_of(conn, case_id)
            found = await projections.document(conn, case_id, doc_id) if jurisdiction else None
        if found is None or jurisdiction is None or not principal.sees(jurisdiction):
            raise NotFound(f"no document {doc_id} in {case_id}", detail_zh=f"{case_id} 中没有文书 {doc_id}")
        return PlainTextResponse(found["body"], media_type="text/plain; charset=utf-8")

    return app
