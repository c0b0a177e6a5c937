"""A revised conclusion of the verification (after a supplementary verification sent back by the
re-review, or a 诬告陷害 found after the conclusion) as the clarification office takes it: the chain
resumes on the revised points, an ineligible matter may enter the pool, an eligible one may leave."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import pytest

from services.clarification.commands import CorrectTreatment, Decline, Perform, ReReview
from services.clarification.domain import Clarification, clarifiable_points
from shared.errors import Conflict, RuleViolation
from shared.events.clarification import (
    CandidateAdded,
    ClarificationDiscontinued,
    OutcomeNoted,
    ReReviewRecorded,
    TreatmentCorrected,
)
from shared.events.common import Allegation, Finding
from shared.events.review import VerificationConcluded
from tests.unit.test_clarification_rules import (
    A1,
    A2,
    CASE,
    PERSON,
    J,
    approved,
    assessed,
    candidate,
    member,
    re_review,
    sign,
    started,
    state_of,
    step,
)


def revised(
    findings: dict[str, Finding],
    revision: int = 1,
    points: Sequence[Allegation] = (A1, A2),
    on: date = date(2023, 3, 20),
) -> VerificationConcluded:
    untrue = [
        p for p in points if findings[p.allegation_id] in ("untrue", "false_accusation", "honest_mistake")
    ]
    eligible = bool(untrue) and not {"true", "partly_true"} & set(findings.values())
    return VerificationConcluded(
        concluded_on=on,
        received_on=date(2023, 1, 5),
        findings=findings,
        untrue_points=untrue,
        subjects=[PERSON],
        eligible_for_pool=eligible,
        revision=revision,
    )


def sent_back_for_supplement() -> Clarification:
    """Assessed, then the letters office's member finds the verification incomplete."""
    c = assessed()
    events = c.re_review(
        ReReview(
            reviewed_on=date(2023, 3, 3),
            verification_complete=False,
            conclusion_clear=True,
            disposal_adequate=True,
            expected_effect="消除不良影响",
            note="第二项问题未核实资金往来",
        ),
        member("letters_office"),
    )
    step(c, events)
    assert isinstance(events[-1], ReReviewRecorded) and not events[-1].verification_complete
    return c


def test_a_redelivered_or_older_conclusion_changes_nothing() -> None:
    c = candidate()
    assert c.note_outcome(revised({"A1": "untrue", "A2": "untrue"}, revision=0)) == []
    step(c, c.note_outcome(revised({"A1": "untrue", "A2": "untrue"}, revision=2)))
    assert c.note_outcome(revised({"A1": "untrue", "A2": "true"}, revision=1)) == []


def test_the_re_review_waits_for_the_supplementary_verification() -> None:
    c = sent_back_for_supplement()
    assert state_of(c) == "sent_back" and c.awaiting_supplement
    with pytest.raises(Conflict) as err:
        sign(c, "case_trial", on=date(2023, 3, 4))
    assert err.value.code == "supplementary_pending"
    # The supplementary verification concluded: one point now an honest mistake; the chain resumes.
    [noted] = step(c, c.note_outcome(revised({"A1": "untrue", "A2": "honest_mistake"})))
    assert isinstance(noted, OutcomeNoted) and noted.revision == 1
    assert state_of(c) == "sent_back" and not c.awaiting_supplement
    [passed] = step(c, re_review(c, on=date(2023, 3, 21)))
    assert isinstance(passed, ReReviewRecorded) and passed.passed


def test_a_re_review_sent_back_for_other_reasons_does_not_wait() -> None:
    c = assessed()
    step(c, re_review(c, ok=False))  # the conclusion is not clear: no supplementary verification
    assert state_of(c) == "sent_back" and not c.awaiting_supplement
    [passed] = step(c, re_review(c, on=date(2023, 3, 5)))
    assert isinstance(passed, ReReviewRecorded) and passed.passed


def test_a_point_found_true_in_the_supplement_discontinues_the_matter() -> None:
    c = sent_back_for_supplement()
    noted, ended = step(c, c.note_outcome(revised({"A1": "untrue", "A2": "partly_true"})))
    assert isinstance(noted, OutcomeNoted) and not noted.eligible_for_pool
    assert isinstance(ended, ClarificationDiscontinued)
    assert (ended.discontinued_on, ended.revision) == (date(2023, 3, 20), 1)
    assert "部分属实" in ended.reason
    assert state_of(c) == "discontinued"


def test_a_candidate_leaves_the_pool_when_its_revised_conclusion_is_not_eligible() -> None:
    c = candidate()
    _, ended = step(c, c.note_outcome(revised({"A1": "true", "A2": "untrue"})))
    assert isinstance(ended, ClarificationDiscontinued) and state_of(c) == "discontinued"


def test_a_false_accusation_found_later_brings_a_not_proven_matter_into_the_pool() -> None:
    c = Clarification(CASE, J)
    step(
        c, c.note_outcome(revised({"A1": "not_proven", "A2": "not_proven"}, revision=0, on=date(2023, 2, 10)))
    )
    assert state_of(c) == "not_eligible"
    _, added = step(c, c.note_outcome(revised({"A1": "false_accusation", "A2": "not_proven"})))
    assert isinstance(added, CandidateAdded)
    assert (added.via, added.added_on) == ("revised_conclusion", date(2023, 3, 20))
    assert state_of(c) == "candidate"
    assert c.outcome is not None and [p.allegation_id for p in clarifiable_points(c.outcome)] == ["A1"]


def test_a_started_matter_goes_on_with_the_revised_points() -> None:
    c = started()
    [noted] = step(c, c.note_outcome(revised({"A1": "untrue", "A2": "not_proven"})))
    assert isinstance(noted, OutcomeNoted) and state_of(c) == "started"
    assert c.outcome is not None and [p.allegation_id for p in clarifiable_points(c.outcome)] == ["A1"]


def test_a_clarified_matter_keeps_its_course() -> None:
    c = approved()
    step(c, c.perform(Perform(performed_on=date(2023, 3, 8))))
    [noted] = step(c, c.note_outcome(revised({"A1": "false_accusation", "A2": "untrue"})))
    assert isinstance(noted, OutcomeNoted) and state_of(c) == "performed"


# --- 纠正错误处理 (art. 51) ----------------------------------------------------------------------------


def correction(treatment: str = "诫勉", on: date = date(2023, 3, 10)) -> CorrectTreatment:
    return CorrectTreatment(
        person_subject_id=PERSON.subject_id,
        corrected_on=on,
        treatment=treatment,
        organ="缙云县委组织部",
        correction="撤销诫勉决定",
    )


def test_a_wrong_treatment_is_corrected_whatever_becomes_of_the_clarification() -> None:
    c = candidate()
    step(
        c,
        c.decline(
            Decline(
                person_subject_id=PERSON.subject_id, declined_on=date(2023, 3, 1), reason="本人不同意澄清"
            )
        ),
    )
    [corrected] = step(c, c.correct_treatment(correction()))
    assert isinstance(corrected, TreatmentCorrected)
    assert (corrected.person, corrected.organ, corrected.treatment) == (PERSON, "缙云县委组织部", "诫勉")
    assert state_of(c) == "declined"  # the correction changes nothing of the chain
    with pytest.raises(Conflict) as err:
        c.correct_treatment(correction())
    assert (err.value.code, err.value.field) == ("already_recorded", "treatment")
    [other] = c.correct_treatment(correction("暂缓提拔"))
    assert isinstance(other, TreatmentCorrected)


def test_only_a_treatment_based_on_an_untrue_report_is_corrected_here() -> None:
    c = Clarification(CASE, J)
    with pytest.raises(Conflict) as err:
        c.correct_treatment(correction())
    assert err.value.code == "not_verified_untrue"
    step(c, c.note_outcome(revised({"A1": "not_proven", "A2": "not_proven"}, revision=0)))
    with pytest.raises(Conflict):
        c.correct_treatment(correction())


def test_a_correction_is_not_dated_before_the_conclusion() -> None:
    c = candidate()
    with pytest.raises(RuleViolation) as err:
        c.correct_treatment(correction(on=date(2023, 2, 1)))
    assert err.value.field == "corrected_on"
