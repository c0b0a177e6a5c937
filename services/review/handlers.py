"""Review commands and reactions: load the aggregate, let it decide, record what it decided."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from pydantic import BaseModel

from services.review import projections
from services.review.domain import (
    DEFAULT_REFERRAL_UNIT,
    ResultsReport,
    Verification,
    quarter_bounds,
    results_stream,
    sweep_id_for,
    sweep_window,
    verification_stream,
)
from shared.db import Conn
from shared.envelope import EventEnvelope
from shared.errors import NotFound, RuleViolation
from shared.events.common import Finding, HandlingMethod, PriorityFlag
from shared.events.intake import ReportHandedOver
from shared.http import CommandContext
from shared.logging import get_logger
from shared.runtime import Runtime, UnitOfWork, system_actor

log = get_logger(__name__)

SERVICE = "review"


# -- commands ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DecideHandling:
    case_id: str
    method: HandlingMethod
    decided_on: date
    approved_by: str
    collective: bool
    note: str = ""


@dataclass(frozen=True)
class RecordFinding:
    case_id: str
    allegation_id: str
    finding: Finding
    basis: str
    found_on: date | None = None
    approved_by: str | None = None
    approval_jurisdiction: str | None = None
    referred_on: date | None = None
    referred_to: str = DEFAULT_REFERRAL_UNIT


@dataclass(frozen=True)
class ConcludeVerification:
    case_id: str
    concluded_on: date


@dataclass(frozen=True)
class RunSweep:
    jurisdiction: str
    as_of: date
    priority_flags: Mapping[str, Sequence[PriorityFlag]] = field(default_factory=dict)


@dataclass(frozen=True)
class ReportResults:
    jurisdiction: str
    quarter: str
    reported_on: date


@dataclass(frozen=True)
class SweepResult:
    sweep_id: str
    screened: list[str]
    newly_screened: list[str]


# -- loading -----------------------------------------------------------------------------------


async def _load_verification(uow: UnitOfWork, case_id: str) -> Verification:
    events = await uow.load(verification_stream(case_id))
    jurisdiction = events[0][0].jurisdiction if events else None
    return Verification.rebuild(case_id, jurisdiction, (payload for _, payload in events))


async def _load_visible(uow: UnitOfWork, case_id: str, ctx: CommandContext) -> Verification:
    """The verification, if the caller may see it; another jurisdiction's case does not exist
    for them (404, never 403, so its existence is not revealed)."""
    verification = await _load_verification(uow, case_id)
    if verification.jurisdiction is None or not ctx.principal.sees(verification.jurisdiction):
        raise NotFound(f"no verification {case_id}")
    return verification


async def _record(
    uow: UnitOfWork, verification: Verification, payloads: Sequence[BaseModel], ctx: CommandContext
) -> list[EventEnvelope]:
    assert verification.jurisdiction is not None
    return await uow.record(
        verification_stream(verification.case_id),
        verification.version,
        payloads,
        case_id=verification.case_id,
        jurisdiction=verification.jurisdiction,
        actor=ctx.principal.actor(),
        correlation_id=ctx.correlation_id,
    )


# -- reactions ---------------------------------------------------------------------------------


async def open_on_handover(
    runtime: Runtime, conn: Conn, envelope: EventEnvelope, handed: ReportHandedOver
) -> None:
    """移送承办 → the verification opens; a second handover of the same matter opens nothing."""
    uow = runtime.unit_of_work_on(conn)
    verification = await _load_verification(uow, envelope.case_id)
    payloads = verification.open(
        department=handed.department,
        opened_on=handed.handed_on,
        received_on=handed.received_on,
        real_name=handed.real_name,
        subjects=handed.subjects,
        allegations=handed.allegations,
    )
    if not payloads:
        log.info("verification.already_open", case_id=envelope.case_id)
        return
    await uow.record(
        verification_stream(envelope.case_id),
        verification.version,
        payloads,
        case_id=envelope.case_id,
        jurisdiction=envelope.jurisdiction,
        actor=system_actor(SERVICE),
        correlation_id=envelope.correlation_id,
        causation_id=envelope.event_id,
    )
    log.info("verification.opened", case_id=envelope.case_id)


# -- command handlers --------------------------------------------------------------------------


async def decide_handling(runtime: Runtime, ctx: CommandContext, cmd: DecideHandling) -> list[EventEnvelope]:
    async with runtime.unit_of_work() as uow:
        verification = await _load_visible(uow, cmd.case_id, ctx)
        payloads = verification.decide(
            method=cmd.method,
            decided_on=cmd.decided_on,
            approved_by=cmd.approved_by,
            collective=cmd.collective,
            note=cmd.note,
        )
        return await _record(uow, verification, payloads, ctx)


async def record_finding(runtime: Runtime, ctx: CommandContext, cmd: RecordFinding) -> list[EventEnvelope]:
    async with runtime.unit_of_work() as uow:
        verification = await _load_visible(uow, cmd.case_id, ctx)
        payloads = verification.record_finding(
            allegation_id=cmd.allegation_id,
            finding=cmd.finding,
            basis=cmd.basis,
            found_on=cmd.found_on,
            approved_by=cmd.approved_by,
            approval_jurisdiction=cmd.approval_jurisdiction,
            referred_on=cmd.referred_on,
            referred_to=cmd.referred_to,
        )
        return await _record(uow, verification, payloads, ctx)


async def conclude(runtime: Runtime, ctx: CommandContext, cmd: ConcludeVerification) -> list[EventEnvelope]:
    async with runtime.unit_of_work() as uow:
        verification = await _load_visible(uow, cmd.case_id, ctx)
        payloads = verification.conclude(concluded_on=cmd.concluded_on)
        return await _record(uow, verification, payloads, ctx)


async def run_sweep(runtime: Runtime, ctx: CommandContext, cmd: RunSweep) -> SweepResult:
    """大起底: screen every eligible verification concluded in the window, once per sweep id."""
    sweep_id = sweep_id_for(cmd.jurisdiction, cmd.as_of)
    start, end = sweep_window(cmd.as_of)
    async with runtime.unit_of_work() as uow:
        candidates = await projections.sweep_candidates(uow.conn, cmd.jurisdiction, start, end)
        stray = sorted(set(cmd.priority_flags) - set(candidates))
        if stray:
            raise RuleViolation(
                f"priority flags given for matters this sweep does not screen: {', '.join(stray)}",
                field=f"priority_flags.{stray[0]}",
                code="flags_for_unscreened_case",
            )
        screened: list[str] = []
        newly: list[str] = []
        for case_id in candidates:
            verification = await _load_verification(uow, case_id)
            # The read model and the stream commit together; the aggregate has the last word.
            if not verification.is_sweep_candidate(cmd.as_of):
                continue
            screened.append(case_id)
            payloads = verification.screen(
                sweep_id=sweep_id, as_of=cmd.as_of, priority_flags=cmd.priority_flags.get(case_id, [])
            )
            if payloads:
                await _record(uow, verification, payloads, ctx)
                newly.append(case_id)
    log.info("sweep.done", sweep_id=sweep_id, screened=len(screened), new=len(newly))
    return SweepResult(sweep_id=sweep_id, screened=screened, newly_screened=newly)


async def report_results(runtime: Runtime, ctx: CommandContext, cmd: ReportResults) -> list[EventEnvelope]:
    """Quarterly results of the jurisdiction's concluded verifications, back to 信访室."""
    stream = results_stream(cmd.jurisdiction, cmd.quarter)
    first, last = quarter_bounds(cmd.quarter)
    async with runtime.unit_of_work() as uow:
        events = await uow.load(stream)
        report = ResultsReport.rebuild(cmd.jurisdiction, cmd.quarter, (p for _, p in events))
        concluded = await projections.concluded_between(uow.conn, cmd.jurisdiction, first, last)
        payloads = report.report(reported_on=cmd.reported_on, concluded=concluded)
        return await uow.record(
            stream,
            len(events),
            payloads,
            case_id=stream,
            jurisdiction=cmd.jurisdiction,
            actor=ctx.principal.actor(),
            correlation_id=ctx.correlation_id,
        )
