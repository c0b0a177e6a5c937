"""Clarification handlers: each command and each reaction loads the matter, decides and records in
one unit of work; documents are rendered and stored in that same transaction (never by replay)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel

from services.clarification import projections
from services.clarification.documents import Document, approval_form, clarification_documents
from services.clarification.domain import (
    Clarification,
    plan_round,
    round_stream_id,
    stream_id,
)
from services.clarification.settings import ClarificationSettings
from shared.auth import Principal
from shared.db import Conn
from shared.envelope import EventEnvelope
from shared.errors import NotFound
from shared.events.clarification import ClarificationApproved, ClarificationPerformed
from shared.events.common import BadEffect, ClarificationForm
from shared.events.intake import ClarificationApplicationFiled
from shared.events.review import CandidateScreened, VerificationConcluded
from shared.http import CommandContext
from shared.logging import get_logger
from shared.runtime import Runtime, UnitOfWork, system_actor

log = get_logger(__name__)

SERVICE = "clarification"

Decide = Callable[[Clarification], list[BaseModel]]


async def lock_stream(conn: Conn, stream: str) -> None:
    """Writers of one stream take turns for the whole unit of work, so a reaction and a command (or
    two consumers of different topics) never decide on the same stale state."""
    key = int.from_bytes(hashlib.sha256(f"clarification:{stream}".encode()).digest()[:8], "big", signed=True)
    await conn.execute("SELECT pg_advisory_xact_lock($1)", key)


@dataclass
class Matter:
    """A matter's aggregate as loaded in a unit of work, with what recording needs."""

    clarification: Clarification
    jurisdiction: str | None
    version: int

    @property
    def case_id(self) -> str:
        return self.clarification.case_id


async def load(uow: UnitOfWork, case_id: str) -> Matter:
    stream = stream_id(case_id)
    await lock_stream(uow.conn, stream)
    events = await uow.load(stream)
    jurisdiction = events[0][0].jurisdiction if events else None
    return Matter(Clarification.rebuild(case_id, (p for _, p in events)), jurisdiction, len(events))


async def load_visible(uow: UnitOfWork, case_id: str, principal: Principal) -> tuple[Matter, str]:
    """The matter, or 404 when it does not exist or lies in a jurisdiction the caller lacks."""
    matter = await load(uow, case_id)
    if matter.jurisdiction is None or not principal.sees(matter.jurisdiction):
        raise NotFound(f"no clarification matter {case_id}")
    return matter, matter.jurisdiction


async def record(
    uow: UnitOfWork, matter: Matter, jurisdiction: str, events: list[BaseModel], ctx: CommandContext
) -> None:
    await uow.record(
        stream_id(matter.case_id),
        matter.version,
        events,
        case_id=matter.case_id,
        jurisdiction=jurisdiction,
        actor=ctx.principal.actor(),
        correlation_id=ctx.correlation_id,
    )
    for event in events:
        matter.clarification.apply(event)
    matter.version += len(events)
    log.info(
        "clarification.recorded",
        case_id=matter.case_id,
        events=[type(e).__name__ for e in events],
        state=matter.clarification.state,
    )


async def store_documents(conn: Conn, documents: Iterable[Document]) -> None:
    await conn.executemany(
        "INSERT INTO documents (doc_id, case_id, kind, title, body, created_on)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        [(d.doc_id, d.case_id, d.kind, d.title, d.body, d.created_on) for d in documents],
    )


def answer(matter: Matter, event: BaseModel, **extra: Any) -> dict[str, Any]:
    """What a command answers: the matter's state and the event it recorded."""
    return {
        "case_id": matter.case_id,
        "state": matter.clarification.state,
        "version": matter.version,
        "event": type(event).__name__,
        **event.model_dump(mode="json"),
        **extra,
    }


async def _command(runtime: Runtime, ctx: CommandContext, case_id: str, decide: Decide) -> dict[str, Any]:
    async with runtime.unit_of_work() as uow:
        matter, jurisdiction = await load_visible(uow, case_id, ctx.principal)
        events = decide(matter.clarification)
        await record(uow, matter, jurisdiction, events, ctx)
    return answer(matter, events[-1])


# --- Commands ------------------------------------------------------------------------------------


async def start(
    runtime: Runtime,
    ctx: CommandContext,
    case_id: str,
    *,
    initiated_by: Literal["department", "person"],
    person_subject_id: str,
    consent: bool,
    consent_note: str,
    started_on: date,
) -> dict[str, Any]:
    return await _command(
        runtime,
        ctx,
        case_id,
        lambda c: c.start(
            initiated_by=initiated_by,
            person_subject_id=person_subject_id,
            consent=consent,
            consent_note=consent_note,
            started_on=started_on,
        ),
    )


async def assess(
    runtime: Runtime,
    ctx: CommandContext,
    case_id: str,
    *,
    assessed_on: date,
    bad_effects: Sequence[BadEffect],
    effect_only_from_interviews: bool,
) -> dict[str, Any]:
    return await _command(
        runtime,
        ctx,
        case_id,
        lambda c: c.assess(
            assessed_on=assessed_on,
            bad_effects=bad_effects,
            effect_only_from_interviews=effect_only_from_interviews,
        ),
    )


async def re_review(
    runtime: Runtime,
    ctx: CommandContext,
    case_id: str,
    *,
    reviewed_on: date,
    verification_complete: bool,
    conclusion_clear: bool,
    disposal_adequate: bool,
    expected_effect: str,
    members: Mapping[str, str],
) -> dict[str, Any]:
    return await _command(
        runtime,
        ctx,
        case_id,
        lambda c: c.re_review(
            reviewed_on=reviewed_on,
            verification_complete=verification_complete,
            conclusion_clear=conclusion_clear,
            disposal_adequate=disposal_adequate,
            expected_effect=expected_effect,
            members=members,
        ),
    )


async def approve(
    runtime: Runtime, ctx: CommandContext, case_id: str, *, approved_on: date
) -> dict[str, Any]:
    """Approval, with the 失实检举控告澄清审批表 rendered and kept in the same transaction."""
    async with runtime.unit_of_work() as uow:
        matter, jurisdiction = await load_visible(uow, case_id, ctx.principal)
        events = matter.clarification.approve(
            approved_on=approved_on,
            approver=ctx.principal.user_id,
            approver_jurisdictions=ctx.principal.jurisdictions,
            jurisdiction=jurisdiction,
        )
        await record(uow, matter, jurisdiction, events, ctx)
        approved = events[0]
        assert isinstance(approved, ClarificationApproved)
        form = approval_form(matter.clarification, jurisdiction, approved)
        await store_documents(uow.conn, [form])
    return answer(matter, approved, documents=[form.doc_id])


async def _perform_and_issue(
    uow: UnitOfWork, matter: Matter, jurisdiction: str, events: list[BaseModel], ctx: CommandContext
) -> None:
    await record(uow, matter, jurisdiction, events, ctx)
    performed = events[0]
    assert isinstance(performed, ClarificationPerformed)
    await store_documents(uow.conn, clarification_documents(matter.case_id, jurisdiction, performed))


async def perform(
    runtime: Runtime,
    ctx: CommandContext,
    case_id: str,
    *,
    performed_on: date,
    forms: Sequence[ClarificationForm],
    scope: str,
) -> dict[str, Any]:
    """澄清, issuing the 澄清通知书 and the 关于失实检举控告澄清的函."""
    async with runtime.unit_of_work() as uow:
        matter, jurisdiction = await load_visible(uow, case_id, ctx.principal)
        events = matter.clarification.perform(performed_on=performed_on, forms=forms, scope=scope)
        await _perform_and_issue(uow, matter, jurisdiction, events, ctx)
    return answer(matter, events[-1])


async def give_feedback(
    runtime: Runtime,
    ctx: CommandContext,
    case_id: str,
    *,
    given_on: date,
    party_committee: str,
    unit_head: str,
) -> dict[str, Any]:
    return await _command(
        runtime,
        ctx,
        case_id,
        lambda c: c.give_feedback(given_on=given_on, party_committee=party_committee, unit_head=unit_head),
    )


async def acknowledge(
    runtime: Runtime, ctx: CommandContext, case_id: str, *, acknowledged_on: date, note: str
) -> dict[str, Any]:
    return await _command(
        runtime, ctx, case_id, lambda c: c.acknowledge(acknowledged_on=acknowledged_on, note=note)
    )


async def file(runtime: Runtime, ctx: CommandContext, case_id: str, *, filed_on: date) -> dict[str, Any]:
    return await _command(runtime, ctx, case_id, lambda c: c.file(filed_on=filed_on))


async def hold_round(
    runtime: Runtime,
    ctx: CommandContext,
    *,
    jurisdiction: str,
    quarter: str,
    held_on: date,
    forms: Sequence[ClarificationForm],
    scope: str,
) -> dict[str, Any]:
    """集中澄清: every approved matter of the jurisdiction clarified, and the round recorded, in ONE
    unit of work (all or nothing)."""
    round_id = round_stream_id(jurisdiction, quarter)
    async with runtime.unit_of_work() as uow:
        # Round first, then matters in case id order: every writer takes its locks in one order.
        await lock_stream(uow.conn, round_id)
        round_version = len(await uow.load(round_id))
        matters: dict[str, Matter] = {}
        for case_id in await projections.approved_matters(uow.conn, jurisdiction):
            matter = await load(uow, case_id)
            if matter.jurisdiction == jurisdiction:
                matters[case_id] = matter
        plan = plan_round(
            [m.clarification for m in matters.values()],
            round_exists=round_version > 0,
            jurisdiction=jurisdiction,
            quarter=quarter,
            held_on=held_on,
            forms=forms,
            scope=scope,
        )
        for case_id, events in plan.performed.items():
            await _perform_and_issue(uow, matters[case_id], jurisdiction, events, ctx)
        await uow.record(
            round_id,
            round_version,
            [plan.held],
            case_id=round_id,
            jurisdiction=jurisdiction,
            actor=ctx.principal.actor(),
            correlation_id=ctx.correlation_id,
        )
    log.info("clarification.round_held", round_id=round_id, matters=plan.held.matters)
    return {"round_id": round_id, "event": "QuarterlyRoundHeld", **plan.held.model_dump(mode="json")}


# --- Reactions to other services' events ---------------------------------------------------------


async def react(runtime: Runtime, conn: Conn, envelope: EventEnvelope, case_id: str, decide: Decide) -> None:
    """Record what a foreign event means for the matter, on the consumer's transaction."""
    uow = runtime.unit_of_work_on(conn)
    matter = await load(uow, case_id)
    events = decide(matter.clarification)
    if not events:
        log.info("clarification.nothing_new", case_id=case_id, event_type=envelope.event_type)
        return
    await uow.record(
        stream_id(case_id),
        matter.version,
        events,
        case_id=case_id,
        jurisdiction=matter.jurisdiction or envelope.jurisdiction,
        actor=system_actor(SERVICE),
        correlation_id=envelope.correlation_id,
        causation_id=envelope.event_id,
    )


async def on_review_event(runtime: Runtime, conn: Conn, envelope: EventEnvelope, payload: BaseModel) -> None:
    """A verification's conclusion feeds the pool; the backlog sweep flags priority."""
    if isinstance(payload, VerificationConcluded):
        concluded = payload
        await react(
            runtime,
            conn,
            envelope,
            envelope.case_id,
            lambda c: c.note_outcome(concluded, ClarificationSettings().pool_since),
        )
    elif isinstance(payload, CandidateScreened):
        screened = payload
        await react(runtime, conn, envelope, envelope.case_id, lambda c: c.note_sweep(screened))


async def on_intake_event(runtime: Runtime, conn: Conn, envelope: EventEnvelope, payload: BaseModel) -> None:
    """A green-channel application (绿色通道), whenever it arrives."""
    if isinstance(payload, ClarificationApplicationFiled):
        filed = payload
        await react(runtime, conn, envelope, filed.matter_id, lambda c: c.note_application(filed))
