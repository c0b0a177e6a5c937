"""Archive rules without I/O: filing and visit scheduling, visits, overdue list, notice, quarters,
statistics aggregation, coverage and the indicator 保护党员干部担当干事激情."""

from __future__ import annotations

from datetime import date
from typing import Literal

import pytest

from services.archive.commands import IssueNotice, RecordVisit
from services.archive.domain import (
    CHANNELS,
    FORMS,
    CaseFile,
    ClarificationFact,
    Figures,
    PersonnelNotice,
    QuarterFacts,
    Visit,
    VisitFact,
    clarification_rate,
    combine,
    coverage,
    deterrence_bonus,
    figures,
    indicator,
    overdue,
    parse_quarter,
    working_days_to_clarify,
)
from services.archive.settings import ArchiveSettings
from shared.dates import Quarter
from shared.errors import Conflict, NotFound, RuleViolation
from shared.events.archive import (
    FilingRecorded,
    IntegrityFileEntered,
    NoticeEntry,
    ReturnVisitRecorded,
    ReturnVisitScheduled,
)
from shared.events.clarification import ClarificationFiled
from shared.events.common import Allegation, Subject

CASE = "331122-2023-000001"
PERSON = Subject(kind="person", name="张三", post="镇党委书记", unit="缙云县壶镇镇")


def filed(clarified_on: date = date(2023, 3, 20), points: int = 2) -> ClarificationFiled:
    return ClarificationFiled(
        filed_on=clarified_on,
        person=PERSON,
        points=[Allegation(allegation_id=f"A{i}", summary=f"问题{i}") for i in range(1, points + 1)],
        forms=["written_notice", "unit_meeting"],
        concluded_on=date(2023, 2, 10),
        clarified_on=clarified_on,
    )


def filed_case(days: int = 60, clarified_on: date = date(2023, 3, 20)) -> CaseFile:
    case = CaseFile(CASE, "331122")
    for event in case.file(filed(clarified_on), return_visit_working_days=days):
        case.evolve(event)
    return case


def record(case: CaseFile, visit_id: str, visited_on: date) -> list[ReturnVisitRecorded]:
    events = case.record_visit(
        visit_id,
        RecordVisit(
            visited_on=visited_on,
            state_of_mind="心态积极",
            work="工作正常开展",
            leader_views="认可",
            colleague_views="支持",
        ),
    )
    return [e for e in events if isinstance(e, ReturnVisitRecorded)]


# --- filing and visit scheduling ----------------------------------------------------------------------


def test_filing_records_filing_integrity_entry_and_two_visits() -> None:
    events = CaseFile(CASE, "331122").file(filed(), return_visit_working_days=60)
    assert [type(e) for e in events] == [
        FilingRecorded,
        IntegrityFileEntered,
        ReturnVisitScheduled,
        ReturnVisitScheduled,
    ]
    visits = [e for e in events if isinstance(e, ReturnVisitScheduled)]
    assert [(v.visit_id, v.visit_with) for v in visits] == [(f"{CASE}-V1", "person"), (f"{CASE}-V2", "unit")]


def test_integrity_entry_names_points_count_and_date_in_chinese() -> None:
    events = CaseFile(CASE, "331122").file(filed(points=3), return_visit_working_days=60)
    entry = next(e for e in events if isinstance(e, IntegrityFileEntered))
    assert entry.subject_id == PERSON.subject_id
    assert "3项" in entry.summary and "2023年3月20日" in entry.summary and "缙云县" in entry.summary


def test_visits_are_due_the_configured_working_days_after_clarification() -> None:
    # 2023-04-28 is a Friday before the Labour Day holiday (29 April - 3 May): one working day on
    # is Thursday 4 May, not Saturday 29 April.
    case = filed_case(days=1, clarified_on=date(2023, 4, 28))
    assert {v.due_on for v in case.visits.values()} == {date(2023, 5, 4)}


def test_default_return_visit_delay_is_sixty_working_days() -> None:
    assert ArchiveSettings().return_visit_working_days == 60
    case = filed_case(days=ArchiveSettings().return_visit_working_days)
    # 20 March 2023 + 60 working days, across the Qingming and Labour Day holidays.
    assert {v.due_on for v in case.visits.values()} == {date(2023, 6, 14)}


def test_return_visit_delay_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZM_ARCHIVE_RETURN_VISIT_WORKING_DAYS", "20")
    assert ArchiveSettings().return_visit_working_days == 20


def test_a_second_filing_of_the_same_matter_gives_nothing() -> None:
    case = filed_case()
    assert case.file(filed(), return_visit_working_days=60) == []


# --- recording visits ---------------------------------------------------------------------------------


def test_recording_a_visit_gives_the_visit_event() -> None:
    case = filed_case()
    [event] = record(case, f"{CASE}-V1", date(2023, 6, 1))
    assert event.visit_id == f"{CASE}-V1" and event.visited_on == date(2023, 6, 1)


def test_a_visit_is_recorded_once() -> None:
    case = filed_case()
    for event in record(case, f"{CASE}-V1", date(2023, 6, 1)):
        case.evolve(event)
    with pytest.raises(Conflict) as err:
        record(case, f"{CASE}-V1", date(2023, 6, 2))
    assert err.value.code == "already_recorded"


def test_a_visit_is_not_before_the_clarification() -> None:
    case = filed_case(clarified_on=date(2023, 3, 20))
    with pytest.raises(RuleViolation) as err:
        record(case, f"{CASE}-V2", date(2023, 3, 19))
    assert (err.value.field, err.value.code) == ("visited_on", "visit_before_clarification")


def test_a_visit_on_the_day_of_the_clarification_is_allowed() -> None:
    assert record(filed_case(clarified_on=date(2023, 3, 20)), f"{CASE}-V2", date(2023, 3, 20))


def test_an_unknown_visit_is_not_found() -> None:
    with pytest.raises(NotFound):
        record(filed_case(), f"{CASE}-V3", date(2023, 6, 1))


# --- overdue visits -----------------------------------------------------------------------------------


def test_overdue_lists_unrecorded_visits_due_before_as_of() -> None:
    visits = [
        Visit("a-V1", "person", date(2023, 6, 14)),
        Visit("b-V1", "person", date(2023, 6, 13)),
        Visit("c-V1", "person", date(2023, 6, 15)),  # not yet due
        Visit("d-V1", "person", date(2023, 6, 1), visited_on=date(2023, 6, 1)),  # done
    ]
    assert [v.visit_id for v in overdue(visits, date(2023, 6, 15))] == ["b-V1", "a-V1"]


def test_a_visit_due_today_is_not_overdue() -> None:
    assert overdue([Visit("a-V1", "unit", date(2023, 6, 14))], date(2023, 6, 14)) == []


# --- the personnel notice -----------------------------------------------------------------------------


def entry(subject_id: str, clarified_on: date) -> NoticeEntry:
    return NoticeEntry(
        subject_id=subject_id,
        name="李四",
        kind="person",
        post=None,
        unit=None,
        clarified_on=clarified_on,
        points=1,
    )


def issue_on(day: date) -> IssueNotice:
    return IssueNotice(jurisdiction="331122", period="2023Q1", issued_on=day)


def test_notice_lists_entries_in_clarification_order() -> None:
    notice = PersonnelNotice("331122", Quarter(2023, 1))
    [issued] = notice.issue(
        issue_on(date(2023, 4, 3)), [entry("b", date(2023, 3, 2)), entry("a", date(2023, 3, 1))]
    )
    assert issued.notice_id == "PN-331122-2023Q1" and issued.period == "2023Q1"
    assert [e.subject_id for e in issued.entries] == ["a", "b"]


def test_notice_is_issued_once_per_period() -> None:
    notice = PersonnelNotice("331122", Quarter(2023, 1))
    for event in notice.issue(issue_on(date(2023, 4, 3)), []):
        notice.evolve(event)
    with pytest.raises(Conflict) as err:
        notice.issue(issue_on(date(2023, 4, 4)), [])
    assert err.value.code == "already_issued"


def test_notice_waits_for_the_end_of_the_period() -> None:
    with pytest.raises(RuleViolation) as err:
        PersonnelNotice("331122", Quarter(2023, 1)).issue(issue_on(date(2023, 3, 31)), [])
    assert (err.value.field, err.value.code) == ("issued_on", "period_not_over")


# --- quarters -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "first", "last"),
    [
        ("2023Q1", date(2023, 1, 1), date(2023, 3, 31)),
        ("2024Q1", date(2024, 1, 1), date(2024, 3, 31)),
        ("2023Q2", date(2023, 4, 1), date(2023, 6, 30)),
        ("2023Q4", date(2023, 10, 1), date(2023, 12, 31)),
    ],
)
def test_quarter_bounds(text: str, first: date, last: date) -> None:
    quarter = parse_quarter(text)
    assert (quarter.first_day, quarter.last_day, quarter.label) == (first, last, text)


@pytest.mark.parametrize("text", ["2023Q5", "2023Q0", "2023-Q1", "2023", "Q1 2023", "23Q1", ""])
def test_a_malformed_quarter_is_refused_naming_the_field(text: str) -> None:
    with pytest.raises(RuleViolation) as err:
        parse_quarter(text)
    assert (err.value.field, err.value.code) == ("quarter", "invalid_quarter")


# --- statistics aggregation ---------------------------------------------------------------------------


def clar(
    case_id: str,
    subject: str,
    kind: Literal["person", "unit"] = "person",
    days: int = 10,
    on_time: bool = True,
) -> ClarificationFact:
    return ClarificationFact(case_id, subject, kind, ("written_notice", "face_to_face"), on_time, days)


def test_figures_count_reports_per_channel() -> None:
    fig = figures(QuarterFacts(report_channels=("letter", "online", "online")))
    assert fig.reports_received == 3
    assert fig.reports_by_channel == {c: {"letter": 1, "online": 2}.get(c, 0) for c in CHANNELS}


def test_persons_and_units_are_counted_once_each() -> None:
    fig = figures(
        QuarterFacts(clarifications=(clar("c1", "p-1"), clar("c2", "p-1"), clar("c3", "u-1", kind="unit")))
    )
    assert (fig.clarifications, fig.persons_clarified, fig.units_clarified) == (3, 1, 1)


def test_forms_used_are_counted_per_clarification() -> None:
    fig = figures(QuarterFacts(clarifications=(clar("c1", "p-1"), clar("c2", "p-2"))))
    assert fig.forms_used == {f: {"written_notice": 2, "face_to_face": 2}.get(f, 0) for f in FORMS}


def test_mean_and_median_working_days_from_conclusion_to_clarification() -> None:
    facts = QuarterFacts(clarifications=tuple(clar(f"c{d}", f"p{d}", days=d) for d in (5, 10, 30, 41)))
    fig = figures(facts)
    assert (fig.working_days_to_clarify_mean, fig.working_days_to_clarify_median) == (21.5, 20.0)


def test_no_clarification_gives_no_mean_or_median() -> None:
    fig = figures(QuarterFacts())
    assert (fig.working_days_to_clarify_mean, fig.working_days_to_clarify_median) == (None, None)


def test_working_days_to_clarify_skip_the_spring_festival() -> None:
    # 20 January 2023 (Friday) to 30 January (Monday): the holiday runs 21-27 January, with the
    # adjusted working Saturday 28 and Sunday 29 January.
    assert working_days_to_clarify(date(2023, 1, 20), date(2023, 1, 30)) == 3


def test_on_time_clarifications_and_return_visits_due_done_on_time() -> None:
    facts = QuarterFacts(
        clarifications=(clar("c1", "p1"), clar("c2", "p2", on_time=False)),
        visits_due=(
            VisitFact("c1-V1", date(2023, 6, 14), date(2023, 6, 10)),
            VisitFact("c1-V2", date(2023, 6, 14), date(2023, 6, 20)),  # late
            VisitFact("c2-V1", date(2023, 6, 14), None),
        ),
        visits_done=frozenset({"c1-V1", "c1-V2"}),
    )
    fig = figures(facts)
    assert (fig.on_time_clarifications, fig.return_visits_due, fig.return_visits_due_done_on_time) == (
        1,
        3,
        1,
    )
    assert fig.return_visits_done == 2


def test_combined_facts_compute_city_figures_over_all_facts() -> None:
    a = QuarterFacts(candidates=frozenset({"a1"}), clarifications=(clar("a1", "p-1", days=2),))
    b = QuarterFacts(candidates=frozenset({"b1", "b2"}), clarifications=(clar("b1", "p-1", days=10),))
    fig = figures(combine([a, b]))
    assert (fig.candidates, fig.clarifications, fig.persons_clarified) == (3, 2, 1)
    assert fig.working_days_to_clarify_mean == 6.0


# --- coverage -----------------------------------------------------------------------------------------

ALL_TEN = ["331100", "331102", "331121", "331122", "331123", "331124", "331125", "331126", "331127", "331181"]


def test_coverage_counts_jurisdictions_with_a_clarified_person_or_unit() -> None:
    facts = {j: QuarterFacts() for j in ALL_TEN}
    facts["331122"] = QuarterFacts(clarifications=(clar("c1", "p1"),))
    facts["331100"] = QuarterFacts(clarifications=(clar("c2", "u1", kind="unit"),))
    cover = coverage(facts)
    assert (cover.covered, cover.of, cover.jurisdictions) == (2, 10, ["331100", "331122"])
    assert cover.text == "covered 2 of 10"


def test_full_coverage_is_ten_of_ten() -> None:
    cover = coverage({j: QuarterFacts(clarifications=(clar(f"c{j}", f"p{j}"),)) for j in ALL_TEN})
    assert cover.text == "covered 10 of 10"


def test_coverage_is_out_of_ten_even_when_fewer_are_seen() -> None:
    assert coverage({"331122": QuarterFacts(clarifications=(clar("c", "p"),))}).text == "covered 1 of 10"


# --- the indicator ------------------------------------------------------------------------------------


def fig(**overrides: int) -> Figures:
    base = figures(QuarterFacts())
    return base.model_copy(update=overrides)


def test_indicator_is_100_when_every_component_is_full() -> None:
    result = indicator(
        fig(
            candidates=10,
            clarifications=10,
            on_time_clarifications=10,
            return_visits_due=4,
            return_visits_due_done_on_time=4,
        ),
        coverage({j: QuarterFacts(clarifications=(clar(f"c{j}", f"p{j}"),)) for j in ALL_TEN}),
    )
    assert result.score == 100.0 and result.name == "保护党员干部担当干事激情"


def test_indicator_weighs_the_components() -> None:
    # Jinyun Q1 2023: 18 candidates, 13 cleared, all on time, no visit due yet, no coverage (county).
    result = indicator(fig(candidates=18, clarifications=13, on_time_clarifications=13))
    # (0.35 * 13/18 + 0.20 * 1) / 0.55 * 100
    assert result.score == pytest.approx(82.3, abs=0.05)
    assert result.components["return_visits"] is None and result.components["coverage"] is None


def test_indicator_is_undefined_when_nothing_happened() -> None:
    assert indicator(fig()).score is None


def test_clarification_rate_is_capped_at_one() -> None:
    assert clarification_rate(clarified=5, candidates=2) == 1.0
    assert clarification_rate(clarified=3, candidates=0) == 1.0
    assert clarification_rate(clarified=0, candidates=0) is None
    assert clarification_rate(clarified=1, candidates=4) == 0.25


def test_coverage_component_counts_only_in_the_city_wide_row() -> None:
    half = coverage({j: QuarterFacts(clarifications=(clar(f"c{j}", f"p{j}"),)) for j in ALL_TEN[:5]})
    full = fig(candidates=1, clarifications=1, on_time_clarifications=1)
    assert indicator(full).score == 100.0
    # (0.35 + 0.20 + 0.25 * 0.5) / 0.80 * 100
    assert indicator(full, half).score == pytest.approx(84.4, abs=0.05)


def test_late_clarifications_lower_the_indicator() -> None:
    on_time = indicator(fig(candidates=4, clarifications=4, on_time_clarifications=4)).score
    late = indicator(fig(candidates=4, clarifications=4, on_time_clarifications=2)).score
    assert on_time is not None and late is not None and late < on_time


def test_missed_return_visits_lower_the_indicator() -> None:
    done = indicator(
        fig(clarifications=2, on_time_clarifications=2, return_visits_due=2, return_visits_due_done_on_time=2)
    ).score
    missed = indicator(fig(clarifications=2, on_time_clarifications=2, return_visits_due=2)).score
    assert done == 100.0 and missed is not None and missed < done


def test_deterrence_is_a_capped_bonus() -> None:
    assert deterrence_bonus(0) == 0 and deterrence_bonus(2) == 2.0 and deterrence_bonus(50) == 5.0
    base = indicator(fig(candidates=2, clarifications=1, on_time_clarifications=1)).score
    boosted = indicator(
        fig(candidates=2, clarifications=1, on_time_clarifications=1, false_accusations_referred=50)
    ).score
    assert base is not None and boosted == pytest.approx(base + 5.0, abs=0.05)


def test_the_indicator_never_exceeds_100() -> None:
    result = indicator(
        fig(candidates=1, clarifications=1, on_time_clarifications=1, false_accusations_referred=3)
    )
    assert result.score == 100.0


def test_figures_count_each_verification_reopened_once() -> None:
    county = QuarterFacts(supplementary=frozenset({"c1", "c2"}))
    city = QuarterFacts(supplementary=frozenset({"c2", "c3"}))  # the same matter reopened twice
    assert figures(combine([county, city])).supplementary_verifications == 3
    assert figures(QuarterFacts()).supplementary_verifications == 0
    description = Figures.model_fields["supplementary_verifications"].description or ""
    assert "补充核查" in description and "supplementary verification" in description
