"""The demo's scenario generator: seed -> case plans that lead to what Lishui published for 2023Q1."""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import get_args

import pytest

from shared.envelope import CITY, JURISDICTIONS
from shared.events.common import Channel, Finding
from shared.workdays import add_working_days
from zhengming.scenario import (
    JINYUN,
    QUARTER_LAST,
    DemoCase,
    Scenario,
    generate,
)

SEED = 20230331


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return generate(SEED)


def screened(s: Scenario) -> list[DemoCase]:
    """The old Jinyun matters the sweep will screen: concluded untrue, nothing true."""
    return [c for c in s.of(JINYUN) if c.swept and c.outcome != "not_eligible"]


def test_the_same_seed_gives_the_same_plans() -> None:
    assert generate(7) == generate(7)
    assert generate(7).cases != generate(8).cases


def test_persons_and_units_to_clear_add_up_to_the_published_figures(scenario: Scenario) -> None:
    t = scenario.targets
    assert (t.total_persons, t.total_units) == (70, 6)
    for j in JURISDICTIONS:
        assert len(scenario.cleared(j, "person")) == t.persons[j]
        assert len(scenario.cleared(j, "unit")) == t.units[j]
        assert t.persons[j] + t.units[j] >= 1, f"{j} not covered"
    assert len(scenario.cleared(kind="person")) == 70
    assert len(scenario.cleared(kind="unit")) == 6


def test_every_cleared_subject_is_a_different_person_or_unit(scenario: Scenario) -> None:
    # 一人一档 keys a subject by kind, name and unit: two alike would be counted once
    keys = [(c.subject.kind, c.subject.name, c.subject.unit) for c in scenario.cleared()]
    assert len(set(keys)) == len(keys)


def test_jinyun_screens_18_old_matters_and_clears_13_of_them(scenario: Scenario) -> None:
    swept = screened(scenario)
    assert len(swept) == 18
    assert all(c.findings and set(c.findings) == {"untrue"} for c in swept)
    window = date(scenario.sweep_as_of.year - 3, scenario.sweep_as_of.month, scenario.sweep_as_of.day)
    assert all(c.concluded_on and window <= c.concluded_on <= scenario.sweep_as_of for c in swept)
    cleared = scenario.cleared(JINYUN)
    assert len(cleared) == 13 and all(c.swept for c in cleared)
    rest = Counter(c.outcome for c in swept if c.outcome != "cleared")
    assert rest == {"refused": 2, "no_consent": 1, "sent_back": 1, "assessed": 1}
    refusals = {
        "no_bad_effect" if not c.chain.bad_effects else "effect_only_from_interviews"
        for c in swept
        if c.outcome == "refused" and c.chain
    }
    assert refusals == {"no_bad_effect", "effect_only_from_interviews"}
    assert any(c.priority_flags for c in swept)
    # the quarter's own Jinyun matters lie outside the sweep's window
    assert all(
        c.concluded_on is None or c.concluded_on > scenario.sweep_as_of
        for c in scenario.of(JINYUN)
        if not c.swept
    )
    # old matters the sweep leaves out (not eligible)
    assert {c.outcome for c in scenario.of(JINYUN) if c.swept} >= {"not_eligible"}


def test_every_channel_and_every_kind_of_finding_is_there(scenario: Scenario) -> None:
    assert {c.channel for c in scenario.cases} == set(get_args(Channel))
    assert {f for c in scenario.cases for f in c.findings} == set(get_args(Finding))
    for j in JURISDICTIONS:
        found = {f for c in scenario.of(j) for f in c.findings}
        assert found >= {
            "true",
            "partly_true",
            "not_proven",
            "honest_mistake",
            "false_accusation",
            "untrue",
        }, j
        assert any(c.real_name for c in scenario.of(j)) and any(not c.real_name for c in scenario.of(j)), j
    inbound = [c for c in scenario.cases if c.via == "inbound"]
    quarter = [c for c in scenario.cases if c.in_quarter]
    assert 0.07 <= len(inbound) / len(quarter) <= 0.13
    assert all(c.channel == "agency_transfer" and c.source_agency for c in inbound)
    assert {c.jurisdiction for c in scenario.cases if c.via == "send_down"} == set(JURISDICTIONS) - {CITY}


def test_the_special_paths_are_there(scenario: Scenario) -> None:
    cases = scenario.cases
    assert any(c.green_channel == "before" for c in cases)
    assert any(c.green_channel == "after" for c in cases)
    assert any(c.chain and len(c.chain.reviews) == 2 and not c.chain.reviews[0].passed for c in cases)
    assert any(c.outcome == "repeat" for c in cases)
    keys = scenario.by_key()
    assert all(keys[c.repeat_of].outcome != "repeat" for c in cases if c.repeat_of)
    assert any(c.subject.cadre_level == "city" and c.jurisdiction != CITY for c in scenario.cleared())
    assert {c.outcome for c in cases} >= {"open", "in_pool", "not_eligible", "refused"}
    showcase = scenario.showcase
    assert showcase.outcome == "cleared" and showcase.green_channel == "before"
    assert any(c.repeat_of == showcase.key for c in cases)


def test_dates_follow_the_chain_and_the_working_day_rules(scenario: Scenario) -> None:
    held = {r.jurisdiction: r.held_on for r in scenario.rounds}
    for c in scenario.cleared():
        chain, after = c.chain, c.after_round
        assert chain and after and chain.approve_on and chain.assess_on and c.concluded_on
        assert c.received_on <= (c.accepted_on or c.received_on) <= (c.handed_on or c.received_on)
        assert c.decided_on and c.handed_on and c.handed_on <= c.decided_on < c.concluded_on
        assert chain.start_on >= max(c.concluded_on, c.green_filed_on or c.concluded_on)
        steps = [chain.start_on, chain.assess_on, *(r.on for r in chain.reviews), chain.approve_on]
        assert steps == sorted(steps)
        # clarified in the round within 5 working days of the approval: on time
        assert chain.approve_on <= held[c.jurisdiction] <= add_working_days(chain.approve_on, 5)
        assert held[c.jurisdiction] <= after.feedback_on <= after.filed_on <= QUARTER_LAST
        assert all(v.on >= held[c.jurisdiction] for v in after.visits)
        if c.referred_on:
            assert c.decided_on <= c.referred_on <= c.concluded_on
    assert all(r.held_on.month == 3 and r.held_on.year == 2023 for r in scenario.rounds)
    assert all(issued >= date(2023, 4, 3) for _, issued in scenario.notices)


def test_it_scales(scenario: Scenario) -> None:
    bigger = generate(SEED, scale=3)
    t = bigger.targets
    assert (t.total_persons, t.total_units, t.jinyun_swept, t.jinyun_cleared) == (210, 18, 54, 39)
    assert len(bigger.cleared(kind="person")) == 210 and len(bigger.cleared(kind="unit")) == 18
    assert len(screened(bigger)) == 54 and len(bigger.cleared(JINYUN)) == 39
    assert len(bigger.cases) >= 3 * len(scenario.cases) - 10
    for j in JURISDICTIONS:
        assert len(bigger.cleared(j)) == t.persons[j] + t.units[j] >= 3
    assert len({c.key for c in bigger.cases}) == len(bigger.cases)


def test_reporters_are_never_officials(scenario: Scenario) -> None:
    reporters = {c.reporter.name for c in scenario.cases if c.reporter}
    officials = {c.subject.name for c in scenario.cases}
    assert reporters and not reporters & officials


def test_scale_must_be_positive() -> None:
    with pytest.raises(ValueError):
        generate(SEED, scale=0)
