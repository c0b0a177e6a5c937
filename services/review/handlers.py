"""Review's reactions and the commands that need more than one aggregate or a read model: the
handover opens a verification, a re-review finding it incomplete reopens it (补充核查), the sweep
screens many, the quarterly report reads the concluded matters. The other commands are one
aggregate's decision (`decision`, in api.py)."""

from __future__ import annotations

from dataclasses import dataclass

from services.review import projections
from services.review.commands import ReopenVerification, ReportResults, RunSweep
from services.review.domain import (
    ResultsReport,
    Verification,
    check_flags_for_candidates,
    quarter_bounds,
    sweep_id_for,
    sweep_window,
)
from shared.db import Conn
from shared.envelope import EventEnvelope, matter_of
from shared.events.clarification import ReReviewRecorded
from shared.events.intake import ObjectionLodged, ReportHandedOver
from shared.logging import get_logger
from shared.runtime import Runtime, UnitOfWork, decision

log = get_logger(__name__)


@dataclass(frozen=True)
class SweepResult:
    sweep_id: str
    screened: list[str]
    newly_screened: list[str]


async def open_on_handover(
    runtime: Runtime, conn: Conn, envelope: EventEnvelope, handed: ReportHandedOver
) -> None:
    """移送承办 → the verification opens; a second handover of the same matter opens nothing."""
    verification = Verification(envelope.case_id, envelope.jurisdiction)
    done = await runtime.react(conn, envelope, decision(verification, Verification.open), handed)
    log.info("verification.opened" if done.events else "verification.already_open", case_id=envelope.case_id)


async def receive_objection(
    runtime: Runtime, conn: Conn, envelope: EventEnvelope, lodged: ObjectionLodged
) -> None:
    """异议 recorded by the letters office → the verification of the matter records it, once."""
    verification = Verification(envelope.case_id, envelope.jurisdiction)
    done = await runtime.react(conn, envelope, decision(verification, Verification.receive_objection), lodged)
    log.info(
        "objection.received" if done.events else "objection.already_received",
        case_id=envelope.case_id,
        objection_id=lodged.objection_id,
    )


RE_REVIEW_INCOMPLETE = "复核认为核查不全面，退回补充核查"


async def reopen_on_re_review(
    runtime: Runtime, conn: Conn, envelope: EventEnvelope, reviewed: ReReviewRecorded
) -> None:
    """复核 found the verification incomplete (退回补充核查) → 补充核查: the concluded verification
    reopens, once per re-review; a send-back of a verification not concluded changes nothing."""
    if reviewed.passed or reviewed.verification_complete:
        return  # the other checks are the clarification office's business
    command = ReopenVerification(
        reopened_on=reviewed.reviewed_on,
        origin="re_review",
        reason="；".join(r for r in reviewed.reasons if r.strip()) or RE_REVIEW_INCOMPLETE,
        trigger=str(envelope.event_id),
    )
    # A person's clarification (<matter>-2 ...) re-reviews the matter's one verification.
    verification = Verification(matter_of(envelope.case_id), envelope.jurisdiction)
    done = await runtime.react(conn, envelope, decision(verification, Verification.reopen), command)
    if done.events:
        log.info("verification.reopened", case_id=envelope.case_id, origin="re_review")
    else:
        log.info("verification.reopen_ignored", case_id=envelope.case_id, state=done.state.state)


async def run_sweep(uow: UnitOfWork, sweep: RunSweep) -> SweepResult:
    """大起底: screen every eligible verification concluded in the window, once per sweep id."""
    start, end = sweep_window(sweep.as_of)
    candidates = await projections.sweep_candidates(uow.conn, sweep.jurisdiction, start, end)
    check_flags_for_candidates(sweep.priority_flags, candidates)
    screened: list[str] = []
    newly: list[str] = []
    for case_id in candidates:
        verification = await uow.get(Verification(case_id))
        # The read model and the stream commit together; the aggregate has the last word.
        if not verification.is_sweep_candidate(sweep.as_of):
            continue
        screened.append(case_id)
        if await uow.save(verification, verification.screen(sweep)):
            newly.append(case_id)
    sweep_id = sweep_id_for(sweep.jurisdiction, sweep.as_of)
    log.info("sweep.done", sweep_id=sweep_id, screened=len(screened), new=len(newly))
    return SweepResult(sweep_id=sweep_id, screened=screened, newly_screened=newly)


async def report_results(uow: UnitOfWork, command: ReportResults) -> None:
    """Quarterly results of the jurisdiction's concluded verifications, back to 信访室."""
    first, last = quarter_bounds(command.quarter)
    report = await uow.get(ResultsReport(command.jurisdiction, command.quarter))
    concluded = await projections.concluded_between(uow.conn, command.jurisdiction, first, last)
    await uow.save(report, report.report(command, concluded))
