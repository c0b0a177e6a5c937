"""Every exit and loop of the chain, rule by rule: the person declines (before the start) or withdraws
(after it); the head approves the forms and scope, refuses or sends back; the clarification keeps to
what was approved."""

from __future__ import annotations

from datetime import date

import pytest

from services.archive.domain import QuarterFacts, combine, figures
from services.clarification.commands import (
    Approve,
    Assess,
    Decline,
    HoldRound,
    Perform,
    RefuseApproval,
    RequestConsent,
    SendBackApproval,
    Withdraw,
)
from services.clarification.domain import ENDS, STATE_NAMES, STATES, Clarification, next_state, plan_round
from shared.errors import Conflict, Forbidden, RuleViolation
from shared.events.clarification import (
    ApprovalRefused,
    ApprovalSentBack,
    ClarificationApproved,
    ClarificationDeclined,
    ClarificationPerformed,
    ClarificationWithdrawn,
)
from shared.events.common import Subject
from tests.unit.test_clarification_rules import (
    CASE,
    CITY_CADRE,
    PERSON,
    J,
    approved,
    assessed,
    candidate,
    head,
    re_review,
    started,
    state_of,
    step,
    worded,
)

HEAD = head("head-1", J)


def re_reviewed(person: Subject = PERSON) -> Clarification:
    c = assessed(person)
    step(c, re_review(c))
    return c


def proposing(forms: list[str], scope: str) -> Clarification:
    c = started()
    step(
        c,
        c.assess(
            Assess.model_validate(
                {
                    "assessed_on": "2023-03-02",
                    "bad_effects": ["repeated_reports"],
                    "effect_only_from_interviews": False,
                    "proposed_forms": forms,
                    "proposed_scope": scope,
                }
            )
        ),
    )
    step(c, re_review(c))
    return c


# --- The person declines before the start -------------------------------------------------------


def decline(
    on: date = date(2023, 2, 20), reason: str = "本人不同意澄清", person: str = PERSON.subject_id
) -> Decline:
    return Decline(person_subject_id=person, declined_on=on, reason=reason)


def test_the_person_declines_and_the_matter_leaves_the_pool() -> None:
    c = candidate()
    [event] = step(c, c.decline(decline()))
    assert isinstance(event, ClarificationDeclined)
    assert (event.person, event.declined_on, event.reason) == (PERSON, date(2023, 2, 20), "本人不同意澄清")
    assert state_of(c) == "declined" and "declined" in ENDS


def test_a_declined_matter_cannot_be_started_nor_declined_again() -> None:
    c = candidate()
    step(c, c.decline(decline()))
    with pytest.raises(Conflict) as err:
        c.decline(decline())
    assert err.value.code == "wrong_state"


def test_declining_needs_the_pool() -> None:
    with pytest.raises(Conflict) as err:
        Clarification(CASE, J).decline(decline())
    assert err.value.code == "not_a_candidate"


def test_once_started_the_person_withdraws_instead_of_declining() -> None:
    with pytest.raises(Conflict) as err:
        started().decline(decline(date(2023, 3, 2)))
    assert err.value.code == "wrong_state"


def test_declining_needs_a_reason() -> None:
    with pytest.raises(RuleViolation) as err:
        candidate().decline(decline(reason="   "))
    assert (err.value.field, err.value.code) == ("reason", "reason_required")


def test_declining_is_not_before_the_pool_entry_nor_the_request_for_consent() -> None:
    with pytest.raises(RuleViolation) as err:
        candidate().decline(decline(date(2023, 2, 9)))
    assert (err.value.field, err.value.code) == ("declined_on", "date_before_previous_step")
    c = candidate()
    step(
        c,
        c.request_consent(
            RequestConsent(person_subject_id=PERSON.subject_id, requested_on=date(2023, 2, 25))
        ),
    )
    with pytest.raises(RuleViolation) as asked:
        c.decline(decline(date(2023, 2, 24)))
    assert (asked.value.field, asked.value.code) == ("declined_on", "date_before_previous_step")
    assert "征求本人意见" in (asked.value.detail_zh or "")
    step(c, c.decline(decline(date(2023, 2, 25))))


def test_only_a_reported_subject_declines() -> None:
    with pytest.raises(RuleViolation) as err:
        candidate().decline(decline(person="someone-else"))
    assert (err.value.field, err.value.code) == ("person_subject_id", "unknown_subject")


# --- The person withdraws after the start -------------------------------------------------------


def withdraw(on: date, reason: str = "本人申请撤回") -> Withdraw:
    return Withdraw(withdrawn_on=on, reason=reason)


@pytest.mark.parametrize("stage", ["started", "assessed", "re_reviewed", "approved"])
def test_the_person_withdraws_at_any_step_before_the_clarification(stage: str) -> None:
    c = {"started": started, "assessed": assessed, "re_reviewed": re_reviewed, "approved": approved}[stage]()
    [event] = step(c, c.withdraw(withdraw(date(2023, 3, 7))))
    assert isinstance(event, ClarificationWithdrawn) and event.person == PERSON
    assert state_of(c) == "withdrawn"


def test_nothing_to_withdraw_before_the_start_or_after_the_clarification() -> None:
    with pytest.raises(Conflict):
        candidate().withdraw(withdraw(date(2023, 3, 7)))
    c = approved()
    step(c, c.perform(Perform(performed_on=date(2023, 3, 8))))
    with pytest.raises(Conflict) as err:
        c.withdraw(withdraw(date(2023, 3, 9)))
    assert err.value.code == "wrong_state"
    c = started()
    step(c, c.withdraw(withdraw(date(2023, 3, 2))))
    with pytest.raises(Conflict):
        c.withdraw(withdraw(date(2023, 3, 3)))


def test_withdrawing_is_not_before_the_last_step() -> None:
    c = approved()  # approved on 2023-03-06
    with pytest.raises(RuleViolation) as err:
        c.withdraw(withdraw(date(2023, 3, 5)))
    assert (err.value.field, err.value.code) == ("withdrawn_on", "date_before_previous_step")
    assert "审批" in (err.value.detail_zh or "")
    c.withdraw(withdraw(date(2023, 3, 6)))


def test_withdrawing_needs_a_reason() -> None:
    with pytest.raises(RuleViolation) as err:
        started().withdraw(withdraw(date(2023, 3, 2), reason=""))
    assert (err.value.field, err.value.code) == ("reason", "reason_required")


def test_a_withdrawn_matter_is_not_clarified() -> None:
    c = approved()
    step(c, c.withdraw(withdraw(date(2023, 3, 7))))
    with pytest.raises(Conflict):
        c.perform(Perform(performed_on=date(2023, 3, 8)))


# --- The head's approval names the forms and scope ---------------------------------------------


def test_the_approval_defaults_to_the_proposed_forms_and_scope() -> None:
    c = proposing(["scoped_notice", "face_to_face"], " 全镇干部 ")
    [event] = c.approve(Approve(approved_on=date(2023, 3, 6)), HEAD)
    assert isinstance(event, ClarificationApproved)
    assert (event.forms, event.scope) == (["written_notice", "face_to_face", "scoped_notice"], "全镇干部")


def test_the_head_may_approve_other_forms_than_proposed() -> None:
    c = proposing(["face_to_face"], "")
    [event] = c.approve(Approve(approved_on=date(2023, 3, 6), forms=["unit_meeting"], scope=""), HEAD)
    assert isinstance(event, ClarificationApproved) and event.forms == ["written_notice", "unit_meeting"]


def test_an_approved_scoped_notice_needs_its_scope() -> None:
    with pytest.raises(RuleViolation) as err:
        re_reviewed().approve(Approve(approved_on=date(2023, 3, 6), forms=["scoped_notice"]), HEAD)
    assert (err.value.field, err.value.code) == ("scope", "scope_required")


def approved_with(forms: list[str], scope: str) -> Clarification:
    c = re_reviewed()
    step(
        c,
        c.approve(
            Approve.model_validate({"approved_on": "2023-03-06", "forms": forms, "scope": scope}), HEAD
        ),
    )
    return worded(c)


def test_the_clarification_is_performed_in_the_approved_forms_and_scope() -> None:
    c = approved_with(["scoped_notice"], "全镇干部")
    [omitted] = c.perform(Perform(performed_on=date(2023, 3, 8)))
    [named] = c.perform(
        Perform(performed_on=date(2023, 3, 8), forms=["scoped_notice", "written_notice"], scope="全镇干部")
    )
    for event in (omitted, named):
        assert isinstance(event, ClarificationPerformed)
        assert (event.forms, event.scope) == (["written_notice", "scoped_notice"], "全镇干部")


def test_other_forms_than_approved_are_refused() -> None:
    c = approved_with(["scoped_notice"], "全镇干部")
    with pytest.raises(RuleViolation) as err:
        c.perform(Perform(performed_on=date(2023, 3, 8), forms=["face_to_face", "scoped_notice"]))
    assert (err.value.field, err.value.code) == ("forms", "not_approved")
    assert CASE in err.value.detail and CASE in (err.value.detail_zh or "")


def test_another_scope_than_approved_is_refused() -> None:
    c = approved_with(["scoped_notice"], "全镇干部")
    with pytest.raises(RuleViolation) as err:
        c.perform(Perform(performed_on=date(2023, 3, 8), scope="全县干部"))
    assert (err.value.field, err.value.code) == ("scope", "not_approved")


def test_an_approval_recorded_before_the_head_named_forms_leaves_the_choice_to_the_clarification() -> None:
    c = re_reviewed()
    step(
        c,
        [
            ClarificationApproved(
                approved_on=date(2023, 3, 6), approver="h", level=J, clarify_by=date(2023, 3, 13)
            )
        ],
    )
    worded(c)
    [event] = c.perform(Perform(performed_on=date(2023, 3, 8), forms=["face_to_face"]))
    assert isinstance(event, ClarificationPerformed) and event.forms == ["written_notice", "face_to_face"]


def test_a_round_in_other_forms_than_approved_is_refused() -> None:
    matter = approved_with(["unit_meeting"], "")
    with pytest.raises(RuleViolation) as err:
        plan_round(
            [matter],
            HoldRound(jurisdiction=J, quarter="2023Q1", held_on=date(2023, 3, 20), forms=["face_to_face"]),
            round_exists=False,
        )
    assert (err.value.field, err.value.code) == ("forms", "not_approved")
    plan = plan_round(
        [matter], HoldRound(jurisdiction=J, quarter="2023Q1", held_on=date(2023, 3, 20)), round_exists=False
    )
    [[event]] = plan.performed.values()
    assert isinstance(event, ClarificationPerformed) and event.forms == ["written_notice", "unit_meeting"]


# --- The head refuses or sends back ------------------------------------------------------------


def refuse(on: date = date(2023, 3, 6), reason: str = "澄清时机尚不成熟") -> RefuseApproval:
    return RefuseApproval(refused_on=on, reason=reason)


def send_back(on: date = date(2023, 3, 6), reason: str = "请重新复核") -> SendBackApproval:
    return SendBackApproval(sent_back_on=on, reason=reason)


def test_the_head_refuses_and_the_matter_ends() -> None:
    c = re_reviewed()
    [event] = step(c, c.refuse_approval(refuse(), HEAD))
    assert isinstance(event, ApprovalRefused)
    assert (event.approver, event.level, event.reason) == ("head-1", J, "澄清时机尚不成熟")
    assert state_of(c) == "refused_by_head" and "refused_by_head" in ENDS
    with pytest.raises(Conflict):
        c.approve(Approve(approved_on=date(2023, 3, 7)), HEAD)
    with pytest.raises(Conflict):
        c.withdraw(withdraw(date(2023, 3, 7)))


def test_the_head_sends_back_for_a_new_re_review() -> None:
    c = re_reviewed()
    [event] = step(c, c.send_back_approval(send_back(), HEAD))
    assert isinstance(event, ApprovalSentBack) and event.reason == "请重新复核"
    assert state_of(c) == "returned_by_head"
    with pytest.raises(Conflict):
        c.approve(Approve(approved_on=date(2023, 3, 7)), HEAD)
    with pytest.raises(RuleViolation) as err:
        re_review(c, on=date(2023, 3, 5))
    assert (err.value.field, err.value.code) == ("reviewed_on", "date_before_previous_step")
    [again] = step(c, re_review(c, on=date(2023, 3, 7)))
    assert state_of(c) == "re_reviewed"
    # A new 审批表 goes before the head, under its own id.
    assert again.model_dump()["documents"] == [f"{CASE}-approval_form-2"]
    step(c, c.approve(Approve(approved_on=date(2023, 3, 8)), HEAD))
    assert state_of(c) == "approved"


@pytest.mark.parametrize("decide", ["refuse", "send_back"])
def test_only_after_a_passed_re_review(decide: str) -> None:
    c = assessed()
    with pytest.raises(Conflict) as err:
        if decide == "refuse":
            c.refuse_approval(refuse(), HEAD)
        else:
            c.send_back_approval(send_back(), HEAD)
    assert err.value.code == "wrong_state"
    c = assessed()
    step(c, re_review(c, ok=False))
    with pytest.raises(Conflict):
        c.send_back_approval(send_back(), HEAD)


@pytest.mark.parametrize("decide", ["refuse", "send_back"])
def test_only_the_head_of_the_level_of_cadre_management_decides(decide: str) -> None:
    for matter, wrong in ((re_reviewed(), head("h", "331121")), (re_reviewed(CITY_CADRE), head("h", J))):
        with pytest.raises(Forbidden) as err:
            if decide == "refuse":
                matter.refuse_approval(refuse(), wrong)
            else:
                matter.send_back_approval(send_back(), wrong)
        assert err.value.code == "approval_level"
    city = re_reviewed(CITY_CADRE)
    [event] = city.send_back_approval(send_back(), head("city-head", "331100"))
    assert isinstance(event, ApprovalSentBack) and event.level == "331100"


def test_the_heads_decision_is_not_before_the_re_review() -> None:
    with pytest.raises(RuleViolation) as err:
        re_reviewed().refuse_approval(refuse(date(2023, 3, 2)), HEAD)
    assert (err.value.field, err.value.code) == ("refused_on", "date_before_previous_step")
    with pytest.raises(RuleViolation) as back:
        re_reviewed().send_back_approval(send_back(date(2023, 3, 2)), HEAD)
    assert (back.value.field, back.value.code) == ("sent_back_on", "date_before_previous_step")


@pytest.mark.parametrize("decide", ["refuse", "send_back"])
def test_the_heads_refusal_and_sending_back_need_reasons(decide: str) -> None:
    c = re_reviewed()
    with pytest.raises(RuleViolation) as err:
        if decide == "refuse":
            c.refuse_approval(refuse(reason=" "), HEAD)
        else:
            c.send_back_approval(send_back(reason=""), HEAD)
    assert (err.value.field, err.value.code) == ("reason", "reason_required")


# --- One state machine, and the figures ----------------------------------------------------------


def test_the_new_ends_are_states_with_names() -> None:
    assert {"declined", "withdrawn", "refused_by_head", "returned_by_head"} <= set(STATES)
    assert set(STATE_NAMES) == set(STATES)
    person, on = PERSON, date(2023, 3, 1)
    assert (
        next_state("candidate", ClarificationDeclined(person=person, declined_on=on, reason="r"))
        == "declined"
    )
    assert (
        next_state("approved", ClarificationWithdrawn(person=person, withdrawn_on=on, reason="r"))
        == "withdrawn"
    )
    refused = ApprovalRefused(refused_on=on, approver="h", level=J, reason="r")
    assert next_state("re_reviewed", refused) == "refused_by_head"
    returned = ApprovalSentBack(sent_back_on=on, approver="h", level=J, reason="r")
    assert next_state("re_reviewed", returned) == "returned_by_head"


def test_figures_count_declined_and_returned_by_the_head() -> None:
    county = QuarterFacts(declined=frozenset({"c1", "c2"}), returned_by_head=frozenset({"e1"}))
    city = QuarterFacts(declined=frozenset({"c3"}), returned_by_head=frozenset({"e2", "e3"}))
    fig = figures(combine([county, city]))
    assert (fig.declined, fig.returned_by_head) == (3, 3)
    assert (figures(QuarterFacts()).declined, figures(QuarterFacts()).returned_by_head) == (0, 0)
