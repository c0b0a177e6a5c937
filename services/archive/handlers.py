"""Archive commands and reactions: file a clarification, record a return visit, issue the notice."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from services.archive import views
from services.archive.commands import IssueNotice, MergeFiles, RecordVisit
from services.archive.domain import (
    CaseFile,
    FileMerge,
    PersonnelNotice,
    check_same_kind,
    check_two_files,
    parse_quarter,
)
from services.archive.settings import archive_settings
from services.archive.views import NoticeView, SubjectFile, VisitView
from shared.db import Conn
from shared.envelope import EventEnvelope
from shared.errors import NotFound
from shared.events.archive import PersonnelNoticeV1
from shared.events.clarification import ClarificationFiled
from shared.runtime import Runtime, UnitOfWork, decision
from shared.topics import personnel_notices_topic


async def file_clarification(
    runtime: Runtime, conn: Conn, envelope: EventEnvelope, filed: ClarificationFiled
) -> None:
    """备案 in reaction to ClarificationFiled: a case file of the matter's jurisdiction."""
    working_days = archive_settings().return_visit_working_days

    def file(case: CaseFile, filed: ClarificationFiled) -> list[BaseModel]:
        return case.file(filed, return_visit_working_days=working_days)

    await runtime.react(
        conn, envelope, decision(CaseFile(envelope.case_id, envelope.jurisdiction), file), filed
    )


async def record_visit(uow: UnitOfWork, visit: RecordVisit, *, visit_id: str) -> VisitView:
    where = await views.visit_location(uow.conn, visit_id)
    # A visit of a jurisdiction the caller does not see answers as if it did not exist.
    principal = uow.cause.principal
    if where is None or (principal is not None and not principal.sees(where[1])):
        raise NotFound(
            f"no return visit {visit_id}",
            detail_zh=f"没有回访 {visit_id}",
            field="visit_id",
            code="visit_not_found",
        )
    case = await uow.get(CaseFile(where[0]))
    await uow.save(case, case.record_visit(visit_id, visit))
    recorded = await views.visit(uow.conn, visit_id)
    assert recorded is not None
    return recorded


async def issue_notice(uow: UnitOfWork, command: IssueNotice) -> NoticeView:
    """PersonnelNoticeIssued on the notice stream and, in the same transaction, the public
    PersonnelNoticeV1 in the outbox: the notice is sent exactly when it is recorded."""
    notice = await uow.get(
        PersonnelNotice(command.jurisdiction, parse_quarter(command.period, field="period"))
    )
    entries = await views.notice_entries(uow.conn, command.jurisdiction, notice.period)
    corrections = await views.notice_corrections(uow.conn, command.jurisdiction, notice.period)
    await uow.save(notice, notice.issue(command, entries, corrections))
    assert notice.issued is not None
    view = NoticeView(jurisdiction=command.jurisdiction, **notice.issued.model_dump())
    await uow.publish(
        topic=personnel_notices_topic(command.jurisdiction),
        key=view.notice_id,
        message=PersonnelNoticeV1.model_validate(view.model_dump()),
    )
    return view


async def merge_files(
    uow: UnitOfWork, command: MergeFiles, *, person_key: str, jurisdictions: Sequence[str]
) -> SubjectFile:
    """合档: both files must be there for the caller (a file they cannot see answers as if it did not
    exist); the merge is recorded in the jurisdiction of the first file's latest filing."""
    check_two_files(person_key, command.other)
    found: dict[str, tuple[str, list[str]]] = {}
    for key, field in ((person_key, "person_key"), (command.other, "other")):
        where = await views.file_whereabouts(uow.conn, key, jurisdictions)
        if where is None:
            raise NotFound(
                f"no file for {key}", detail_zh=f"没有 {key} 的档案", field=field, code="file_not_found"
            )
        found[key] = where
    check_same_kind(person_key, found[person_key][0], command.other, found[command.other][0])
    merge = await uow.get(FileMerge(person_key, command.other))
    if not merge.exists:
        merge.jurisdiction = found[person_key][1][0]
    already_one = command.other in await views.file_keys(uow.conn, person_key)
    await uow.save(merge, merge.merge(command, person_key=person_key, already_one=already_one))
    merged = await views.subject_file(uow.conn, person_key, jurisdictions)
    assert merged is not None
    return merged
