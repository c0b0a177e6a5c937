"""Archive queries over the read models: files (一人一档), filings, visits, notices, statistics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from datetime import date
from typing import Any, Literal, TypeVar

import asyncpg
from pydantic import BaseModel, Field

from services.archive.domain import (
    ClarificationFact,
    Coverage,
    Figures,
    Indicator,
    QuarterFacts,
    VisitFact,
    combine,
    coverage,
    figures,
    indicator,
)
from shared.dates import Quarter
from shared.db import Conn
from shared.envelope import CITY, JURISDICTIONS
from shared.events.archive import CorrectionEntry, NoticeEntry
from shared.events.common import Allegation, ClarificationForm, Frozen


def _described(zh: str, en: str) -> Any:
    return Field(description=f"{zh}。{en}")


class VisitView(Frozen):
    """回访 as listed: scheduled, and what was found once recorded."""

    visit_id: str
    case_id: str
    jurisdiction: str
    subject_id: str
    visit_with: Literal["person", "unit"]
    clarified_on: date
    due_on: date
    visited_on: date | None
    state_of_mind: str | None
    work: str | None
    leader_views: str | None
    colleague_views: str | None


class FilingView(Frozen):
    """备案 record of one clarified matter."""

    case_id: str
    jurisdiction: str
    subject_id: str
    kind: Literal["person", "unit"]
    name: str
    post: str | None
    unit: str | None
    points: list[Allegation]
    forms: list[ClarificationForm]
    concluded_on: date
    clarified_on: date
    filed_on: date


class IntegrityEntryView(Frozen):
    """廉政档案 entry."""

    case_id: str
    jurisdiction: str
    entered_on: date
    summary: str


class MergeView(Frozen):
    """合档 as the file shows it: which two files, when, why and by whom."""

    person_key: str
    other_key: str
    merged_on: date
    reason: str
    merged_by: str
    merged_by_name: str | None


class SubjectFile(Frozen):
    """一人一档: everything the archive holds on one person or unit."""

    subject_id: str = Field(description="The key the file was asked for")
    person_key: str = Field(
        description="The person key of the latest filing: 组织部干部编号 (o-…), the keyed ID number (i-…) "
        "or the hash of name and unit"
    )
    keys: list[str] = Field(description="Every key that reads as this file (itself and the files merged)")
    kind: Literal["person", "unit"]
    name: str
    post: str | None
    unit: str | None
    filings: list[FilingView]
    corrections: list[CorrectionEntry] = Field(
        default_factory=list,
        description="纠正错误处理。Wrong treatments corrected, with the organ that did it",
    )
    integrity_entries: list[IntegrityEntryView]
    visits: list[VisitView]
    merges: list[MergeView] = Field(description="合档: the merges that joined the keys")


class NoticeView(Frozen):
    """A notice issued to the organisation department."""

    notice_id: str
    jurisdiction: str
    period: str
    issued_on: date
    entries: list[NoticeEntry]
    corrections: list[CorrectionEntry] = Field(
        default_factory=list, description="纠正错误处理。Wrong treatments corrected in the period"
    )


class StatisticsRow(Frozen):
    """The quarter's figures and indicator for one jurisdiction, or for the city with its counties."""

    scope: Literal["jurisdiction", "city_wide"] = _described(
        "一个辖区，或市本级连同各县市区的合计", "One jurisdiction, or the city with its counties"
    )
    jurisdiction: str | None = _described(
        "辖区代码；合计行为空", "The jurisdiction code; null on the city-wide row"
    )
    name: str = _described("辖区名称", "The jurisdiction's name")
    jurisdictions_included: list[str] = _described("计入本行的辖区代码", "The jurisdictions this row counts")
    quarter: str = _described("季度，如 2023Q1", "The quarter, e.g. 2023Q1")
    figures: Figures = _described("季度统计数字", "The quarter's figures")
    covered: bool | None = _described(
        "本辖区是否至少澄清一人或一个单位；合计行为空",
        "Whether this jurisdiction clarified anyone; null on the city-wide row",
    )
    coverage: Coverage | None = _described("覆盖情况（仅合计行）", "Coverage (the city-wide row only)")
    indicator: Indicator = _described(
        "保护党员干部担当干事激情指数", "The indicator derived from the figures"
    )


class StatisticsReport(Frozen):
    """季度统计报表: the rows of the jurisdictions the caller sees, and their total."""

    quarter: str = _described("季度，如 2023Q1", "The quarter, e.g. 2023Q1")
    rows: list[StatisticsRow] = _described("每个辖区一行", "One row per jurisdiction")
    total: StatisticsRow | None = _described(
        "市本级连同各县市区的合计行（能看到全市时）",
        "The city-wide row (when the caller sees the whole city)",
    )


_VISIT_COLUMNS = (
    "visit_id, case_id, jurisdiction, subject_id, visit_with, clarified_on, due_on, visited_on,"
    " state_of_mind, work, leader_views, colleague_views"
)
_FILING_COLUMNS = (
    "case_id, jurisdiction, subject_id, kind, name, post, unit, points, forms, concluded_on,"
    " clarified_on, filed_on"
)


M = TypeVar("M", bound=BaseModel)


def _model(model: type[M], row: asyncpg.Record) -> M:
    return model.model_validate(dict(row))


# --- files, filings, visits --------------------------------------------------------------------------


async def file_keys(conn: Conn, key: str, jurisdictions: Sequence[str] | None = None) -> list[str]:
    """The keys that read as one file with `key`: itself and every key merged with it, directly or
    through another (the merges are few: walked in the database); with `jurisdictions`, only the
    merges recorded there (a county's merge is that county's reading of its files)."""
    rows = await conn.fetch(
        "WITH RECURSIVE joined(k) AS (SELECT $1::text UNION"
        " SELECT CASE WHEN m.person_key = j.k THEN m.other_key ELSE m.person_key END"
        " FROM file_merges m JOIN joined j ON m.person_key = j.k OR m.other_key = j.k"
        " WHERE $2::text[] IS NULL OR m.jurisdiction = ANY($2::text[]))"
        " SELECT k FROM joined ORDER BY k",
        key,
        None if jurisdictions is None else list(jurisdictions),
    )
    return [r["k"] for r in rows]


async def file_whereabouts(
    conn: Conn, key: str, jurisdictions: Sequence[str]
) -> tuple[str, list[str]] | None:
    """The kind of the file kept under `key` itself and where it has filings among `jurisdictions`,
    the latest filing's jurisdiction first; None when none is visible there."""
    rows = await conn.fetch(
        "SELECT jurisdiction, min(kind) AS kind, max(clarified_on) AS last FROM filings"
        " WHERE person_key = $1 AND jurisdiction = ANY($2::text[])"
        " GROUP BY jurisdiction ORDER BY last DESC, jurisdiction",
        key,
        list(jurisdictions),
    )
    return None if not rows else (rows[0]["kind"], [r["jurisdiction"] for r in rows])


async def subject_file(conn: Conn, subject_id: str, jurisdictions: Sequence[str]) -> SubjectFile | None:
    """The file of a person or unit as far as `jurisdictions` reach; None when nothing is visible.
    `subject_id` is any key of the file: a person key, or the subject id a file was kept under
    before person keys (the same thing when the reports gave no officer id or ID number)."""
    keys = await file_keys(conn, subject_id, jurisdictions)
    filing_rows = await conn.fetch(
        f"SELECT {_FILING_COLUMNS}, person_key FROM filings"
        " WHERE person_key = ANY($1::text[]) AND jurisdiction = ANY($2::text[])"
        " ORDER BY clarified_on, case_id",
        keys,
        list(jurisdictions),
    )
    corrections = await conn.fetch(
        f"SELECT {CORRECTION_COLUMNS}, person_key FROM corrections"
        " WHERE person_key = ANY($1::text[]) AND jurisdiction = ANY($2::text[])"
        " ORDER BY corrected_on, event_id",
        keys,
        list(jurisdictions),
    )
    if not filing_rows and not corrections:
        return None
    filings = [
        FilingView.model_validate({k: v for k, v in r.items() if k != "person_key"}) for r in filing_rows
    ]
    entries = await conn.fetch(
        "SELECT case_id, jurisdiction, entered_on, summary FROM integrity_entries"
        " WHERE person_key = ANY($1::text[]) AND jurisdiction = ANY($2::text[]) ORDER BY entered_on, case_id",
        keys,
        list(jurisdictions),
    )
    visits = await conn.fetch(
        f"SELECT {_VISIT_COLUMNS} FROM visits WHERE person_key = ANY($1::text[])"
        " AND jurisdiction = ANY($2::text[]) ORDER BY due_on, visit_id",
        keys,
        list(jurisdictions),
    )
    merges = await conn.fetch(
        "SELECT person_key, other_key, merged_on, reason, merged_by, merged_by_name FROM file_merges"
        " WHERE person_key = ANY($1::text[]) AND jurisdiction = ANY($2::text[]) ORDER BY merged_on, event_id",
        keys,
        list(jurisdictions),
    )
    # Name, post and unit as of the latest clarification (a person corrected but never clarified —
    # who declined the clarification, say — as of the latest correction).
    latest = filing_rows[-1] if filing_rows else corrections[-1]
    return SubjectFile(
        subject_id=subject_id,
        person_key=latest["person_key"],
        keys=keys,
        kind=latest["kind"],
        name=latest["name"],
        post=latest["post"],
        unit=latest["unit"],
        filings=filings,
        corrections=[
            CorrectionEntry.model_validate({k: v for k, v in r.items() if k != "person_key"})
            for r in corrections
        ],
        integrity_entries=[_model(IntegrityEntryView, r) for r in entries],
        visits=[_model(VisitView, r) for r in visits],
        merges=[_model(MergeView, r) for r in merges],
    )


async def filings_of(conn: Conn, jurisdiction: str, quarter: Quarter | None) -> list[FilingView]:
    first, last = (quarter.first_day, quarter.last_day) if quarter else (date.min, date.max)
    rows = await conn.fetch(
        f"SELECT {_FILING_COLUMNS} FROM filings WHERE jurisdiction = $1 AND filed_on BETWEEN $2 AND $3"
        " ORDER BY filed_on, case_id",
        jurisdiction,
        first,
        last,
    )
    return [_model(FilingView, r) for r in rows]


async def visit_location(conn: Conn, visit_id: str) -> tuple[str, str] | None:
    """(case id, jurisdiction) of a scheduled visit."""
    row = await conn.fetchrow("SELECT case_id, jurisdiction FROM visits WHERE visit_id = $1", visit_id)
    return None if row is None else (row["case_id"], row["jurisdiction"])


async def visit(conn: Conn, visit_id: str) -> VisitView | None:
    row = await conn.fetchrow(f"SELECT {_VISIT_COLUMNS} FROM visits WHERE visit_id = $1", visit_id)
    return None if row is None else _model(VisitView, row)


async def open_visits(conn: Conn, jurisdiction: str) -> list[VisitView]:
    rows = await conn.fetch(
        f"SELECT {_VISIT_COLUMNS} FROM visits WHERE jurisdiction = $1 AND visited_on IS NULL",
        jurisdiction,
    )
    return [_model(VisitView, r) for r in rows]


# --- notices -----------------------------------------------------------------------------------------


CORRECTION_COLUMNS = "subject_id, kind, name, post, unit, treatment, organ, correction, corrected_on"


async def notice_corrections(conn: Conn, jurisdiction: str, period: Quarter) -> list[CorrectionEntry]:
    """The wrong treatments corrected in the period, for the notice to the organisation department."""
    rows = await conn.fetch(
        f"SELECT {CORRECTION_COLUMNS} FROM corrections WHERE jurisdiction = $1"
        " AND corrected_on BETWEEN $2 AND $3 ORDER BY corrected_on, subject_id, event_id",
        jurisdiction,
        period.first_day,
        period.last_day,
    )
    return [_model(CorrectionEntry, r) for r in rows]


async def notice_entries(conn: Conn, jurisdiction: str, period: Quarter) -> list[NoticeEntry]:
    """Persons and units whose clarification was filed in the period (each filing once)."""
    rows = await conn.fetch(
        "SELECT subject_id, name, kind, post, unit, clarified_on, jsonb_array_length(points) AS points"
        " FROM filings WHERE jurisdiction = $1 AND filed_on BETWEEN $2 AND $3",
        jurisdiction,
        period.first_day,
        period.last_day,
    )
    return [_model(NoticeEntry, r) for r in rows]


async def notices_of(conn: Conn, jurisdictions: Sequence[str]) -> list[NoticeView]:
    rows = await conn.fetch(
        "SELECT notice_id, jurisdiction, period, issued_on, entries, corrections FROM notices"
        " WHERE jurisdiction = ANY($1::text[]) ORDER BY jurisdiction, period",
        list(jurisdictions),
    )
    return [_model(NoticeView, r) for r in rows]


# --- statistics --------------------------------------------------------------------------------------


ID_FACTS: tuple[tuple[str, str, str, str, str], ...] = (
    # fact, the id it counts, table, condition, the date that puts it in the quarter
    ("untrue_conclusions", "case_id", "stat_conclusions", "", "concluded_on"),
    ("candidates", "case_id", "stat_candidates", "", "added_on"),
    ("filings", "case_id", "filings", "", "filed_on"),
    ("visits_done", "visit_id", "visits", "", "visited_on"),
    ("false_accusations_referred", "event_id", "stat_false_accusations", "", "referred_on"),
    ("reports", "case_id", "stat_reports", "", "received_on"),
    ("declined", "case_id", "stat_exits", "exit IN ('declined', 'withdrawn') AND ", "exited_on"),
    (
        "returned_by_head",
        "event_id",
        "stat_exits",
        "exit IN ('refused_by_head', 'returned_by_head') AND ",
        "exited_on",
    ),
    ("discontinued", "case_id", "stat_exits", "exit = 'discontinued' AND ", "exited_on"),
    ("corrections", "event_id", "corrections", "", "corrected_on"),
    ("objections", "objection_id", "stat_objections", "", "lodged_on"),
    ("objections_upheld", "objection_id", "stat_objection_results", "upheld AND ", "examined_on"),
    ("supplementary", "case_id", "stat_reopenings", "", "reopened_on"),
)
"""The facts that are a set of ids dated in the quarter, each from one table."""


async def quarter_facts(
    conn: Conn, jurisdictions: Sequence[str], quarter: Quarter
) -> dict[str, QuarterFacts]:
    """The raw facts of the quarter per jurisdiction, each by the date that counts for it."""
    args = (list(jurisdictions), quarter.first_day, quarter.last_day)
    parts: dict[str, dict[str, Any]] = {j: {} for j in jurisdictions}

    def collect(rows: list[asyncpg.Record], key: str, value: Any) -> None:
        for row in rows:
            parts[row["jurisdiction"]].setdefault(key, []).append(value(row))

    in_quarter = "jurisdiction = ANY($1::text[]) AND {column} BETWEEN $2 AND $3"
    collect(
        await conn.fetch(
            "SELECT jurisdiction, channel FROM stat_reports WHERE " + in_quarter.format(column="received_on"),
            *args,
        ),
        "report_channels",
        lambda r: r["channel"],
    )
    collect(
        await conn.fetch(
            "SELECT jurisdiction, case_id, person_key AS subject_id, kind, forms,"
            " on_time, working_days FROM stat_clarifications WHERE "
            + in_quarter.format(column="performed_on"),
            *args,
        ),
        "clarifications",
        lambda r: ClarificationFact(
            r["case_id"], r["subject_id"], r["kind"], tuple(r["forms"]), r["on_time"], r["working_days"]
        ),
    )
    collect(
        await conn.fetch(
            "SELECT jurisdiction, visit_id, due_on, visited_on FROM visits WHERE "
            + in_quarter.format(column="due_on"),
            *args,
        ),
        "visits_due",
        lambda r: VisitFact(r["visit_id"], r["due_on"], r["visited_on"]),
    )
    collect(
        await conn.fetch(
            "SELECT r.jurisdiction, r.case_id FROM stat_repeats r JOIN stat_reports s USING (case_id)"
            " WHERE r.jurisdiction = ANY($1::text[]) AND s.received_on BETWEEN $2 AND $3"
            " AND r.merged_on <= $3",
            *args,
        ),
        "repeats",
        lambda r: r["case_id"],
    )
    collect(
        await conn.fetch(
            "SELECT jurisdiction, case_id, refusals FROM stat_refusals WHERE "
            + in_quarter.format(column="assessed_on"),
            *args,
        ),
        "refusals",
        lambda r: (r["case_id"], tuple(r["refusals"])),
    )
    for fact, id_column, table, condition, day in ID_FACTS:
        collect(
            await conn.fetch(
                f"SELECT jurisdiction, {id_column}::text AS id FROM {table} WHERE {condition}"
                + in_quarter.format(column=day),
                *args,
            ),
            fact,
            lambda r: r["id"],
        )
    # The pool's stock at the quarter's end: entered by then, neither started nor declined by then.
    collect(
        await conn.fetch(
            "SELECT c.jurisdiction, c.case_id FROM stat_candidates c"
            " WHERE c.jurisdiction = ANY($1::text[]) AND c.added_on <= $2 AND NOT EXISTS"
            " (SELECT 1 FROM stat_starts s WHERE s.case_id = c.case_id AND s.started_on <= $2)"
            " AND NOT EXISTS (SELECT 1 FROM stat_exits e WHERE e.case_id = c.case_id"
            " AND e.exit IN ('declined', 'discontinued') AND e.exited_on <= $2)",
            list(jurisdictions),
            quarter.last_day,
        ),
        "waiting",
        lambda r: r["case_id"],
    )
    return {j: _facts(p) for j, p in parts.items()}


def _facts(part: dict[str, Any]) -> QuarterFacts:
    """The collected rows as the facts' fields: a tuple where the field keeps order and repeats,
    a set of ids otherwise."""
    values: dict[str, Any] = {
        f.name: (tuple if isinstance(f.default, tuple) else frozenset)(part.get(f.name, ()))
        for f in fields(QuarterFacts)
    }
    return QuarterFacts(**values)


def statistics_report(
    quarter: Quarter,
    facts_by_jurisdiction: dict[str, QuarterFacts],
    *,
    rows_for: Sequence[str],
    city_wide: bool,
) -> StatisticsReport:
    """One row for each of `rows_for`; with `city_wide`, a total over every jurisdiction given."""
    rows = []
    for j in sorted(rows_for):
        fig = figures(facts_by_jurisdiction[j])
        rows.append(
            StatisticsRow(
                scope="jurisdiction",
                jurisdiction=j,
                name=JURISDICTIONS.get(j, j),
                jurisdictions_included=[j],
                quarter=quarter.label,
                figures=fig,
                covered=fig.persons_clarified + fig.units_clarified > 0,
                coverage=None,
                indicator=indicator(fig),
            )
        )
    total = None
    if city_wide:
        fig = figures(combine(facts_by_jurisdiction.values()))
        cover = coverage(facts_by_jurisdiction)
        total = StatisticsRow(
            scope="city_wide",
            jurisdiction=None,
            name=f"{JURISDICTIONS[CITY]}（市本级及所辖县市区合计）",
            jurisdictions_included=sorted(facts_by_jurisdiction),
            quarter=quarter.label,
            figures=fig,
            covered=None,
            coverage=cover,
            indicator=indicator(fig, cover),
        )
    return StatisticsReport(quarter=quarter.label, rows=rows, total=total)
