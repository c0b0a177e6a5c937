"""HTTP entrypoint of the clarification service (澄清正名): the chain's commands, the quarterly rounds
and the read models; thin: parse, authorise, hand on."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from services.clarification import handlers, projections
from services.clarification.domain import State
from shared.auth import Principal
from shared.bounded import BusinessDate, NoControl, QuarterLabel
from shared.errors import NotFound
from shared.events.common import BadEffect, ClarificationForm
from shared.http import check_jurisdiction, command_context, create_app, require
from shared.runtime import Runtime

READ_ROLES = ("handling_department", "case_trial", "case_management", "letters_office", "head", "auditor")
QUALITY_GROUP_ROLES = ("case_trial", "case_management", "letters_office")

Reader = Annotated[Principal, Depends(require(*READ_ROLES))]
Department = Annotated[Principal, Depends(require("handling_department"))]
QualityGroup = Annotated[Principal, Depends(require(*QUALITY_GROUP_ROLES))]
Head = Annotated[Principal, Depends(require("head"))]
Filer = Annotated[Principal, Depends(require("handling_department", "case_management"))]

CaseId = Annotated[
    str,
    Path(min_length=1, max_length=100, description="the matter id, e.g. 331122-2023-000001"),
    NoControl,
]
JurisdictionQuery = Annotated[str, Query(pattern=r"^\d{6}$", description="e.g. 331122")]
Text = Annotated[str, Field(max_length=2000), NoControl]
Name = Annotated[str, Field(min_length=1, max_length=200), NoControl]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StartBody(Body):
    """申请: proposed by the department after consulting the person, or applied for by the person."""

    initiated_by: Literal["department", "person"]
    person_subject_id: Annotated[str, Field(min_length=1, max_length=100), NoControl]
    consent: bool
    consent_note: Text = ""
    started_on: BusinessDate


class AssessBody(Body):
    """评估 against the 正反清单."""

    assessed_on: BusinessDate
    bad_effects: list[BadEffect] = Field(max_length=8)
    effect_only_from_interviews: bool


class ReReviewBody(Body):
    """复核 by the 澄清质效评估小组 (one member of 信访室, 审理室, 案管室 each)."""

    reviewed_on: BusinessDate
    verification_complete: bool
    conclusion_clear: bool
    disposal_adequate: bool
    expected_effect: Annotated[str, Field(min_length=1, max_length=2000), NoControl]
    # Which offices sit is a rule of the domain (answered with field "members"), not a schema limit.
    members: dict[
        Annotated[str, Field(max_length=100), NoControl], Annotated[str, Field(max_length=200), NoControl]
    ] = Field(description="office -> user id: letters_office, case_trial, case_management")


class ApproveBody(Body):
    approved_on: BusinessDate


class PerformBody(Body):
    """澄清: the written notice is always included."""

    performed_on: BusinessDate
    forms: list[ClarificationForm] = Field(default_factory=list, max_length=4)
    scope: Annotated[str, Field(max_length=500), NoControl] = ""


class FeedbackBody(Body):
    """反馈 to the unit's party committee and its head (一把手)."""

    given_on: BusinessDate
    party_committee: Name
    unit_head: Name


class AcknowledgeBody(Body):
    acknowledged_on: BusinessDate
    note: Text = ""


class FileBody(Body):
    filed_on: BusinessDate


class RoundBody(Body):
    """集中澄清 of one jurisdiction in one quarter."""

    jurisdiction: str = Field(pattern=r"^\d{6}$")
    quarter: QuarterLabel = Field(description="e.g. 2023Q1")
    held_on: BusinessDate
    forms: list[ClarificationForm] = Field(default_factory=list, max_length=4)
    scope: Annotated[str, Field(max_length=500), NoControl] = ""


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
    async def start(
        case_id: CaseId, body: StartBody, principal: Department, request: Request
    ) -> dict[str, Any]:
        return await handlers.start(
            runtime,
            command_context(principal, request),
            case_id,
            initiated_by=body.initiated_by,
            person_subject_id=body.person_subject_id,
            consent=body.consent,
            consent_note=body.consent_note,
            started_on=body.started_on,
        )

    @app.post(
        "/clarifications/{case_id}/assess",
        summary="评估 against the positive/negative lists (a refusal is answered 200 with its reasons)",
    )
    async def assess(
        case_id: CaseId, body: AssessBody, principal: Department, request: Request
    ) -> dict[str, Any]:
        return await handlers.assess(
            runtime,
            command_context(principal, request),
            case_id,
            assessed_on=body.assessed_on,
            bad_effects=body.bad_effects,
            effect_only_from_interviews=body.effect_only_from_interviews,
        )

    @app.post(
        "/clarifications/{case_id}/re-review",
        summary="复核 by the quality-evaluation group (a failed check sends the matter back)",
    )
    async def re_review(
        case_id: CaseId, body: ReReviewBody, principal: QualityGroup, request: Request
    ) -> dict[str, Any]:
        return await handlers.re_review(
            runtime,
            command_context(principal, request),
            case_id,
            reviewed_on=body.reviewed_on,
            verification_complete=body.verification_complete,
            conclusion_clear=body.conclusion_clear,
            disposal_adequate=body.disposal_adequate,
            expected_effect=body.expected_effect,
            members=body.members,
        )

    @app.post(
        "/clarifications/{case_id}/approve",
        summary="Approval by the head at the level of cadre-management authority (renders the 审批表)",
    )
    async def approve(
        case_id: CaseId, body: ApproveBody, principal: Head, request: Request
    ) -> dict[str, Any]:
        return await handlers.approve(
            runtime, command_context(principal, request), case_id, approved_on=body.approved_on
        )

    @app.post(
        "/clarifications/{case_id}/perform",
        summary="澄清: clarify the untrue points (renders the 澄清通知书 and the letter to the unit)",
    )
    async def perform(
        case_id: CaseId, body: PerformBody, principal: Department, request: Request
    ) -> dict[str, Any]:
        return await handlers.perform(
            runtime,
            command_context(principal, request),
            case_id,
            performed_on=body.performed_on,
            forms=body.forms,
            scope=body.scope,
        )

    @app.post("/clarifications/{case_id}/feedback", summary="反馈 to the unit's party committee and its head")
    async def feedback(
        case_id: CaseId, body: FeedbackBody, principal: Department, request: Request
    ) -> dict[str, Any]:
        return await handlers.give_feedback(
            runtime,
            command_context(principal, request),
            case_id,
            given_on=body.given_on,
            party_committee=body.party_committee,
            unit_head=body.unit_head,
        )

    @app.post(
        "/clarifications/{case_id}/acknowledge", summary="The person's acknowledgement of the clarification"
    )
    async def acknowledge(
        case_id: CaseId, body: AcknowledgeBody, principal: Department, request: Request
    ) -> dict[str, Any]:
        return await handlers.acknowledge(
            runtime,
            command_context(principal, request),
            case_id,
            acknowledged_on=body.acknowledged_on,
            note=body.note,
        )

    @app.post("/clarifications/{case_id}/file", summary="备案: file the clarification with the archive")
    async def file(case_id: CaseId, body: FileBody, principal: Filer, request: Request) -> dict[str, Any]:
        return await handlers.file(
            runtime, command_context(principal, request), case_id, filed_on=body.filed_on
        )

    @app.post(
        "/rounds", summary="集中澄清: clarify every approved matter of a jurisdiction in one quarterly batch"
    )
    async def hold_round(body: RoundBody, principal: Department, request: Request) -> dict[str, Any]:
        check_jurisdiction(principal, body.jurisdiction)
        return await handlers.hold_round(
            runtime,
            command_context(principal, request),
            jurisdiction=body.jurisdiction,
            quarter=body.quarter,
            held_on=body.held_on,
            forms=body.forms,
            scope=body.scope,
        )

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
            raise NotFound(f"no clarification matter {case_id}")
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
            raise NotFound(f"no document {doc_id} in {case_id}")
        return PlainTextResponse(found["body"], media_type="text/plain; charset=utf-8")

    return app
