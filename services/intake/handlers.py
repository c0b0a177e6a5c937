"""Intake commands and reactions: load the report, decide with the domain, record the events."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import date
from typing import Any

from pydantic import BaseModel

from services.intake import projections
from services.intake.domain import (
    REPORTER_FIELD,
    AllegationDraft,
    NoticeKind,
    OverdueItem,
    Report,
    ReporterIdentity,
    application_id,
    application_stream_id,
    check_reporter,
    check_subjects,
    file_application,
    number_allegations,
    overdue,
    stream_id,
)
from services.intake.inbound import InboundMessageError, InboundReportV1, load_private_key, open_sealed
from shared.auth import Principal
from shared.consumer import DeadLetter
from shared.crypto import FieldCipher
from shared.db import Conn
from shared.envelope import Actor, EventEnvelope
from shared.errors import ConcurrencyError, Conflict, DomainError, KeyErased, NotFound
from shared.events.common import Channel, Subject
from shared.events.review import VerificationConcluded
from shared.http import CommandContext
from shared.logging import get_logger
from shared.runtime import Runtime, UnitOfWork, system_actor

log = get_logger(__name__)

SERVICE = "intake"
READ_ROLES = ("letters_office", "handling_department", "case_trial", "case_management", "head", "auditor")
# Reactions that lose a race with a command on the same report load it again and decide again.
REACTION_ATTEMPTS = 5


async def _load(uow: UnitOfWork, report_id: str) -> tuple[Report, int] | None:
    events = await uow.load(stream_id(report_id))
    if not events:
        return None
    report = Report.rebuild(report_id, events[0][0].jurisdiction, (p for _, p in events))
    return report, len(events)


async def _load_visible(uow: UnitOfWork, report_id: str, principal: Principal) -> tuple[Report, int]:
    """A report the caller may act on; another jurisdiction's report does not exist for them."""
    loaded = await _load(uow, report_id)
    if loaded is None or not principal.sees(loaded[0].jurisdiction):
        raise NotFound(f"no report {report_id}")
    return loaded


async def _record(
    uow: UnitOfWork,
    report: Report,
    version: int,
    payloads: Sequence[BaseModel],
    *,
    actor: Actor,
    correlation_id: uuid.UUID,
    causation_id: uuid.UUID | None = None,
) -> None:
    await uow.record(
        stream_id(report.report_id),
        version,
        payloads,
        case_id=report.report_id,
        jurisdiction=report.jurisdiction,
        actor=actor,
        correlation_id=correlation_id,
        causation_id=causation_id,
    )
    for payload in payloads:
        report.apply(payload)


# ---- registration ---------------------------------------------------------------------------


async def _register(
    uow: UnitOfWork,
    cipher: FieldCipher,
    *,
    jurisdiction: str,
    channel: Channel,
    received_on: date,
    real_name: bool,
    reporter: ReporterIdentity | None,
    subjects: Sequence[Subject],
    allegations: Sequence[AllegationDraft],
    summary: str,
    actor: Actor,
    correlation_id: uuid.UUID,
    causation_id: uuid.UUID | None = None,
    source_agency: str | None = None,
    source_reference: str | None = None,
) -> str:
    check_reporter(real_name, reporter)
    check_subjects(subjects)
    numbered = number_allegations(allegations)
    report_id = await projections.next_report_id(uow.conn, jurisdiction, received_on.year)
    sealed = None
    if reporter is not None:
        # A key of its own per reporter: destroying it erases this reporter and no one else.
        sealed = await cipher.seal(
            uow.conn, f"reporter-{uuid.uuid4().hex}", reporter.model_dump_json(), field=REPORTER_FIELD
        )
    received = Report.register(
        report_id=report_id,
        channel=channel,
        received_on=received_on,
        real_name=real_name,
        reporter=sealed,
        subjects=subjects,
        allegations=numbered,
        summary=summary,
        source_agency=source_agency,
        source_reference=source_reference,
    )
    await uow.record(
        stream_id(report_id),
        0,
        [received],
        case_id=report_id,
        jurisdiction=jurisdiction,
        actor=actor,
        correlation_id=correlation_id,
        causation_id=causation_id,
    )
    return report_id


async def register_report(
    runtime: Runtime,
    ctx: CommandContext,
    *,
    jurisdiction: str,
    channel: Channel,
    received_on: date,
    real_name: bool,
    reporter: ReporterIdentity | None,
    subjects: Sequence[Subject],
    allegations: Sequence[AllegationDraft],
    summary: str,
) -> Report:
    """接收: register a report from any channel; the identity is sealed before the event exists."""
    async with runtime.unit_of_work() as uow:
        report_id = await _register(
            uow,
            runtime.cipher,
            jurisdiction=jurisdiction,
            channel=channel,
            received_on=received_on,
            real_name=real_name,
            reporter=reporter,
            subjects=subjects,
            allegations=allegations,
            summary=summary,
            actor=ctx.principal.actor(),
            correlation_id=ctx.correlation_id,
        )
        loaded = await _load(uow, report_id)
    assert loaded is not None
    return loaded[0]


# ---- disposition ----------------------------------------------------------------------------


async def _decide(
    runtime: Runtime, ctx: CommandContext, report_id: str, decide: Callable[[Report], Sequence[BaseModel]]
) -> Report:
    """A plain command on one report: load it (visible to the caller), decide, record."""
    async with runtime.unit_of_work() as uow:
        report, version = await _load_visible(uow, report_id, ctx.principal)
        await _record(
            uow,
            report,
            version,
            decide(report),
            actor=ctx.principal.actor(),
            correlation_id=ctx.correlation_id,
        )
    return report


async def log_report(runtime: Runtime, ctx: CommandContext, report_id: str, logged_on: date) -> Report:
    """登记."""
    return await _decide(runtime, ctx, report_id, lambda r: r.log(logged_on))


async def accept_report(runtime: Runtime, ctx: CommandContext, report_id: str, accepted_on: date) -> Report:
    """受理."""
    return await _decide(runtime, ctx, report_id, lambda r: r.accept(accepted_on))


async def send_up(
    runtime: Runtime, ctx: CommandContext, report_id: str, sent_on: date, to_jurisdiction: str
) -> Report:
    """报送上级."""
    return await _decide(runtime, ctx, report_id, lambda r: r.send_up(sent_on, to_jurisdiction))


async def send_down(
    runtime: Runtime, ctx: CommandContext, report_id: str, sent_on: date, to_jurisdiction: str
) -> Report:
    """转送下级: this report records the transfer and the county gets a report of its own."""
    async with runtime.unit_of_work() as uow:
        report, version = await _load_visible(uow, report_id, ctx.principal)
        # A rejected decision rolls this number back with the rest of the transaction.
        lower_id = await projections.next_report_id(uow.conn, to_jurisdiction, sent_on.year)
        sent, lower = report.send_down(sent_on, to_jurisdiction, lower_id)
        actor = ctx.principal.actor()
        await _record(uow, report, version, [sent], actor=actor, correlation_id=ctx.correlation_id)
        await uow.record(
            stream_id(lower_id),
            0,
            [lower],
            case_id=lower_id,
            jurisdiction=to_jurisdiction,
            actor=actor,
            correlation_id=ctx.correlation_id,
            causation_id=uow.recorded[-1].event_id,
        )
    return report


async def merge_as_repeat(
    runtime: Runtime, ctx: CommandContext, report_id: str, merged_on: date, repeats_matter_id: str
) -> Report:
    """重复件: merge into the matter it repeats; a result already due there is due to it too."""
    async with runtime.unit_of_work() as uow:
        report, version = await _load_visible(uow, report_id, ctx.principal)
        matter = await _load(uow, repeats_matter_id)
        actor = ctx.principal.actor()
        merged = report.merge_into(merged_on, matter[0] if matter else None)
        await _record(uow, report, version, merged, actor=actor, correlation_id=ctx.correlation_id)
        assert report.repeats_matter_id is not None
        concluded_on = await projections.conclusion_of(uow.conn, report.repeats_matter_id)
        if concluded_on is not None:
            await _settle_result_due(
                uow, report.repeats_matter_id, concluded_on, actor, ctx.correlation_id, None
            )
    return report


async def hand_over(
    runtime: Runtime, ctx: CommandContext, report_id: str, handed_on: date, department: str
) -> Report:
    """移送承办."""
    async with runtime.unit_of_work() as uow:
        report, version = await _load_visible(uow, report_id, ctx.principal)
        repeat_count = len(await projections.repeats_of(uow.conn, report_id))
        await _record(
            uow,
            report,
            version,
            report.hand_over(handed_on, department, repeat_count),
            actor=ctx.principal.actor(),
            correlation_id=ctx.correlation_id,
        )
    return report


async def notify_reporter(
    runtime: Runtime, ctx: CommandContext, report_id: str, kind: NoticeKind, notified_on: date
) -> Report:
    """A real-name reporter was told of acceptance or of the result."""
    return await _decide(runtime, ctx, report_id, lambda r: r.notify(kind, notified_on))


# ---- reporter erasure -----------------------------------------------------------------------


async def erase_reporter(
    runtime: Runtime, ctx: CommandContext, reporter_subject_id: str, erased_on: date
) -> list[str]:
    """Crypto-shredding: destroy the reporter's key and say so on every report of theirs."""
    async with runtime.unit_of_work() as uow:
        reports = await projections.reports_of_reporter(uow.conn, reporter_subject_id)
        if not any(ctx.principal.sees(j) for _, j in reports):
            raise NotFound(f"no reporter {reporter_subject_id}")
        destroyed = await runtime.cipher.erase(uow.conn, reporter_subject_id, erased_by=ctx.principal.user_id)
        marked: list[str] = []
        for report_id, _ in reports:
            loaded = await _load(uow, report_id)
            assert loaded is not None
            report, version = loaded
            erased = report.erase_reporter(erased_on)
            await _record(
                uow, report, version, erased, actor=ctx.principal.actor(), correlation_id=ctx.correlation_id
            )
            if erased:
                marked.append(report_id)
        if not destroyed and not marked:
            raise Conflict(f"reporter {reporter_subject_id} is already erased", code="already_recorded")
    return marked


# ---- green channel --------------------------------------------------------------------------


async def file_clarification_application(
    runtime: Runtime,
    ctx: CommandContext,
    *,
    jurisdiction: str,
    matter_id: str,
    applicant: Subject,
    untrue_points: Sequence[str],
    request: str,
    filed_on: date,
) -> dict[str, Any]:
    """绿色通道: register the reported person's written application for clarification."""
    async with runtime.unit_of_work() as uow:
        loaded = await _load(uow, matter_id)
        n = await projections.application_count(uow.conn, matter_id) + 1
        app_id = application_id(matter_id, n)
        filed = file_application(
            loaded[0] if loaded else None,
            jurisdiction=jurisdiction,
            application_id=app_id,
            applicant=applicant,
            untrue_points=untrue_points,
            request=request,
            filed_on=filed_on,
        )
        await uow.record(
            application_stream_id(app_id),
            0,
            [filed],
            case_id=matter_id,
            jurisdiction=jurisdiction,
            actor=ctx.principal.actor(),
            correlation_id=ctx.correlation_id,
        )
    return filed.model_dump(mode="json")


# ---- reactions ------------------------------------------------------------------------------


async def _settle_result_due(
    uow: UnitOfWork,
    matter_id: str,
    concluded_on: date,
    actor: Actor,
    correlation_id: uuid.UUID,
    causation_id: uuid.UUID | None,
) -> None:
    """Record the result notice due on the matter's report and on each repeat merged into it,
    where the reporter is real-name and it is not recorded yet (so any order converges)."""
    for report_id in [matter_id, *await projections.repeats_of(uow.conn, matter_id)]:
        loaded = await _load(uow, report_id)
        if loaded is None:
            continue  # review knows matters intake never had (e.g. the backlog sweep)
        report, version = loaded
        await _record(
            uow,
            report,
            version,
            report.result_due(concluded_on),
            actor=actor,
            correlation_id=correlation_id,
            causation_id=causation_id,
        )


async def _react(conn: Conn, attempt: Callable[[], Awaitable[None]]) -> None:
    """Run a reaction in a savepoint; when a command wins a race on the same stream, try again."""
    for remaining in range(REACTION_ATTEMPTS - 1, -1, -1):
        try:
            async with conn.transaction():
                await attempt()
            return
        except ConcurrencyError:
            if remaining == 0:
                raise
            log.info("reaction.retry_after_conflict")


async def on_verification_concluded(
    runtime: Runtime, conn: Conn, envelope: EventEnvelope, concluded: VerificationConcluded
) -> None:
    """办结 in review: the real-name reporters of the matter (and of its repeats) are owed the result."""
    matter_id = envelope.case_id

    async def attempt() -> None:
        concluded_on = await projections.record_conclusion(
            conn, matter_id, envelope.jurisdiction, concluded.concluded_on
        )
        await _settle_result_due(
            runtime.unit_of_work_on(conn),
            matter_id,
            concluded_on,
            system_actor(SERVICE),
            envelope.correlation_id,
            envelope.event_id,
        )

    await _react(conn, attempt)


async def register_inbound(
    runtime: Runtime, conn: Conn, envelope: EventEnvelope, message: InboundReportV1
) -> str:
    """其他机关移送: register a report another agency transferred; its identity is opened with
    intake's key only to be sealed again under the reporter's own key."""
    if message.jurisdiction not in runtime.jurisdictions:
        raise DeadLetter("invalid_event", f"jurisdiction {message.jurisdiction} is not served here")
    known = await projections.report_from_source(conn, message.source_agency, message.source_reference)
    if known is not None:
        # The agency sent the same report again under a new message id: one report is enough.
        log.info("inbound.already_registered", report_id=known)
        return known
    reporter = None
    if message.reporter_sealed is not None:
        try:
            reporter = open_sealed(message.reporter_sealed, load_private_key())
        except InboundMessageError as exc:
            raise DeadLetter("invalid_event", str(exc)) from exc
    try:
        report_id = await _register(
            runtime.unit_of_work_on(conn),
            runtime.cipher,
            jurisdiction=message.jurisdiction,
            channel="agency_transfer",
            received_on=message.received_on,
            real_name=message.real_name,
            reporter=reporter,
            subjects=message.subjects,
            allegations=message.allegations,
            summary=message.summary,
            actor=envelope.actor,
            correlation_id=envelope.correlation_id,
            causation_id=envelope.event_id,
            source_agency=message.source_agency,
            source_reference=message.source_reference,
        )
    except DomainError as exc:
        raise DeadLetter("invalid_event", f"{exc.code}: {exc.detail}") from exc
    log.info("inbound.registered", report_id=report_id)
    return report_id


# ---- queries --------------------------------------------------------------------------------


def reporter_view(
    principal: Principal, report: Report, opened: dict[str, Any] | None
) -> dict[str, Any] | None:
    """What of the reporter a caller sees: the identity only for the letters office."""
    if principal.role != "letters_office":
        return {"masked": True}
    if report.reporter is None:
        return None
    if report.reporter_erased or opened is None:
        return {"erased": True}
    return opened


async def report_detail(runtime: Runtime, principal: Principal, report_id: str) -> dict[str, Any]:
    """One report with its state, dates, deadlines, repeats and applications."""
    async with runtime.pool.acquire() as conn:
        uow = runtime.unit_of_work_on(conn)
        loaded = await _load(uow, report_id)
        if loaded is None or not principal.sees(loaded[0].jurisdiction):
            raise NotFound(f"no report {report_id}")
        report = loaded[0]
        opened: dict[str, Any] | None = None
        if principal.role == "letters_office" and report.reporter is not None and not report.reporter_erased:
            try:
                opened = ReporterIdentity.model_validate_json(
                    await runtime.cipher.open(conn, report.reporter, field=REPORTER_FIELD)
                ).model_dump()
            except KeyErased:
                opened = None
        repeats = await projections.repeats_of(conn, report_id)
        applications = await projections.applications_of(conn, report_id)
    return {
        **report_state(report),
        # The pseudonym links a reporter's reports: only the letters office needs it (to erase).
        "reporter_subject_id": report.reporter_subject_id if principal.role == "letters_office" else None,
        "reporter": reporter_view(principal, report, opened),
        "repeats": repeats,
        "applications": applications,
    }


def report_state(report: Report) -> dict[str, Any]:
    """A report as commands answer it: state, dates and deadlines (never the reporter)."""
    return {
        "report_id": report.report_id,
        "jurisdiction": report.jurisdiction,
        "state": report.state,
        "channel": report.channel,
        "received_on": report.received_on,
        "real_name": report.real_name,
        "reporter_subject_id": report.reporter_subject_id,
        "subjects": [s.model_dump(mode="json") for s in report.subjects],
        "allegations": [a.model_dump(mode="json") for a in report.allegations],
        "summary": report.summary,
        "source_agency": report.source_agency,
        "source_reference": report.source_reference,
        "logged_on": report.logged_on,
        "accepted_on": report.accepted_on,
        "disposed_on": report.disposed_on,
        "sent_to": report.sent_to,
        "lower_report_id": report.lower_report_id,
        "repeats_matter_id": report.repeats_matter_id,
        "handed_on": report.handed_on,
        "department": report.department,
        "concluded_on": report.concluded_on,
        "notified": dict(report.notified),
        "reporter_erased": report.reporter_erased,
        "deadlines": {
            "disposition_due": report.disposition_due,
            "acceptance_notice_due": report.acceptance_notice_due,
            "sent_down_response_due": report.response_due,
            "result_notice_due": report.result_notice_due,
        },
    }


async def list_reports(
    runtime: Runtime, jurisdiction: str, state: str | None, limit: int, offset: int
) -> list[dict[str, Any]]:
    async with runtime.pool.acquire() as conn:
        return await projections.list_reports(conn, jurisdiction, state, limit, offset)


async def overdue_list(runtime: Runtime, jurisdiction: str, as_of: date) -> list[OverdueItem]:
    """Everything of a jurisdiction that is late at `as_of`, the longest overdue first."""
    async with runtime.pool.acquire() as conn:
        facts = await projections.deadlines(conn, jurisdiction)
    items = [item for report in facts for item in overdue(report, as_of)]
    return sorted(items, key=lambda i: (i.due_on, i.report_id, i.kind))
