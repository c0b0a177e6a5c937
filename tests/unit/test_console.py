"""The console's own logic without a browser: forms parsed into command bodies with Chinese
messages, which actions a case offers to which role, sessions and their expiry, CSRF, cookies."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
import pytest

from console.actions import Case, forms_for, identifier, parse, register_form, seg, signed_offices
from console.app import _local, build_console
from console.session import Sessions, same
from console.settings import ConsoleSettings
from console.tasks import Task
from shared.settings import ServiceSettings

TODAY = date(2023, 3, 1)


def form_of(case: Case, role: str, key: str, user: str = "u1") -> Any:
    forms = {f.key: f for f in forms_for(case, role, user, city_head=False, today=TODAY)}
    return forms.get(key)


def matter(state: str, steps: list[dict[str, Any]] | None = None, **more: Any) -> dict[str, Any]:
    return {
        "case_id": "331122-2023-000001",
        "jurisdiction": "331122",
        "state": state,
        "eligible": True,
        "person": {"kind": "person", "name": "王五", "unit": "缙云县财政局", "subject_id": "p-1"},
        "outcome": {
            "findings": {"A1": "untrue", "A2": "not_proven"},
            "untrue_points": [{"allegation_id": "A1", "summary": "违规收受礼金。"}],
        },
        "steps": steps or [],
        "content": {"state": "none"},
        **more,
    }


def test_a_missing_date_and_an_impossible_one_get_chinese_messages_beside_their_fields() -> None:
    case = Case("331122-2023-000001", report={"jurisdiction": "331122", "state": "received"})
    log = form_of(case, "letters_office", "log")
    assert parse(log, {"logged_on": [""]}) == ({"logged_on": None}, {"logged_on": "请选择登记日期"})
    assert parse(log, {"logged_on": ["2023-02-30"]})[1] == {"logged_on": "没有这一天，请检查日期"}
    assert parse(log, {"logged_on": ["1.3.2023"]})[1] == {"logged_on": "日期格式应为 年-月-日，如 2023-03-15"}
    assert parse(log, {"logged_on": ["2023-03-01"]}) == ({"logged_on": "2023-03-01"}, {})


def test_a_choice_outside_the_rules_options_is_refused() -> None:
    case = Case("c", clarification=matter("started"))
    assess = form_of(case, "handling_department", "assess")
    data = {"assessed_on": ["2023-03-01"], "bad_effects": ["made_up"], "proposed_forms": ["written_notice"]}
    assert parse(assess, data)[1] == {"bad_effects": "请从列出的选项中选择"}
    data["bad_effects"] = []  # no bad effect: the service records the refusal, with its reason
    assert parse(assess, data) == (
        {
            "assessed_on": "2023-03-01",
            "bad_effects": [],
            "effect_only_from_interviews": False,
            "proposed_forms": ["written_notice"],
        },
        {},
    )
    data["bad_effects"] = ["repeated_reports", "wide_spread"]
    body, errors = parse(assess, data)
    assert not errors
    assert body["bad_effects"] == ["repeated_reports", "wide_spread"]
    assert body["effect_only_from_interviews"] is False


def test_the_content_form_words_only_the_untrue_points_and_posts_them_as_a_list() -> None:
    content = form_of(Case("c", clarification=matter("started")), "handling_department", "content")
    assert [i.name for i in content.inputs] == ["drafted_on", "points.A1"]  # A2 was not proven
    assert content.values["points.A1"] == "经核查，反映王五同志违规收受礼金的问题失实。"
    body, errors = parse(content, {"drafted_on": ["2023-03-01"], "points.A1": ["经核查，……失实。"]})
    assert not errors
    assert body == {
        "drafted_on": "2023-03-01",
        "points": [{"allegation_id": "A1", "wording": "经核查，……失实。"}],
    }


def test_the_registration_form_nests_the_subject_and_keeps_the_reporter_only_for_real_names() -> None:
    form = register_form([("331122", "缙云县")])
    data = {
        "jurisdiction": ["331122"],
        "channel": ["letter"],
        "received_on": ["2023-03-01"],
        "reporter.name": ["张三"],
        "reporter.contact": ["139"],
        "subject.kind": ["person"],
        "subject.name": ["李四"],
        "subject.post": ["科长"],
        "subject.cadre_level": ["county"],
        "allegation.1": ["问题一"],
        "allegation.3": ["问题三"],
    }
    body, errors = parse(form, data)
    assert not errors
    assert body["reporter"] is None  # not a real-name report: the name typed is not sent
    assert body["subjects"] == [{"kind": "person", "name": "李四", "post": "科长", "cadre_level": "county"}]
    assert body["allegations"] == [{"summary": "问题一"}, {"summary": "问题三"}]
    body, _ = parse(form, {**data, "real_name": ["on"]})
    assert body["reporter"] == {"name": "张三", "contact": "139"}
    assert form.input_of("subjects.0.post") == "subject.post"
    assert form.input_of("allegations.2.summary") == "allegation.1"
    assert form.input_of("nothing") is None


def test_each_role_is_offered_its_own_steps_only() -> None:
    case = Case("c", clarification=matter("candidate"))
    assert form_of(case, "handling_department", "start") is not None
    assert form_of(case, "head", "start") is None and form_of(case, "letters_office", "start") is None
    approved = Case("c", clarification=matter("re_reviewed"))
    assert form_of(approved, "head", "approve") is not None
    assert form_of(approved, "handling_department", "approve") is None
    drafted = Case("c", clarification=matter("started", content={"state": "drafted", "points": {}}))
    assert form_of(drafted, "case_trial", "content-approve") is not None
    assert form_of(drafted, "handling_department", "content-approve") is None


def test_an_office_that_signed_the_re_review_is_not_asked_again() -> None:
    steps: list[dict[str, Any]] = [
        {"step": "assessed", "by": "hd"},
        {"step": "re_review_signed", "office": "letters_office", "by": "lo-1", "passed": True},
    ]
    case = Case("c", clarification=matter("assessed", steps))
    assert signed_offices(case.clarification or {}) == {"letters_office"}
    assert form_of(case, "letters_office", "re-review", "lo-1") is None
    assert form_of(case, "case_trial", "re-review", "ct-1") is not None
    # The same person may not sign for a second office either.
    assert form_of(case, "case_management", "re-review", "lo-1") is None
    # A new re-review (after the matter came back, or a revised conclusion) asks every office again.
    for reset in ("re_reviewed", "outcome_revised"):
        again = Case("c", clarification=matter("sent_back", [*steps, {"step": reset, "by": "x"}]))
        assert form_of(again, "letters_office", "re-review", "lo-1") is not None


def test_a_city_managed_cadres_clarification_is_offered_to_the_city_head_only() -> None:
    m = matter("re_reviewed")
    m["person"]["cadre_level"] = "city"
    case = Case("c", clarification=m)
    county = {f.key for f in forms_for(case, "head", "h", city_head=False, today=TODAY)}
    city = {f.key for f in forms_for(case, "head", "h", city_head=True, today=TODAY)}
    assert "approve" not in county and "approve" in city


def test_ids_in_a_services_path_are_one_segment_each() -> None:
    case = Case("331122-2023-000001", report={"jurisdiction": "331122", "state": "received"})
    assert form_of(case, "letters_office", "log").path == "/reports/331122-2023-000001/log"
    assert seg("a/b?c#d") == "a%2Fb%3Fc%23d"
    for dots in (".", ".."):
        with pytest.raises(ValueError):
            seg(dots)
    assert identifier("331122-2023-000001-2") and not identifier("..") and not identifier("a/b")


def test_overdue_tasks_come_first() -> None:
    tasks = [
        Task("b", "2", "", "331122", date(2023, 3, 10)),
        Task("a", "1", "", "331122", None),
        Task("c", "3", "", "331122", date(2023, 2, 1)),
    ]
    ordered = sorted(tasks, key=lambda t: (not t.overdue(TODAY), t.due or date.max, t.case_id))
    assert [t.what for t in ordered] == ["c", "b", "a"]
    assert ordered[0].days_left(TODAY) == -28


def test_a_session_ends_when_idle_and_when_its_token_expires() -> None:
    issued = {
        "access_token": "t",
        "user_id": "u",
        "role": "head",
        "jurisdictions": ["331122"],
        "expires_in": 3600,
    }
    sessions = Sessions(idle_s=60)
    sid, session = sessions.open(issued)
    assert sessions.get(sid) is session
    session.last_seen -= 61
    assert sessions.get(sid) is None and len(sessions) == 0
    sid, session = sessions.open({**issued, "expires_in": 0})
    assert sessions.get(sid) is None
    sid, _ = sessions.open(issued)
    sessions.close(sid)
    assert sessions.get(sid) is None
    assert sessions.get(None) is None and sessions.get("forged") is None


def test_csrf_tokens_match_only_themselves() -> None:
    assert same("abc", "abc")
    assert not same("abc", "abd") and not same("", "") and not same(None, "x")


def test_only_a_path_of_the_console_is_a_place_to_go_after_login() -> None:
    assert _local("/cases/1") == "/cases/1"
    for outside in ("//evil.example", "https://evil.example", "/\\evil", "cases"):
        assert _local(outside) == "/"


@pytest.fixture
async def console() -> Any:
    app = build_console(
        ConsoleSettings(), ServiceSettings(intake_port=1, review_port=1, clarification_port=1, archive_port=1)
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console") as client:
        yield client


async def test_pages_need_a_session_and_cookies_are_httponly_and_strict(console: httpx.AsyncClient) -> None:
    home = await console.get("/")
    assert home.status_code == 303 and home.headers["location"].startswith("/login")
    login = await console.get("/login")
    assert login.status_code == 200
    cookie = login.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "default-src 'self'" in login.headers["content-security-policy"]
    # A login form without the token of the page that showed it is refused.
    console.cookies.clear()
    refused = await console.post("/login", data={"user_id": "u", "password": "p", "csrf": "x"})
    assert refused.status_code == 403 and "防伪令牌" in refused.text


async def test_a_service_that_does_not_answer_is_said_in_chinese_not_a_500(
    console: httpx.AsyncClient,
) -> None:
    page = await console.get("/login")
    token = page.text.split('name="csrf" value="')[1].split('"')[0]
    answer = await console.post("/login", data={"user_id": "u", "password": "p", "csrf": token})
    assert answer.status_code == 400
    assert "服务暂时无法访问" in answer.text


def test_settings_name_where_each_service_answers() -> None:
    urls = ConsoleSettings(review_url="http://review:8102/").service_urls(ServiceSettings(intake_port=8101))
    assert urls["review"] == "http://review:8102" and urls["intake"] == "http://127.0.0.1:8101"


async def test_an_id_that_is_no_path_segment_is_a_404_not_a_500(console: httpx.AsyncClient) -> None:
    app = console._transport.app  # type: ignore[attr-defined]
    session_id, _ = app.state.sessions.open(
        {
            "access_token": "t",
            "user_id": "u",
            "role": "auditor",
            "jurisdictions": ["331122"],
            "expires_in": 600,
        }
    )
    console.cookies.set("zm_session", session_id)
    for path in ("/cases/%2E%2E", "/files/%2E%2E", "/cases/%2E%2E/documents/x.pdf", "/cases/%2E/documents/x"):
        answer = await console.get(path)
        assert answer.status_code == 404, path
        assert "没有这个页面" in answer.text


async def test_the_timeline_masks_the_reporters_pseudonym_for_all_but_the_letters_office() -> None:
    from shared.audit_api import unseal

    payload = {
        "reporter_subject_id": "r-1f3a",
        "reporter": {"alg": "x", "subject_id": "r-1f3a", "nonce": "n", "ciphertext": "c"},
        "subjects": [{"name": "李四"}],
    }
    masked = await unseal(payload, None, None, False)  # type: ignore[arg-type]
    assert masked == {
        "reporter_subject_id": {"masked": True},
        "reporter": {"masked": True},
        "subjects": [{"name": "李四"}],
    }
