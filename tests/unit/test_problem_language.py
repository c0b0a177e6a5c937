"""Problem bodies speak Chinese unless the caller prefers English: the Accept-Language negotiation,
the titles, the body, the wording helpers, and a Chinese sentence of its own at every raise site."""

from __future__ import annotations

import ast
import json
from datetime import date
from pathlib import Path
from typing import get_args

import pytest

from services.clarification.domain import STATE_NAMES, STATES, wrong_state
from services.intake.commands import NoticeKind
from services.intake.domain import NOTICE_NAMES, RECEIPT, REPORT_STATE_NAMES, ReportState
from shared.dates import not_before
from shared.errors import Conflict, DomainError, NotFound, RuleViolation, Term
from shared.events.common import (
    FINDING_NAMES,
    HANDLING_METHOD_NAMES,
    ROLE_NAMES,
    Finding,
    HandlingMethod,
    Role,
)
from shared.http import problem_response
from shared.problems import STATUS_TITLES, TITLES, language_of, preferred_language, title
from tests.unit.bilingual import bilingual_problems

ROOT = Path(__file__).resolve().parents[2]


# --- Accept-Language ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "language"),
    [
        (None, "zh"),
        ("", "zh"),
        ("en", "en"),
        ("en-US", "en"),
        ("EN-gb", "en"),
        ("en;q=0.9,zh;q=0.8", "en"),
        ("en;q=0.9, zh;q=0.8", "en"),
        ("zh;q=0.9,en;q=0.8", "zh"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("zh-CN,zh;q=0.9,en-US;q=0.8,en;q=0.7", "zh"),
        ("en-US,en;q=0.9,zh-CN;q=0.8", "en"),
        ("en;q=0.5,zh;q=0.8", "zh"),
        ("zh-TW,en;q=0.5", "zh"),
        ("fr", "zh"),
        ("fr,en;q=0.5", "en"),
        ("en;q=0", "zh"),
        ("zh;q=0,en;q=0.1", "en"),
        ("en,zh", "en"),  # equal weights: the one listed first
        ("zh,en", "zh"),
        ("*", "zh"),
        ("*;q=0.5,en", "en"),
        ("zh;q=0.2,*", "en"),  # any language but Chinese at 1: English outranks
        ("en-US;q=0.9,en;q=0.1,zh;q=0.5", "en"),  # a language's best range counts
        ("en;q=abc", "zh"),  # malformed entries are ignored
        ("en;q=1.5", "zh"),
        ("e n", "zh"),
        (";;,,", "zh"),
        ("en;level=1;q=0.9,zh;q=0.8", "en"),
        ("Q=0.3;en", "zh"),
    ],
)
def test_english_only_when_it_outranks_chinese(header: str | None, language: str) -> None:
    assert preferred_language(header) == language


def test_the_language_of_a_request_comes_from_its_header() -> None:
    assert language_of({"headers": [(b"accept-language", b"en-US,en;q=0.9")]}) == "en"
    assert language_of({"headers": [(b"Accept-Language", b"zh-CN")]}) == "zh"
    assert language_of({"headers": [(b"content-type", b"application/json")]}) == "zh"
    assert language_of({}) == "zh"


# --- titles and the body ----------------------------------------------------------------------------


def test_a_title_per_code_then_per_status() -> None:
    assert title("consent_required", 422, "zh") == "须经本人同意"
    assert title("consent_required", 422, "en") == "Consent required"
    assert title("no_such_code", 409, "zh") == STATUS_TITLES[409][0]
    assert title("no_such_code", 409, "en") == "Conflict"
    assert title("no_such_code", 418, "en") == "Request not processed"
    assert all(zh and en and zh != en for zh, en in [*TITLES.values(), *STATUS_TITLES.values()])


def test_the_body_speaks_chinese_by_default_and_english_when_asked() -> None:
    args = (422, "consent_required", "no consent, no clarification", "consent")
    zh = problem_response(*args, detail_zh="未经本人同意，不予澄清")
    assert zh.headers["content-language"] == "zh-CN"
    assert json.loads(bytes(zh.body)) == {
        "type": "urn:zhengming:problem:consent_required",
        "title": "须经本人同意",
        "status": 422,
        "code": "consent_required",
        "detail": "未经本人同意，不予澄清",
        "detail_zh": "未经本人同意，不予澄清",
        "detail_en": "no consent, no clarification",
        "field": "consent",
    }
    en = problem_response(*args, detail_zh="未经本人同意，不予澄清", language="en")
    assert en.headers["content-language"] == "en"
    body = json.loads(bytes(en.body))
    assert body["title"] == "Consent required" and body["detail"] == "no consent, no clarification"
    assert body["detail_zh"] == "未经本人同意，不予澄清" and body["detail_en"] == body["detail"]
    assert body["code"] == "consent_required" and body["field"] == "consent"


def test_a_problem_without_its_own_chinese_falls_back_to_its_title() -> None:
    body = json.loads(bytes(problem_response(404, "not_found", "no such thing").body))
    assert body["detail"] == body["detail_zh"] == "未找到"


# --- the wording helpers -------------------------------------------------------------------------


def test_a_date_before_its_step_says_so_in_both_languages() -> None:
    with pytest.raises(RuleViolation) as err:
        not_before(date(2023, 1, 1), date(2023, 1, 5), field="logged_on", step=RECEIPT)
    assert err.value.detail == "logged_on 2023-01-01 is before the receipt (2023-01-05)"
    assert err.value.detail_zh == "logged_on 2023-01-01 早于收件日期（2023-01-05）"
    assert err.value.code == "date_before_previous_step" and err.value.field == "logged_on"
    not_before(date(2023, 1, 5), date(2023, 1, 5), field="logged_on", step=RECEIPT)
    not_before(date(2023, 1, 5), None, field="logged_on", step=RECEIPT)


def test_a_wrong_state_names_the_action_and_the_state_in_both_languages() -> None:
    error = wrong_state(Term("assess", "评估"), "candidate")
    assert error.detail == "cannot assess: the matter is candidate"
    assert error.detail_zh == "不能评估：该事项当前为“在备选库中”"
    assert error.code == "wrong_state"


def test_every_name_a_message_uses_has_its_chinese() -> None:
    assert set(STATE_NAMES) == set(STATES)
    assert set(REPORT_STATE_NAMES) == set(get_args(ReportState))
    assert set(NOTICE_NAMES) == set(get_args(NoticeKind))
    assert set(FINDING_NAMES) == set(get_args(Finding))
    assert set(HANDLING_METHOD_NAMES) == set(get_args(HandlingMethod))
    assert set(ROLE_NAMES) == set(get_args(Role))


# --- every raise site ------------------------------------------------------------------------------

_ERRORS = {
    "DomainError",
    "RuleViolation",
    "NotFound",
    "Forbidden",
    "Conflict",
    "OutOfRange",
    "Unauthorized",
    "AuthError",
}


def _sources() -> list[Path]:
    return sorted(p for top in ("services", "shared") for p in (ROOT / top).rglob("*.py"))


def _constructions() -> list[tuple[str, ast.Call]]:
    out = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _ERRORS:
                out.append((f"{path.relative_to(ROOT)}:{node.lineno}", node))
    return out


def test_every_raise_site_gives_its_chinese() -> None:
    """Static: each construction of a refusal in services/ and shared/ passes detail_zh (the unit
    tests' fixture checks the sentences the rules' tests meet; this catches a site no test meets)."""
    sites = _constructions()
    assert len(sites) > 60
    missing = [where for where, call in sites if not any(k.arg == "detail_zh" for k in call.keywords)]
    assert not missing, f"refusals without detail_zh: {missing}"


def test_every_code_at_a_raise_site_has_a_title() -> None:
    codes = {
        k.value.value
        for _, call in _constructions()
        for k in call.keywords
        if k.arg == "code" and isinstance(k.value, ast.Constant)
    }
    assert len(codes) > 40
    assert not codes - set(TITLES), f"codes without a title in shared/problems.py: {codes - set(TITLES)}"


def test_the_check_refuses_a_refusal_without_its_own_chinese(
    every_refusal_speaks_chinese: list[DomainError],
) -> None:
    """What the autouse fixture would fail a test for (the errors are dropped here, being bad on
    purpose)."""
    assert bilingual_problems(RuleViolation("no consent", code="consent_required")) == [
        "RuleViolation(code='consent_required', detail='no consent') has no detail_zh"
    ]
    generic = NotFound("no report R-1", detail_zh="未找到")
    assert any("generic" in p for p in bilingual_problems(generic))
    english = Conflict("already done", detail_zh="already done", code="already_recorded")
    assert any("not Chinese" in p for p in bilingual_problems(english))
    lost = RuleViolation(
        "held_on 2023-04-03 is not in 2023Q1", detail_zh="日期不在季度内", code="outside_quarter"
    )
    assert any("['2023-04-03', '2023Q1']" in p for p in bilingual_problems(lost))
    untitled = RuleViolation("x 1", detail_zh="某 1", code="a_new_rule")
    assert any("no title" in p for p in bilingual_problems(untitled))
    good = RuleViolation("held_on 2023-04-03 is not in 2023Q1", detail_zh="held_on 2023-04-03 不在 2023Q1 内")
    assert bilingual_problems(good) == []
    every_refusal_speaks_chinese.clear()
