"""Archive commands and reactions: file a clarification, record a return visit, issue the notice."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from services.archive import views
from services.archive.domain import (
    CaseFile,
    PersonnelNotice,
    Quarter,
    archive_stream,
    notice_stream,
)
from services.archive.settings import ArchiveSettings
from services.archive.views import NoticeView, VisitView
from shared.db import Conn
from shared.envelope import EventEnvelope
from shared.errors import NotFound
from shared.events.archive import PersonnelNoticeV1
from shared.events.clarification import ClarificationFiled
from shared.http import CommandContext
from shared.runtime import Runtime, system_actor
from shared.topics import personnel_notices_topic

SERVICE = "archive"


@dataclass(frozen=True)
class RecordVisit:
    """回访 done: what the visit found."""

    visit_id: str
    visited_on: date
    state_of_mind: str
    work: str
    leader_views: str
    colleague_views: str


@dataclass(frozen=True)
class IssueNotice:
    """The periodic notice to the organisation department of `jurisdiction`."""

    jurisdiction: str
    period: Quarter
    issued_on: date


async def file_clarification(
    runtime: Runtime,
    conn: Conn,
    envelope: EventEnvelope,
    filed: ClarificationFiled,
    settings: ArchiveSettings,
) -> None:
    """备案 in reaction to ClarificationFiled, on the consumer's transaction."""
    uow = runtime.unit_of_work_on(conn)
    stream = archive_stream(envelope.case_id)
    history = await uow.load(stream)
    case = CaseFile.rebuild(envelope.case_id, (payload for _, payload in history))
    new = case.file(
        filed,
        jurisdiction=envelope.jurisdiction,
        return_visit_working_days=settings.return_visit_working_days,
    )
    if not new:
        return
    await uow.record(
        stream,
        len(history),
        new,
        case_id=envelope.case_id,
        jurisdiction=envelope.jurisdiction,
        actor=system_actor(SERVICE),
        correlation_id=envelope.correlation_id,
        causation_id=envelope.event_id,
    )


async def record_visit(runtime: Runtime, ctx: CommandContext, command: RecordVisit) -> VisitView:
    async with runtime.unit_of_work() as uow:
        where = await views.visit_location(uow.conn, command.visit_id)
        # A visit of a jurisdiction the caller does not see answers as if it did not exist.
        if where is None or not ctx.principal.sees(where[1]):
            raise NotFound(f"no return visit {command.visit_id}", field="visit_id", code="visit_not_found")
        case_id, jurisdiction = where
        stream = archive_stream(case_id)
        history = await uow.load(stream)
        case = CaseFile.rebuild(case_id, (payload for _, payload in history))
        new = case.record_visit(
            command.visit_id,
            visited_on=command.visited_on,
            state_of_mind=command.state_of_mind,
            work=command.work,
            leader_views=command.leader_views,
            colleague_views=command.colleague_views,
        )
        await uow.record(
            stream,
            len(history),
            new,
            case_id=case_id,
            jurisdiction=jurisdiction,
            actor=ctx.principal.actor(),
            correlation_id=ctx.correlation_id,
        )
        recorded = await views.visit(uow.conn, command.visit_id)
    assert recorded is not None
    return recorded


async def issue_notice(runtime: Runtime, ctx: CommandContext, command: IssueNotice) -> NoticeView:
    """PersonnelNoticeIssued on the notice stream and, in the same transaction, the public
    PersonnelNoticeV1 in the outbox: the notice is sent exactly when it is recorded."""
    period = command.period
    stream = notice_stream(command.jurisdiction, period.label)
    async with runtime.unit_of_work() as uow:
        history = await uow.load(stream)
        notice = PersonnelNotice.rebuild(command.jurisdiction, period, (p for _, p in history))
        entries = await views.notice_entries(uow.conn, command.jurisdiction, period)
        new = notice.issue(command.issued_on, entries)
        await uow.record(
            stream,
            len(history),
            new,
            case_id=stream,
            jurisdiction=command.jurisdiction,
            actor=ctx.principal.actor(),
            correlation_id=ctx.correlation_id,
        )
        issued = new[0]
        await uow.publish(
            topic=personnel_notices_topic(command.jurisdiction),
            key=issued.notice_id,
            message=PersonnelNoticeV1(
                notice_id=issued.notice_id,
                jurisdiction=command.jurisdiction,
                period=issued.period,
                issued_on=issued.issued_on,
                entries=issued.entries,
            ),
        )
    return NoticeView(
        notice_id=issued.notice_id,
        jurisdiction=command.jurisdiction,
        period=issued.period,
        issued_on=issued.issued_on,
        entries=issued.entries,
    )
