"""Rules of the clarification domain: the 正反清单 one by one, consent, the quality-evaluation group,
the approval level, forms and points, rounds, the pool reactions and the chain's state machine."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from itertools import permutations

import pytest
from pydantic import BaseModel

from services.clarification.commands import (
    Acknowledge,
    Approve,
    ApproveContent,
    Assess,
    DraftContent,
    DraftedPoint,
    File,
    GiveFeedback,
    HoldRound,
    Perform,
    RequestConsent,
    ReReview,
    Start,
)
from services.clarification.domain import (
    NEGATIVE_LIST,
    POSITIVE_LIST,
    AssessmentFacts,
    Clarification,
    approval_level,
    assess_against_lists,
    check_round_date,
    check_signer,
    clarifiable_points,
    clarification_forms,
    clarify_by,
    failed_check_reasons,
    next_state,
    plan_round,
)
from shared.auth import Principal
from shared.errors import Conflict, Forbidden, RuleViolation
from shared.events.clarification import (
    ApplicationDeclined,
    ApplicationNoted,
    AssessmentRecorded,
    CandidateAdded,
    ClarificationApproved,
    ClarificationPerformed,
    ClarificationStarted,
    ConsentRequested,
    FeedbackGiven,
    OutcomeNoted,
    PriorityNoted,
    ReReviewRecorded,
    ReReviewSigned,
)
from shared.events.common import Allegation, ClarificationForm, Finding, Subject
from shared.events.intake import ClarificationApplicationFiled
from shared.events.review import CandidateScreened, VerificationConcluded

CASE = "331122-2023-000001"
J = "331122"
PERSON = Subject(kind="person", name="李明", post="镇党委书记", unit="缙云县壶镇镇", cadre_level="county")
CITY_CADRE = Subject(
    kind="person", name="王芳", post="市农业农村局副局长", unit="丽水市农业农村局", cadre_level="city"
)
A1 = Allegation(allegation_id="A1", summary="收受工程老板礼金")
A2 = Allegation(allegation_id="A2", summary="违规插手土地征收")
MEMBERS = {"letters_office": "xf-01", "case_trial": "sl-01", "case_management": "ag-01"}


def outcome(
    findings: dict[str, Finding], points: Sequence[Allegation] = (A1,), eligible: bool = True
) -> OutcomeNoted:
    return OutcomeNoted(
        concluded_on=date(2023, 2, 10),
        findings=findings,
        untrue_points=list(points),
        subjects=[PERSON, CITY_CADRE],
        eligible_for_pool=eligible,
    )


def concluded(
    findings: dict[str, Finding], points: Sequence[Allegation] = (A1,), eligible: bool = True
) -> VerificationConcluded:
    return VerificationConcluded(
        concluded_on=date(2023, 2, 10),
        received_on=date(2023, 1, 5),
        findings=findings,
        untrue_points=list(points),
        subjects=[PERSON, CITY_CADRE],
        eligible_for_pool=eligible,
    )


def application(
    application_id: str = "APP-1", filed_on: date = date(2023, 1, 20)
) -> ClarificationApplicationFiled:
    return ClarificationApplicationFiled(
        application_id=application_id,
        matter_id=CASE,
        applicant=PERSON,
        untrue_points=["A1"],
        request="请求予以澄清",
        filed_on=filed_on,
    )


SWEEP = CandidateScreened(
    sweep_id="SW-2023", screened_on=date(2023, 3, 1), priority_flags=["rural_revitalisation"]
)


def state_of(c: Clarification) -> str:
    """Read the state afresh (commands change it behind the type checker's back)."""
    return c.state


def step(c: Clarification, events: list[BaseModel]) -> list[BaseModel]:
    for event in events:
        c.evolve(event)
    return events


def head(user_id: str, *jurisdictions: str) -> Principal:
    return Principal(user_id=user_id, role="head", unit="纪委监委", jurisdictions=list(jurisdictions))


TRIAL = Principal(user_id="trial-1", role="case_trial", unit="审理室", jurisdictions=[J], name="赵审理")


def wordings(c: Clarification) -> list[DraftedPoint]:
    assert c.outcome is not None
    return [
        DraftedPoint(allegation_id=p.allegation_id, wording=f"经核查，反映李明同志{p.summary}的问题失实")
        for p in clarifiable_points(c.outcome)
    ]


def worded(c: Clarification, on: date = date(2023, 3, 6)) -> Clarification:
    """The 澄清内容 drafted and approved by 审理室 (a clarification prints only approved wording)."""
    step(c, c.draft_content(DraftContent(drafted_on=on, points=wordings(c))))
    step(c, c.approve_content(ApproveContent(approved_on=on), TRIAL))
    return c


def candidate(
    findings: dict[str, Finding] | None = None, points: Sequence[Allegation] = (A1, A2), case_id: str = CASE
) -> Clarification:
    c = Clarification(case_id, J)
    step(c, c.note_outcome(concluded(findings or {"A1": "untrue", "A2": "untrue"}, points)))
    return c


def started(person: Subject = PERSON, case_id: str = CASE) -> Clarification:
    c = candidate(case_id=case_id)
    step(
        c,
        c.start(
            Start(
                initiated_by="department",
                person_subject_id=person.subject_id,
                consent=True,
                consent_note="",
                started_on=date(2023, 3, 1),
            )
        ),
    )
    return c


def assessed(person: Subject = PERSON, case_id: str = CASE) -> Clarification:
    c = started(person, case_id)
    step(
        c,
        c.assess(
            Assess(
                assessed_on=date(2023, 3, 2),
                bad_effects=["repeated_reports"],
                effect_only_from_interviews=False,
            )
        ),
    )
    return c


def member(office: str, user_id: str | None = None, name: str | None = None) -> Principal:
    """The member of one office of the quality-evaluation group, in their own session."""
    return Principal(
        user_id=user_id or MEMBERS[office], role=office, unit="纪委监委", jurisdictions=[J], name=name
    )


def sign(
    c: Clarification, office: str, *, ok: bool = True, on: date = date(2023, 3, 3), note: str = ""
) -> list[BaseModel]:
    return c.re_review(
        ReReview(
            reviewed_on=on,
            verification_complete=True,
            conclusion_clear=ok,
            disposal_adequate=True,
            expected_effect="消除不良影响",
            note=note,
        ),
        member(office),
    )


def re_review(c: Clarification, *, ok: bool = True, on: date = date(2023, 3, 3)) -> list[BaseModel]:
    """The three offices sign in turn (a failed check at the first signature sends back): the
    signatures are applied here, the group's re-review returned."""
    for office in MEMBERS:
        events = sign(c, office, ok=ok, on=on)
        signed, *result = events
        assert isinstance(signed, ReReviewSigned)
        if result:
            c.evolve(signed)
            return result
        step(c, events)
    raise AssertionError("three signatures record the group's re-review")


def approved(
    person: Subject = PERSON, case_id: str = CASE, forms: list[ClarificationForm] | None = None
) -> Clarification:
    c = assessed(person, case_id)
    step(c, re_review(c))
    step(
        c,
        c.approve(Approve(approved_on=date(2023, 3, 6), forms=forms), head("head-1", "331100", J)),
    )
    return worded(c)


def performed() -> Clarification:
    c = approved()
    step(c, c.perform(Perform(performed_on=date(2023, 3, 8), forms=[], scope="")))
    return c


# --- 正反清单: each rule on its own --------------------------------------------------------------

ELIGIBLE = AssessmentFacts(outcome({"A1": "untrue"}), ("repeated_reports",), False)


def codes(facts: AssessmentFacts) -> list[str]:
    return assess_against_lists(facts).codes


def test_verified_untrue_with_a_bad_effect_is_eligible() -> None:
    result = assess_against_lists(ELIGIBLE)
    assert result.eligible and result.codes == [] and result.reason == ""
    assert all(rule.holds(ELIGIBLE) for rule in POSITIVE_LIST)


def test_not_concluded_refuses_an_unresolved_matter() -> None:
    facts = AssessmentFacts(None, ("repeated_reports",), False)
    assert codes(facts) == ["not_concluded"]
    assert not assess_against_lists(facts).eligible


def test_partly_true_refuses_whatever_else_is_untrue() -> None:
    facts = AssessmentFacts(outcome({"A1": "untrue", "A2": "partly_true"}), ("wide_spread",), False)
    assert codes(facts) == ["partly_true"]
    assert "部分属实" in assess_against_lists(facts).reason


def test_partly_true_rule_also_covers_a_true_point() -> None:
    assert codes(AssessmentFacts(outcome({"A1": "untrue", "A2": "true"}), ("wide_spread",), False)) == [
        "partly_true"
    ]


def test_not_proven_is_not_untrue() -> None:
    facts = AssessmentFacts(outcome({"A1": "not_proven"}, points=()), ("rights_harmed",), False)
    assert codes(facts) == ["not_proven"]
    # An untrue point beside a not-proven one is still clarifiable (only the untrue one).
    assert (
        codes(AssessmentFacts(outcome({"A1": "untrue", "A2": "not_proven"}), ("rights_harmed",), False)) == []
    )


def test_no_bad_effect_refuses() -> None:
    facts = AssessmentFacts(outcome({"A1": "untrue"}), (), False)
    assert codes(facts) == ["no_bad_effect"]


def test_an_effect_only_from_the_verification_interviews_refuses() -> None:
    facts = AssessmentFacts(outcome({"A1": "untrue"}), ("selection_affected",), True)
    assert codes(facts) == ["effect_only_from_interviews"]


def test_every_applicable_rule_is_named_and_described() -> None:
    facts = AssessmentFacts(outcome({"A1": "partly_true"}, points=()), (), True)
    result = assess_against_lists(facts)
    assert result.codes == ["partly_true", "not_proven", "no_bad_effect", "effect_only_from_interviews"]
    assert result.reason.count("不予澄清") == 4
    assert {r.code for r in NEGATIVE_LIST} == {
        "not_concluded",
        "partly_true",
        "not_proven",
        "no_bad_effect",
        "effect_only_from_interviews",
    }


def test_an_ineligible_assessment_is_recorded_and_ends_the_chain() -> None:
    c = started()
    [event] = step(
        c, c.assess(Assess(assessed_on=date(2023, 3, 2), bad_effects=[], effect_only_from_interviews=False))
    )
    assert isinstance(event, AssessmentRecorded)
    assert (event.eligible, event.refusals) == (False, ["no_bad_effect"])
    assert event.reason == "尚未对被反映人造成不良影响，不予澄清"
    assert state_of(c) == "refused"
    with pytest.raises(Conflict) as err:
        re_review(c)
    assert err.value.code == "wrong_state"


# --- 申请: consent and the person --------------------------------------------------------------


def test_no_consent_no_clarification() -> None:
    c = candidate()
    with pytest.raises(RuleViolation) as err:
        c.start(
            Start(
                initiated_by="person",
                person_subject_id=PERSON.subject_id,
                consent=False,
                consent_note="",
                started_on=date(2023, 3, 1),
            )
        )
    assert (err.value.code, err.value.field) == ("consent_required", "consent")


def test_the_person_must_be_a_reported_subject() -> None:
    c = candidate()
    with pytest.raises(RuleViolation) as err:
        c.start(
            Start(
                initiated_by="department",
                person_subject_id="p-nobody",
                consent=True,
                consent_note="",
                started_on=date(2023, 3, 1),
            )
        )
    assert (err.value.code, err.value.field) == ("unknown_subject", "person_subject_id")


def test_only_a_candidate_can_start() -> None:
    c = Clarification(CASE)
    step(c, c.note_outcome(concluded({"A1": "partly_true"}, points=(), eligible=False)))
    with pytest.raises(Conflict) as err:
        c.start(
            Start(
                initiated_by="department",
                person_subject_id=PERSON.subject_id,
                consent=True,
                consent_note="",
                started_on=date(2023, 3, 1),
            )
        )
    assert err.value.code == "not_a_candidate"


# --- 复核: the three offices and the three checks -----------------------------------------------


def test_the_re_review_passes_when_all_three_offices_signed() -> None:
    c = assessed()
    [first] = step(c, sign(c, "letters_office"))
    assert isinstance(first, ReReviewSigned) and first.member == "xf-01" and state_of(c) == "assessed"
    step(c, sign(c, "case_trial"))
    assert sorted(c.signatures) == ["case_trial", "letters_office"]
    signed, passed = step(c, sign(c, "case_management"))
    assert isinstance(signed, ReReviewSigned) and isinstance(passed, ReReviewRecorded)
    assert passed.passed and passed.members == MEMBERS
    assert state_of(c) == "re_reviewed" and c.signatures == {}


def test_any_one_member_sends_back_with_their_reasons() -> None:
    c = assessed()
    step(c, sign(c, "letters_office"))
    signed, sent_back = step(c, sign(c, "case_trial", ok=False, note="未说明第二项问题的核查依据"))
    assert isinstance(signed, ReReviewSigned) and signed.reasons == [
        "核查结论不清楚，退回进一步查明后重新复核"
    ]
    assert isinstance(sent_back, ReReviewRecorded) and not sent_back.passed
    assert sent_back.members == {"letters_office": "xf-01", "case_trial": "sl-01"}
    assert sent_back.reasons == [
        "核查结论不清楚，退回进一步查明后重新复核",
        "审理室：未说明第二项问题的核查依据",
    ]
    assert state_of(c) == "sent_back" and c.signatures == {}
    # The next re-review starts afresh: every office signs again.
    step(c, sign(c, "letters_office", on=date(2023, 3, 4)))
    assert list(c.signatures) == ["letters_office"]


def test_one_office_signs_once_and_one_person_for_one_office() -> None:
    c = assessed()
    step(c, sign(c, "letters_office"))
    with pytest.raises(Conflict) as err:
        c.re_review(
            ReReview(
                reviewed_on=date(2023, 3, 3),
                verification_complete=True,
                conclusion_clear=True,
                disposal_adequate=True,
                expected_effect="x",
            ),
            member("letters_office", "xf-02"),
        )
    assert err.value.code == "already_signed"
    with pytest.raises(Conflict) as err:
        check_signer(member("case_trial", "xf-01"), c.signatures)
    assert err.value.code == "already_signed"


def test_only_the_three_offices_sign() -> None:
    for role in ("handling_department", "head", "auditor"):
        intruder = Principal(user_id="u-1", role=role, unit="纪委监委", jurisdictions=[J])
        with pytest.raises(Forbidden) as err:
            check_signer(intruder, {})
        assert err.value.code == "not_a_group_member"


def test_the_approval_form_names_the_members_by_name_where_known() -> None:
    c = assessed()
    step(c, c.re_review(ReReview(**SIGNATURE), member("letters_office", name="王信访")))
    step(c, c.re_review(ReReview(**SIGNATURE), member("case_trial", name="李审理")))
    _, passed = step(c, c.re_review(ReReview(**SIGNATURE), member("case_management")))
    assert isinstance(passed, ReReviewRecorded)
    assert passed.member_names == {"letters_office": "王信访", "case_trial": "李审理"}


SIGNATURE = {
    "reviewed_on": date(2023, 3, 3),
    "verification_complete": True,
    "conclusion_clear": True,
    "disposal_adequate": True,
    "expected_effect": "消除不良影响",
}


def test_each_failed_check_gives_its_own_reason() -> None:
    assert (
        failed_check_reasons(
            {"verification_complete": True, "conclusion_clear": True, "disposal_adequate": True}
        )
        == []
    )
    reasons = failed_check_reasons(
        {"verification_complete": False, "conclusion_clear": True, "disposal_adequate": False}
    )
    assert len(reasons) == 2
    assert "核查不全面" in reasons[0] and "处置不到位" in reasons[1]


def test_a_failed_re_review_sends_back_and_a_second_one_may_pass() -> None:
    c = assessed()
    [failed] = step(c, re_review(c, ok=False))
    assert isinstance(failed, ReReviewRecorded)
    assert not failed.passed and failed.reasons == ["核查结论不清楚，退回进一步查明后重新复核"]
    assert state_of(c) == "sent_back"
    with pytest.raises(Conflict):
        c.approve(Approve(approved_on=date(2023, 3, 6)), head("h", J))
    [passed] = step(c, re_review(c, on=date(2023, 3, 5)))
    assert isinstance(passed, ReReviewRecorded) and passed.passed
    assert state_of(c) == "re_reviewed"


# --- Approval level ------------------------------------------------------------------------------


def test_a_city_cadre_needs_the_city_head() -> None:
    assert approval_level("city", J, ["331100"]) == "331100"
    with pytest.raises(Forbidden) as err:
        approval_level("city", J, [J])
    assert err.value.code == "approval_level"


def test_a_county_cadre_needs_a_head_of_the_matters_jurisdiction() -> None:
    assert approval_level("county", J, [J]) == J
    with pytest.raises(Forbidden) as err:
        approval_level("county", J, ["331121"])
    assert err.value.code == "approval_level"


def test_approval_sets_the_five_working_day_deadline() -> None:
    # 2023-04-05 (清明) is a holiday: five working days after 31 March end on 10 April.
    assert clarify_by(date(2023, 3, 31)) == date(2023, 4, 10)
    c = approved(CITY_CADRE)
    assert c.approval is not None
    assert (c.approval.level, c.approval.clarify_by) == ("331100", date(2023, 3, 13))


def test_approval_needs_a_passed_re_review() -> None:
    c = assessed()
    with pytest.raises(Conflict) as err:
        c.approve(Approve(approved_on=date(2023, 3, 6)), head("h", J))
    assert err.value.code == "wrong_state"


# --- 澄清: forms and points ---------------------------------------------------------------------


def test_the_written_notice_is_always_included() -> None:
    assert clarification_forms([], "") == ["written_notice"]
    assert clarification_forms(["unit_meeting", "face_to_face", "unit_meeting"], "") == [
        "written_notice",
        "face_to_face",
        "unit_meeting",
    ]


def test_a_scoped_notice_needs_its_scope() -> None:
    with pytest.raises(RuleViolation) as err:
        clarification_forms(["scoped_notice"], "  ")
    assert (err.value.field, err.value.code) == ("scope", "scope_required")
    assert clarification_forms(["scoped_notice"], "全镇干部") == ["written_notice", "scoped_notice"]


def test_only_untrue_points_are_clarified() -> None:
    mixed = outcome({"A1": "untrue", "A2": "not_proven", "A3": "honest_mistake"}, points=(A1, A2))
    assert clarifiable_points(mixed) == [A1]
    c = candidate({"A1": "untrue", "A2": "not_proven"}, points=(A1, A2))
    step(
        c,
        c.start(
            Start(
                initiated_by="department",
                person_subject_id=PERSON.subject_id,
                consent=True,
                consent_note="",
                started_on=date(2023, 3, 1),
            )
        ),
    )
    step(
        c,
        c.assess(
            Assess(
                assessed_on=date(2023, 3, 2), bad_effects=["wide_spread"], effect_only_from_interviews=False
            )
        ),
    )
    step(c, re_review(c))
    # The head approves the forms (the proposal named none beyond the written notice).
    step(c, c.approve(Approve(approved_on=date(2023, 3, 6), forms=["face_to_face"]), head("h", J)))
    worded(c)
    [event] = c.perform(Perform(performed_on=date(2023, 3, 7), forms=["face_to_face"], scope=""))
    assert isinstance(event, ClarificationPerformed)
    assert event.points == [A1]
    assert event.forms == ["written_notice", "face_to_face"]
    assert event.on_time and event.person == PERSON and event.concluded_on == date(2023, 2, 10)
    # The letter to the unit is issued at feedback, addressed to the committee named there.
    assert event.documents == [f"{CASE}-notice"]


def test_a_clarification_after_the_deadline_is_not_on_time() -> None:
    c = approved()
    [event] = c.perform(Perform(performed_on=date(2023, 3, 14), forms=[], scope=""))
    assert isinstance(event, ClarificationPerformed) and not event.on_time


# --- Dates along the chain -------------------------------------------------------------------


def test_dates_must_not_go_backwards() -> None:
    c = started()
    with pytest.raises(RuleViolation) as err:
        c.assess(
            Assess(
                assessed_on=date(2023, 2, 28), bad_effects=["wide_spread"], effect_only_from_interviews=False
            )
        )
    assert (err.value.field, err.value.code) == ("assessed_on", "date_before_previous_step")
    c = approved()
    with pytest.raises(RuleViolation) as err:
        c.perform(Perform(performed_on=date(2023, 3, 5), forms=[], scope=""))
    assert err.value.field == "performed_on"


# --- The chain's state machine -----------------------------------------------------------------


def test_the_chain_runs_start_to_filing() -> None:
    c = performed()
    assert state_of(c) == "performed"
    with pytest.raises(Conflict) as err:
        c.file(File(filed_on=date(2023, 3, 20)))
    assert "feedback" in err.value.detail and "acknowledgement" in err.value.detail
    step(c, c.acknowledge(Acknowledge(acknowledged_on=date(2023, 3, 9), note="已收到")))
    step(
        c,
        c.give_feedback(
            GiveFeedback(given_on=date(2023, 3, 10), party_committee="壶镇镇党委", unit_head="张书记")
        ),
    )
    with pytest.raises(Conflict) as again:
        c.give_feedback(
            GiveFeedback(given_on=date(2023, 3, 11), party_committee="壶镇镇党委", unit_head="张书记")
        )
    assert again.value.code == "already_recorded"
    with pytest.raises(RuleViolation):
        c.file(File(filed_on=date(2023, 3, 9)))
    [filed] = step(c, c.file(File(filed_on=date(2023, 3, 20))))
    assert state_of(c) == "filed"
    assert filed.model_dump()["points"] == [A1.model_dump(), A2.model_dump()]
    with pytest.raises(Conflict):
        c.perform(Perform(performed_on=date(2023, 3, 21), forms=[], scope=""))


def test_commands_out_of_order_are_conflicts() -> None:
    c = candidate()
    with pytest.raises(Conflict):
        c.assess(
            Assess(
                assessed_on=date(2023, 3, 2), bad_effects=["wide_spread"], effect_only_from_interviews=False
            )
        )
    with pytest.raises(Conflict):
        c.perform(Perform(performed_on=date(2023, 3, 2), forms=[], scope=""))
    with pytest.raises(Conflict):
        c.acknowledge(Acknowledge(acknowledged_on=date(2023, 3, 2), note=""))
    c = started()
    with pytest.raises(Conflict):
        c.start(
            Start(
                initiated_by="department",
                person_subject_id=PERSON.subject_id,
                consent=True,
                consent_note="",
                started_on=date(2023, 3, 1),
            )
        )


def test_next_state_ignores_events_that_do_not_move_the_chain() -> None:
    assert next_state("candidate", PriorityNoted(sweep_id="s", priority_flags=[])) == "candidate"
    assert (
        next_state(
            "performed",
            ApplicationNoted(
                application_id="a",
                applicant=PERSON,
                untrue_points=["A1"],
                request="r",
                filed_on=date(2023, 1, 1),
            ),
        )
        == "performed"
    )


# --- The pool: convergence whatever the order -------------------------------------------------


def pool_view(c: Clarification) -> tuple[object, ...]:
    return (
        c.state,
        c.candidate,
        tuple(p.sweep_id for p in c.priorities),
        tuple(sorted(c.applications)),
        tuple(sorted(c.declined.items())),
    )


@pytest.mark.parametrize("eligible", [True, False])
def test_the_pool_converges_whatever_the_order(eligible: bool) -> None:
    findings: dict[str, Finding] = {"A1": "untrue"} if eligible else {"A1": "untrue", "A2": "partly_true"}
    facts: list[BaseModel] = [concluded(findings, eligible=eligible), SWEEP, application()]
    views = set()
    for order in permutations(facts):
        c = Clarification(CASE)
        for fact in order:
            if isinstance(fact, VerificationConcluded):
                step(c, c.note_outcome(fact))
            elif isinstance(fact, CandidateScreened):
                step(c, c.note_sweep(fact))
            else:
                assert isinstance(fact, ClarificationApplicationFiled)
                step(c, c.note_application(fact))
        views.add(pool_view(c))
    assert len(views) == 1
    if eligible:
        assert state_of(c) == "candidate"
        assert c.candidate == CandidateAdded(via="conclusion", added_on=date(2023, 2, 10))
        assert c.declined == {}
    else:
        assert state_of(c) == "not_eligible" and c.candidate is None
        assert c.declined["APP-1"].startswith("反映问题属实或部分属实")


def test_a_green_channel_application_waits_for_the_conclusion() -> None:
    c = Clarification(CASE)
    [noted] = step(c, c.note_application(application()))
    assert isinstance(noted, ApplicationNoted)
    assert state_of(c) == "awaiting_outcome" and c.pending_applications() == ["APP-1"]
    events = step(c, c.note_outcome(concluded({"A1": "partly_true"}, points=(), eligible=False)))
    assert isinstance(events[-1], ApplicationDeclined)
    assert "部分属实" in events[-1].reason and "不予澄清" in events[-1].reason


def test_a_green_channel_application_on_a_known_eligible_outcome_adds_the_candidate() -> None:
    c = Clarification(CASE)
    step(c, [outcome({"A1": "untrue"})])  # an outcome noted without its pool entry (e.g. older data)
    events = c.note_application(application(filed_on=date(2023, 3, 3)))
    assert events[-1] == CandidateAdded(via="green_channel", added_on=date(2023, 3, 3))
    events = c.note_sweep(SWEEP)
    assert events[-1] == CandidateAdded(via="sweep", added_on=date(2023, 3, 1))


def test_a_true_point_never_enters_the_pool_even_if_flagged_eligible() -> None:
    c = Clarification(CASE)
    step(c, c.note_outcome(concluded({"A1": "untrue", "A2": "true"}, eligible=True)))
    assert state_of(c) == "not_eligible" and c.candidate is None


def test_repeated_facts_change_nothing() -> None:
    c = candidate()
    assert c.note_outcome(concluded({"A1": "untrue"})) == []
    step(c, c.note_sweep(SWEEP))
    assert c.note_sweep(SWEEP) == []
    step(c, c.note_application(application()))
    assert c.note_application(application()) == []


# --- 集中澄清 --------------------------------------------------------------------------------------


def test_a_round_clarifies_every_ready_matter_in_one_batch() -> None:
    # Each matter approved with the forms the round uses (the head names them at the approval).
    ready = approved(forms=["unit_meeting"])
    other = approved(case_id="331122-2023-000002", forms=["unit_meeting"])
    late = approved(case_id="331122-2023-000003", forms=["unit_meeting"])
    assert late.approval is not None
    late.approval = late.approval.model_copy(update={"approved_on": date(2023, 3, 30)})
    waiting = started()
    plan = plan_round(
        [other, waiting, ready, late],
        HoldRound(
            jurisdiction=J, quarter="2023Q1", held_on=date(2023, 3, 20), forms=["unit_meeting"], scope=""
        ),
        round_exists=False,
    )
    assert list(plan.performed) == [CASE, "331122-2023-000002"]
    for events in plan.performed.values():
        [event] = events
        assert isinstance(event, ClarificationPerformed)
        assert event.round_id == "round-331122-2023Q1" and event.forms == ["written_notice", "unit_meeting"]
    assert plan.held.matters == [CASE, "331122-2023-000002"]
    assert plan.held.round_id == "round-331122-2023Q1"


def test_a_quarters_round_is_held_once_within_its_quarter() -> None:
    def plan(matters: list[Clarification], exists: bool) -> object:
        return plan_round(
            matters,
            HoldRound(jurisdiction=J, quarter="2023Q1", held_on=date(2023, 3, 20), forms=[], scope=""),
            round_exists=exists,
        )

    with pytest.raises(Conflict) as err:
        plan([approved()], True)
    assert err.value.code == "round_held"
    with pytest.raises(RuleViolation) as empty:
        plan([started()], False)
    assert empty.value.code == "nothing_ready"
    with pytest.raises(RuleViolation) as outside:
        check_round_date("2023Q1", date(2023, 4, 3))
    assert (outside.value.field, outside.value.code) == ("held_on", "outside_quarter")


def test_started_event_carries_consent_and_the_chosen_subject() -> None:
    c = candidate()
    [event] = c.start(
        Start(
            initiated_by="person",
            person_subject_id=CITY_CADRE.subject_id,
            consent=True,
            consent_note="本人书面申请",
            started_on=date(2023, 3, 1),
        )
    )
    assert event == ClarificationStarted(
        initiated_by="person",
        person=CITY_CADRE,
        consent=True,
        consent_note="本人书面申请",
        started_on=date(2023, 3, 1),
    )
    assert isinstance(approved(CITY_CADRE).approval, ClarificationApproved)


# -- the pool's opening date: old matters wait for the backlog sweep (大起底) -------------------

POOL_SINCE = date(2023, 3, 1)  # after the conclusion of `concluded(...)` (2023-02-10)


def test_a_matter_concluded_before_the_pool_opened_waits_for_the_sweep() -> None:
    c = Clarification(CASE)
    events = step(c, c.note_outcome(concluded({"A1": "untrue"}), POOL_SINCE))
    assert [type(e).__name__ for e in events] == ["OutcomeNoted"]
    assert c.candidate is None
    swept = step(c, c.note_sweep(SWEEP))
    added = [e for e in swept if isinstance(e, CandidateAdded)]
    assert [(a.via, a.added_on) for a in added] == [("sweep", SWEEP.screened_on)]


def test_a_matter_concluded_after_the_pool_opened_enters_at_once() -> None:
    c = Clarification(CASE)
    events = step(c, c.note_outcome(concluded({"A1": "untrue"}), date(2023, 1, 1)))
    assert [e.via for e in events if isinstance(e, CandidateAdded)] == ["conclusion"]


def test_an_old_matter_with_a_pending_application_enters_through_the_green_channel() -> None:
    c = Clarification(CASE)
    step(c, c.note_application(application()))
    events = step(c, c.note_outcome(concluded({"A1": "untrue"}), POOL_SINCE))
    assert [e.via for e in events if isinstance(e, CandidateAdded)] == ["green_channel"]


@pytest.mark.parametrize("filed_on", [date(2023, 1, 20), date(2023, 3, 6)])
def test_an_old_matter_enters_through_the_green_channel_on_one_date_whatever_arrives_first(
    filed_on: date,
) -> None:
    """The entry is dated when both were there, the outcome (2023-02-10) and the application; the
    order in which the two consumers deliver them does not move it."""
    application_first, outcome_first = Clarification(CASE), Clarification(CASE)
    step(application_first, application_first.note_application(application(filed_on=filed_on)))
    early = step(application_first, application_first.note_outcome(concluded({"A1": "untrue"}), POOL_SINCE))
    step(outcome_first, outcome_first.note_outcome(concluded({"A1": "untrue"}), POOL_SINCE))
    late = step(outcome_first, outcome_first.note_application(application(filed_on=filed_on)))
    entered = {e.added_on for e in (*early, *late) if isinstance(e, CandidateAdded)}
    assert entered == {max(filed_on, date(2023, 2, 10))}


def test_the_catch_all_of_the_positive_list_needs_its_reason() -> None:
    """其他确有必要澄清的: the positive list's last entry holds on a stated reason."""
    c = started()
    bare = Assess(
        assessed_on=date(2023, 3, 2), bad_effects=["other_necessary"], effect_only_from_interviews=False
    )
    with pytest.raises(RuleViolation) as refused:
        c.assess(bare)
    assert (refused.value.field, refused.value.code) == ("other_reason", "other_reason_required")
    reasoned = bare.model_copy(update={"other_reason": "拟提拔使用，组织部门需要澄清结论"})
    [recorded] = c.assess(reasoned)
    assert isinstance(recorded, AssessmentRecorded)
    assert recorded.eligible and recorded.other_reason == "拟提拔使用，组织部门需要澄清结论"


def test_a_point_whose_facts_exist_but_break_no_rule_is_clarified() -> None:
    """事实存在但不违规违纪 counts as untrue (Jiangxi's 2019 实施办法): the point is cleared."""
    noted = outcome({"A1": "no_violation"})
    assert [p.allegation_id for p in clarifiable_points(noted)] == ["A1"]


# --- The documents each step issues ------------------------------------------------------------


def test_a_candidate_is_asked_for_consent_once_per_person_before_the_start() -> None:
    c = candidate()
    ask = RequestConsent(person_subject_id=PERSON.subject_id, requested_on=date(2023, 2, 20))
    [event] = step(c, c.request_consent(ask))
    assert isinstance(event, ConsentRequested) and event.person == PERSON
    assert event.documents == [f"{CASE}-consent_request-{PERSON.subject_id}"]
    assert state_of(c) == "candidate"
    with pytest.raises(Conflict) as again:
        c.request_consent(ask)
    assert again.value.code == "already_recorded"
    with pytest.raises(RuleViolation) as early:
        candidate().request_consent(ask.model_copy(update={"requested_on": date(2023, 2, 9)}))
    assert early.value.field == "requested_on"
    with pytest.raises(RuleViolation) as stranger:
        candidate().request_consent(ask.model_copy(update={"person_subject_id": "p-nobody"}))
    assert stranger.value.code == "unknown_subject"
    with pytest.raises(Conflict) as late:
        started().request_consent(ask)
    assert late.value.code == "wrong_state"
    with pytest.raises(Conflict) as outside:
        Clarification(CASE, J).request_consent(ask)
    assert outside.value.code == "not_a_candidate"


def test_the_assessment_records_the_proposed_forms_and_scope() -> None:
    c = started()
    [event] = c.assess(
        Assess(
            assessed_on=date(2023, 3, 2),
            bad_effects=["repeated_reports"],
            effect_only_from_interviews=False,
            proposed_forms=["scoped_notice", "face_to_face"],
            proposed_scope=" 壶镇镇机关干部 ",
        )
    )
    assert isinstance(event, AssessmentRecorded)
    assert event.proposed_forms == ["written_notice", "face_to_face", "scoped_notice"]
    assert event.proposed_scope == "壶镇镇机关干部"
    with pytest.raises(RuleViolation) as unscoped:
        started().assess(
            Assess(
                assessed_on=date(2023, 3, 2),
                bad_effects=["repeated_reports"],
                effect_only_from_interviews=False,
                proposed_forms=["scoped_notice"],
            )
        )
    assert (unscoped.value.code, unscoped.value.field) == ("scope_required", "proposed_scope")
    [refused] = started().assess(
        Assess(assessed_on=date(2023, 3, 2), bad_effects=[], effect_only_from_interviews=False)
    )
    assert isinstance(refused, AssessmentRecorded) and refused.proposed_forms == []


def test_a_passed_re_review_puts_the_approval_form_before_the_head() -> None:
    c = assessed()
    [failed] = step(c, re_review(c, ok=False))
    assert isinstance(failed, ReReviewRecorded) and failed.documents == []
    [passed] = step(c, re_review(c, on=date(2023, 3, 4)))
    assert isinstance(passed, ReReviewRecorded) and passed.documents == [f"{CASE}-approval_form"]


def test_feedback_issues_the_letter_to_the_unit() -> None:
    c = performed()
    [event] = c.give_feedback(
        GiveFeedback(given_on=date(2023, 3, 9), party_committee="中共缙云县壶镇镇委员会", unit_head="张书记")
    )
    assert isinstance(event, FeedbackGiven) and event.documents == [f"{CASE}-unit_letter"]
