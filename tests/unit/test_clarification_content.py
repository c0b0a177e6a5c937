"""澄清内容, rule by rule: the department drafts one wording for each point verified untrue (and for no
other), the case-trial office approves or returns it, a new draft needs approval again, the matter's
own state never moves, and only approved wording is clarified (one matter or a round); intake's
answer on the reporter's identity refuses a draft without naming the identity."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from services.clarification.commands import (
    WORDING_MAX,
    Approve,
    ApproveContent,
    DraftContent,
    DraftedPoint,
    HoldRound,
    Perform,
    ReturnContent,
    Start,
    Withdraw,
)
from services.clarification.domain import (
    Clarification,
    check_wording,
    next_content_state,
    next_state,
    plan_round,
)
from services.clarification.handlers import check_reporter_identity
from services.clarification.reporters import IdentityCheckUnavailable, IntakeIdentityCheck, answer_of
from services.clarification.settings import IntakeSettings
from shared.errors import Conflict, RuleViolation
from shared.events.clarification import (
    ClarificationPerformed,
    ContentApproved,
    ContentDrafted,
    ContentReturned,
)
from shared.events.review import VerificationConcluded
from tests.unit.test_clarification_rules import (
    A1,
    A2,
    CASE,
    PERSON,
    TRIAL,
    J,
    assessed,
    candidate,
    head,
    outcome,
    re_review,
    started,
    state_of,
    step,
)

WORDING = "经核查，反映李明同志收受工程老板礼金的问题失实"


def content_of(c: Clarification) -> str:
    """Read the content's state afresh (commands change it behind the type checker's back)."""
    return c.content_state


def draft(*points: tuple[str, str], on: date = date(2023, 3, 2)) -> DraftContent:
    return DraftContent(drafted_on=on, points=[DraftedPoint(allegation_id=a, wording=w) for a, w in points])


def untrue_only() -> Clarification:
    """A1 untrue, A2 not proven: only A1 is clarified."""
    c = candidate({"A1": "untrue", "A2": "not_proven"}, points=(A1, A2))
    start = Start(
        initiated_by="department",
        person_subject_id=PERSON.subject_id,
        consent=True,
        consent_note="",
        started_on=date(2023, 3, 1),
    )
    step(c, c.start(start))
    return c


def approved_matter(*, content: bool = True, forms: list[Any] | None = None) -> Clarification:
    c = assessed()
    step(c, re_review(c))
    step(c, c.approve(Approve(approved_on=date(2023, 3, 6), forms=forms), head("head-1", J)))
    if content:
        word(c)
    return c


def word(c: Clarification, on: date = date(2023, 3, 6)) -> None:
    step(
        c,
        c.draft_content(
            draft(("A1", WORDING), ("A2", "经核查，反映李明同志违规插手土地征收的问题失实"), on=on)
        ),
    )
    step(c, c.approve_content(ApproveContent(approved_on=on), TRIAL))


# --- Drafting ------------------------------------------------------------------------------------


def test_the_department_words_each_untrue_point_and_the_matters_state_stays() -> None:
    c = untrue_only()
    [event] = step(c, c.draft_content(draft(("A1", f"  {WORDING} "))))
    assert isinstance(event, ContentDrafted)
    assert event.points == {"A1": WORDING} and event.drafted_on == date(2023, 3, 2)
    assert state_of(c) == "started" and c.content_state == "drafted"
    assert next_state("started", event) == "started"


def test_a_point_not_of_the_matter_is_refused_by_its_field() -> None:
    with pytest.raises(RuleViolation) as err:
        untrue_only().draft_content(draft(("A1", WORDING), ("A9", "经核查，失实")))
    assert (err.value.field, err.value.code) == ("points.1.allegation_id", "unknown_allegation")


def test_a_point_not_verified_untrue_is_not_clarified() -> None:
    with pytest.raises(RuleViolation) as err:
        untrue_only().draft_content(draft(("A2", "经核查，反映的问题失实"), ("A1", WORDING)))
    assert (err.value.field, err.value.code) == ("points.0.allegation_id", "point_not_untrue")


def test_each_untrue_point_needs_its_wording() -> None:
    with pytest.raises(RuleViolation) as err:
        started().draft_content(draft(("A1", WORDING)))
    assert (err.value.field, err.value.code) == ("points", "wording_missing")
    assert "A2" in err.value.detail and "A2" in (err.value.detail_zh or "")


def test_a_point_is_worded_once() -> None:
    with pytest.raises(RuleViolation) as err:
        untrue_only().draft_content(draft(("A1", WORDING), ("A1", WORDING)))
    assert (err.value.field, err.value.code) == ("points.1.allegation_id", "duplicate_allegation")


def test_a_blank_wording_is_refused() -> None:
    with pytest.raises(RuleViolation) as err:
        untrue_only().draft_content(draft(("A1", " \n ")))
    assert (err.value.field, err.value.code) == ("points.0.wording", "wording_required")


def test_a_wording_is_bounded_and_without_control_characters() -> None:
    with pytest.raises(ValidationError) as err:
        draft(("A1", "经核查\x07失实"))
    assert err.value.errors()[0]["type"] == "text_control_character"
    with pytest.raises(ValidationError) as err:
        draft(("A1", "失" * (WORDING_MAX + 1)))
    assert err.value.errors()[0]["type"] == "string_too_long"
    with pytest.raises(ValidationError):
        DraftContent(drafted_on=date(2023, 3, 2), points=[])


def test_the_wording_follows_the_order_of_the_points() -> None:
    both = outcome({"A1": "untrue", "A2": "honest_mistake"}, points=(A1, A2))
    worded = check_wording(both, draft(("A2", "二"), ("A1", "一")))
    assert list(worded.items()) == [("A1", "一"), ("A2", "二")]


def test_drafting_needs_the_start_and_ends_with_the_clarification() -> None:
    with pytest.raises(Conflict) as err:
        candidate().draft_content(draft(("A1", WORDING), ("A2", WORDING)))
    assert err.value.code == "wrong_state"
    performed = approved_matter()
    step(performed, performed.perform(Perform(performed_on=date(2023, 3, 8))))
    with pytest.raises(Conflict):
        performed.draft_content(draft(("A1", WORDING), ("A2", WORDING), on=date(2023, 3, 9)))
    withdrawn = started()
    step(withdrawn, withdrawn.withdraw(Withdraw(withdrawn_on=date(2023, 3, 2), reason="本人撤回")))
    with pytest.raises(Conflict):
        withdrawn.draft_content(draft(("A1", WORDING), ("A2", WORDING)))


def test_a_draft_is_not_dated_before_the_start() -> None:
    with pytest.raises(RuleViolation) as err:
        untrue_only().draft_content(draft(("A1", WORDING), on=date(2023, 2, 28)))
    assert (err.value.field, err.value.code) == ("drafted_on", "date_before_previous_step")


# --- 审理室 approves or returns ----------------------------------------------------------------------


def test_the_case_trial_office_approves_the_draft() -> None:
    c = untrue_only()
    step(c, c.draft_content(draft(("A1", WORDING))))
    [event] = step(c, c.approve_content(ApproveContent(approved_on=date(2023, 3, 3)), TRIAL))
    assert isinstance(event, ContentApproved)
    assert (event.approver, event.approver_name) == ("trial-1", "赵审理")
    assert c.content_state == "approved" and state_of(c) == "started"


def test_nothing_drafted_nothing_to_approve_or_return() -> None:
    c = untrue_only()
    with pytest.raises(Conflict) as err:
        c.approve_content(ApproveContent(approved_on=date(2023, 3, 3)), TRIAL)
    assert err.value.code == "content_not_drafted"
    step(c, c.draft_content(draft(("A1", WORDING))))
    step(c, c.approve_content(ApproveContent(approved_on=date(2023, 3, 3)), TRIAL))
    with pytest.raises(Conflict) as err:
        c.approve_content(ApproveContent(approved_on=date(2023, 3, 3)), TRIAL)
    assert err.value.code == "content_not_drafted"
    with pytest.raises(Conflict):
        c.return_content(ReturnContent(returned_on=date(2023, 3, 3), reason="措辞不当"), TRIAL)


def test_the_approval_is_not_before_the_draft() -> None:
    c = untrue_only()
    step(c, c.draft_content(draft(("A1", WORDING), on=date(2023, 3, 3))))
    with pytest.raises(RuleViolation) as err:
        c.approve_content(ApproveContent(approved_on=date(2023, 3, 2)), TRIAL)
    assert (err.value.field, err.value.code) == ("approved_on", "date_before_previous_step")


def test_a_returned_draft_is_drafted_again_not_before_the_return() -> None:
    c = untrue_only()
    step(c, c.draft_content(draft(("A1", WORDING))))
    with pytest.raises(RuleViolation) as err:
        c.return_content(ReturnContent(returned_on=date(2023, 3, 3), reason=" "), TRIAL)
    assert (err.value.field, err.value.code) == ("reason", "reason_required")
    [event] = step(c, c.return_content(ReturnContent(returned_on=date(2023, 3, 4), reason="措辞不当"), TRIAL))
    assert (
        isinstance(event, ContentReturned) and event.reason == "措辞不当" and event.returned_by == "trial-1"
    )
    assert c.content_state == "returned" and state_of(c) == "started"
    with pytest.raises(RuleViolation) as err:
        c.draft_content(draft(("A1", WORDING), on=date(2023, 3, 3)))
    assert (err.value.field, err.value.code) == ("drafted_on", "date_before_previous_step")
    step(c, c.draft_content(draft(("A1", "经核查，反映的问题失实"), on=date(2023, 3, 4))))
    assert content_of(c) == "drafted" and c.content_return is None


def test_content_events_move_only_the_contents_state() -> None:
    drafted = ContentDrafted(drafted_on=date(2023, 3, 2), points={"A1": WORDING})
    approved = ContentApproved(approved_on=date(2023, 3, 3), approver="t")
    returned = ContentReturned(returned_on=date(2023, 3, 3), reason="r", returned_by="t")
    assert [next_content_state("none", e) for e in (drafted, approved, returned)] == [
        "drafted",
        "approved",
        "returned",
    ]
    for state in ("started", "assessed", "re_reviewed", "approved"):
        assert all(next_state(state, e) == state for e in (drafted, approved, returned))


# --- Only approved wording is clarified ------------------------------------------------------------


def test_no_clarification_without_approved_content() -> None:
    c = approved_matter(content=False)
    with pytest.raises(Conflict) as err:
        c.perform(Perform(performed_on=date(2023, 3, 8)))
    assert err.value.code == "content_not_approved" and CASE in err.value.detail
    step(c, c.draft_content(draft(("A1", WORDING), ("A2", WORDING), on=date(2023, 3, 6))))
    with pytest.raises(Conflict) as err:
        c.perform(Perform(performed_on=date(2023, 3, 8)))
    assert err.value.code == "content_not_approved"


def test_a_new_draft_needs_approval_again() -> None:
    c = approved_matter()
    step(c, c.draft_content(draft(("A1", "新的措辞"), ("A2", "新的措辞二"), on=date(2023, 3, 7))))
    with pytest.raises(Conflict) as err:
        c.perform(Perform(performed_on=date(2023, 3, 8)))
    assert err.value.code == "content_not_approved"
    step(c, c.approve_content(ApproveContent(approved_on=date(2023, 3, 7)), TRIAL))
    [event] = c.perform(Perform(performed_on=date(2023, 3, 8)))
    assert isinstance(event, ClarificationPerformed) and event.wording == {
        "A1": "新的措辞",
        "A2": "新的措辞二",
    }


def test_the_clarification_carries_the_approved_wording_and_is_not_before_it() -> None:
    c = approved_matter(content=False)
    word(c, on=date(2023, 3, 8))
    with pytest.raises(RuleViolation) as err:
        c.perform(Perform(performed_on=date(2023, 3, 7)))
    assert (err.value.field, err.value.code) == ("performed_on", "date_before_previous_step")
    [event] = c.perform(Perform(performed_on=date(2023, 3, 8)))
    assert isinstance(event, ClarificationPerformed)
    assert event.wording["A1"] == WORDING and [p.allegation_id for p in event.points] == ["A1", "A2"]


def test_a_round_leaves_a_matter_without_approved_content_for_later() -> None:
    ready = approved_matter(forms=["unit_meeting"])
    unworded = approved_matter(content=False, forms=["unit_meeting"])
    unworded._case_id = "331122-2023-000002"
    late = approved_matter(content=False, forms=["unit_meeting"])
    late._case_id = "331122-2023-000003"
    word(late, on=date(2023, 3, 25))  # approved after the round's day: not ready on it
    command = HoldRound(jurisdiction=J, quarter="2023Q1", held_on=date(2023, 3, 20))
    plan = plan_round([unworded, late, ready], command, round_exists=False)
    assert list(plan.performed) == [CASE] and plan.held.matters == [CASE]
    assert plan.skipped == ("331122-2023-000002", "331122-2023-000003")
    with pytest.raises(RuleViolation) as err:
        plan_round([unworded], command, round_exists=False)
    assert err.value.code == "nothing_ready" and "审理室" in (err.value.detail_zh or "")


# --- The reporter's identity: intake answers, clarification only hears yes or no ----------------


class Answers:
    """A stand-in for intake: whether each text reveals the reporter, or no answer."""

    def __init__(self, revealing: set[str] = frozenset(), down: bool = False) -> None:  # type: ignore[assignment]
        self.revealing, self.down = revealing, down
        self.asked: list[tuple[str, str, str | None]] = []

    async def reveals(self, case_id: str, text: str, authorization: str | None) -> bool:
        self.asked.append((case_id, text, authorization))
        if self.down:
            raise IdentityCheckUnavailable("down")
        return text in self.revealing


TWO = draft(("A1", "经核查，反映的问题失实"), ("A2", "经核查，检举人张三反映的问题失实"))


async def test_a_wording_with_the_reporters_identity_refuses_the_draft_by_its_field() -> None:
    answers = Answers({"经核查，检举人张三反映的问题失实"})
    with pytest.raises(RuleViolation) as err:
        await check_reporter_identity(answers, CASE, TWO, "Bearer t")
    assert (err.value.field, err.value.code) == ("points.1.wording", "content_reveals_reporter")
    assert "张三" not in err.value.detail and "张三" not in (err.value.detail_zh or "")
    assert {a[2] for a in answers.asked} == {"Bearer t"} and {a[0] for a in answers.asked} == {CASE}


async def test_no_identity_passes_and_no_answer_refuses() -> None:
    await check_reporter_identity(Answers(), CASE, TWO, "Bearer t")
    with pytest.raises(IdentityCheckUnavailable):
        await check_reporter_identity(Answers(down=True), CASE, TWO, "Bearer t")


def response(status: int, body: Any = None, text: str | None = None) -> httpx.Response:
    if text is not None:
        return httpx.Response(status, text=text)
    return httpx.Response(status, json=body)


def test_intakes_answer_is_its_contains_or_no_answer() -> None:
    assert answer_of(response(200, {"contains": True})) is True
    assert answer_of(response(200, {"contains": False})) is False
    # A matter intake never registered (the backlog sweep's old files) holds no reporter.
    assert answer_of(response(404, {"code": "not_found"})) is False
    for unanswered in (
        response(404, {"code": "route_not_found"}),
        response(500, {"code": "internal_error"}),
        response(503, {"code": "service_unavailable"}),
        response(401, {"code": "unauthorized"}),
        response(200, {"contains": "yes"}),
        response(200, text="<html>"),
    ):
        with pytest.raises(IdentityCheckUnavailable):
            answer_of(unanswered)


async def test_intake_is_asked_with_the_callers_token_and_a_timeout_is_no_answer() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if b"slow" in request.content:
            raise httpx.ReadTimeout("slow", request=request)
        return httpx.Response(200, json={"contains": False})

    settings = IntakeSettings(url="http://intake.test:1/", timeout_s=0.5)
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        check = IntakeIdentityCheck(settings, client)
        assert await check.reveals("331122-2023-000001", "经核查", "Bearer abc") is False
        with pytest.raises(IdentityCheckUnavailable):
            await check.reveals("331122-2023-000001", "slow", "Bearer abc")
    assert str(seen[0].url) == "http://intake.test:1/reports/331122-2023-000001/identity-check"
    assert seen[0].headers["authorization"] == "Bearer abc"


async def test_intake_not_listening_is_no_answer() -> None:
    check = IntakeIdentityCheck(IntakeSettings(url="http://127.0.0.1:9", timeout_s=0.5))
    with pytest.raises(IdentityCheckUnavailable):
        await check.reveals(CASE, "经核查", "Bearer abc")


def test_the_default_intake_is_the_stacks_own(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared import settings

    monkeypatch.delenv("ZM_INTAKE_URL", raising=False)
    monkeypatch.delenv("ZM_SERVICE_HOST", raising=False)
    monkeypatch.setenv("ZM_SERVICE_INTAKE_PORT", "9555")
    settings.services.cache_clear()
    try:
        assert IntakeSettings().base_url() == "http://127.0.0.1:9555"
        monkeypatch.setenv("ZM_INTAKE_URL", "http://intake:8101/")
        assert IntakeSettings().base_url() == "http://intake:8101"
    finally:
        settings.services.cache_clear()


def test_a_revised_conclusion_with_other_untrue_points_needs_the_content_worded_again() -> None:
    """The approved wording covers A1 and A2; a supplementary verification finds A2 not proven:
    the wording no longer fits the points, so it is drafted and approved again."""
    c = approved_matter()
    assert content_of(c) == "approved"
    same = revised_conclusion({"A1": "untrue", "A2": "untrue"})
    step(c, c.note_outcome(same))
    assert content_of(c) == "approved"  # the same points: the approved wording stands
    fewer = revised_conclusion({"A1": "untrue", "A2": "not_proven"}, revision=2)
    step(c, c.note_outcome(fewer))
    assert content_of(c) == "none" and c.content is None
    with pytest.raises(Conflict) as err:
        c.perform(Perform(performed_on=date(2023, 3, 8)))
    assert err.value.code == "content_not_approved"


def revised_conclusion(findings: dict[str, Any], revision: int = 1) -> VerificationConcluded:
    untrue = [p for p in (A1, A2) if findings[p.allegation_id] == "untrue"]
    return VerificationConcluded(
        concluded_on=date(2023, 3, 6),
        received_on=date(2023, 1, 5),
        findings=findings,
        untrue_points=untrue,
        subjects=[PERSON],
        eligible_for_pool=True,
        revision=revision,
    )
