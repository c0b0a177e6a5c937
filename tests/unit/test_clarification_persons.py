"""Several persons per matter: each person (or unit) a matter names has a clarification of its own,
bound to them; the first keeps the matter's id; a matter is counted once, its persons each."""

from __future__ import annotations

from datetime import date

import pytest

from services.archive.domain import ClarificationFact, QuarterFacts, figures
from services.clarification.commands import Start
from services.clarification.domain import Clarification
from shared.envelope import matter_of, person_matter_id
from shared.errors import RuleViolation
from shared.events.clarification import CandidateAdded, OutcomeNoted
from tests.unit.test_clarification_rules import (
    CASE,
    CITY_CADRE,
    PERSON,
    J,
    application,
    concluded,
    state_of,
    step,
)

BOTH = concluded({"A1": "untrue"})  # names PERSON and CITY_CADRE


def start(c: Clarification, subject_id: str) -> list[object]:
    return list(
        c.start(
            Start(
                initiated_by="department",
                person_subject_id=subject_id,
                consent=True,
                started_on=date(2023, 3, 1),
            )
        )
    )


def test_the_ids_of_a_matters_persons() -> None:
    assert person_matter_id(CASE, 0) == CASE
    assert person_matter_id(CASE, 1) == f"{CASE}-2"
    assert matter_of(f"{CASE}-2") == CASE and matter_of(CASE) == CASE
    assert matter_of("round-331122-2023Q1") == "round-331122-2023Q1"


def test_each_persons_clarification_is_bound_to_them() -> None:
    first, second = Clarification(CASE, J), Clarification(f"{CASE}-2", J)
    noted, added = step(first, first.note_outcome(BOTH, person=PERSON.subject_id))
    assert isinstance(noted, OutcomeNoted) and noted.person_subject_id == PERSON.subject_id
    assert isinstance(added, CandidateAdded)
    step(second, second.note_outcome(BOTH, person=CITY_CADRE.subject_id))
    assert first.person_subject_id == PERSON.subject_id and state_of(second) == "candidate"
    with pytest.raises(RuleViolation) as err:
        start(first, CITY_CADRE.subject_id)
    assert (err.value.code, err.value.field) == ("another_persons_clarification", "person_subject_id")
    assert f"{CASE}-2" in err.value.detail and CITY_CADRE.name in (err.value.detail_zh or "")
    started = start(second, CITY_CADRE.subject_id)
    assert len(started) == 1


def test_a_clarification_noted_before_several_persons_takes_any_of_them() -> None:
    legacy = Clarification(CASE, J)
    step(legacy, legacy.note_outcome(BOTH))
    assert legacy.person_subject_id is None
    assert len(start(legacy, CITY_CADRE.subject_id)) == 1


def test_another_persons_application_does_not_bring_the_first_into_the_pool() -> None:
    """Before the pool opened, only an application brings an old matter in: the city cadre's own
    brings their clarification in, not the first person's."""
    first = Clarification(CASE, J)
    theirs = application().model_copy(update={"applicant": CITY_CADRE})
    step(first, first.note_application(theirs))
    events = first.note_outcome(BOTH, pool_since=date(2024, 1, 1), person=PERSON.subject_id)
    assert [type(e).__name__ for e in events] == ["OutcomeNoted"]
    mine = Clarification(CASE, J)
    step(mine, mine.note_application(application()))
    events = mine.note_outcome(BOTH, pool_since=date(2024, 1, 1), person=PERSON.subject_id)
    assert [type(e).__name__ for e in events] == ["OutcomeNoted", "CandidateAdded"]


def fact(case_id: str, subject_id: str) -> ClarificationFact:
    return ClarificationFact(
        case_id=case_id,
        subject_id=subject_id,
        kind="person",
        forms=("written_notice",),
        on_time=True,
        working_days=3,
    )


def test_a_matter_is_counted_once_and_its_persons_each() -> None:
    facts = QuarterFacts(
        clarifications=(fact(CASE, PERSON.subject_id), fact(f"{CASE}-2", CITY_CADRE.subject_id)),
        candidates=frozenset({CASE, f"{CASE}-2"}),
    )
    counted = figures(facts)
    assert (counted.clarifications, counted.persons_clarified, counted.candidates) == (1, 2, 1)
    assert counted.on_time_clarifications == 2
