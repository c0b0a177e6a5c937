"""Rules of the review domain (核查): each rule alone, and the verification aggregate's commands."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import BaseModel

from services.review.commands import (
    ConcludeVerification,
    DecideHandling,
    RecordFinding,
    ReportResults,
    RunSweep,
)
from services.review.domain import (
    ResultsReport,
    Verification,
    check_false_accusation_approval,
    check_not_relabelling_honest_mistake,
    eligible_for_pool,
    in_sweep_window,
    missing_findings,
    overall_outcome,
    quarter_bounds,
    sweep_id_for,
    sweep_window,
)
from shared.errors import Conflict, NotFound, RuleViolation
from shared.events.common import Allegation, Finding, Subject
from shared.events.intake import ReportHandedOver
from shared.events.review import (
    CandidateScreened,
    FalseAccusationReferred,
    FindingRecorded,
    HandlingDecided,
    VerificationConcluded,
    VerificationOpened,
)

OPENED = VerificationOpened(
    department="第三纪检监察室",
    opened_on=date(2023, 1, 10),
    received_on=date(2023, 1, 3),
    real_name=True,
    subjects=[Subject(kind="person", name="张某", post="镇长", unit="某镇人民政府")],
    allegations=[
        Allegation(allegation_id="A1", summary="违规收受礼金"),
        Allegation(allegation_id="A2", summary="违规插手工程"),
    ],
)
DECIDED = HandlingDecided(
    method="preliminary_verification", decided_on=date(2023, 1, 12), approved_by="head-1"
)


def verification(*events: BaseModel) -> Verification:
    v = Verification("331122-2023-000001", "331122")
    for event in events:
        v.evolve(event)
    return v


def finding(allegation_id: str, value: Finding) -> FindingRecorded:
    return FindingRecorded(allegation_id=allegation_id, finding=value, basis="核查谈话和书证")


# -- eligibility (备选库) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("findings", "eligible"),
    [
        (["untrue"], True),
        (["untrue", "untrue"], True),
        (["untrue", "not_proven"], True),  # not proven does not block the untrue points
        (["untrue", "honest_mistake"], True),
        (["untrue", "false_accusation"], True),
        (["untrue", "true"], False),  # anything true keeps the matter out
        (["untrue", "partly_true"], False),  # partly true is true
        (["not_proven"], False),  # unproven is not untrue: not eligible on its own
        (["honest_mistake"], True),  # an honest mistake is an untrue point (错告)
        (["false_accusation"], True),  # so is a false accusation (诬告陷害)
        (["not_proven", "honest_mistake", "false_accusation"], True),
        (["no_violation"], True),  # 事实存在但不违规违纪: the accusation of wrongdoing was untrue
        (["no_violation", "partly_true"], False),
        (["true"], False),
        ([], False),
    ],
)
def test_eligible_for_pool_needs_an_untrue_point_and_nothing_true(
    findings: list[Finding], eligible: bool
) -> None:
    assert eligible_for_pool(findings) is eligible


@pytest.mark.parametrize(
    ("findings", "outcome"),
    [
        (["untrue", "true"], "true"),
        (["untrue", "partly_true"], "partly_true"),
        (["untrue", "not_proven"], "eligible"),
        (["false_accusation", "not_proven"], "false_accusation"),
        (["honest_mistake", "not_proven"], "honest_mistake"),
        (["not_proven"], "not_proven"),
    ],
)
def test_overall_outcome_for_the_quarterly_report(findings: list[Finding], outcome: str) -> None:
    assert overall_outcome(findings) == outcome


# -- handling decision --------------------------------------------------------------------------


def test_decision_must_be_collective() -> None:
    with pytest.raises(RuleViolation) as exc:
        verification(OPENED).decide(
            DecideHandling(
                method="talk_inquiry", decided_on=date(2023, 1, 12), approved_by="head-1", collective=False
            )
        )
    assert (exc.value.code, exc.value.field) == ("collective_decision_required", "collective")


@pytest.mark.parametrize("approver", ["", "   "])
def test_decision_needs_the_approving_head(approver: str) -> None:
    with pytest.raises(RuleViolation) as exc:
        # The edge refuses a blank approver already (UserId); the rule stands on its own all the same.
        verification(OPENED).decide(
            DecideHandling.model_construct(
                method="talk_inquiry", decided_on=date(2023, 1, 12), approved_by=approver, collective=True
            )
        )
    assert (exc.value.code, exc.value.field) == ("approval_required", "approved_by")


def test_decision_not_before_opening() -> None:
    with pytest.raises(RuleViolation) as exc:
        verification(OPENED).decide(
            DecideHandling(method="close", decided_on=date(2023, 1, 9), approved_by="head-1", collective=True)
        )
    assert (exc.value.code, exc.value.field) == ("date_before_previous_step", "decided_on")


def test_decision_on_the_opening_day_is_recorded() -> None:
    events = verification(OPENED).decide(
        DecideHandling(
            method="close", decided_on=date(2023, 1, 10), approved_by=" head-1 ", collective=True, note="n"
        )
    )
    assert events == [
        HandlingDecided(method="close", decided_on=date(2023, 1, 10), approved_by="head-1", note="n")
    ]


def test_only_one_decision() -> None:
    with pytest.raises(Conflict) as exc:
        verification(OPENED, DECIDED).decide(
            DecideHandling(
                method="close", decided_on=date(2023, 1, 13), approved_by="head-1", collective=True
            )
        )
    assert exc.value.code == "already_decided"


def test_no_decision_without_a_verification() -> None:
    with pytest.raises(NotFound):
        verification().decide(
            DecideHandling(
                method="close", decided_on=date(2023, 1, 13), approved_by="head-1", collective=True
            )
        )


# -- findings -----------------------------------------------------------------------------------


def test_finding_requires_a_decision_first() -> None:
    with pytest.raises(Conflict) as exc:
        verification(OPENED).record_finding(RecordFinding(allegation_id="A1", finding="untrue", basis="b"))
    assert exc.value.code == "wrong_state"


def test_finding_only_for_the_matters_allegations() -> None:
    with pytest.raises(RuleViolation) as exc:
        verification(OPENED, DECIDED).record_finding(
            RecordFinding(allegation_id="A9", finding="untrue", basis="b")
        )
    assert (exc.value.code, exc.value.field) == ("unknown_allegation", "allegation_id")


def test_one_finding_per_allegation() -> None:
    with pytest.raises(Conflict) as exc:
        verification(OPENED, DECIDED, finding("A1", "untrue")).record_finding(
            RecordFinding(allegation_id="A1", finding="true", basis="b")
        )
    assert exc.value.code == "already_recorded"


@pytest.mark.parametrize(
    ("approved_by", "approval_jurisdiction", "field"),
    [
        (None, None, "approved_by"),
        (None, "331100", "approved_by"),
        ("city-head", None, "approval_jurisdiction"),
        ("county-head", "331122", "approval_jurisdiction"),  # a county cannot approve it
    ],
)
def test_false_accusation_needs_city_approval(
    approved_by: str | None, approval_jurisdiction: str | None, field: str
) -> None:
    with pytest.raises(RuleViolation) as exc:
        check_false_accusation_approval("false_accusation", approved_by, approval_jurisdiction)
    assert (exc.value.code, exc.value.field) == ("false_accusation_needs_city_approval", field)


def test_false_accusation_approval_rule_applies_to_nothing_else() -> None:
    check_false_accusation_approval("untrue", None, None)
    check_false_accusation_approval("honest_mistake", None, "331122")


def test_false_accusation_with_city_approval_is_recorded_and_referred() -> None:
    events = verification(OPENED, DECIDED).record_finding(
        RecordFinding(
            allegation_id="A1",
            finding="false_accusation",
            basis="捏造事实",
            approved_by="city-head",
            approval_jurisdiction="331100",
            referred_on=date(2023, 2, 1),
        )
    )
    assert events == [
        FindingRecorded(
            allegation_id="A1",
            finding="false_accusation",
            basis="捏造事实",
            approved_by="city-head",
            approval_jurisdiction="331100",
        ),
        FalseAccusationReferred(
            allegation_id="A1", referred_on=date(2023, 2, 1), referred_to="案件监督管理室"
        ),
    ]


def test_false_accusation_needs_a_referral_date() -> None:
    with pytest.raises(RuleViolation) as exc:
        verification(OPENED, DECIDED).record_finding(
            RecordFinding(
                allegation_id="A1",
                finding="false_accusation",
                basis="b",
                approved_by="city-head",
                approval_jurisdiction="331100",
            )
        )
    assert (exc.value.code, exc.value.field) == ("referral_date_required", "referred_on")


def test_false_accusation_referral_not_before_decision() -> None:
    with pytest.raises(RuleViolation) as exc:
        verification(OPENED, DECIDED).record_finding(
            RecordFinding(
                allegation_id="A1",
                finding="false_accusation",
                basis="b",
                approved_by="city-head",
                approval_jurisdiction="331100",
                referred_on=date(2023, 1, 11),
            )
        )
    assert (exc.value.code, exc.value.field) == ("date_before_previous_step", "referred_on")


def test_honest_mistake_is_never_referred() -> None:
    with pytest.raises(RuleViolation) as exc:
        verification(OPENED, DECIDED).record_finding(
            RecordFinding(
                allegation_id="A1", finding="honest_mistake", basis="b", referred_on=date(2023, 2, 1)
            )
        )
    assert exc.value.code == "referral_only_for_false_accusation"
    recorded = verification(OPENED, DECIDED).record_finding(
        RecordFinding(allegation_id="A1", finding="honest_mistake", basis="b")
    )
    assert [type(e) for e in recorded] == [FindingRecorded]


def test_honest_mistake_is_never_relabelled_false_accusation() -> None:
    with pytest.raises(Conflict) as exc:
        check_not_relabelling_honest_mistake("honest_mistake", "false_accusation")
    assert exc.value.code == "honest_mistake_not_false_accusation"
    check_not_relabelling_honest_mistake(None, "false_accusation")
    # Through the aggregate, even with a valid city approval, the honest mistake stands.
    with pytest.raises(Conflict) as exc:
        verification(OPENED, DECIDED, finding("A1", "honest_mistake")).record_finding(
            RecordFinding(
                allegation_id="A1",
                finding="false_accusation",
                basis="b",
                approved_by="city-head",
                approval_jurisdiction="331100",
                referred_on=date(2023, 2, 1),
            )
        )
    assert exc.value.code == "honest_mistake_not_false_accusation"


def test_no_finding_after_conclusion() -> None:
    v = verification(OPENED, DECIDED, finding("A1", "untrue"), finding("A2", "untrue"))
    concluded = v.conclude(ConcludeVerification(concluded_on=date(2023, 3, 1)))
    v.evolve(concluded[0])
    with pytest.raises(Conflict) as exc:
        v.record_finding(RecordFinding(allegation_id="A1", finding="untrue", basis="b"))
    assert exc.value.code == "wrong_state"


# -- conclusion (办结) ----------------------------------------------------------------------------


def test_missing_findings_in_report_order() -> None:
    assert missing_findings(OPENED.allegations, {"A2": "x"}) == ["A1"]
    assert missing_findings(OPENED.allegations, {}) == ["A1", "A2"]


def test_conclude_names_the_allegations_without_finding() -> None:
    with pytest.raises(RuleViolation) as exc:
        verification(OPENED, DECIDED, finding("A1", "untrue")).conclude(
            ConcludeVerification(concluded_on=date(2023, 3, 1))
        )
    assert exc.value.code == "findings_missing"
    assert "A2" in exc.value.detail and "A1" not in exc.value.detail


def test_conclude_requires_a_decision() -> None:
    with pytest.raises(Conflict) as exc:
        verification(OPENED).conclude(ConcludeVerification(concluded_on=date(2023, 3, 1)))
    assert exc.value.code == "wrong_state"


def test_conclude_not_before_decision() -> None:
    v = verification(OPENED, DECIDED, finding("A1", "untrue"), finding("A2", "untrue"))
    with pytest.raises(RuleViolation) as exc:
        v.conclude(ConcludeVerification(concluded_on=date(2023, 1, 11)))
    assert (exc.value.code, exc.value.field) == ("date_before_previous_step", "concluded_on")


def test_conclusion_carries_findings_untrue_points_and_eligibility() -> None:
    v = verification(OPENED, DECIDED, finding("A1", "untrue"), finding("A2", "not_proven"))
    [concluded] = v.conclude(ConcludeVerification(concluded_on=date(2023, 3, 1)))
    assert isinstance(concluded, VerificationConcluded)
    assert concluded.findings == {"A1": "untrue", "A2": "not_proven"}
    assert [a.allegation_id for a in concluded.untrue_points] == ["A1"]
    assert concluded.received_on == OPENED.received_on
    assert concluded.subjects == OPENED.subjects
    assert concluded.eligible_for_pool is True


def test_conclude_once() -> None:
    v = verification(OPENED, DECIDED, finding("A1", "true"), finding("A2", "untrue"))
    [concluded] = v.conclude(ConcludeVerification(concluded_on=date(2023, 3, 1)))
    assert isinstance(concluded, VerificationConcluded) and concluded.eligible_for_pool is False
    v.evolve(concluded)
    with pytest.raises(Conflict) as exc:
        v.conclude(ConcludeVerification(concluded_on=date(2023, 3, 2)))
    assert exc.value.code == "already_concluded"


# -- opening ------------------------------------------------------------------------------------


def test_open_once() -> None:
    kwargs = {k: getattr(OPENED, k) for k in VerificationOpened.model_fields if k != "opened_on"}
    handed = ReportHandedOver(handed_on=OPENED.opened_on, **kwargs)
    assert verification().open(handed) == [OPENED]
    assert verification(OPENED).open(handed) == []


# -- backlog sweep (大起底) -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("concluded_on", "inside"),
    [
        (date(2020, 6, 30), True),  # exactly three years before: in
        (date(2020, 6, 29), False),  # one day older: out
        (date(2023, 6, 30), True),  # on the sweep day itself: in
        (date(2023, 7, 1), False),  # after the sweep day: out
        (date(2022, 1, 1), True),
    ],
)
def test_sweep_window_is_the_three_years_before(concluded_on: date, inside: bool) -> None:
    assert in_sweep_window(concluded_on, date(2023, 6, 30)) is inside


def test_sweep_window_from_a_leap_day() -> None:
    assert sweep_window(date(2024, 2, 29)) == (date(2021, 2, 28), date(2024, 2, 29))


def concluded(on: date, eligible: bool = True) -> VerificationConcluded:
    return VerificationConcluded(
        concluded_on=on,
        received_on=OPENED.received_on,
        findings={"A1": "untrue", "A2": "untrue" if eligible else "true"},
        untrue_points=list(OPENED.allegations),
        subjects=OPENED.subjects,
        eligible_for_pool=eligible,
    )


def test_screen_once_per_sweep() -> None:
    sweep = sweep_id_for("331122", date(2023, 6, 30))
    assert sweep == "331122-sweep-2023-06-30"
    v = verification(
        OPENED, DECIDED, finding("A1", "untrue"), finding("A2", "untrue"), concluded(date(2023, 3, 1))
    )
    flags = {v.case_id: ["reputation", "reputation"]}
    events = v.screen(RunSweep(jurisdiction="331122", as_of=date(2023, 6, 30), priority_flags=flags))
    assert events == [
        CandidateScreened(sweep_id=sweep, screened_on=date(2023, 6, 30), priority_flags=["reputation"])
    ]
    v.evolve(events[0])
    assert v.screen(RunSweep(jurisdiction="331122", as_of=date(2023, 6, 30))) == []


def test_only_eligible_matters_in_the_window_are_candidates() -> None:
    base = (OPENED, DECIDED, finding("A1", "untrue"), finding("A2", "untrue"))
    as_of = date(2023, 6, 30)
    assert verification(*base, concluded(date(2023, 3, 1))).is_sweep_candidate(as_of)
    assert not verification(*base, concluded(date(2020, 6, 1))).is_sweep_candidate(as_of)
    assert not verification(*base, concluded(date(2023, 3, 1), eligible=False)).is_sweep_candidate(as_of)
    assert not verification(*base).is_sweep_candidate(as_of)
    with pytest.raises(Conflict):
        verification(*base).screen(RunSweep(jurisdiction="331122", as_of=as_of))


# -- quarterly results --------------------------------------------------------------------------


def test_quarter_bounds() -> None:
    assert quarter_bounds("2023Q1") == (date(2023, 1, 1), date(2023, 3, 31))
    assert quarter_bounds("2023Q4") == (date(2023, 10, 1), date(2023, 12, 31))


def results_on(day: date) -> ReportResults:
    return ReportResults(jurisdiction="331122", quarter="2023Q1", reported_on=day)


def test_results_reported_once_after_the_quarter() -> None:
    report = ResultsReport("331122", "2023Q1")
    with pytest.raises(RuleViolation) as exc:
        report.report(results_on(date(2023, 3, 30)), concluded={})
    assert (exc.value.code, exc.value.field) == ("quarter_not_over", "reported_on")
    [done] = report.report(
        results_on(date(2023, 3, 31)),
        concluded={"m2": ["true", "untrue"], "m1": ["untrue", "not_proven"]},
    )
    assert done.model_dump()["matters"] == {"m1": "eligible", "m2": "true"}
    report.evolve(done)
    with pytest.raises(Conflict) as again:
        report.report(results_on(date(2023, 4, 2)), concluded={})
    assert again.value.code == "already_reported"


def test_a_finding_is_not_dated_before_the_decision_nor_after_the_conclusion() -> None:
    day = date
    v = verification(OPENED, DECIDED)
    with pytest.raises(RuleViolation) as early:
        v.record_finding(
            RecordFinding(allegation_id="A1", finding="untrue", basis="x", found_on=day(2000, 1, 1))
        )
    assert early.value.field == "found_on"
    # A finding dated after the edge's range (BusinessDate): the conclusion rule alone is tested.
    for event in v.record_finding(
        RecordFinding.model_construct(
            allegation_id="A1", finding="untrue", basis="x", found_on=day(2031, 1, 1)
        )
    ):
        v.evolve(event)
    for event in v.record_finding(RecordFinding(allegation_id="A2", finding="untrue", basis="y")):
        v.evolve(event)
    with pytest.raises(RuleViolation) as late:
        v.conclude(ConcludeVerification.model_construct(concluded_on=day(2030, 12, 31)))
    assert late.value.field == "concluded_on"
