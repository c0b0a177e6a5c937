"""Archive rules: filing (备案), return visits (回访), integrity file (廉政档案), personnel notice,
quarterly statistics and the indicator 保护党员干部担当干事激情 — no I/O."""

from __future__ import annotations

import hashlib
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal, Protocol, TypeVar, get_args

from pydantic import BaseModel, Field

from services.archive.commands import IssueNotice, MergeFiles, RecordVisit
from shared.aggregate import Aggregate
from shared.bounded import EARLIEST_DATE, latest_date
from shared.dates import Quarter
from shared.envelope import JURISDICTIONS, matter_of
from shared.errors import Conflict, NotFound, RuleViolation
from shared.events.archive import (
    CorrectionEntry,
    FilesMerged,
    FilingRecorded,
    IntegrityFileEntered,
    NoticeEntry,
    PersonnelNoticeIssued,
    ReturnVisitRecorded,
    ReturnVisitScheduled,
)
from shared.events.clarification import ClarificationFiled
from shared.events.common import Channel, ClarificationForm, Frozen
from shared.workdays import add_working_days, working_days_between

VisitParty = Literal["person", "unit"]

# Both the person and their unit are visited: the person for their state of mind and work, the
# unit for the views of leaders and colleagues (DESIGN: "return visits to the person and the unit").
RETURN_VISIT_PARTIES: tuple[VisitParty, ...] = ("person", "unit")


def archive_stream(case_id: str) -> str:
    return f"archive-{case_id}"


def notice_stream(jurisdiction: str, period: str) -> str:
    return f"notices-{jurisdiction}-{period}"


def notice_id_for(jurisdiction: str, period: str) -> str:
    """Deterministic, so a replayed or retried notice can never get a second identity."""
    return f"PN-{jurisdiction}-{period}"


def visit_id_for(case_id: str, number: int) -> str:
    return f"{case_id}-V{number}"


def chinese_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


# --- quarters -------------------------------------------------------------------------------------


def parse_quarter(text: str, *, field: str = "quarter") -> Quarter:
    """'2023Q1' -> Quarter; anything else is a 422 naming `field`."""
    quarter = Quarter.parse(text)
    if quarter is None or not EARLIEST_DATE.year <= quarter.year <= latest_date().year:
        raise RuleViolation(
            f"{field} must look like 2023Q1 (year, Q, quarter 1-4); got {text!r}",
            detail_zh=f"{field} 的格式应为 2023Q1（年份、Q、季度 1-4），收到的是 {text!r}",
            field=field,
            code="invalid_quarter",
        )
    return quarter


# --- the case file: filing, integrity file, return visits -------------------------------------------


@dataclass
class Visit:
    """回访 of the person or of their unit: when it is due and, once done, when it happened."""

    visit_id: str
    visit_with: VisitParty
    due_on: date
    visited_on: date | None = None


def integrity_summary(filed: ClarificationFiled, jurisdiction: str, case_id: str) -> str:
    """The 廉政档案 entry: what was clarified, how many points, when, by whom — never an overall
    evaluation of the person (only the listed untrue points are clarified)."""
    organ = JURISDICTIONS.get(jurisdiction, jurisdiction)
    return (
        f"{chinese_date(filed.clarified_on)}，{organ}纪委监委对{filed.person.name}"
        f"被检举控告的{len(filed.points)}项问题经核查失实予以澄清正名"
        f"（{chinese_date(filed.filed_on)}备案，编号{case_id}）。"
    )


class CaseFile(Aggregate):
    """备案: the archive's record of one clarified matter — the filing, its 廉政档案 entry and the
    return visits (回访) to the person and the unit."""

    noun = "case file"
    noun_zh = "澄清案卷"

    def __init__(self, case_id: str, jurisdiction: str = "") -> None:
        self._case_id = case_id
        self.jurisdiction = jurisdiction
        self.filing: FilingRecorded | None = None
        self.integrity_entries: list[IntegrityFileEntered] = []
        self.visits: dict[str, Visit] = {}

    @property
    def case_id(self) -> str:
        return self._case_id

    @property
    def stream_id(self) -> str:
        return archive_stream(self._case_id)

    def evolve(self, payload: BaseModel) -> None:
        if isinstance(payload, FilingRecorded):
            self.filing = payload
        elif isinstance(payload, IntegrityFileEntered):
            self.integrity_entries.append(payload)
        elif isinstance(payload, ReturnVisitScheduled):
            self.visits[payload.visit_id] = Visit(payload.visit_id, payload.visit_with, payload.due_on)
        elif isinstance(payload, ReturnVisitRecorded):
            self.visits[payload.visit_id].visited_on = payload.visited_on

    def file(self, filed: ClarificationFiled, *, return_visit_working_days: int) -> list[BaseModel]:
        """备案 of a clarification: filing record, integrity-file entry and one return visit to the
        person and one to the unit, due `return_visit_working_days` working days after the
        clarification. A matter already filed gives nothing (the filing is idempotent)."""
        if self.filing is not None:
            return []
        due_on = add_working_days(filed.clarified_on, return_visit_working_days)
        return [
            FilingRecorded(
                filed_on=filed.filed_on,
                person=filed.person,
                points=filed.points,
                forms=filed.forms,
                concluded_on=filed.concluded_on,
                clarified_on=filed.clarified_on,
            ),
            IntegrityFileEntered(
                entered_on=filed.filed_on,
                subject_id=filed.person.subject_id,
                summary=integrity_summary(filed, self.jurisdiction, self.case_id),
            ),
            *(
                ReturnVisitScheduled(visit_id=visit_id_for(self.case_id, n), due_on=due_on, visit_with=party)
                for n, party in enumerate(RETURN_VISIT_PARTIES, start=1)
            ),
        ]

    def record_visit(self, visit_id: str, visit: RecordVisit) -> list[BaseModel]:
        """回访 done. Once per visit, and not before the clarification it follows."""
        scheduled = self.visits.get(visit_id)
        if scheduled is None or self.filing is None:
            raise NotFound(
                f"no return visit {visit_id}",
                detail_zh=f"没有回访 {visit_id}",
                field="visit_id",
                code="visit_not_found",
            )
        if scheduled.visited_on is not None:
            raise Conflict(
                f"return visit {visit_id} was already recorded (visited on {scheduled.visited_on})",
                detail_zh=f"回访 {visit_id} 已经登记过（回访日期 {scheduled.visited_on}）",
                field="visit_id",
                code="already_recorded",
            )
        if visit.visited_on < self.filing.clarified_on:
            raise RuleViolation(
                f"visited_on {visit.visited_on} is before the clarification on {self.filing.clarified_on}",
                detail_zh=f"visited_on {visit.visited_on} 早于澄清日期（{self.filing.clarified_on}）",
                field="visited_on",
                code="visit_before_clarification",
            )
        return [ReturnVisitRecorded(visit_id=visit_id, **visit.model_dump())]


class ScheduledVisit(Protocol):
    """Anything that has a visit's id, due date and date of the visit (if done)."""

    @property
    def visit_id(self) -> str: ...

    @property
    def due_on(self) -> date: ...

    @property
    def visited_on(self) -> date | None: ...


V = TypeVar("V", bound=ScheduledVisit)


def overdue(visits: Iterable[V], as_of: date) -> list[V]:
    """Visits scheduled, not recorded, and due before `as_of` (due on `as_of` itself is not late)."""
    late = [v for v in visits if v.visited_on is None and v.due_on < as_of]
    return sorted(late, key=lambda v: (v.due_on, v.visit_id))


# --- one person, one file: merging two files ---------------------------------------------------------


def check_two_files(person_key: str, other: str) -> None:
    """A file cannot be merged with itself."""
    if person_key == other:
        raise RuleViolation(
            f"a file cannot be merged with itself ({person_key})",
            detail_zh=f"档案不能与自身合并（{person_key}）",
            field="other",
            code="merge_with_itself",
        )


def check_same_kind(person_key: str, kind: str, other: str, other_kind: str) -> None:
    """A person's file and a unit's are never one file."""
    if kind != other_kind:
        raise RuleViolation(
            f"the file {person_key} is of a {kind} and {other} of a {other_kind}: they cannot be one file",
            detail_zh=f"档案 {person_key} 属于{_KIND_ZH.get(kind, kind)}，{other} 属于"
            f"{_KIND_ZH.get(other_kind, other_kind)}，不能合并为一档",
            field="other",
            code="merge_person_with_unit",
        )


_KIND_ZH = {"person": "个人", "unit": "单位"}


class FileMerge(Aggregate):
    """合档: the merge of two files (一人一档) found to be one person's — an auditable command of case
    management, once per pair, whichever of the two it names first."""

    noun = "file merge"
    noun_zh = "合档"

    def __init__(self, person_key: str, other: str) -> None:
        self.keys = tuple(sorted((person_key, other)))
        self.merged: FilesMerged | None = None

    @property
    def stream_id(self) -> str:
        digest = hashlib.sha256("|".join(self.keys).encode()).hexdigest()[:32]
        return f"file-merge-{digest}"

    def evolve(self, payload: BaseModel) -> None:
        if isinstance(payload, FilesMerged):
            self.merged = payload

    def merge(self, command: MergeFiles, *, person_key: str, already_one: bool) -> list[FilesMerged]:
        """Both files read as one afterwards. Refused when the two keys already read as one file
        (merged before, directly or through a third file)."""
        check_two_files(person_key, command.other)
        if self.merged is not None or already_one:
            when = f" on {self.merged.merged_on}" if self.merged is not None else ""
            when_zh = f"（{self.merged.merged_on}）" if self.merged is not None else ""
            raise Conflict(
                f"the files {person_key} and {command.other} are already one file{when}",
                detail_zh=f"档案 {person_key} 与 {command.other} 已经合并为一档{when_zh}",
                field="other",
                code="files_already_merged",
            )
        return [
            FilesMerged(
                person_key=person_key,
                other_key=command.other,
                merged_on=command.merged_on,
                reason=command.reason,
            )
        ]


# --- the personnel notice ---------------------------------------------------------------------------


class PersonnelNotice(Aggregate):
    """组织部通报: the periodic notice to the organisation (personnel) department of one
    jurisdiction naming the persons and units whose clarification was filed in the period."""

    noun = "notice"
    noun_zh = "通报"

    def __init__(self, jurisdiction: str, period: Quarter) -> None:
        self.jurisdiction = jurisdiction
        self.period = period
        self.issued: PersonnelNoticeIssued | None = None

    @property
    def stream_id(self) -> str:
        return notice_stream(self.jurisdiction, self.period.label)

    def evolve(self, payload: BaseModel) -> None:
        if isinstance(payload, PersonnelNoticeIssued):
            self.issued = payload

    def issue(
        self,
        command: IssueNotice,
        entries: Sequence[NoticeEntry],
        corrections: Sequence[CorrectionEntry] = (),
    ) -> list[PersonnelNoticeIssued]:
        """Once per period, and only after it ended: a notice issued mid-period would leave the rest
        of the period's filings out for good, since the next notice covers the next period."""
        if self.issued is not None:
            raise Conflict(
                f"the notice for {self.period.label} in {self.jurisdiction} was already issued"
                f" on {self.issued.issued_on}",
                detail_zh=f"{self.jurisdiction} {self.period.label} 的通报已于 {self.issued.issued_on} 印发",
                field="period",
                code="already_issued",
            )
        issued_on = command.issued_on
        if issued_on <= self.period.last_day:
            raise RuleViolation(
                f"issued_on {issued_on} must be after the end of {self.period.label}"
                f" ({self.period.last_day})",
                detail_zh=f"issued_on {issued_on} 须晚于 {self.period.label} 的最后一天"
                f"（{self.period.last_day}）",
                field="issued_on",
                code="period_not_over",
            )
        ordered = sorted(entries, key=lambda e: (e.clarified_on, e.subject_id))
        return [
            PersonnelNoticeIssued(
                notice_id=notice_id_for(self.jurisdiction, self.period.label),
                period=self.period.label,
                issued_on=issued_on,
                entries=ordered,
                corrections=sorted(corrections, key=lambda c: (c.corrected_on, c.subject_id)),
            )
        ]


# --- statistics ---------------------------------------------------------------------------------------

CHANNELS: tuple[str, ...] = get_args(Channel)
FORMS: tuple[str, ...] = get_args(ClarificationForm)


@dataclass(frozen=True)
class ClarificationFact:
    """One 澄清 performed: whom, in which forms, on time or not, how long after the conclusion."""

    case_id: str
    subject_id: str
    kind: Literal["person", "unit"]
    forms: tuple[str, ...]
    on_time: bool
    working_days: int


@dataclass(frozen=True)
class VisitFact:
    """One 回访 due in the quarter and, if done, when."""

    visit_id: str
    due_on: date
    visited_on: date | None


@dataclass(frozen=True)
class QuarterFacts:
    """统计事实: the raw facts of one quarter in one jurisdiction (or, added up, several): each list is
    already restricted to the quarter by the date that counts for it."""

    report_channels: tuple[str, ...] = ()
    untrue_conclusions: frozenset[str] = frozenset()  # case ids
    candidates: frozenset[str] = frozenset()  # case ids
    clarifications: tuple[ClarificationFact, ...] = ()
    filings: frozenset[str] = frozenset()  # case ids
    visits_done: frozenset[str] = frozenset()  # visit ids visited in the quarter
    visits_due: tuple[VisitFact, ...] = ()
    false_accusations_referred: frozenset[str] = frozenset()  # event ids
    reports: frozenset[str] = frozenset()  # report ids received in the quarter
    repeats: frozenset[str] = frozenset()  # of those, the ones merged as repeats (重复件)
    refusals: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (case id, negative-list codes) assessed
    waiting: frozenset[str] = frozenset()  # case ids in the pool, not started, at the quarter's end
    declined: frozenset[str] = frozenset()  # case ids declined or withdrawn by the person
    returned_by_head: frozenset[str] = frozenset()  # event ids: refused or sent back by the head
    discontinued: frozenset[str] = frozenset()  # case ids ended by a revised conclusion
    corrections: frozenset[str] = frozenset()  # event ids: wrong treatments corrected
    objections: frozenset[str] = frozenset()  # objection ids lodged in the quarter (异议)
    objections_upheld: frozenset[str] = frozenset()  # objection ids upheld on re-examination
    supplementary: frozenset[str] = frozenset()  # case ids of verifications reopened (补充核查)

    def __add__(self, other: QuarterFacts) -> QuarterFacts:
        # Facts are combined, not figures: a mean or a distinct count over the city must be
        # computed over all the facts, not from the counties' figures.
        return QuarterFacts(
            report_channels=self.report_channels + other.report_channels,
            untrue_conclusions=self.untrue_conclusions | other.untrue_conclusions,
            candidates=self.candidates | other.candidates,
            clarifications=self.clarifications + other.clarifications,
            filings=self.filings | other.filings,
            visits_done=self.visits_done | other.visits_done,
            visits_due=self.visits_due + other.visits_due,
            false_accusations_referred=self.false_accusations_referred | other.false_accusations_referred,
            reports=self.reports | other.reports,
            repeats=self.repeats | other.repeats,
            refusals=self.refusals + other.refusals,
            waiting=self.waiting | other.waiting,
            declined=self.declined | other.declined,
            returned_by_head=self.returned_by_head | other.returned_by_head,
            discontinued=self.discontinued | other.discontinued,
            corrections=self.corrections | other.corrections,
            objections=self.objections | other.objections,
            objections_upheld=self.objections_upheld | other.objections_upheld,
            supplementary=self.supplementary | other.supplementary,
        )


def combine(facts: Iterable[QuarterFacts]) -> QuarterFacts:
    total = QuarterFacts()
    for part in facts:
        total = total + part
    return total


def _figure(zh: str, en: str, **field: Any) -> Any:
    return Field(description=f"{zh}。{en}", **field)


class Figures(Frozen):
    """季度统计: the quarterly figures of one jurisdiction, or of the city with its counties."""

    reports_received: int = _figure("收到检举控告件数（按收件日期）", "Reports received in the quarter")
    reports_by_channel: dict[str, int] = _figure("按来源渠道的收件数", "Reports received, by channel")
    matters: int = _figure(
        "检举控告事项数：收件数减去并入原件的重复件", "Matters: reports received less those merged as repeats"
    )
    untrue_conclusions: int = _figure(
        "办结的核查中至少一项失实的件数（按办结日期）",
        "Verifications concluded with at least one untrue point",
    )
    candidates: int = _figure("进入澄清备选库的件数（按入库日期）", "Matters that entered the candidate pool")
    waiting_in_pool: int = _figure(
        "季度末仍在备选库、尚未启动澄清的件数", "Candidates not yet started at the end of the quarter"
    )
    refused: int = _figure("经评估不予澄清的件数（按评估日期）", "Matters refused at assessment")
    refused_by_reason: dict[str, int] = _figure(
        "不予澄清的件数，按负面清单理由代码", "Matters refused at assessment, by negative-list rule code"
    )
    declined: int = _figure(
        "本人不同意澄清或撤回的件数（按登记日期）",
        "Matters the person declined (before the start) or withdrew (after it) in the quarter",
    )
    returned_by_head: int = _figure(
        "主要负责人不予批准或退回的次数（按决定日期）",
        "Times the head refused the approval or sent the matter back in the quarter",
    )
    discontinued: int = _figure(
        "核查结论变更后终止澄清的件数（按终止日期）",
        "Matters whose revised conclusion no longer allowed a clarification, by the day it ended",
    )
    treatments_corrected: int = _figure(
        "纠正错误处理的次数（按纠正日期）", "Wrong treatments corrected in the quarter (art. 51)"
    )
    clarifications: int = _figure("实施澄清的事项数（按澄清日期）", "Matters clarified in the quarter")
    persons_clarified: int = _figure(
        "被澄清的党员干部人数（每人计一次）", "Persons clarified, each counted once"
    )
    units_clarified: int = _figure("被澄清的单位数（每个单位计一次）", "Units clarified, each counted once")
    forms_used: dict[str, int] = _figure(
        "各种澄清方式的使用次数", "How often each form of clarification was used"
    )
    on_time_clarifications: int = _figure(
        "在审批后5个工作日内实施的澄清件数", "Clarifications performed within 5 working days of approval"
    )
    working_days_to_clarify_mean: float | None = _figure(
        "从核查办结到澄清的平均工作日数", "Mean working days from the conclusion to the clarification"
    )
    working_days_to_clarify_median: float | None = _figure(
        "从核查办结到澄清的工作日数中位数", "Median working days from the conclusion to the clarification"
    )
    filings: int = _figure("澄清备案件数（按备案日期）", "Clarifications filed (备案) in the quarter")
    return_visits_done: int = _figure("本季度完成的回访次数", "Return visits done in the quarter")
    return_visits_due: int = _figure("本季度到期的回访次数", "Return visits due in the quarter")
    return_visits_due_done_on_time: int = _figure(
        "本季度到期且按期完成的回访次数", "Return visits due in the quarter and done by their due date"
    )
    false_accusations_referred: int = _figure(
        "诬告陷害移送查处的问题数（按移送日期）", "False accusations (诬告陷害) referred for investigation"
    )
    objections: int = _figure(
        "实名检举控告人提出异议（附新的事实或证据）的件数（按提出日期）",
        "Objections (异议) with new facts or evidence lodged by real-name reporters in the quarter",
    )
    objections_upheld: int = _figure(
        "经承办部门复查异议成立的件数（按复查日期）",
        "Objections the handling department upheld on re-examination in the quarter",
    )
    supplementary_verifications: int = _figure(
        "退回补充核查的件数：已办结的核查重新启动（按启动日期，每件计一次）",
        "Verifications reopened for supplementary verification (补充核查) in the quarter, each counted once",
    )


def mean_days(days: Sequence[int]) -> float | None:
    return round(statistics.fmean(days), 1) if days else None


def median_days(days: Sequence[int]) -> float | None:
    return float(statistics.median(days)) if days else None


def distinct_subjects(clarifications: Iterable[ClarificationFact], kind: str) -> int:
    """Persons (or units) clarified: each counted once however many of their matters were."""
    return len({c.subject_id for c in clarifications if c.kind == kind})


def forms_used(clarifications: Iterable[ClarificationFact]) -> dict[str, int]:
    counts = Counter(form for c in clarifications for form in c.forms)
    return {form: counts.get(form, 0) for form in FORMS}


def figures(facts: QuarterFacts) -> Figures:
    days = [c.working_days for c in facts.clarifications]
    channels = Counter(facts.report_channels)
    return Figures(
        reports_received=len(facts.report_channels),
        reports_by_channel={channel: channels.get(channel, 0) for channel in CHANNELS},
        matters=len(facts.reports - facts.repeats),
        waiting_in_pool=len(facts.waiting),
        refused=len({case_id for case_id, _ in facts.refusals}),
        refused_by_reason=dict(
            sorted(Counter(code for _, codes in facts.refusals for code in codes).items())
        ),
        declined=len(facts.declined),
        returned_by_head=len(facts.returned_by_head),
        discontinued=len(facts.discontinued),
        treatments_corrected=len(facts.corrections),
        untrue_conclusions=len(facts.untrue_conclusions),
        candidates=len({matter_of(case_id) for case_id in facts.candidates}),
        # A matter naming several persons is one matter, whose persons are each clarified.
        clarifications=len({matter_of(c.case_id) for c in facts.clarifications}),
        persons_clarified=distinct_subjects(facts.clarifications, "person"),
        units_clarified=distinct_subjects(facts.clarifications, "unit"),
        forms_used=forms_used(facts.clarifications),
        on_time_clarifications=len({c.case_id for c in facts.clarifications if c.on_time}),
        working_days_to_clarify_mean=mean_days(days),
        working_days_to_clarify_median=median_days(days),
        filings=len(facts.filings),
        return_visits_done=len(facts.visits_done),
        return_visits_due=len(facts.visits_due),
        return_visits_due_done_on_time=sum(
            1 for v in facts.visits_due if v.visited_on is not None and v.visited_on <= v.due_on
        ),
        false_accusations_referred=len(facts.false_accusations_referred),
        objections=len(facts.objections),
        objections_upheld=len(facts.objections_upheld),
        supplementary_verifications=len(facts.supplementary),
    )


def working_days_to_clarify(concluded_on: date, performed_on: date) -> int:
    """Time from the verification's conclusion to the clarification, in working days."""
    return working_days_between(concluded_on, performed_on)


class Coverage(Frozen):
    """覆盖: which of the city level and its counties clarified at least one person or unit."""

    covered: int = _figure(
        "至少澄清一人或一个单位的辖区数", "Jurisdictions that clarified at least one person or unit"
    )
    of: int = _figure(
        "应覆盖的辖区数（市本级和9个县市区）", "Jurisdictions to cover (the city level and its 9 counties)"
    )
    jurisdictions: list[str] = _figure("已覆盖的辖区代码", "The codes of the jurisdictions covered")
    text: str = _figure("覆盖情况的文字说明", "The coverage in words")


def coverage(facts_by_jurisdiction: dict[str, QuarterFacts]) -> Coverage:
    """Coverage of the city level and its 9 counties (always out of all ten)."""
    covered = sorted(j for j, facts in facts_by_jurisdiction.items() if facts.clarifications)
    of = len(JURISDICTIONS)
    text = f"covered {len(covered)} of {of}"
    return Coverage(covered=len(covered), of=of, jurisdictions=covered, text=text)


# --- the indicator 保护党员干部担当干事激情 ----------------------------------------------------------

INDICATOR_NAME = "保护党员干部担当干事激情"

# Weights of the components (docs/indicator.md gives the reasons). Coverage only exists for the
# city-wide row; where a component has no denominator it drops out and the rest are re-weighted.
INDICATOR_WEIGHTS: dict[str, float] = {
    "clarification_rate": 0.35,
    "timeliness": 0.20,
    "return_visits": 0.20,
    "coverage": 0.25,
}
# 诬告陷害 referred deter the next false accuser, but a quota would invite labelling honest
# mistakes as false accusations: a small bonus, capped.
DETERRENCE_POINTS_PER_REFERRAL = 1.0
DETERRENCE_CAP_POINTS = 5.0


class Indicator(Frozen):
    """保护党员干部担当干事激情: the 0-100 score of the city's 高质量发展指数 derived from the figures."""

    name: str = _figure("指标名称", "The indicator's name", default=INDICATOR_NAME)
    score: float | None = _figure(
        "0-100 分的指数；没有任何分项可计算时为空",
        "The 0-100 score; null when no component has a denominator",
    )
    components: dict[str, float | None] = _figure(
        "各分项（澄清率、及时率、回访率、覆盖率）的 0-1 取值，无分母时为空",
        "Each component (clarification_rate, timeliness, return_visits, coverage) from 0 to 1, "
        "null without a denominator",
    )
    deterrence_bonus: float = _figure(
        "诬告陷害移送查处的加分（有上限）", "The bonus points for false accusations referred (capped)"
    )


def clarification_rate(clarified: int, candidates: int) -> float | None:
    """Clarified matters per matter entering the pool, capped at 1 (a quarter may clear candidates
    of earlier quarters); undefined when there was neither."""
    if candidates == 0:
        return None if clarified == 0 else 1.0
    return min(1.0, clarified / candidates)


def share(part: int, whole: int) -> float | None:
    return None if whole == 0 else part / whole


def deterrence_bonus(referred: int) -> float:
    return min(DETERRENCE_CAP_POINTS, DETERRENCE_POINTS_PER_REFERRAL * referred)


def indicator(fig: Figures, cover: Coverage | None = None) -> Indicator:
    """The weighted mean of the defined components times 100, plus the capped deterrence bonus,
    at most 100; None when no component is defined (nothing happened to judge)."""
    components: dict[str, float | None] = {
        "clarification_rate": clarification_rate(fig.clarifications, fig.candidates),
        "timeliness": share(fig.on_time_clarifications, fig.clarifications),
        "return_visits": share(fig.return_visits_due_done_on_time, fig.return_visits_due),
        "coverage": None if cover is None else cover.covered / cover.of,
    }
    defined = {name: value for name, value in components.items() if value is not None}
    bonus = deterrence_bonus(fig.false_accusations_referred)
    if not defined:
        return Indicator(score=None, components=_rounded(components), deterrence_bonus=bonus)
    weight = sum(INDICATOR_WEIGHTS[name] for name in defined)
    base = 100 * sum(INDICATOR_WEIGHTS[name] * value for name, value in defined.items()) / weight
    return Indicator(
        score=round(min(100.0, base + bonus), 1), components=_rounded(components), deterrence_bonus=bonus
    )


def _rounded(components: dict[str, float | None]) -> dict[str, float | None]:
    return {k: None if v is None else round(v, 4) for k, v in components.items()}
