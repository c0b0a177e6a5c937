"""The failure rehearsal's own logic: the plan is the seed's, and the comparison names what differs
(the runs themselves are `make chaos`, which CI runs in its short version)."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

from zhengming.chaos import QUARTERS, RunResult, _normal, compare, numbering_gaps, plan


def run(**changes: Any) -> RunResult:
    base = RunResult(
        case_ids={0: "331122-2024-000001", 1: "331121-2024-000001"},
        failures=[],
        drive_s=1.0,
        quiesce_s=1.0,
        events={"intake/ReportReceived": 2, "review/VerificationOpened": 2},
        statistics={q: {"total": {"matters": 2}, "331122": {"matters": 1}} for q in QUARTERS},
        documents=Counter({"notice:abc": 1}),
        numbering_gaps=[],
        notices={"331122 2024Q1": {"entries": [{"case_id": "<case 0>"}]}},
        notice_copies=Counter({"n1": 1}),
        dead_letters={"intake.inbound": 0},
    )
    return replace(base, **changes)


def differing(a: RunResult, b: RunResult) -> list[str]:
    return [r.figure.strip() for r in compare(a, b) if r.differs]


def test_the_plan_is_the_seeds_and_covers_every_ending() -> None:
    assert plan(7, 3) == plan(7, 3)
    assert plan(7, 3) != plan(8, 3)
    assert {plan(7, k).ending for k in range(60)} == {"cleared", "substantiated", "declined"}
    assert len({plan(7, k).jurisdiction for k in range(60)}) == 10


def test_two_equal_runs_differ_in_nothing() -> None:
    assert differing(run(), run()) == []


def test_each_kind_of_difference_is_named() -> None:
    clean = run()
    assert differing(clean, run(events={"intake/ReportReceived": 2, "review/VerificationOpened": 3})) == [
        "events (all services)",
        "review/VerificationOpened",
    ]
    stats = {q: {"total": {"matters": 2}, "331122": {"matters": 2}} for q in QUARTERS}
    assert differing(clean, run(statistics=stats)) == [
        f"statistics {q} (jurisdictions differing)" for q in QUARTERS
    ]
    assert differing(clean, run(documents=Counter({"notice:abd": 1}))) == ["documents differing"]
    assert differing(clean, run(notice_copies=Counter({"n1": 2}))) == ["notices not exactly once (chaos)"]
    assert differing(clean, run(dead_letters={"intake.inbound": 1})) == ["dead letters"]
    assert differing(clean, run(failures=["case 3: timed out"])) == ["failures"]
    assert differing(clean, run(verify_ok=False)) == ["audit verify (chaos run)"]
    assert differing(clean, run(replay_equal=False)) == ["replay = live read models (chaos run)"]
    changed = {"331122 2024Q1": {"entries": [{"case_id": "<case 1>"}]}}
    assert differing(clean, run(notices=changed)) == ["notices differing"]


def test_a_runs_own_identifiers_are_replaced_by_the_plans() -> None:
    text = "缙纪澄〔2024〕17号 关于331122-2024-000003的澄清"
    assert _normal(text, {"331122-2024-000003": "<case 5>"}) == "缙纪澄〔2024〕#号 关于<case 5>的澄清"


def test_document_numbers_must_run_without_gaps_or_repeats() -> None:
    good = ["缙纪澄〔2024〕1号", "缙纪澄〔2024〕2号", "缙纪澄函〔2024〕1号", "丽纪澄〔2024〕1号"]
    assert numbering_gaps(good) == []
    assert numbering_gaps([*good, "缙纪澄〔2024〕2号", "缙纪澄〔2024〕4号"]) == [
        "缙纪澄〔2024〕: twice [2], missing [3]"
    ]
    clean = run()
    assert differing(clean, run(numbering_gaps=["缙纪澄〔2024〕: twice [2], missing []"])) == [
        "document numbers twice or skipped (chaos)"
    ]
