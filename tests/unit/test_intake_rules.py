"""Rules of intake (检举控告): states, levels, working-day deadlines, merges, notices, overdue list."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import BaseModel

from services.intake.commands import (
    AcceptReport,
    AllegationDraft,
    EraseReporter,
    FileApplication,
    HandOver,
    LogReport,
    MergeAsRepeat,
    NotifyReporter,
    RegisterReport,
    ReporterIdentity,
    SendDown,
    SendUp,
)
from services.intake.domain import (
    Application,
    Deadlines,
    Report,
    acceptance_notice_due,
    check_reporter,
    check_subjects,
    disposition_due,
    number_allegations,
    overdue,
    result_notice_due,
)
from shared.crypto import SealedField
from shared.errors import Conflict, DomainError, RuleViolation
from shared.events.common import Allegation, Subject
from shared.events.intake import (
    ReportAccepted,
    ReporterErased,
    ReporterNotified,
    ReportHandedOver,
    ReportLogged,
    ReportMergedAsRepeat,
    ReportReceived,
    ReportResultDue,
    ReportSentDown,
    ReportSentUp,
)
from shared.http import status_of

COUNTY = "331122"
CITY = "331100"
PERSON = Subject(kind="person", name="李某", post="镇长", unit="缙云县某镇人民政府")
UNIT = Subject(kind="unit", name="缙云县某局")
SEALED = SealedField(subject_id="reporter-abc", nonce="bm9uY2U=", ciphertext="Y2lwaGVy")
ALLEGATIONS = [
    Allegation(allegation_id="A1", summary="违规收受礼金"),
    Allegation(allegation_id="A2", summary="公车私用"),
]


def received(real_name: bool = True, received_on: date = date(2023, 1, 16)) -> ReportReceived:
    return ReportReceived(
        report_id="x",
        channel="letter",
        received_on=received_on,
        real_name=real_name,
        reporter=SEALED if real_name else None,
        reporter_subject_id=SEALED.subject_id if real_name else None,
        subjects=[PERSON, UNIT],
        allegations=ALLEGATIONS,
        summary="反映李某问题",
    )


def report(
    *events: BaseModel, jurisdiction: str = COUNTY, rid: str = "331122-2023-000001", real_name: bool = True
) -> Report:
    state = Report(rid, jurisdiction)
    for event in [received(real_name), *events]:
        state.evolve(event)
    return state


LOGGED = ReportLogged(logged_on=date(2023, 1, 17), disposition_due=date(2023, 2, 3))
ACCEPTED = ReportAccepted(accepted_on=date(2023, 1, 18))


def code_of(exc: pytest.ExceptionInfo[DomainError]) -> tuple[int, str, str | None]:
    return status_of(exc.value), exc.value.code, exc.value.field


# ---- registration -------------------------------------------------------------------------


def test_allegations_without_ids_are_numbered_around_given_ones() -> None:
    drafts = [
        AllegationDraft(summary="a"),
        AllegationDraft(allegation_id="A2", summary="b"),
        AllegationDraft(summary="c"),
    ]
    assert [a.allegation_id for a in number_allegations(drafts)] == ["A1", "A2", "A3"]


def test_allegation_ids_must_be_unique() -> None:
    drafts = [
        AllegationDraft(allegation_id="A1", summary="a"),
        AllegationDraft(allegation_id="A1", summary="b"),
    ]
    with pytest.raises(RuleViolation) as exc:
        number_allegations(drafts)
    assert code_of(exc) == (422, "duplicate_allegation", "allegations")


def test_real_name_report_needs_its_reporter() -> None:
    with pytest.raises(RuleViolation) as exc:
        check_reporter(True, None)
    assert code_of(exc) == (422, "reporter_required", "reporter")


def test_anonymous_report_carries_no_identity() -> None:
    with pytest.raises(RuleViolation) as exc:
        check_reporter(False, ReporterIdentity(name="王某", contact="138"))
    assert code_of(exc) == (422, "anonymous_with_identity", "reporter")
    check_reporter(False, None)


def test_reported_person_needs_post_and_unit_but_a_unit_does_not() -> None:
    with pytest.raises(RuleViolation) as exc:
        check_subjects([UNIT, Subject(kind="person", name="张某", unit="某局")])
    assert code_of(exc) == (422, "subject_incomplete", "subjects.1.post")
    check_subjects([UNIT, PERSON])


def registration(reporter: ReporterIdentity | None) -> RegisterReport:
    return RegisterReport(
        jurisdiction=COUNTY,
        channel="online",
        received_on=date(2023, 1, 16),
        real_name=True,
        reporter=reporter,
        subjects=[PERSON],
        allegations=[AllegationDraft(allegation_id=a.allegation_id, summary=a.summary) for a in ALLEGATIONS],
        summary="",
    )


def test_registration_takes_only_a_sealed_reporter() -> None:
    [event] = Report("331122-2023-000001", COUNTY).register(
        registration(ReporterIdentity(name="王某", contact="138")), SEALED
    )
    assert event.reporter == SEALED and event.reporter_subject_id == "reporter-abc"
    with pytest.raises(RuleViolation):
        Report("331122-2023-000002", COUNTY).register(registration(None), None)


# ---- working-day deadlines ----------------------------------------------------------------


def test_disposition_is_due_five_working_days_after_logging_across_spring_festival_2023() -> None:
    # 2023-01-21..27 are the Spring Festival holiday; Sat 28 and Sun 29 January are adjusted
    # working days: Fri 20 Jan + 5 working days = 28, 29, 30, 31 Jan, 1 Feb.
    assert disposition_due(date(2023, 1, 20)) == date(2023, 2, 1)


def test_acceptance_notice_is_due_fifteen_working_days_after_receipt() -> None:
    # Received Mon 16 Jan: 17,18,19,20, 28,29,30,31, 1,2,3, 6,7,8,9 Feb.
    assert acceptance_notice_due(date(2023, 1, 16)) == date(2023, 2, 9)


def test_result_notice_is_due_fifteen_working_days_after_the_conclusion() -> None:
    # 29 Sep to 6 Oct 2023 is the Mid-Autumn/National Day holiday; Sat 7 and Sun 8 Oct are worked:
    # 7, 8, 9-13, 16-20, 23, 24, 25 Oct.
    assert result_notice_due(date(2023, 9, 28)) == date(2023, 10, 25)


def test_logging_computes_the_deadlines_for_real_name_reports_only() -> None:
    [logged] = report().log(LogReport(logged_on=date(2023, 1, 20)))
    assert isinstance(logged, ReportLogged)
    assert logged.disposition_due == date(2023, 2, 1)
    assert logged.acceptance_notice_due == date(2023, 2, 9)
    [anonymous] = report(real_name=False).log(LogReport(logged_on=date(2023, 1, 20)))
    assert isinstance(anonymous, ReportLogged) and anonymous.acceptance_notice_due is None


# ---- states -------------------------------------------------------------------------------


def test_a_report_is_logged_once() -> None:
    with pytest.raises(Conflict) as exc:
        report(LOGGED).log(LogReport(logged_on=date(2023, 1, 18)))
    assert code_of(exc) == (409, "wrong_state", None)


def test_logging_cannot_precede_receipt() -> None:
    with pytest.raises(RuleViolation) as exc:
        report().log(LogReport(logged_on=date(2023, 1, 15)))
    assert code_of(exc) == (422, "date_before_previous_step", "logged_on")


@pytest.mark.parametrize("name", ["accept", "send_up", "send_down", "merge"])
def test_dispositions_need_a_logged_report(name: str) -> None:
    unlogged = report(jurisdiction=CITY if name == "send_down" else COUNTY)
    day = date(2023, 1, 18)
    with pytest.raises(Conflict) as exc:
        if name == "accept":
            unlogged.accept(AcceptReport(accepted_on=day))
        elif name == "send_up":
            unlogged.send_up(SendUp(sent_on=day, to_jurisdiction=CITY))
        elif name == "send_down":
            unlogged.send_down(SendDown(sent_on=day, to_jurisdiction=COUNTY), "331122-2023-000009")
        else:
            unlogged.merge_into(merge(day), report(LOGGED, rid="331122-2023-000005"))
    assert exc.value.code == "wrong_state"


def test_acceptance_comes_from_logged_and_only_once() -> None:
    [accepted] = report(LOGGED).accept(AcceptReport(accepted_on=date(2023, 1, 18)))
    assert isinstance(accepted, ReportAccepted)
    with pytest.raises(Conflict):
        report(LOGGED, ACCEPTED).accept(AcceptReport(accepted_on=date(2023, 1, 19)))


def test_a_county_sends_up_to_the_city() -> None:
    [sent] = report(LOGGED).send_up(SendUp(sent_on=date(2023, 1, 18), to_jurisdiction=CITY))
    assert isinstance(sent, ReportSentUp) and sent.to_jurisdiction == CITY


def test_a_county_sends_up_only_to_the_city() -> None:
    with pytest.raises(RuleViolation) as exc:
        report(LOGGED).send_up(SendUp(sent_on=date(2023, 1, 18), to_jurisdiction="331121"))
    assert code_of(exc) == (422, "not_the_higher_level", "to_jurisdiction")


def test_the_city_cannot_send_up() -> None:
    with pytest.raises(RuleViolation) as exc:
        report(LOGGED, jurisdiction=CITY, rid="331100-2023-000001").send_up(
            SendUp(sent_on=date(2023, 1, 18), to_jurisdiction=CITY)
        )
    assert code_of(exc) == (422, "no_higher_level", "to_jurisdiction")


def test_the_city_sends_down_and_the_county_gets_its_own_report() -> None:
    city = report(LOGGED, jurisdiction=CITY, rid="331100-2023-000001")
    sent, lower = city.send_down(
        SendDown(sent_on=date(2023, 1, 20), to_jurisdiction=COUNTY), "331122-2023-000042"
    )
    assert isinstance(sent, ReportSentDown)
    assert sent.response_due == date(2023, 2, 1)
    assert sent.lower_report_id == lower.report_id == "331122-2023-000042"
    assert lower.channel == "referred_down" and lower.source_reference == "331100-2023-000001"
    assert lower.received_on == date(2023, 1, 20)
    assert lower.reporter == SEALED and lower.reporter_subject_id == SEALED.subject_id
    assert lower.subjects == city.subjects and lower.allegations == city.allegations


def test_only_the_city_sends_down() -> None:
    with pytest.raises(RuleViolation) as exc:
        report(LOGGED).send_down(
            SendDown(sent_on=date(2023, 1, 20), to_jurisdiction="331121"), "331121-2023-000001"
        )
    assert code_of(exc) == (422, "no_lower_level", "to_jurisdiction")


@pytest.mark.parametrize("target", [CITY, "330100"])
def test_the_city_sends_down_only_to_its_counties(target: str) -> None:
    city = report(LOGGED, jurisdiction=CITY, rid="331100-2023-000001")
    with pytest.raises(RuleViolation) as exc:
        city.send_down(SendDown(sent_on=date(2023, 1, 20), to_jurisdiction=target), f"{target}-2023-000001")
    assert code_of(exc) == (422, "not_a_county", "to_jurisdiction")


# ---- repeats ------------------------------------------------------------------------------


def merge(day: date) -> MergeAsRepeat:
    """The command names the matter; the domain decides on the matter it is given."""
    return MergeAsRepeat(merged_on=day, repeats_matter_id="331122-2023-000001")


def test_a_repeat_is_merged_into_its_matter() -> None:
    matter = report(LOGGED, rid="331122-2023-000001")
    [merged] = report(LOGGED, rid="331122-2023-000002").merge_into(merge(date(2023, 1, 18)), matter)
    assert isinstance(merged, ReportMergedAsRepeat) and merged.repeats_matter_id == "331122-2023-000001"


def test_a_repeat_of_a_repeat_points_at_the_original_matter() -> None:
    repeat = report(
        LOGGED,
        ReportMergedAsRepeat(merged_on=date(2023, 1, 18), repeats_matter_id="331122-2023-000001"),
        rid="331122-2023-000002",
    )
    [merged] = report(LOGGED, rid="331122-2023-000003").merge_into(merge(date(2023, 1, 19)), repeat)
    assert isinstance(merged, ReportMergedAsRepeat) and merged.repeats_matter_id == "331122-2023-000001"


def test_the_matter_of_a_repeat_must_exist_in_the_same_jurisdiction() -> None:
    other = report(LOGGED, jurisdiction="331121", rid="331121-2023-000001")
    for matter in (None, other):
        with pytest.raises(RuleViolation) as exc:
            report(LOGGED).merge_into(merge(date(2023, 1, 18)), matter)
        assert code_of(exc) == (422, "unknown_matter", "repeats_matter_id")


def test_a_report_cannot_repeat_itself() -> None:
    itself = report(LOGGED)
    with pytest.raises(RuleViolation) as exc:
        itself.merge_into(merge(date(2023, 1, 18)), itself)
    assert exc.value.code == "repeat_of_itself"


# ---- handover -----------------------------------------------------------------------------


def test_handover_needs_acceptance() -> None:
    with pytest.raises(Conflict) as exc:
        report(LOGGED).hand_over(HandOver(handed_on=date(2023, 1, 19), department="第一监督检查室"), 0)
    assert exc.value.code == "wrong_state"


def test_handover_carries_what_verification_needs_and_never_the_reporter() -> None:
    [handed] = report(LOGGED, ACCEPTED).hand_over(
        HandOver(handed_on=date(2023, 1, 19), department="第一监督检查室"), 2
    )
    assert isinstance(handed, ReportHandedOver)
    assert handed.repeat_count == 2 and handed.real_name and handed.received_on == date(2023, 1, 16)
    assert handed.allegations == ALLEGATIONS
    assert "reporter" not in str(handed.model_dump()) and SEALED.ciphertext not in str(handed.model_dump())


def test_handover_cannot_precede_acceptance() -> None:
    with pytest.raises(RuleViolation) as exc:
        report(LOGGED, ACCEPTED).hand_over(
            HandOver(handed_on=date(2023, 1, 17), department="第一监督检查室"), 0
        )
    assert code_of(exc) == (422, "date_before_previous_step", "handed_on")


# ---- notices ------------------------------------------------------------------------------


def test_anonymous_reporters_get_no_notice() -> None:
    with pytest.raises(RuleViolation) as exc:
        report(LOGGED, ACCEPTED, real_name=False).notify(
            NotifyReporter(kind="acceptance", notified_on=date(2023, 1, 20))
        )
    assert exc.value.code == "anonymous_report"


def test_acceptance_notice_only_after_acceptance() -> None:
    with pytest.raises(Conflict) as exc:
        report(LOGGED).notify(NotifyReporter(kind="acceptance", notified_on=date(2023, 1, 20)))
    assert exc.value.code == "wrong_state"
    [notice] = report(LOGGED, ACCEPTED).notify(
        NotifyReporter(kind="acceptance", notified_on=date(2023, 1, 20))
    )
    assert isinstance(notice, ReporterNotified)


def test_result_notice_only_after_the_result_is_due() -> None:
    handed = ReportHandedOver(
        handed_on=date(2023, 1, 19),
        department="d",
        received_on=date(2023, 1, 16),
        real_name=True,
        subjects=[PERSON],
        allegations=ALLEGATIONS,
    )
    with pytest.raises(Conflict):
        report(LOGGED, ACCEPTED, handed).notify(NotifyReporter(kind="result", notified_on=date(2023, 3, 1)))
    due = ReportResultDue(concluded_on=date(2023, 3, 1), result_notice_due=date(2023, 3, 22))
    with pytest.raises(RuleViolation) as exc:
        report(LOGGED, ACCEPTED, handed, due).notify(
            NotifyReporter(kind="result", notified_on=date(2023, 2, 28))
        )
    assert exc.value.code == "date_before_previous_step"
    assert report(LOGGED, ACCEPTED, handed, due).notify(
        NotifyReporter(kind="result", notified_on=date(2023, 3, 2))
    )


def test_a_notice_is_given_once() -> None:
    notified = ReporterNotified(kind="acceptance", notified_on=date(2023, 1, 20))
    with pytest.raises(Conflict) as exc:
        report(LOGGED, ACCEPTED, notified).notify(
            NotifyReporter(kind="acceptance", notified_on=date(2023, 1, 21))
        )
    assert exc.value.code == "already_recorded"


def test_result_due_once_and_only_for_real_name_reports() -> None:
    [due] = report(LOGGED, ACCEPTED).result_due(date(2023, 1, 20))
    assert isinstance(due, ReportResultDue) and due.result_notice_due == date(2023, 2, 15)
    assert report(LOGGED, ACCEPTED, due).result_due(date(2023, 3, 1)) == []
    assert report(LOGGED, ACCEPTED, real_name=False).result_due(date(2023, 1, 20)) == []


def test_a_reporter_is_erased_once_per_report() -> None:
    [erased] = report().erase_reporter(EraseReporter(erased_on=date(2023, 5, 1)))
    assert isinstance(erased, ReporterErased) and erased.reporter_subject_id == SEALED.subject_id
    assert report(erased).erase_reporter(EraseReporter(erased_on=date(2023, 5, 2))) == []
    assert report(real_name=False).erase_reporter(EraseReporter(erased_on=date(2023, 5, 1))) == []


# ---- green channel ------------------------------------------------------------------------


def apply_for(matter: Report | None, **changes: object) -> object:
    args: dict[str, object] = {
        "jurisdiction": COUNTY,
        "matter_id": "331122-2023-000001",
        "applicant": Subject(kind="person", name="李某", post="副镇长", unit="缙云县某镇人民政府"),
        "untrue_points": ["A1"],
        "request": "请求澄清",
        "filed_on": date(2023, 2, 1),
    }
    args.update(changes)
    [filed] = Application("331122-2023-000001", 1, COUNTY).file(FileApplication(**args), matter)
    return filed


def test_an_application_names_points_of_a_matter_of_its_jurisdiction() -> None:
    filed = apply_for(report(LOGGED), untrue_points=["A2", "A1", "A2"])
    assert getattr(filed, "untrue_points") == ["A2", "A1"]  # noqa: B009
    assert getattr(filed, "matter_id") == "331122-2023-000001"  # noqa: B009


@pytest.mark.parametrize(
    ("matter", "changes", "code", "field"),
    [
        (None, {}, "unknown_matter", "matter_id"),
        (report(LOGGED), {"jurisdiction": "331121"}, "unknown_matter", "matter_id"),
        (report(LOGGED), {"untrue_points": ["A1", "A9"]}, "unknown_allegation", "untrue_points"),
        (
            report(LOGGED),
            {"applicant": Subject(kind="person", name="赵某", post="p", unit="u")},
            "not_a_subject",
            "applicant",
        ),
        (report(LOGGED), {"filed_on": date(2023, 1, 1)}, "date_before_previous_step", "filed_on"),
        (
            report(
                LOGGED,
                ReportMergedAsRepeat(merged_on=date(2023, 1, 18), repeats_matter_id="331122-2023-000000"),
            ),
            {},
            "repeat_report",
            "matter_id",
        ),
    ],
)
def test_application_rules(matter: Report | None, changes: dict[str, object], code: str, field: str) -> None:
    with pytest.raises(RuleViolation) as exc:
        apply_for(matter, **changes)
    assert code_of(exc) == (422, code, field)


# ---- overdue ------------------------------------------------------------------------------


def deadlines(**values: object) -> Deadlines:
    base: dict[str, object] = {"report_id": "r", "state": "logged", "real_name": True}
    base.update(values)
    return Deadlines(**base)  # type: ignore[arg-type]


def kinds(report: Deadlines, as_of: date) -> list[str]:
    return [i.kind for i in overdue(report, as_of)]


def test_disposition_is_overdue_the_day_after_its_due_date_until_disposed() -> None:
    due = date(2023, 2, 1)
    assert kinds(deadlines(disposition_due=due), due) == []
    [item] = overdue(deadlines(disposition_due=due), date(2023, 2, 4))
    assert (item.kind, item.due_on, item.days_overdue) == ("disposition", due, 3)
    assert kinds(deadlines(disposition_due=due, disposed_on=date(2023, 2, 1)), date(2023, 2, 4)) == []
    # Disposed later than as_of: it was still late then.
    assert kinds(deadlines(disposition_due=due, disposed_on=date(2023, 2, 10)), date(2023, 2, 4)) == [
        "disposition"
    ]


def test_acceptance_notice_overdue_for_real_name_reports_still_held_here() -> None:
    due = date(2023, 2, 9)
    late = date(2023, 2, 10)
    assert kinds(deadlines(acceptance_notice_due=due), late) == ["acceptance_notice"]
    assert kinds(deadlines(acceptance_notice_due=due, acceptance_notified_on=due), late) == []
    assert kinds(deadlines(acceptance_notice_due=due, real_name=False), late) == []
    sent = deadlines(acceptance_notice_due=due, state="sent_down", disposed_on=date(2023, 1, 20))
    assert kinds(sent, late) == []


def test_result_notice_overdue_until_given() -> None:
    due = date(2023, 3, 22)
    assert kinds(deadlines(result_notice_due=due), date(2023, 3, 23)) == ["result_notice"]
    assert (
        kinds(deadlines(result_notice_due=due, result_notified_on=date(2023, 3, 20)), date(2023, 3, 23)) == []
    )


def test_sent_down_response_overdue_while_the_lower_report_is_not_disposed() -> None:
    sent = {"state": "sent_down", "disposed_on": date(2023, 1, 20), "response_due": date(2023, 2, 1)}
    assert kinds(deadlines(**sent), date(2023, 2, 2)) == ["sent_down_response"]
    assert kinds(deadlines(**sent, lower_disposed_on=date(2023, 1, 30)), date(2023, 2, 2)) == []


def test_a_report_another_agency_transferred_names_the_agency() -> None:
    transferred = registration(ReporterIdentity(name="王某", contact="138")).model_copy(
        update={"channel": "agency_transfer"}
    )
    with pytest.raises(RuleViolation) as refused:
        Report("331122-2023-000001", COUNTY).register(transferred, SEALED)
    assert (refused.value.field, refused.value.code) == ("source_agency", "source_agency_required")
    named = transferred.model_copy(
        update={"source_agency": "丽水市公安局", "source_reference": "丽公〔2023〕7号"}
    )
    [received] = Report("331122-2023-000001", COUNTY).register(named, SEALED)
    assert (received.source_agency, received.source_reference) == ("丽水市公安局", "丽公〔2023〕7号")
