"""Rules of the review domain (核查): each rule alone, and the verification aggregate's commands."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import BaseModel

from services.review.commands import (
    ApproveFalseAccusation,
    ApproveHandling,
    ConcludeVerification,
    ProposeHandling,
    RecordFinding,
    RefuseFalseAccusation,
    ReopenVerification,
    ReportResults,
    RunSweep,
    SendBackHandling,
)
from services.review.domain import (
    ResultsReport,
    Verification,
    check_false_accusation_after_conclusion,
    check_false_accusation_approver,
    check_not_relabelling_honest_mistake,
    eligible_for_pool,
    in_sweep_window,
    missing_findings,
    overall_outcome,
    quarter_bounds,
    sweep_id_for,
    sweep_window,
)
from shared.auth import Principal
from shared.envelope import CITY, JURISDICTIONS
from shared.errors import Conflict, Forbidden, NotFound, RuleViolation
from shared.events.common import Allegation, Finding, Subject
from shared.events.intake import ReportHandedOver
from shared.events.review import (
    CandidateScreened,
    FalseAccusationProposed,
    FalseAccusationReferred,
    FalseAccusationRefused,
    FindingRecorded,
    HandlingDecided,
    HandlingProposed,
    HandlingSentBack,
    VerificationConcluded,
    VerificationOpened,
    VerificationReopened,
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


# -- handling decision: proposed by the department, approved by the head -------------------------

COUNTY_HEAD = Principal(
    user_id="head-331122", role="head", unit="缙云县纪委监委", jurisdictions=["331122"], name="王某"
)
CITY_HEAD = Principal(
    user_id="head-331100", role="head", unit="丽水市纪委监委", jurisdictions=sorted(JURISDICTIONS)
)
PROPOSED = HandlingProposed(method="preliminary_verification", decided_on=date(2023, 1, 12))


def propose(**changes: object) -> ProposeHandling:
    fields: dict[str, object] = {
        "method": "talk_inquiry",
        "decided_on": date(2023, 1, 12),
        "collective": True,
        **changes,
    }
    return ProposeHandling.model_validate(fields)


def test_decision_must_be_collective() -> None:
    with pytest.raises(RuleViolation) as exc:
        verification(OPENED).propose(propose(collective=False))
    assert (exc.value.code, exc.value.field) == ("collective_decision_required", "collective")


def test_the_department_names_no_approver() -> None:
    # The approver is whoever approves in their own session: a body naming one is refused.
    with pytest.raises(ValueError, match="approved_by"):
        propose(approved_by="head-1")


def test_decision_not_before_opening() -> None:
    with pytest.raises(RuleViolation) as exc:
        verification(OPENED).propose(propose(decided_on=date(2023, 1, 9)))
    assert (exc.value.code, exc.value.field) == ("date_before_previous_step", "decided_on")


def test_proposal_on_the_opening_day_is_recorded_and_awaits_the_head() -> None:
    v = verification(OPENED)
    events = v.propose(propose(method="close", decided_on=date(2023, 1, 10), note="n"))
    assert events == [HandlingProposed(method="close", decided_on=date(2023, 1, 10), note="n")]
    v.evolve(events[0])
    assert v.state == "proposed"
    with pytest.raises(Conflict) as exc:
        v.propose(propose())
    assert exc.value.code == "proposal_pending"
    with pytest.raises(Conflict) as exc:
        v.record_finding(RecordFinding(allegation_id="A1", finding="untrue", basis="b"))
    assert exc.value.code == "wrong_state"  # findings need the approved decision


def test_the_head_approves_in_person() -> None:
    v = verification(OPENED, PROPOSED)
    [decided] = v.approve_handling(ApproveHandling(approved_on=date(2023, 1, 13)), COUNTY_HEAD)
    assert decided == HandlingDecided(
        method="preliminary_verification",
        decided_on=date(2023, 1, 12),
        approved_by="head-331122",
        approved_on=date(2023, 1, 13),
        approver_name="王某",
    )
    v.evolve(decided)
    assert v.state == "decided" and v.proposal is None


def test_approval_not_before_the_proposal() -> None:
    with pytest.raises(RuleViolation) as exc:
        verification(OPENED, PROPOSED).approve_handling(
            ApproveHandling(approved_on=date(2023, 1, 11)), COUNTY_HEAD
        )
    assert (exc.value.code, exc.value.field) == ("date_before_previous_step", "approved_on")


def test_nothing_to_approve_or_send_back_without_a_proposal() -> None:
    with pytest.raises(Conflict) as exc:
        verification(OPENED).approve_handling(ApproveHandling(approved_on=date(2023, 1, 13)), COUNTY_HEAD)
    assert exc.value.code == "no_pending_proposal"
    with pytest.raises(Conflict) as exc:
        verification(OPENED).send_back_handling(SendBackHandling(sent_back_on=date(2023, 1, 13), reason="r"))
    assert exc.value.code == "no_pending_proposal"
    with pytest.raises(Conflict) as exc:
        verification(OPENED, DECIDED).approve_handling(
            ApproveHandling(approved_on=date(2023, 1, 13)), COUNTY_HEAD
        )
    assert exc.value.code == "already_decided"


def test_sent_back_the_department_proposes_again_not_before_the_send_back() -> None:
    v = verification(OPENED, PROPOSED)
    [sent] = v.send_back_handling(SendBackHandling(sent_back_on=date(2023, 1, 14), reason=" 证据不足 "))
    assert sent == HandlingSentBack(sent_back_on=date(2023, 1, 14), reason="证据不足")
    v.evolve(sent)
    assert v.state == "open" and v.proposal is None
    with pytest.raises(RuleViolation) as exc:
        v.propose(propose(decided_on=date(2023, 1, 13)))
    assert (exc.value.code, exc.value.field) == ("date_before_previous_step", "decided_on")
    [again] = v.propose(propose(decided_on=date(2023, 1, 15)))
    assert isinstance(again, HandlingProposed)


def test_a_send_back_says_why() -> None:
    with pytest.raises(RuleViolation) as exc:
        verification(OPENED, PROPOSED).send_back_handling(
            SendBackHandling.model_construct(sent_back_on=date(2023, 1, 14), reason="  ")
        )
    assert (exc.value.code, exc.value.field) == ("reason_required", "reason")


def test_only_one_decision() -> None:
    with pytest.raises(Conflict) as exc:
        verification(OPENED, DECIDED).propose(propose(decided_on=date(2023, 1, 13)))
    assert exc.value.code == "already_decided"


def test_an_old_decision_without_proposal_reads_as_proposed_and_approved() -> None:
    v = verification(OPENED, DECIDED)
    assert v.state == "decided" and v.decision == DECIDED
    assert [
        type(e) for e in v.record_finding(RecordFinding(allegation_id="A1", finding="untrue", basis="b"))
    ] == [FindingRecorded]


def test_no_decision_without_a_verification() -> None:
    with pytest.raises(NotFound):
        verification().propose(propose(decided_on=date(2023, 1, 13)))


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


def fa_finding(allegation_id: str = "A1", **changes: object) -> RecordFinding:
    fields: dict[str, object] = {
        "allegation_id": allegation_id,
        "finding": "false_accusation",
        "basis": "捏造事实",
        "referred_on": date(2023, 2, 1),
        **changes,
    }
    return RecordFinding.model_validate(fields)


def test_the_department_names_no_false_accusation_approval() -> None:
    for stale in ({"approved_by": "city-head"}, {"approval_jurisdiction": "331100"}):
        with pytest.raises(ValueError, match=next(iter(stale))):
            fa_finding(**stale)


def test_false_accusation_is_proposed_and_the_allegation_waits() -> None:
    v = verification(OPENED, DECIDED)
    [proposed] = v.record_finding(fa_finding(found_on=date(2023, 1, 30)))
    assert proposed == FalseAccusationProposed(
        allegation_id="A1",
        basis="捏造事实",
        found_on=date(2023, 1, 30),
        referred_on=date(2023, 2, 1),
        referred_to="案件监督管理室",
    )
    v.evolve(proposed)
    assert "A1" not in v.findings
    with pytest.raises(Conflict) as exc:
        v.record_finding(RecordFinding(allegation_id="A1", finding="untrue", basis="b"))
    assert exc.value.code == "false_accusation_pending"
    for event in v.record_finding(RecordFinding(allegation_id="A2", finding="untrue", basis="b")):
        v.evolve(event)
    with pytest.raises(Conflict) as exc:
        v.conclude(ConcludeVerification(concluded_on=date(2023, 3, 1)))
    assert (exc.value.code, exc.value.field) == ("false_accusation_pending", "findings")


def test_false_accusation_approver_is_a_head_of_the_city() -> None:
    assert check_false_accusation_approver(CITY_HEAD) == CITY
    with pytest.raises(Forbidden) as exc:
        check_false_accusation_approver(COUNTY_HEAD)
    assert exc.value.code == "false_accusation_needs_city_approval"
    assert exc.value.detail_zh and "市级" in exc.value.detail_zh


def test_the_city_head_approves_the_false_accusation_which_is_referred() -> None:
    v = verification(OPENED, DECIDED)
    v.evolve(v.record_finding(fa_finding(found_on=date(2023, 1, 30)))[0])
    with pytest.raises(Forbidden):
        v.approve_false_accusation("A1", ApproveFalseAccusation(approved_on=date(2023, 2, 1)), COUNTY_HEAD)
    events = v.approve_false_accusation("A1", ApproveFalseAccusation(approved_on=date(2023, 2, 1)), CITY_HEAD)
    assert events == [
        FindingRecorded(
            approved_on=date(2023, 2, 1),
            found_on=date(2023, 1, 30),
            allegation_id="A1",
            finding="false_accusation",
            basis="捏造事实",
            approved_by="head-331100",
            approval_jurisdiction="331100",
        ),
        FalseAccusationReferred(
            allegation_id="A1", referred_on=date(2023, 2, 1), referred_to="案件监督管理室"
        ),
    ]
    for event in events:
        v.evolve(event)
    assert not v.proposed_false_accusations and v.findings["A1"].finding == "false_accusation"


def test_false_accusation_approval_not_before_the_proposal() -> None:
    v = verification(OPENED, DECIDED)
    v.evolve(v.record_finding(fa_finding(found_on=date(2023, 1, 30)))[0])
    with pytest.raises(RuleViolation) as exc:
        v.approve_false_accusation("A1", ApproveFalseAccusation(approved_on=date(2023, 1, 29)), CITY_HEAD)
    assert (exc.value.code, exc.value.field) == ("date_before_previous_step", "approved_on")


def test_nothing_to_approve_without_a_proposal() -> None:
    with pytest.raises(NotFound):
        verification(OPENED, DECIDED).approve_false_accusation(
            "A1", ApproveFalseAccusation(approved_on=date(2023, 2, 1)), CITY_HEAD
        )


def test_the_city_head_refuses_and_the_department_finds_again() -> None:
    v = verification(OPENED, DECIDED)
    v.evolve(v.record_finding(fa_finding())[0])
    with pytest.raises(Forbidden):
        v.refuse_false_accusation(
            "A1", RefuseFalseAccusation(refused_on=date(2023, 2, 2), reason="证据不足"), COUNTY_HEAD
        )
    [refused] = v.refuse_false_accusation(
        "A1", RefuseFalseAccusation(refused_on=date(2023, 2, 2), reason="证据不足"), CITY_HEAD
    )
    assert refused == FalseAccusationRefused(
        allegation_id="A1", refused_on=date(2023, 2, 2), reason="证据不足"
    )
    v.evolve(refused)
    assert not v.proposed_false_accusations
    [found] = v.record_finding(RecordFinding(allegation_id="A1", finding="untrue", basis="b"))
    assert isinstance(found, FindingRecorded)


def test_false_accusation_needs_a_referral_date() -> None:
    with pytest.raises(RuleViolation) as exc:
        verification(OPENED, DECIDED).record_finding(fa_finding(referred_on=None))
    assert (exc.value.code, exc.value.field) == ("referral_date_required", "referred_on")


def test_false_accusation_referral_not_before_decision() -> None:
    with pytest.raises(RuleViolation) as exc:
        verification(OPENED, DECIDED).record_finding(fa_finding(referred_on=date(2023, 1, 11)))
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
    # Through the aggregate: the honest mistake stands, and it is never even proposed.
    with pytest.raises(Conflict) as exc:
        verification(OPENED, DECIDED, finding("A1", "honest_mistake")).record_finding(fa_finding())
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
            RecordFinding(allegation_id="A1", finding="untrue", basis="x", found_on=day(2005, 1, 4))
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


# -- 诬告陷害 found after the conclusion ------------------------------------------------------------


def concluded_with(a1: Finding, a2: Finding) -> Verification:
    v = verification(OPENED, DECIDED, finding("A1", a1), finding("A2", a2))
    v.evolve(v.conclude(ConcludeVerification(concluded_on=date(2023, 3, 1)))[0])
    return v


def test_after_the_conclusion_only_an_untrue_or_unproven_point_turns_false_accusation() -> None:
    check_false_accusation_after_conclusion("untrue")
    check_false_accusation_after_conclusion("not_proven")
    for previous in ("true", "partly_true", "no_violation", None):
        with pytest.raises(Conflict) as exc:
            check_false_accusation_after_conclusion(previous)
        assert (exc.value.code, exc.value.field) == ("false_accusation_only_on_untrue_point", "finding")


@pytest.mark.parametrize("previous", ["true", "partly_true", "no_violation"])
def test_a_point_found_true_is_not_turned_false_accusation_after_the_conclusion(previous: Finding) -> None:
    v = concluded_with(previous, "untrue")
    with pytest.raises(Conflict) as exc:
        v.record_finding(fa_finding(referred_on=date(2023, 3, 10)))
    assert exc.value.code == "false_accusation_only_on_untrue_point"


def test_an_honest_mistake_stays_after_the_conclusion() -> None:
    with pytest.raises(Conflict) as exc:
        concluded_with("honest_mistake", "untrue").record_finding(fa_finding(referred_on=date(2023, 3, 10)))
    assert exc.value.code == "honest_mistake_not_false_accusation"


def test_other_findings_stay_refused_after_the_conclusion() -> None:
    with pytest.raises(Conflict) as exc:
        concluded_with("not_proven", "untrue").record_finding(
            RecordFinding(allegation_id="A1", finding="untrue", basis="b")
        )
    assert exc.value.code == "wrong_state"


def test_a_false_accusation_after_the_conclusion_revises_it() -> None:
    v = concluded_with("not_proven", "not_proven")
    assert v.conclusion is not None and v.conclusion.eligible_for_pool is False
    with pytest.raises(RuleViolation) as early:
        v.record_finding(fa_finding(found_on=date(2023, 2, 20), referred_on=date(2023, 3, 10)))
    assert (early.value.code, early.value.field) == ("date_before_previous_step", "found_on")
    [proposed] = v.record_finding(fa_finding(found_on=date(2023, 3, 8), referred_on=date(2023, 3, 10)))
    v.evolve(proposed)
    assert v.state == "concluded"  # the conclusion stands until the city approves
    with pytest.raises(Conflict):
        v.record_finding(fa_finding(found_on=date(2023, 3, 8), referred_on=date(2023, 3, 10)))
    approved = v.approve_false_accusation(
        "A1", ApproveFalseAccusation(approved_on=date(2023, 3, 9)), CITY_HEAD
    )
    assert [type(e) for e in approved] == [FindingRecorded, FalseAccusationReferred, VerificationConcluded]
    revised = approved[2]
    assert isinstance(revised, VerificationConcluded)
    assert revised.revision == 1 and revised.concluded_on == date(2023, 3, 9)
    assert revised.findings == {"A1": "false_accusation", "A2": "not_proven"}
    assert [a.allegation_id for a in revised.untrue_points] == ["A1"]
    assert revised.eligible_for_pool is True
    for event in approved:
        v.evolve(event)
    assert v.state == "concluded" and v.conclusions == 2
    # The false accusation referred stands; the other point may turn too, the revision counts on.
    with pytest.raises(Conflict) as exc:
        v.record_finding(fa_finding(referred_on=date(2023, 3, 10)))
    assert exc.value.code == "already_recorded"
    v.evolve(v.record_finding(fa_finding("A2", referred_on=date(2023, 3, 12)))[0])
    again = v.approve_false_accusation("A2", ApproveFalseAccusation(approved_on=date(2023, 3, 12)), CITY_HEAD)
    assert isinstance(again[2], VerificationConcluded) and again[2].revision == 2


def test_a_revised_conclusion_not_before_the_last() -> None:
    v = concluded_with("untrue", "untrue")
    v.evolve(v.record_finding(fa_finding(referred_on=date(2023, 3, 10)))[0])
    with pytest.raises(RuleViolation) as exc:
        v.approve_false_accusation("A1", ApproveFalseAccusation(approved_on=date(2023, 2, 28)), CITY_HEAD)
    assert (exc.value.code, exc.value.field) == ("date_before_previous_step", "approved_on")


def test_the_first_conclusion_has_revision_0() -> None:
    v = concluded_with("untrue", "untrue")
    assert v.conclusion is not None and v.conclusion.revision == 0


# -- 补充核查 (supplementary verification) --------------------------------------------------------------


def reopen(trigger: str = "ev-1", on: date = date(2023, 4, 1)) -> ReopenVerification:
    return ReopenVerification(reopened_on=on, origin="re_review", reason="核查不全面", trigger=trigger)


def test_a_concluded_verification_reopens_once_per_trigger() -> None:
    v = concluded_with("untrue", "not_proven")
    [reopened] = v.reopen(reopen())
    assert reopened == VerificationReopened(
        reopened_on=date(2023, 4, 1), origin="re_review", reason="核查不全面", trigger="ev-1"
    )
    v.evolve(reopened)
    assert v.state == "reopened" and not v.concluded
    assert v.reopen(reopen()) == []  # the same send-back delivered again
    assert v.reopen(reopen("ev-2")) == []  # already reopened
    assert not v.is_sweep_candidate(date(2023, 6, 30))


def test_a_verification_not_concluded_is_not_reopened() -> None:
    assert verification().reopen(reopen()) == []
    assert verification(OPENED).reopen(reopen()) == []
    assert verification(OPENED, DECIDED, finding("A1", "untrue")).reopen(reopen()) == []


def test_the_reopened_verification_finds_again_and_concludes_with_the_next_revision() -> None:
    v = concluded_with("untrue", "not_proven")
    v.evolve(v.reopen(reopen())[0])
    with pytest.raises(RuleViolation) as early:
        v.record_finding(
            RecordFinding(allegation_id="A2", finding="true", basis="b", found_on=date(2023, 3, 20))
        )
    assert (early.value.code, early.value.field) == ("date_before_previous_step", "found_on")
    [found] = v.record_finding(
        RecordFinding(allegation_id="A2", finding="untrue", basis="补充核查", found_on=date(2023, 4, 10))
    )
    v.evolve(found)
    assert v.findings["A2"].finding == "untrue"
    with pytest.raises(RuleViolation) as exc:
        v.conclude(ConcludeVerification(concluded_on=date(2023, 3, 31)))
    assert exc.value.field == "concluded_on"
    [concluded] = v.conclude(ConcludeVerification(concluded_on=date(2023, 4, 12)))
    assert isinstance(concluded, VerificationConcluded)
    assert concluded.revision == 1 and concluded.findings == {"A1": "untrue", "A2": "untrue"}
    v.evolve(concluded)
    assert v.state == "concluded"
    with pytest.raises(Conflict) as again:
        v.conclude(ConcludeVerification(concluded_on=date(2023, 4, 13)))
    assert again.value.code == "already_concluded"
    # A later send-back reopens it again; the first trigger is still spent.
    assert v.reopen(reopen("ev-1", date(2023, 5, 1))) == []
    v.evolve(v.reopen(reopen("ev-2", date(2023, 5, 1)))[0])
    assert v.state == "reopened"
    v.evolve(v.conclude(ConcludeVerification(concluded_on=date(2023, 5, 2)))[0])
    assert v.conclusion is not None and v.conclusion.revision == 2


def test_the_reopened_verification_keeps_the_false_accusation_rules() -> None:
    v = concluded_with("honest_mistake", "not_proven")
    v.evolve(v.reopen(reopen())[0])
    with pytest.raises(Conflict) as exc:
        v.record_finding(fa_finding(referred_on=date(2023, 4, 5)))
    assert exc.value.code == "honest_mistake_not_false_accusation"
    # A false accusation is proposed, approved by the city, and no conclusion comes with it.
    [proposed] = v.record_finding(fa_finding("A2", referred_on=date(2023, 4, 5)))
    assert isinstance(proposed, FalseAccusationProposed)
    v.evolve(proposed)
    with pytest.raises(Conflict):
        v.conclude(ConcludeVerification(concluded_on=date(2023, 4, 12)))
    approved = v.approve_false_accusation(
        "A2", ApproveFalseAccusation(approved_on=date(2023, 4, 5)), CITY_HEAD
    )
    assert [type(e) for e in approved] == [FindingRecorded, FalseAccusationReferred]
    for event in approved:
        v.evolve(event)
    [concluded] = v.conclude(ConcludeVerification(concluded_on=date(2023, 4, 12)))
    assert isinstance(concluded, VerificationConcluded) and concluded.revision == 1
    assert concluded.findings == {"A1": "honest_mistake", "A2": "false_accusation"}


def test_a_referred_false_accusation_stands_in_a_supplementary_verification() -> None:
    v = verification(OPENED, DECIDED, finding("A2", "untrue"))
    v.evolve(v.record_finding(fa_finding())[0])
    for event in v.approve_false_accusation(
        "A1", ApproveFalseAccusation(approved_on=date(2023, 2, 1)), CITY_HEAD
    ):
        v.evolve(event)
    v.evolve(v.conclude(ConcludeVerification(concluded_on=date(2023, 3, 1)))[0])
    v.evolve(v.reopen(reopen())[0])
    with pytest.raises(Conflict) as exc:
        v.record_finding(RecordFinding(allegation_id="A1", finding="untrue", basis="b"))
    assert exc.value.code == "already_recorded"
