"""Clarification handlers: the commands that issue documents (numbered and stored in the same
transaction, never by replay) or decide over many matters, and the reactions to review's and intake's
events; the other commands of the chain are plain decisions (api.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from pydantic import BaseModel

from services.clarification import documents, projections
from services.clarification.commands import (
    Approve,
    ApproveContent,
    DraftContent,
    GiveFeedback,
    HoldRound,
    Perform,
    RefuseApproval,
    RequestConsent,
    ReReview,
    ReturnContent,
    SendBackApproval,
)
from services.clarification.documents import Document, Draft
from services.clarification.domain import Clarification, Round, plan_round
from services.clarification.reporters import IdentityCheck, IdentityCheckUnavailable
from services.clarification.settings import DocumentSettings, document_settings, pool_settings
from shared.aggregate import Command
from shared.auth import Principal
from shared.db import Conn
from shared.envelope import EventEnvelope, matter_of, person_matter_id
from shared.errors import RuleViolation
from shared.events.clarification import (
    ApplicationNoted,
    ClarificationPerformed,
    ConsentRequested,
    FeedbackGiven,
    ReReviewRecorded,
)
from shared.events.intake import ClarificationApplicationFiled
from shared.events.review import CandidateScreened, VerificationConcluded
from shared.http import CommandContext
from shared.logging import get_logger
from shared.runtime import Decided, Runtime, UnitOfWork, decision

log = get_logger(__name__)

C = TypeVar("C", bound=Command)
HeadDecision = Callable[[Clarification, C, Principal], list[BaseModel]]


def answer(decided: Decided[Clarification], **extra: Any) -> dict[str, Any]:
    """What a command answers: the matter's state and the event it recorded."""
    matter, event = decided.state, decided.last
    return {
        "case_id": matter.case_id,
        "state": matter.state,
        "version": matter.version,
        "event": type(event).__name__,
        **event.model_dump(mode="json"),
        **extra,
    }


async def allocate_number(conn: Conn, draft: Draft, settings: DocumentSettings) -> str:
    """The next 发文字号 of the draft's organ, series and year, taken in the issuing transaction (the
    row lock orders concurrent issuers; a rolled-back command gives its number back)."""
    series = settings.series[draft.kind]
    year = draft.dated.year
    seq: int = await conn.fetchval(
        "INSERT INTO document_numbers (jurisdiction, series, year, last) VALUES ($1, $2, $3, 1)"
        " ON CONFLICT (jurisdiction, series, year) DO UPDATE SET last = document_numbers.last + 1"
        " RETURNING last",
        draft.jurisdiction,
        series,
        year,
    )
    return settings.number(draft.jurisdiction, draft.kind, year, seq)


async def store_documents(conn: Conn, drafts: Iterable[Draft]) -> list[Document]:
    """Number, lay out and keep each draft: written once, by the command that issued it."""
    settings = document_settings()
    issued = [documents.issue(d, await allocate_number(conn, d, settings), settings) for d in drafts]
    await conn.executemany(
        "INSERT INTO documents (doc_id, case_id, kind, title, number, body, layout, created_on)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        # Written once: a matter clarified before the letter moved to feedback already has its
        # letter (issued at perform), and keeps it.
        " ON CONFLICT (doc_id) DO NOTHING",
        [
            (
                d.doc_id,
                d.case_id,
                d.kind,
                d.title,
                d.number,
                d.body,
                d.layout.model_dump(mode="json"),
                d.created_on,
            )
            for d in issued
        ],
    )
    return issued


async def issue_clarification(uow: UnitOfWork, matter: Clarification, performed: BaseModel) -> None:
    """The 澄清通知书 of a clarification just recorded."""
    assert isinstance(performed, ClarificationPerformed)
    await store_documents(uow.conn, [documents.notice(matter, performed)])


# --- Commands ------------------------------------------------------------------------------------


async def request_consent(uow: UnitOfWork, command: RequestConsent, *, case_id: str) -> dict[str, Any]:
    """The person asked for consent, with the 拟澄清告知书 issued in the same transaction."""
    decided = await decision(Clarification(case_id), Clarification.request_consent)(uow, command)
    requested = decided.last
    assert isinstance(requested, ConsentRequested)
    await store_documents(uow.conn, [documents.consent_request(decided.state, requested)])
    return answer(decided)


async def re_review(uow: UnitOfWork, command: ReReview, *, case_id: str) -> dict[str, Any]:
    """One member's signature of the 复核; when the group's re-review passes with it, the
    失实检举控告澄清审批表 is put before the head (same transaction)."""
    signer = uow.cause.principal
    assert signer is not None, "a re-review is signed by a member, never by a reaction"

    def signed_by(matter: Clarification, command: ReReview) -> list[BaseModel]:
        return matter.re_review(command, signer)

    decided = await decision(Clarification(case_id), signed_by)(uow, command)
    reviewed = decided.last
    if isinstance(reviewed, ReReviewRecorded) and reviewed.passed:
        await store_documents(uow.conn, [documents.approval_form(decided.state, reviewed)])
    offices = reviewed.members if isinstance(reviewed, ReReviewRecorded) else decided.state.signatures
    return answer(decided, signed_offices=sorted(offices))


async def by_head(uow: UnitOfWork, decide: HeadDecision[C], command: C, case_id: str) -> dict[str, Any]:
    """A decision of the head whose token carries the command: approve, refuse or send back."""
    approver = uow.cause.principal
    assert approver is not None, "the head's decision is a command, never a reaction"

    def by_approver(matter: Clarification, command: C) -> list[BaseModel]:
        return decide(matter, command, approver)

    return answer(await decision(Clarification(case_id), by_approver)(uow, command))


async def approve(uow: UnitOfWork, command: Approve, *, case_id: str) -> dict[str, Any]:
    """Approval by the head, naming the forms and scope (the 审批表 was issued before it)."""
    return await by_head(uow, Clarification.approve, command, case_id)


async def refuse_approval(uow: UnitOfWork, command: RefuseApproval, *, case_id: str) -> dict[str, Any]:
    """主要负责人不予批准."""
    return await by_head(uow, Clarification.refuse_approval, command, case_id)


async def send_back_approval(uow: UnitOfWork, command: SendBackApproval, *, case_id: str) -> dict[str, Any]:
    """主要负责人退回 for a new re-review."""
    return await by_head(uow, Clarification.send_back_approval, command, case_id)


async def check_reporter_identity(
    check: IdentityCheck, case_id: str, command: DraftContent, authorization: str | None
) -> None:
    """Each wording asked of intake (in parallel): one that contains a reporter identity of the
    matter refuses the draft, without saying which identity or where; no answer refuses it too."""
    answers = await asyncio.gather(
        # The reporters are the matter's (a person's clarification, <matter>-2 ..., has no report).
        *(check.reveals(matter_of(case_id), p.wording, authorization) for p in command.points),
        return_exceptions=True,
    )
    failed = [a for a in answers if isinstance(a, BaseException)]
    if failed:
        # No answer for one wording is no answer for the draft (IdentityCheckUnavailable: 503).
        raise next((f for f in failed if isinstance(f, IdentityCheckUnavailable)), failed[0])
    for n, reveals in enumerate(answers):
        if reveals is True:
            raise RuleViolation(
                "the wording contains the identity of a reporter of this matter: the reporter is"
                " kept confidential; reword it",
                detail_zh="澄清内容含有本件检举控告人的身份信息；对检举控告人须严格保密，请修改",
                field=f"points.{n}.wording",
                code="content_reveals_reporter",
            )


async def draft_content(
    runtime: Runtime, ctx: CommandContext, check: IdentityCheck, command: DraftContent, *, case_id: str
) -> dict[str, Any]:
    """澄清内容 drafted by the department: the rules first (nothing goes to intake for a draft
    they refuse), then intake's check that no wording reveals the reporter, then the decision,
    which checks the rules again on the matter as it then is. The check runs outside the
    transaction: no lock waits on intake."""
    async with runtime.pool.acquire() as conn:
        matter = await runtime.read(conn, Clarification(case_id))
    if not matter.exists or not ctx.principal.sees(matter.jurisdiction):
        raise matter.missing()
    matter.draft_content(command)
    await check_reporter_identity(check, case_id, command, ctx.authorization)
    return answer(
        await runtime.command(ctx, decision(Clarification(case_id), Clarification.draft_content), command)
    )


async def approve_content(uow: UnitOfWork, command: ApproveContent, *, case_id: str) -> dict[str, Any]:
    """审理室 approves the drafted 澄清内容."""
    # A decision by the caller of the command, as the head's are.
    return await by_head(uow, Clarification.approve_content, command, case_id)


async def return_content(uow: UnitOfWork, command: ReturnContent, *, case_id: str) -> dict[str, Any]:
    """审理室 returns the drafted 澄清内容 to the department."""
    return await by_head(uow, Clarification.return_content, command, case_id)


async def perform(uow: UnitOfWork, command: Perform, *, case_id: str) -> dict[str, Any]:
    """澄清, issuing the 澄清通知书."""
    decided = await decision(Clarification(case_id), Clarification.perform)(uow, command)
    await issue_clarification(uow, decided.state, decided.last)
    return answer(decided)


async def give_feedback(uow: UnitOfWork, command: GiveFeedback, *, case_id: str) -> dict[str, Any]:
    """反馈, issuing the 关于失实检举控告澄清的函 to the party committee it names."""
    decided = await decision(Clarification(case_id), Clarification.give_feedback)(uow, command)
    feedback = decided.last
    assert isinstance(feedback, FeedbackGiven)
    await store_documents(uow.conn, [documents.unit_letter(decided.state, feedback)])
    return answer(decided)


async def hold_round(uow: UnitOfWork, command: HoldRound) -> dict[str, Any]:
    """集中澄清: every approved matter of the jurisdiction clarified, and the round recorded, in ONE
    unit of work (all or nothing)."""
    jurisdiction = command.jurisdiction
    # Round first, then matters in case id order: every writer takes its locks in one order.
    quarter_round = await uow.get(Round(jurisdiction, command.quarter))
    matters: dict[str, Clarification] = {}
    for case_id in await projections.approved_matters(uow.conn, jurisdiction):
        matter = await uow.get(Clarification(case_id))
        if matter.jurisdiction == jurisdiction:
            matters[case_id] = matter
    plan = plan_round(list(matters.values()), command, round_exists=quarter_round.exists)
    for case_id, events in plan.performed.items():
        await uow.save(matters[case_id], events)
        await issue_clarification(uow, matters[case_id], events[0])
    await uow.save(quarter_round, [plan.held])
    log.info(
        "clarification.round_held",
        round_id=quarter_round.stream_id,
        matters=plan.held.matters,
        skipped=list(plan.skipped),
    )
    return {
        "round_id": quarter_round.stream_id,
        "event": "QuarterlyRoundHeld",
        **plan.held.model_dump(mode="json"),
        # Approved matters left for later: their 澄清内容 is not approved yet.
        "skipped": [{"case_id": c, "code": "content_not_approved"} for c in plan.skipped],
    }


# --- Reactions to other services' events ---------------------------------------------------------
# A matter is named by the foreign event; a stream not started yet lies in the event's jurisdiction.


async def on_conclusion(
    runtime: Runtime, conn: Conn, envelope: EventEnvelope, concluded: VerificationConcluded
) -> None:
    """A verification's conclusion (or its revision) feeds the pool: each person (or unit) the
    matter names has a clarification of its own (`person_matter_id`), noted in one unit of work."""
    pool_since = pool_settings().pool_since

    async def note(uow: UnitOfWork, concluded: VerificationConcluded) -> None:
        main = await uow.get(Clarification(envelope.case_id, envelope.jurisdiction))
        for index, subject in enumerate(concluded.subjects):
            matter = main if index == 0 else await uow.get(person_matter(envelope, index))
            legacy = main.outcome is not None and main.person_subject_id is None
            person = None if legacy else subject.subject_id
            if index == 0:
                await uow.save(main, main.note_outcome(concluded, pool_since, person))
                continue
            if person is None:
                break  # a clarification noted before several persons keeps all of them
            if not matter.exists:
                # Their applications made before the conclusion were kept on the matter's first.
                for noted in main.applications.values():
                    if noted.applicant.subject_id == subject.subject_id:
                        await uow.save(matter, matter.note_application(inherited(noted, envelope.case_id)))
            await uow.save(matter, matter.note_outcome(concluded, pool_since, person))

    await runtime.react(conn, envelope, note, concluded)


def person_matter(envelope: EventEnvelope, index: int) -> Clarification:
    return Clarification(person_matter_id(envelope.case_id, index), envelope.jurisdiction)


def inherited(noted: ApplicationNoted, matter_id: str) -> ClarificationApplicationFiled:
    """An application kept on the matter's first clarification, as the person's own will take it."""
    return ClarificationApplicationFiled(
        application_id=noted.application_id,
        matter_id=matter_id,
        applicant=noted.applicant,
        untrue_points=noted.untrue_points,
        request=noted.request,
        filed_on=noted.filed_on,
    )


async def on_sweep(
    runtime: Runtime, conn: Conn, envelope: EventEnvelope, screened: CandidateScreened
) -> None:
    """The backlog sweep (大起底) flags priority, for every person of the matter."""

    async def note(uow: UnitOfWork, screened: CandidateScreened) -> None:
        main = await uow.get(Clarification(envelope.case_id, envelope.jurisdiction))
        await uow.save(main, main.note_sweep(screened))
        for index in persons_after_the_first(main):
            matter = await uow.get(person_matter(envelope, index))
            await uow.save(matter, matter.note_sweep(screened))

    await runtime.react(conn, envelope, note, screened)


def persons_after_the_first(main: Clarification) -> range:
    """The indexes of the matter's other persons, each with a clarification of their own (none
    before the conclusion, or for a clarification noted before several persons)."""
    if main.outcome is None or main.person_subject_id is None:
        return range(0)
    return range(1, len(main.outcome.subjects))


async def on_application(
    runtime: Runtime, conn: Conn, envelope: EventEnvelope, filed: ClarificationApplicationFiled
) -> None:
    """A green-channel application (绿色通道), whenever it arrives: to the applicant's own
    clarification once the conclusion named the matter's persons, else to the matter's first."""

    async def note(uow: UnitOfWork, filed: ClarificationApplicationFiled) -> None:
        main = await uow.get(Clarification(filed.matter_id, envelope.jurisdiction))
        target = main
        for index in persons_after_the_first(main):
            assert main.outcome is not None
            if main.outcome.subjects[index].subject_id == filed.applicant.subject_id:
                target = await uow.get(
                    Clarification(person_matter_id(filed.matter_id, index), envelope.jurisdiction)
                )
        await uow.save(target, target.note_application(filed))

    await runtime.react(conn, envelope, note, filed)
