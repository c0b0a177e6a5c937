"""HTTP entrypoint of the archive service: files (一人一档), return visits, notices, statistics."""

from __future__ import annotations

from datetime import date
from functools import partial
from typing import Annotated

from fastapi import Depends, FastAPI, Path, Query
from pydantic import BaseModel

from services.archive import handlers, views
from services.archive.commands import QUARTER_HELP, IssueNotice, MergeFiles, RecordVisit
from services.archive.domain import overdue, parse_quarter
from services.archive.views import (
    FilingView,
    NoticeView,
    StatisticsReport,
    SubjectFile,
    VisitView,
)
from shared.auth import Principal
from shared.bounded import BusinessDate, NoControl
from shared.envelope import CITY
from shared.errors import NotFound
from shared.http import CommandContext, acting, check_jurisdiction, create_app, require
from shared.runtime import Runtime

# The organisation department (组织部) consumes notices and statistics only: a person's file stays
# with the commission.
READ_STATISTICS = ("auditor", "case_management", "head", "letters_office", "organisation_department")
READ_FILES = ("auditor", "case_management", "head", "handling_department")
RECORD_VISITS = ("handling_department", "case_management")
MERGE_FILES = ("case_management",)
ISSUE_NOTICES = ("case_management",)
READ_NOTICES = ("organisation_department", "auditor", "case_management")


class OverdueVisits(BaseModel):
    jurisdiction: str
    as_of: date
    visits: list[VisitView]


def build_api(runtime: Runtime) -> FastAPI:
    app = create_app(
        "archive",
        title="zhengming archive (备案, 回访, 档案)",
        description="Filing of clarifications, one file per person (一人一档), return visits, the "
        "integrity file, notices to the organisation department and the quarterly statistics with "
        "the indicator 保护党员干部担当干事激情.",
    )

    def visible(principal: Principal) -> list[str]:
        return [j for j in runtime.jurisdictions if principal.sees(j)]

    def served(principal: Principal, jurisdiction: str) -> None:
        check_jurisdiction(principal, jurisdiction)
        if jurisdiction not in runtime.jurisdictions:
            raise NotFound(
                f"jurisdiction {jurisdiction} is not served here",
                detail_zh=f"本服务不负责辖区 {jurisdiction}",
                field="jurisdiction",
            )

    @app.get(
        "/statistics",
        response_model=StatisticsReport,
        tags=["statistics"],
        summary="Quarterly figures and indicator per jurisdiction, with the city-wide total",
    )
    async def get_statistics(
        principal: Annotated[Principal, Depends(require(*READ_STATISTICS))],
        quarter: Annotated[str, Query(description=QUARTER_HELP, examples=["2023Q1"])],
        jurisdiction: Annotated[str | None, Query(description="Only this jurisdiction's row")] = None,
    ) -> StatisticsReport:
        period = parse_quarter(quarter)
        seen = visible(principal)
        if jurisdiction is not None:
            served(principal, jurisdiction)
        rows_for = seen if jurisdiction is None else [jurisdiction]
        async with runtime.pool.acquire() as conn:
            facts = await views.quarter_facts(conn, seen, period)
        return views.statistics_report(period, facts, rows_for=rows_for, city_wide=CITY in rows_for)

    @app.get(
        "/files/{subject_id}",
        response_model=SubjectFile,
        tags=["files"],
        summary="一人一档: a person's or unit's filings, integrity-file entries and return visits",
        description="The file is kept under the person key: `o-` and the organisation department's "
        "officer id when the reports gave one, else `i-` and the keyed hash of the ID number, else the "
        "subject id (the hash of name and unit, as before). Any key of the file reads it, merged "
        "files included.",
    )
    async def get_file(
        principal: Annotated[Principal, Depends(require(*READ_FILES))],
        subject_id: Annotated[str, Path(max_length=100, description="A person key or subject id"), NoControl],
    ) -> SubjectFile:
        async with runtime.pool.acquire() as conn:
            found = await views.subject_file(conn, subject_id, visible(principal))
        if found is None:
            raise NotFound(
                f"no file for {subject_id}",
                detail_zh=f"没有 {subject_id} 的档案",
                field="subject_id",
                code="file_not_found",
            )
        return found

    @app.post(
        "/files/{person_key}/merge",
        response_model=SubjectFile,
        tags=["files"],
        summary="合档: merge the other file into this one (the same person); both keys read as one file",
    )
    async def post_merge(
        ctx: Annotated[CommandContext, Depends(acting(*MERGE_FILES))],
        person_key: Annotated[str, Path(min_length=1, max_length=100), NoControl],
        body: MergeFiles,
    ) -> SubjectFile:
        merge = partial(handlers.merge_files, person_key=person_key, jurisdictions=visible(ctx.principal))
        return await runtime.command(ctx, merge, body)

    @app.get(
        "/filings",
        response_model=list[FilingView],
        tags=["files"],
        summary="Filings (备案) of a jurisdiction, optionally of one quarter (by filing date)",
    )
    async def get_filings(
        principal: Annotated[Principal, Depends(require(*READ_FILES))],
        jurisdiction: str,
        quarter: Annotated[str | None, Query(description=QUARTER_HELP)] = None,
    ) -> list[FilingView]:
        served(principal, jurisdiction)
        period = None if quarter is None else parse_quarter(quarter)
        async with runtime.pool.acquire() as conn:
            return await views.filings_of(conn, jurisdiction, period)

    @app.post(
        "/visits/{visit_id}/record",
        response_model=VisitView,
        tags=["visits"],
        summary="Record a return visit (回访) once: state of mind, work, leaders' and colleagues' views",
    )
    async def post_visit(
        ctx: Annotated[CommandContext, Depends(acting(*RECORD_VISITS))],
        visit_id: Annotated[str, Path(max_length=250), NoControl],
        body: RecordVisit,
    ) -> VisitView:
        return await runtime.command(ctx, partial(handlers.record_visit, visit_id=visit_id), body)

    @app.get(
        "/visits/overdue",
        response_model=OverdueVisits,
        tags=["visits"],
        summary="Return visits scheduled, not recorded and due before as_of",
    )
    async def get_overdue(
        principal: Annotated[Principal, Depends(require(*READ_FILES))],
        jurisdiction: str,
        as_of: BusinessDate,
    ) -> OverdueVisits:
        served(principal, jurisdiction)
        async with runtime.pool.acquire() as conn:
            open_visits = await views.open_visits(conn, jurisdiction)
        return OverdueVisits(jurisdiction=jurisdiction, as_of=as_of, visits=overdue(open_visits, as_of))

    @app.post(
        "/notices",
        response_model=NoticeView,
        status_code=201,
        tags=["notices"],
        summary="Issue the period's notice to the organisation department (once per period)",
    )
    async def post_notice(
        ctx: Annotated[CommandContext, Depends(acting(*ISSUE_NOTICES))], body: IssueNotice
    ) -> NoticeView:
        served(ctx.principal, body.jurisdiction)
        return await runtime.command(ctx, handlers.issue_notice, body)

    @app.get(
        "/notices",
        response_model=list[NoticeView],
        tags=["notices"],
        summary="Notices issued to the organisation department, with their entries",
    )
    async def get_notices(
        principal: Annotated[Principal, Depends(require(*READ_NOTICES))],
        jurisdiction: str | None = None,
    ) -> list[NoticeView]:
        if jurisdiction is not None:
            served(principal, jurisdiction)
        wanted = visible(principal) if jurisdiction is None else [jurisdiction]
        async with runtime.pool.acquire() as conn:
            return await views.notices_of(conn, wanted)

    return app
