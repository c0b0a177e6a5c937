"""Review's HTTP entrypoint: handling decision, findings, conclusion, sweep, quarterly results, and
the queries on verifications and referred false accusations."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Depends, FastAPI, Query
from pydantic import BaseModel, Field

from services.review import handlers, projections
from services.review.commands import (
    ConcludeVerification,
    DecideHandling,
    ExamineObjection,
    RecordFinding,
    ReportResults,
    RunSweep,
)
from services.review.domain import Verification
from shared.auth import Principal
from shared.bounded import Identifier
from shared.errors import NotFound
from shared.events.common import Allegation, Finding, HandlingMethod, PriorityFlag, Subject
from shared.http import CommandContext, acting, check_jurisdiction, create_app, require
from shared.runtime import Runtime, decision

HANDLING = ("handling_department",)
SWEEPERS = ("handling_department", "case_management")
READERS = ("handling_department", "case_trial", "case_management", "head", "auditor")
RESULT_READERS = ("letters_office", *READERS)

C = TypeVar("C")
Decide = Callable[[Verification, C], Sequence[BaseModel]]
"""A decision of the verification on a command (one of its methods)."""


class Decision(BaseModel):
    method: HandlingMethod
    decided_on: date
    approved_by: str
    note: str


class FindingView(BaseModel):
    allegation_id: str
    finding: Finding
    basis: str
    approved_by: str | None = None
    approval_jurisdiction: str | None = None


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
    state: Literal["open", "decided", "concluded"]
    opened_on: date
    received_on: date
    real_name: bool
    subjects: list[Subject]
    allegations: list[Allegation]
    decision: Decision | None
    findings: dict[str, FindingView]
    concluded_on: date | None
    eligible_for_pool: bool | None
    untrue_points: list[Allegation] | None
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
        )
        if row["method"] is not None
        else None
    )
    return VerificationView.model_validate({**row, "decision": decision})


def build_api(runtime: Runtime) -> FastAPI:
    app = create_app(
        "review",
        title="zhengming review (核查)",
        description="Verification of reported matters: handling decision, findings per allegation, "
        "conclusion, the backlog sweep (大起底) and quarterly results back to the letters office.",
    )

    async def visible(case_id: str, principal: Principal) -> VerificationView:
        async with runtime.pool.acquire() as conn:
            row = await projections.verification(conn, case_id)
        if row is None or not principal.sees(row["jurisdiction"]):
            raise NotFound(f"no verification {case_id}", detail_zh=f"没有核查 {case_id}")
        return _view(row)

    async def decided(ctx: CommandContext, case_id: str, decide: Decide[C], command: C) -> CommandResult:
        """One decision of the verification: what it recorded, and the verification as it now reads."""
        done = await runtime.command(ctx, decision(Verification(case_id), decide), command)
        view = await visible(case_id, ctx.principal)
        return CommandResult(recorded=[e.event_type for e in done.recorded], verification=view)

    @app.post(
        "/verifications/{case_id}/decision",
        summary="Record the collective, approved handling decision",
        response_model=CommandResult,
    )
    async def decide(
        ctx: Annotated[CommandContext, Depends(acting(*HANDLING))], case_id: Identifier, body: DecideHandling
    ) -> CommandResult:
        return await decided(ctx, case_id, Verification.decide, body)

    @app.post(
        "/verifications/{case_id}/findings",
        summary="Record the finding on one allegation (a false accusation is also referred)",
        response_model=CommandResult,
    )
    async def find(
        ctx: Annotated[CommandContext, Depends(acting(*HANDLING))], case_id: Identifier, body: RecordFinding
    ) -> CommandResult:
        return await decided(ctx, case_id, Verification.record_finding, body)

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
        state: Literal["open", "decided", "concluded"] | None = None,
    ) -> list[VerificationView]:
        async with runtime.pool.acquire() as conn:
            rows = await projections.verifications(conn, scope(principal, jurisdiction), state)
        return [_view(r) for r in rows]

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
