"""Review's HTTP entrypoint: the handling decision (proposed by the department, approved or sent
back by the head), findings (a false accusation approved or refused by a city head), conclusion,
sweep, quarterly results, and the queries on verifications and referred false accusations."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Depends, FastAPI, Query
from pydantic import BaseModel, Field

from services.review import handlers, projections
from services.review.commands import (
    ApproveFalseAccusation,
    ApproveHandling,
    ConcludeVerification,
    ExamineObjection,
    ProposeHandling,
    RecordFinding,
    RefuseFalseAccusation,
    ReportResults,
    RunSweep,
    SendBackHandling,
)
from services.review.domain import FALSE_ACCUSATION_APPROVAL_LEVEL, Verification, reaches
from shared.auth import Principal
from shared.bounded import Identifier
from shared.errors import NotFound
from shared.events.common import Allegation, Finding, HandlingMethod, PriorityFlag, Subject
from shared.http import CommandContext, acting, check_jurisdiction, create_app, require
from shared.runtime import Runtime, decision

HANDLING = ("handling_department",)
HEAD = ("head",)
SWEEPERS = ("handling_department", "case_management")
READERS = ("handling_department", "case_trial", "case_management", "head", "auditor")
RESULT_READERS = ("letters_office", *READERS)

C = TypeVar("C")
Decide = Callable[[Verification, C], Sequence[BaseModel]]
"""A decision of the verification on a command (one of its methods)."""


VerificationState = Literal["open", "proposed", "decided", "concluded", "reopened"]


class Proposal(BaseModel):
    """The proposed handling awaiting the head's approval."""

    method: HandlingMethod
    decided_on: date
    note: str = ""
    proposed_by: str | None = None


class SendBack(BaseModel):
    sent_back_on: date
    reason: str
    sent_back_by: str | None = None


class Decision(BaseModel):
    method: HandlingMethod
    decided_on: date
    approved_by: str
    note: str
    approved_on: date | None = Field(
        default=None, description="None in decisions recorded before the head approved them in person"
    )
    approver_name: str | None = None


class FindingView(BaseModel):
    allegation_id: str
    finding: Finding
    basis: str
    approved_by: str | None = None
    approval_jurisdiction: str | None = None
    approved_on: date | None = None


class FalseAccusationProposal(BaseModel):
    """A proposed 诬告陷害 awaiting a city head."""

    allegation_id: str
    basis: str
    found_on: date | None = None
    referred_on: date
    referred_to: str
    proposed_by: str | None = None


class FalseAccusationRefusal(BaseModel):
    allegation_id: str
    refused_on: date
    reason: str
    refused_by: str | None = None


class Reopening(BaseModel):
    reopened_on: date
    origin: Literal["re_review", "objection"]
    reason: str


class Screening(BaseModel):
    sweep_id: str
    screened_on: date
    priority_flags: list[PriorityFlag]


class ObjectionView(BaseModel):
    """异议 of the real-name reporter and its re-examination (复查), once done."""

    objection_id: str
    lodged_on: date
    grounds: str
    new_evidence: str
    examined_on: date | None = None
    upheld: bool | None = None
    reason: str | None = None


class VerificationView(BaseModel):
    case_id: str
    jurisdiction: str
    department: str
    state: VerificationState
    opened_on: date
    received_on: date
    real_name: bool
    subjects: list[Subject]
    allegations: list[Allegation]
    proposal: Proposal | None = Field(description="the proposed handling awaiting the head, if any")
    sent_back: list[SendBack] = Field(description="the head's send-backs of earlier proposals")
    decision: Decision | None
    findings: dict[str, FindingView]
    false_accusation_proposals: dict[str, FalseAccusationProposal] = Field(
        description="allegation id -> the proposed 诬告陷害 awaiting a city head"
    )
    false_accusation_refusals: list[FalseAccusationRefusal]
    concluded_on: date | None = Field(description="the latest conclusion's date")
    eligible_for_pool: bool | None
    untrue_points: list[Allegation] | None
    revision: int | None = Field(description="the latest conclusion's revision: 0 the first, +1 each later")
    reopenings: list[Reopening] = Field(description="补充核查: every reopening of the verification")
    screenings: list[Screening]
    objections: list[ObjectionView] = Field(default_factory=list)
    version: int


class CommandResult(BaseModel):
    recorded: list[str] = Field(description="event types recorded by the command")
    verification: VerificationView


class SweepResultView(BaseModel):
    sweep_id: str
    screened: list[str] = Field(description="every matter this sweep screened, now or before")
    newly_screened: list[str] = Field(description="the matters screened by this call")


class ResultsReportView(BaseModel):
    jurisdiction: str
    quarter: str
    reported_on: date
    matters: dict[str, str] = Field(description="matter id -> overall outcome")


class FalseAccusationView(BaseModel):
    case_id: str
    allegation_id: str
    jurisdiction: str
    referred_on: date
    referred_to: str
    basis: str
    approved_by: str | None
    approval_jurisdiction: str | None


def _view(row: dict[str, Any]) -> VerificationView:
    decision = (
        Decision(
            method=row["method"],
            decided_on=row["decided_on"],
            approved_by=row["approved_by"],
            note=row["decision_note"] or "",
            approved_on=row["approved_on"],
            approver_name=row["approver_name"],
        )
        if row["method"] is not None
        else None
    )
    return VerificationView.model_validate({**row, "decision": decision})


def has_false_accusation(row: dict[str, Any]) -> bool:
    """A 诬告陷害 proposed, or found (its finding approved at the city)."""
    findings = row["findings"] or {}
    return bool(row["false_accusation_proposals"]) or any(
        f.get("finding") == "false_accusation" for f in findings.values()
    )


def build_api(runtime: Runtime) -> FastAPI:
    app = create_app(
        "review",
        title="zhengming review (核查)",
        description="Verification of reported matters: handling decision, findings per allegation, "
        "conclusion, the backlog sweep (大起底) and quarterly results back to the letters office.",
    )

    async def visible(case_id: str, principal: Principal | None) -> VerificationView:
        """The verification; 404 when `principal` may not see it (None: the answer of a command the
        caller just gave, which a city head's refusal of the only 诬告陷害 takes out of their sight)."""
        async with runtime.pool.acquire() as conn:
            row = await projections.verification(conn, case_id)
        if row is None or (
            principal is not None
            and not reaches(principal, row["jurisdiction"], false_accusation=has_false_accusation(row))
        ):
            raise NotFound(f"no verification {case_id}", detail_zh=f"没有核查 {case_id}")
        return _view(row)

    async def decided(ctx: CommandContext, case_id: str, decide: Decide[C], command: C) -> CommandResult:
        """One decision of the verification: what it recorded, and the verification as it now reads."""
        done = await runtime.command(ctx, decision(Verification(case_id), decide), command)
        view = await visible(case_id, None)
        return CommandResult(recorded=[e.event_type for e in done.recorded], verification=view)

    @app.post(
        "/verifications/{case_id}/decision",
        summary="Propose the collective handling decision (集体研究) to the head of the jurisdiction",
        response_model=CommandResult,
    )
    async def propose(
        ctx: Annotated[CommandContext, Depends(acting(*HANDLING))], case_id: Identifier, body: ProposeHandling
    ) -> CommandResult:
        return await decided(ctx, case_id, Verification.propose, body)

    @app.post(
        "/verifications/{case_id}/decision/approve",
        summary="The head approves the proposed handling: the decision, approved by the caller",
        response_model=CommandResult,
    )
    async def approve_decision(
        ctx: Annotated[CommandContext, Depends(acting(*HEAD))], case_id: Identifier, body: ApproveHandling
    ) -> CommandResult:
        def approve(verification: Verification, command: ApproveHandling) -> list[BaseModel]:
            return verification.approve_handling(command, ctx.principal)

        return await decided(ctx, case_id, approve, body)

    @app.post(
        "/verifications/{case_id}/decision/send-back",
        summary="The head sends the proposed handling back to the department, which proposes again",
        response_model=CommandResult,
    )
    async def send_back_decision(
        ctx: Annotated[CommandContext, Depends(acting(*HEAD))], case_id: Identifier, body: SendBackHandling
    ) -> CommandResult:
        return await decided(ctx, case_id, Verification.send_back_handling, body)

    @app.post(
        "/verifications/{case_id}/findings",
        summary="Record the finding on one allegation (a false accusation is proposed to a city head,"
        " also on a point found untrue or not proven after the conclusion)",
        response_model=CommandResult,
    )
    async def find(
        ctx: Annotated[CommandContext, Depends(acting(*HANDLING))], case_id: Identifier, body: RecordFinding
    ) -> CommandResult:
        return await decided(ctx, case_id, Verification.record_finding, body)

    @app.post(
        "/verifications/{case_id}/false-accusations/{allegation_id}/approve",
        summary="A city head approves the proposed false accusation (诬告陷害): the finding, its referral"
        " and, after the conclusion, the revised conclusion",
        response_model=CommandResult,
    )
    async def approve_false_accusation(
        ctx: Annotated[CommandContext, Depends(acting(*HEAD))],
        case_id: Identifier,
        allegation_id: Identifier,
        body: ApproveFalseAccusation,
    ) -> CommandResult:
        def approve(verification: Verification, command: ApproveFalseAccusation) -> list[BaseModel]:
            return verification.approve_false_accusation(allegation_id, command, ctx.principal)

        return await decided(ctx, case_id, approve, body)

    @app.post(
        "/verifications/{case_id}/false-accusations/{allegation_id}/refuse",
        summary="A city head refuses the proposed false accusation; the department records another finding",
        response_model=CommandResult,
    )
    async def refuse_false_accusation(
        ctx: Annotated[CommandContext, Depends(acting(*HEAD))],
        case_id: Identifier,
        allegation_id: Identifier,
        body: RefuseFalseAccusation,
    ) -> CommandResult:
        def refuse(verification: Verification, command: RefuseFalseAccusation) -> list[BaseModel]:
            return verification.refuse_false_accusation(allegation_id, command, ctx.principal)

        return await decided(ctx, case_id, refuse, body)

    @app.post(
        "/verifications/{case_id}/conclude",
        summary="Conclude (办结) the verification once every allegation has its finding",
        response_model=CommandResult,
    )
    async def conclude(
        ctx: Annotated[CommandContext, Depends(acting(*HANDLING))],
        case_id: Identifier,
        body: ConcludeVerification,
    ) -> CommandResult:
        return await decided(ctx, case_id, Verification.conclude, body)

    @app.post(
        "/verifications/{case_id}/objections/{objection_id}/examine",
        summary="Re-examine (复查) a real-name reporter's objection (异议): upheld or not, and why",
        response_model=CommandResult,
    )
    async def examine_objection(
        ctx: Annotated[CommandContext, Depends(acting(*HANDLING))],
        case_id: Identifier,
        objection_id: Identifier,
        body: ExamineObjection,
    ) -> CommandResult:
        def examine(verification: Verification, command: ExamineObjection) -> Sequence[BaseModel]:
            return verification.examine_objection(objection_id, command)

        return await decided(ctx, case_id, examine, body)

    @app.post(
        "/sweeps",
        summary="Backlog sweep (大起底): screen the eligible matters of the last three years",
        response_model=SweepResultView,
    )
    async def sweep(
        ctx: Annotated[CommandContext, Depends(acting(*SWEEPERS))], body: RunSweep
    ) -> SweepResultView:
        check_jurisdiction(ctx.principal, body.jurisdiction)
        done = await runtime.command(ctx, handlers.run_sweep, body)
        return SweepResultView(
            sweep_id=done.sweep_id, screened=done.screened, newly_screened=done.newly_screened
        )

    @app.post(
        "/results-reports",
        summary="Report a quarter's verification results back to the letters-and-visits office",
        response_model=ResultsReportView,
    )
    async def report(
        ctx: Annotated[CommandContext, Depends(acting(*HANDLING))], body: ReportResults
    ) -> ResultsReportView:
        check_jurisdiction(ctx.principal, body.jurisdiction)
        await runtime.command(ctx, handlers.report_results, body)
        async with runtime.pool.acquire() as conn:
            rows = await projections.results_reports(conn, [body.jurisdiction], body.quarter)
        return ResultsReportView.model_validate(rows[0])

    @app.get(
        "/verifications/{case_id}",
        summary="One verification (404 when it is not in the caller's jurisdictions)",
        response_model=VerificationView,
    )
    async def get_verification(
        case_id: Identifier, principal: Annotated[Principal, Depends(require(*READERS))]
    ) -> VerificationView:
        return await visible(case_id, principal)

    def scope(principal: Principal, jurisdiction: str | None) -> list[str]:
        if jurisdiction is None:
            return list(principal.jurisdictions)
        check_jurisdiction(principal, jurisdiction)
        return [jurisdiction]

    @app.get(
        "/verifications",
        summary="Verifications of a jurisdiction (default: all the caller's), optionally by state",
        response_model=list[VerificationView],
    )
    async def list_verifications(
        principal: Annotated[Principal, Depends(require(*READERS))],
        jurisdiction: Annotated[str | None, Query(pattern=r"^\d{6}$")] = None,
        state: VerificationState | None = None,
    ) -> list[VerificationView]:
        async with runtime.pool.acquire() as conn:
            rows = await projections.verifications(conn, scope(principal, jurisdiction), state)
        return [_view(r) for r in rows]

    @app.get(
        "/false-accusations/awaiting-approval",
        summary="Verifications with a 诬告陷害 awaiting a city head's approval (市级审批), in every county"
        " the caller reaches: the city head's to decide",
        response_model=list[VerificationView],
    )
    async def awaiting_approval(
        principal: Annotated[Principal, Depends(require("head"))],
    ) -> list[VerificationView]:
        if FALSE_ACCUSATION_APPROVAL_LEVEL not in principal.jurisdictions:
            return []  # a county's head approves none of them
        async with runtime.pool.acquire() as conn:
            rows = await projections.awaiting_false_accusation_approval(conn)
        return [_view(r) for r in rows if reaches(principal, r["jurisdiction"], false_accusation=True)]

    @app.get(
        "/false-accusations",
        summary="Suspected false accusations (诬告陷害) referred for punishment",
        response_model=list[FalseAccusationView],
    )
    async def list_false_accusations(
        principal: Annotated[Principal, Depends(require(*READERS))],
        jurisdiction: Annotated[str | None, Query(pattern=r"^\d{6}$")] = None,
    ) -> list[FalseAccusationView]:
        async with runtime.pool.acquire() as conn:
            rows = await projections.false_accusations(conn, scope(principal, jurisdiction))
        return [FalseAccusationView.model_validate(r) for r in rows]

    @app.get(
        "/results-reports",
        summary="Quarterly results reported back to the letters-and-visits office",
        response_model=list[ResultsReportView],
    )
    async def list_results_reports(
        principal: Annotated[Principal, Depends(require(*RESULT_READERS))],
        jurisdiction: Annotated[str | None, Query(pattern=r"^\d{6}$")] = None,
        quarter: Annotated[str | None, Query(pattern=r"^\d{4}Q[1-4]$")] = None,
    ) -> list[ResultsReportView]:
        async with runtime.pool.acquire() as conn:
            rows = await projections.results_reports(conn, scope(principal, jurisdiction), quarter)
        return [ResultsReportView.model_validate(r) for r in rows]

    return app
