"""Intake commands and reactions that need more than one report, or more than a report: matter
numbers, read-model facts, the cipher. A plain command is a decision of the domain (see api.py)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from functools import partial
from typing import Any

from services.intake import disclosure, projections
from services.intake.commands import (
    EraseReporter,
    FeedBackObjection,
    FileApplication,
    HandOver,
    IdentityCheck,
    LodgeObjection,
    MergeAsRepeat,
    RegisterReport,
    ReporterIdentity,
    SendDown,
)
from services.intake.domain import REPORTER_FIELD, Application, Report
from services.intake.inbound import InboundMessageError, InboundReportV1, load_private_key, open_sealed
from shared.auth import Principal
from shared.consumer import DeadLetter
from shared.crypto import FieldCipher
from shared.db import Conn
from shared.envelope import EventEnvelope
from shared.errors import Conflict, KeyErased, NotFound
from shared.events.review import ObjectionExamined, VerificationConcluded
from shared.identity import deployment_id_number_key
from shared.logging import get_logger
from shared.runtime import Runtime, UnitOfWork, decision, evolved

log = get_logger(__name__)


# ---- registration ---------------------------------------------------------------------------


async def register_report(uow: UnitOfWork, command: RegisterReport) -> Report:
    """接收: register a report from any channel; the identity is sealed before the event exists."""
    report_id = await projections.next_report_id(uow.conn, command.jurisdiction, command.received_on.year)
    report = Report(report_id, command.jurisdiction)
    sealed = None
    if command.reporter is not None:
        # A key of its own per reporter: destroying it erases this reporter and no one else.
        subject_id = f"reporter-{uuid.uuid4().hex}"
        sealed = await uow.cipher.seal(
            uow.conn, subject_id, command.reporter.model_dump_json(), field=REPORTER_FIELD
        )
    # The deployment's key only when a number is to be keyed (it reads the master key).
    numbered = any(subject.id_number for subject in command.subjects)
    key = deployment_id_number_key() if numbered else None
    await uow.save(report, report.register(command, sealed, id_number_key=key))
    return report


# ---- disposition ----------------------------------------------------------------------------


async def send_down(uow: UnitOfWork, command: SendDown, *, report_id: str) -> Report:
    """转送下级: this report records the transfer and the county gets a report of its own."""
    report = await uow.get_visible(Report(report_id))
    # A rejected decision rolls this number back with the rest of the transaction.
    lower_id = await projections.next_report_id(uow.conn, command.to_jurisdiction, command.sent_on.year)
    sent, received = report.send_down(command, lower_id)
    [recorded] = await uow.save(report, [sent])
    await uow.save(Report(lower_id, command.to_jurisdiction), [received], causation_id=recorded.event_id)
    return report


async def merge_as_repeat(uow: UnitOfWork, command: MergeAsRepeat, *, report_id: str) -> Report:
    """重复件: merge into the matter it repeats; a result already due there is due to it too."""
    report = await uow.get_visible(Report(report_id))
    matter = await uow.get(Report(command.repeats_matter_id))
    await uow.save(report, report.merge_into(command, matter if matter.exists else None))
    assert report.repeats_matter_id is not None
    concluded_on = await projections.conclusion_of(uow.conn, report.repeats_matter_id)
    if concluded_on is not None:
        await settle_result_due(uow, report.repeats_matter_id, concluded_on)
    return report


async def hand_over(uow: UnitOfWork, command: HandOver, *, report_id: str) -> Report:
    """移送承办, telling the handling department how many repeats the matter has."""
    report = await uow.get_visible(Report(report_id))
    repeat_count = len(await projections.repeats_of(uow.conn, report_id))
    await uow.save(report, report.hand_over(command, repeat_count))
    return report


# ---- reporter erasure -----------------------------------------------------------------------


async def erase_reporter(uow: UnitOfWork, command: EraseReporter, *, reporter_subject_id: str) -> list[str]:
    """Crypto-shredding: destroy the reporter's key and say so on every report of theirs."""
    principal = uow.cause.principal
    assert principal is not None  # a command's caller
    reports = await projections.reports_of_reporter(uow.conn, reporter_subject_id)
    if not any(principal.sees(j) for _, j in reports):
        raise NotFound(
            f"no reporter {reporter_subject_id}", detail_zh=f"没有检举控告人 {reporter_subject_id}"
        )
    destroyed = await uow.cipher.erase(uow.conn, reporter_subject_id, erased_by=principal.user_id)
    marked: list[str] = []
    for report_id, _ in reports:
        report = await uow.get(Report(report_id))
        if await uow.save(report, report.erase_reporter(command)):
            marked.append(report_id)
    if not destroyed and not marked:
        raise Conflict(
            f"reporter {reporter_subject_id} is already erased",
            detail_zh=f"检举控告人 {reporter_subject_id} 的身份信息已经销毁",
            code="already_recorded",
        )
    return marked


# ---- green channel --------------------------------------------------------------------------


async def file_application(uow: UnitOfWork, command: FileApplication) -> dict[str, Any]:
    """绿色通道: register the reported person's written application for clarification."""
    matter = await uow.get(Report(command.matter_id))
    number = await projections.application_count(uow.conn, command.matter_id) + 1
    application = Application(command.matter_id, number, command.jurisdiction)
    await uow.save(application, application.file(command, matter if matter.exists else None))
    assert application.filed is not None
    return application.filed.model_dump(mode="json")


# ---- 异议: the real-name reporter's objection -----------------------------------------------


async def opened_reporter(conn: Conn, cipher: FieldCipher, report: Report) -> ReporterIdentity | None:
    """The report's reporter in clear, for the checks that keep it out of texts; None for an
    anonymous report or an erased reporter. It is compared with, never logged or answered."""
    if report.reporter is None or report.reporter_erased:
        return None
    try:
        return ReporterIdentity.model_validate_json(
            await cipher.open(conn, report.reporter, field=REPORTER_FIELD)
        )
    except KeyErased:
        return None


async def matter_reporters(
    conn: Conn, cipher: FieldCipher, report: Report, read: Callable[[Report], Awaitable[Report]]
) -> list[ReporterIdentity]:
    """Every reporter of the report's matter in clear: its own and those of the repeats merged
    into it (`read` brings a repeat to its state)."""
    reports = [report] + [await read(Report(r)) for r in await projections.repeats_of(conn, report.report_id)]
    return [reporter for r in reports if (reporter := await opened_reporter(conn, cipher, r)) is not None]


def _reader(uow: UnitOfWork) -> Callable[[Report], Awaitable[Report]]:
    """Reads a report in the unit of work without taking its case's lock (it is only read)."""

    async def read(report: Report) -> Report:
        return evolved(report, await uow.load(report.stream_id))

    return read


async def lodge_objection(uow: UnitOfWork, command: LodgeObjection, *, report_id: str) -> Report:
    """异议: the letters office records the reporter's objection with what is new."""
    report = await uow.get_visible(Report(report_id))
    reporters = await matter_reporters(uow.conn, uow.cipher, report, _reader(uow))
    await uow.save(report, report.lodge_objection(command, reporters))
    return report


async def feed_back_objection(
    uow: UnitOfWork, command: FeedBackObjection, *, report_id: str, objection_id: str
) -> Report:
    """反馈: the letters office told the reporter the result of the re-examination."""
    report = await uow.get_visible(Report(report_id))
    reporters = await matter_reporters(uow.conn, uow.cipher, report, _reader(uow))
    await uow.save(report, report.feed_back_objection(command, objection_id, reporters))
    return report


async def check_identity(
    runtime: Runtime, principal: Principal, report_id: str, check: IdentityCheck
) -> bool:
    """Does the text contain the name, contact or ID number of a reporter of the matter (its own,
    or of a repeat merged into it)? Asked by the handling department and the case-trial office
    before a text of theirs leaves them (a clarification's wording); each question is logged
    with who asked, never with the text."""
    async with runtime.pool.acquire() as conn:
        report = await runtime.read(conn, Report(report_id))
        if not report.exists or not report.visible_to(principal):
            raise report.missing()
        reporters = await matter_reporters(conn, runtime.cipher, report, partial(runtime.read, conn))
        contains = disclosure.reveals_any(check.text, reporters)
    log.info(
        "reporter.identity_checked",
        report_id=report_id,
        asked_by=principal.user_id,
        role=principal.role,
        characters=len(check.text),
        contains=contains,
    )
    return contains


# ---- reactions ------------------------------------------------------------------------------


async def settle_result_due(uow: UnitOfWork, matter_id: str, concluded_on: date) -> None:
    """Record the result notice due on the matter's report and on each repeat merged into it,
    where the reporter is real-name and it is not recorded yet (so any order converges)."""
    for report_id in [matter_id, *await projections.repeats_of(uow.conn, matter_id)]:
        report = await uow.get(Report(report_id))
        if report.exists:  # review knows matters intake never had (e.g. the backlog sweep)
            await uow.save(report, report.result_due(concluded_on))


async def on_verification_concluded(
    runtime: Runtime, conn: Conn, envelope: EventEnvelope, concluded: VerificationConcluded
) -> None:
    """办结 in review: the real-name reporters of the matter (and of its repeats) are owed the result."""

    async def conclude(uow: UnitOfWork, concluded: VerificationConcluded) -> None:
        matter_id = envelope.case_id
        concluded_on = await projections.record_conclusion(
            uow.conn, matter_id, envelope.jurisdiction, concluded.concluded_on
        )
        await settle_result_due(uow, matter_id, concluded_on)

    await runtime.react(conn, envelope, conclude, concluded)


async def on_objection_examined(
    runtime: Runtime, conn: Conn, envelope: EventEnvelope, examined: ObjectionExamined
) -> None:
    """The handling department re-examined an objection: the report records the answer, for the
    letters office to feed back (once, whatever the redeliveries)."""
    answer = decision(Report(envelope.case_id), Report.answer_objection)
    await runtime.react(conn, envelope, answer, examined)


async def register_inbound(
    runtime: Runtime, conn: Conn, envelope: EventEnvelope, message: InboundReportV1
) -> None:
    """其他机关移送: register a report another agency transferred; its identity is opened with
    intake's key only to be sealed again under the reporter's own key."""
    if message.jurisdiction not in runtime.jurisdictions:
        raise DeadLetter("invalid_event", f"jurisdiction {message.jurisdiction} is not served here")
    known = await projections.report_from_source(conn, message.source_agency, message.source_reference)
    if known is not None:
        # The agency sent the same report again under a new message id: one report is enough.
        log.info("inbound.already_registered", report_id=known)
        return
    reporter = None
    if message.reporter_sealed is not None:
        try:
            reporter = open_sealed(message.reporter_sealed, load_private_key())
        except InboundMessageError as exc:
            raise DeadLetter("invalid_event", str(exc)) from exc
    command = RegisterReport(
        jurisdiction=message.jurisdiction,
        channel="agency_transfer",
        received_on=message.received_on,
        real_name=message.real_name,
        reporter=reporter,
        subjects=message.subjects,
        allegations=message.allegations,
        summary=message.summary,
        source_agency=message.source_agency,
        source_reference=message.source_reference,
    )
    report = await runtime.react(conn, envelope, register_report, command, actor=envelope.actor)
    log.info("inbound.registered", report_id=report.report_id)
