"""Clarification handlers: the commands that render documents (stored in the same transaction, never
by replay) or decide over many matters, and the reactions to review's and intake's events; the
other commands of the chain are plain decisions (api.py)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

from services.clarification import projections
from services.clarification.commands import Approve, HoldRound, Perform
from services.clarification.documents import Document, approval_form, clarification_documents
from services.clarification.domain import Clarification, Round, plan_round
from services.clarification.settings import ClarificationSettings
from shared.db import Conn
from shared.envelope import EventEnvelope
from shared.events.clarification import ClarificationApproved, ClarificationPerformed
from shared.events.intake import ClarificationApplicationFiled
from shared.events.review import CandidateScreened, VerificationConcluded
from shared.logging import get_logger
from shared.runtime import Decided, Runtime, UnitOfWork, decision

log = get_logger(__name__)


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


async def store_documents(conn: Conn, documents: Iterable[Document]) -> None:
    await conn.executemany(
        "INSERT INTO documents (doc_id, case_id, kind, title, body, created_on)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        [(d.doc_id, d.case_id, d.kind, d.title, d.body, d.created_on) for d in documents],
    )


async def issue_clarification(uow: UnitOfWork, matter: Clarification, performed: BaseModel) -> None:
    """The 澄清通知书 and the 关于失实检举控告澄清的函 of a clarification just recorded."""
    assert isinstance(performed, ClarificationPerformed)
    documents = clarification_documents(matter.case_id, matter.jurisdiction, performed)
    await store_documents(uow.conn, documents)


# --- Commands ------------------------------------------------------------------------------------


async def approve(uow: UnitOfWork, command: Approve, *, case_id: str) -> dict[str, Any]:
    """Approval, with the 失实检举控告澄清审批表 rendered and kept in the same transaction."""
    approver = uow.cause.principal
    assert approver is not None, "approval is a command, never a reaction"

    def by_approver(matter: Clarification, command: Approve) -> list[BaseModel]:
        return matter.approve(command, approver)

    decided = await decision(Clarification(case_id), by_approver)(uow, command)
    approved = decided.last
    assert isinstance(approved, ClarificationApproved)
    form = approval_form(decided.state, decided.state.jurisdiction, approved)
    await store_documents(uow.conn, [form])
    return answer(decided, documents=[form.doc_id])


async def perform(uow: UnitOfWork, command: Perform, *, case_id: str) -> dict[str, Any]:
    """澄清, issuing the 澄清通知书 and the 关于失实检举控告澄清的函."""
    decided = await decision(Clarification(case_id), Clarification.perform)(uow, command)
    await issue_clarification(uow, decided.state, decided.last)
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
    log.info("clarification.round_held", round_id=quarter_round.stream_id, matters=plan.held.matters)
    return {
        "round_id": quarter_round.stream_id,
        "event": "QuarterlyRoundHeld",
        **plan.held.model_dump(mode="json"),
    }


# --- Reactions to other services' events ---------------------------------------------------------
# A matter is named by the foreign event; a stream not started yet lies in the event's jurisdiction.


async def on_conclusion(
    runtime: Runtime, conn: Conn, envelope: EventEnvelope, concluded: VerificationConcluded
) -> None:
    """A verification's conclusion feeds the pool."""
    pool_since = ClarificationSettings().pool_since

    def note(matter: Clarification, concluded: VerificationConcluded) -> list[BaseModel]:
        return matter.note_outcome(concluded, pool_since)

    matter = Clarification(envelope.case_id, envelope.jurisdiction)
    await runtime.react(conn, envelope, decision(matter, note), concluded)


async def on_sweep(
    runtime: Runtime, conn: Conn, envelope: EventEnvelope, screened: CandidateScreened
) -> None:
    """The backlog sweep (大起底) flags priority."""
    matter = Clarification(envelope.case_id, envelope.jurisdiction)
    await runtime.react(conn, envelope, decision(matter, Clarification.note_sweep), screened)


async def on_application(
    runtime: Runtime, conn: Conn, envelope: EventEnvelope, filed: ClarificationApplicationFiled
) -> None:
    """A green-channel application (绿色通道), whenever it arrives."""
    matter = Clarification(filed.matter_id, envelope.jurisdiction)
    await runtime.react(conn, envelope, decision(matter, Clarification.note_application), filed)
