"""The HTTP edges answer bad input with 4xx problems, never 5xx: the causes schemathesis and hand-made
input found (issue 8), the framework's own errors, the token before the body, a database that is
away (503), and a command whose connection cannot be handed back after its commit."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
import structlog

from shared.logging import outages
from shared.problems import TITLES
from shared.runtime import Runtime, served_app
from tests.integration.service_apps import DEFINITIONS, ServiceApp, bearer, service_apps

COUNTY = "331122"
OFFICE = bearer("letters_office", COUNTY)
DEPARTMENT = bearer("handling_department", COUNTY)
CASE_MANAGEMENT = bearer("case_management", COUNTY)
PERSON = {"kind": "person", "name": "李某", "post": "镇长", "unit": "缙云县某镇人民政府"}
CJK = re.compile(r"[\u4e00-\u9fff]")
ENGLISH = {"Accept-Language": "en-US,en;q=0.9,zh;q=0.8"}


@pytest.fixture(scope="module")
async def apps() -> AsyncIterator[dict[str, ServiceApp]]:
    async with service_apps() as running:
        yield running


def report(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "jurisdiction": COUNTY,
        "channel": "letter",
        "received_on": "2023-01-16",
        "real_name": False,
        "subjects": [PERSON],
        "allegations": [{"summary": "违规收受礼金"}],
        "summary": "反映李某问题",
    }
    body.update(changes)
    return body


async def post_ascii(
    client: httpx.AsyncClient, path: str, body: Any, headers: dict[str, str]
) -> httpx.Response:
    """JSON as escapes (`\\ud800` too, which a UTF-8 encoder refuses)."""
    content = json.dumps(body, ensure_ascii=True).encode()
    return await client.post(path, content=content, headers={**headers, "content-type": "application/json"})


def problem(response: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    """The response is a problem+json of `status` naming `field`, in English and Chinese (and in
    Chinese first when the request did not ask for English)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["code"] and body["detail"], body
    assert body["detail_zh"] and body["detail_en"] and body["title"], body
    if "accept-language" not in response.request.headers:
        assert response.headers["content-language"] == "zh-CN", response.headers
        assert body["detail"] == body["detail_zh"] and CJK.search(body["title"]), body
    if field is not None:
        assert body["field"] == field, body
    return body


# --- the six causes of 500 ------------------------------------------------------------------------


@pytest.mark.parametrize("quarter", ["0000Q1", "9999Q4", "2099Q1"])
async def test_a_quarter_out_of_range_is_refused(apps: dict[str, ServiceApp], quarter: str) -> None:
    review = apps["review"].client
    body = {"jurisdiction": COUNTY, "quarter": quarter, "reported_on": "2023-04-01"}
    p = problem(await review.post("/results-reports", json=body, headers=DEPARTMENT), 422, "body.quarter")
    assert p["errors"][0]["type"] == "quarter_out_of_range"
    rounds = {"jurisdiction": COUNTY, "quarter": quarter, "held_on": "2023-04-01"}
    clarification = apps["clarification"].client
    problem(await clarification.post("/rounds", json=rounds, headers=DEPARTMENT), 422, "body.quarter")
    notice = {"jurisdiction": COUNTY, "period": quarter, "issued_on": "2023-04-01"}
    problem(await apps["archive"].client.post("/notices", json=notice, headers=CASE_MANAGEMENT), 422)
    stats = await apps["archive"].client.get(f"/statistics?quarter={quarter}", headers=CASE_MANAGEMENT)
    problem(stats, 422, "quarter")


async def test_a_sweep_as_of_year_one_is_refused(apps: dict[str, ServiceApp]) -> None:
    body = {"jurisdiction": COUNTY, "as_of": "0001-01-01"}
    p = problem(await apps["review"].client.post("/sweeps", json=body, headers=DEPARTMENT), 422, "body.as_of")
    assert p["errors"][0]["type"] == "date_out_of_range"
    assert "2000-01-01" in p["detail_en"] and "2000-01-01" in p["detail_zh"]


@pytest.mark.parametrize("received_on", ["9999-12-31", "0001-01-01", "1999-12-31", "2099-06-30"])
async def test_received_dates_out_of_range_are_refused_and_nothing_stored(
    apps: dict[str, ServiceApp], received_on: str
) -> None:
    intake = apps["intake"]
    before = await intake.runtime.pool.fetchval("SELECT count(*) FROM events")
    response = await intake.client.post("/reports", json=report(received_on=received_on), headers=OFFICE)
    problem(response, 422, "body.received_on")
    assert await intake.runtime.pool.fetchval("SELECT count(*) FROM events") == before


async def test_dates_in_range_keep_working(apps: dict[str, ServiceApp]) -> None:
    intake = apps["intake"].client
    created = await intake.post("/reports", json=report(received_on="2004-01-05"), headers=OFFICE)
    assert created.status_code == 201, created.text
    report_id = created.json()["report_id"]
    assert report_id.startswith(f"{COUNTY}-2004-")
    logged = await intake.post(f"/reports/{report_id}/log", json={"logged_on": "2004-01-06"}, headers=OFFICE)
    assert logged.status_code == 200, logged.text


async def test_a_date_in_a_year_the_working_day_calendar_lacks_is_refused_naming_the_field(
    apps: dict[str, ServiceApp],
) -> None:
    """2000-2003 lie in the dates' range, but the calendar (chinesecalendar) starts in 2004: the
    deadlines counted from such a date would be a guess, so it is refused, not counted Mon-Fri."""
    intake = apps["intake"]
    before = await intake.runtime.pool.fetchval("SELECT count(*) FROM events")
    response = await intake.client.post("/reports", json=report(received_on="2003-06-02"), headers=OFFICE)
    p = problem(response, 422, "body.received_on")
    assert p["errors"][0]["type"] == "calendar_year_unknown"
    assert "2003" in p["errors"][0]["message_zh"] and "覆盖表" in p["errors"][0]["message_zh"]
    assert await intake.runtime.pool.fetchval("SELECT count(*) FROM events") == before


async def test_an_offset_past_any_integer_is_refused(apps: dict[str, ServiceApp]) -> None:
    url = f"/reports?jurisdiction={COUNTY}&offset={2**63}"
    problem(await apps["intake"].client.get(url, headers=OFFICE), 422, "query.offset")
    fine = await apps["intake"].client.get(f"/reports?jurisdiction={COUNTY}&offset=5", headers=OFFICE)
    assert fine.status_code == 200


@pytest.mark.parametrize("char", ["\x00", "\x07", "\r", "\x1b", "\x7f", "\x85", "\ud800"])
async def test_control_characters_in_free_text_are_refused(apps: dict[str, ServiceApp], char: str) -> None:
    intake = apps["intake"].client
    for changes, field in (
        ({"summary": f"反映{char}问题"}, "body.summary"),
        ({"subjects": [{**PERSON, "name": f"李{char}某"}]}, "body.subjects.0.name"),
        ({"allegations": [{"summary": f"违规{char}"}]}, "body.allegations.0.summary"),
    ):
        p = problem(await post_ascii(intake, "/reports", report(**changes), OFFICE), 422, field)
        # pydantic itself refuses a lone surrogate in JSON; every other control character is ours.
        assert p["errors"][0]["type"] == ("string_unicode" if char == "\ud800" else "text_control_character")
    visit = {
        "visited_on": "2023-05-01",
        "state_of_mind": f"良好{char}",
        "work": "正常",
        "leader_views": "肯定",
        "colleague_views": "支持",
    }
    archive = apps["archive"].client
    response = await post_ascii(archive, "/visits/v1/record", visit, DEPARTMENT)
    problem(response, 422, "body.state_of_mind")


async def test_newline_and_tab_are_text(apps: dict[str, ServiceApp]) -> None:
    body = report(summary="第一行\n第二行\t附注", allegations=[{"summary": "一\n二"}])
    created = await apps["intake"].client.post("/reports", json=body, headers=OFFICE)
    assert created.status_code == 201, created.text


@pytest.mark.parametrize(
    ("service", "path", "headers", "field"),
    [
        ("intake", "/reports/a%00b", OFFICE, "path.report_id"),
        ("review", "/verifications/a%00b", DEPARTMENT, "path.case_id"),
        ("clarification", "/clarifications/a%00b", DEPARTMENT, "path.case_id"),
        ("clarification", "/clarifications/x/documents/a%00b", DEPARTMENT, "path.doc_id"),
        ("archive", "/files/a%00b", DEPARTMENT, "path.subject_id"),
        ("intake", "/audit/cases/a%00b/events", bearer("auditor", COUNTY), "path.case_id"),
    ],
)
async def test_nul_in_a_path_parameter_is_refused(
    apps: dict[str, ServiceApp], service: str, path: str, headers: dict[str, str], field: str
) -> None:
    problem(await apps[service].client.get(path, headers=headers), 422, field)


# --- the framework's own errors ------------------------------------------------------------------


async def test_unparsable_bodies_are_problems(apps: dict[str, ServiceApp]) -> None:
    intake = apps["intake"].client
    json_headers = {**OFFICE, "content-type": "application/json"}
    problem(await intake.post("/reports", content=b'{"jurisdiction": ', headers=json_headers), 400, "body")
    problem(await intake.post("/reports", content=b'{"summary": "\xff\xfe"}', headers=json_headers), 400)
    problem(await intake.post("/reports", content=b"[1, 2]", headers=json_headers), 422)


async def test_unknown_routes_and_methods_are_problems_with_allow(apps: dict[str, ServiceApp]) -> None:
    intake = apps["intake"].client
    missing = problem(await intake.get("/nowhere", headers=OFFICE), 404)
    assert missing["code"] == "route_not_found"
    wrong = problem(await intake.delete("/reports", headers=OFFICE), 405)
    assert wrong["code"] == "method_not_allowed"
    assert set(wrong_allow(await intake.delete("/reports"))) == {"GET", "POST"}
    assert set(wrong_allow(await intake.put("/reports/x/log"))) == {"POST"}


def wrong_allow(response: httpx.Response) -> list[str]:
    assert response.status_code == 405
    return [m.strip() for m in response.headers["allow"].split(",")]


async def test_a_body_too_large_is_a_problem(apps: dict[str, ServiceApp]) -> None:
    huge = b'{"summary": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    response = await apps["intake"].client.post(
        "/reports", content=huge, headers={**OFFICE, "content-type": "application/json"}
    )
    problem(response, 413, "body")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
        yield b'{"summary": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}'

    streamed = await apps["intake"].client.post(
        "/reports", content=chunks(), headers={**OFFICE, "content-type": "application/json"}
    )
    problem(streamed, 413, "body")
    keyed = await apps["intake"].client.post(  # the idempotency middleware reads the body first
        "/reports",
        content=chunks(),
        headers={**OFFICE, "content-type": "application/json", "Idempotency-Key": '"huge-1"'},
    )
    problem(keyed, 413, "body")


async def test_the_token_is_checked_before_the_body(apps: dict[str, ServiceApp]) -> None:
    intake = apps["intake"].client
    anonymous = await intake.post("/reports", json={"nonsense": True})
    problem(anonymous, 401)
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    forged = await intake.post("/reports", json={}, headers={"Authorization": "Bearer not.a.token"})
    problem(forged, 401)
    assert forged.headers["www-authenticate"].startswith("Bearer")
    unparsable = await intake.post("/reports", content=b"{", headers={"content-type": "application/json"})
    problem(unparsable, 401)
    # With a good token the body's rules apply as before.
    problem(await intake.post("/reports", json={"nonsense": True}, headers=OFFICE), 422)
    # Routes without authentication are unchanged.
    assert (await intake.get("/healthz")).status_code == 200


# --- Chinese by default, English when asked ------------------------------------------------------


async def test_problems_speak_chinese_by_default_and_english_when_asked(apps: dict[str, ServiceApp]) -> None:
    intake = apps["intake"].client
    created = await intake.post("/reports", json=report(), headers=OFFICE)
    assert created.status_code == 201, created.text
    report_id = created.json()["report_id"]

    async def both(method: str, path: str, headers: dict[str, str], **kw: Any) -> tuple[dict[str, Any], ...]:
        zh = await intake.request(method, path, headers=headers, **kw)
        en = await intake.request(method, path, headers={**headers, **ENGLISH}, **kw)
        assert zh.status_code == en.status_code and en.headers["content-language"] == "en", en.headers
        zh_body, en_body = problem(zh, zh.status_code), problem(en, en.status_code)
        assert {k: v for k, v in zh_body.items() if k not in ("title", "detail")} == {
            k: v for k, v in en_body.items() if k not in ("title", "detail")
        }  # code, field, status, type, errors, detail_zh and detail_en do not depend on the language
        assert en_body["detail"] == en_body["detail_en"] and not CJK.search(en_body["title"]), en_body
        if en_body["code"] in TITLES:
            assert (zh_body["title"], en_body["title"]) == TITLES[en_body["code"]]
        return zh_body, en_body

    # A domain refusal.
    zh, en = await both("POST", f"/reports/{report_id}/log", OFFICE, json={"logged_on": "2023-01-15"})
    assert zh["code"] == "date_before_previous_step" and zh["field"] == "logged_on"
    assert zh["title"] == "日期早于上一环节" and en["title"] == "Date before the previous step"
    assert zh["detail"] == "logged_on 2023-01-15 早于收件日期（2023-01-16）"
    assert en["detail"] == "logged_on 2023-01-15 is before the receipt (2023-01-16)"
    # A validation error: the first error's Chinese.
    zh, en = await both("POST", "/reports", OFFICE, json=report(received_on="16.01.2023"))
    assert zh["code"] == "invalid_input" and zh["field"] == "body.received_on"
    assert zh["title"] == "请求内容无效" and en["title"] == "Invalid input"
    first = zh["errors"][0]
    assert zh["detail"] == f"body.received_on：{first['message_zh']}" and CJK.search(first["message_zh"])
    assert en["detail"] == f"body.received_on: {first['message']}"
    # No such route.
    zh, en = await both("GET", "/nowhere", OFFICE)
    assert zh["code"] == "route_not_found" and zh["detail"] == "没有这个地址：/nowhere"
    assert en["detail"] == "no route /nowhere"
    # No token, a forged token, and a role that may not do this.
    zh, en = await both("GET", f"/reports?jurisdiction={COUNTY}", {})
    assert zh["code"] == "unauthorized" and zh["detail"] == "需要登录令牌（Bearer）"
    assert en["detail"] == "a bearer token is required" and en["title"] == "Authentication required"
    zh, en = await both("GET", f"/reports?jurisdiction={COUNTY}", {"Authorization": "Bearer not.a.token"})
    assert zh["code"] == "unauthorized" and zh["detail"] == "登录令牌无效：令牌格式无效"
    assert en["detail"].startswith("invalid token: ")
    zh, en = await both("POST", "/reports", CASE_MANAGEMENT, json=report())
    assert zh["code"] == "role_forbidden" and zh["detail"].startswith(
        "案管室（case_management）无权进行此操作"
    )
    assert en["detail"].startswith("role case_management may not do this")
    # q-values count: Chinese ranked above English stays Chinese.
    ranked = await intake.get("/nowhere", headers={**OFFICE, "Accept-Language": "en;q=0.5,zh-CN;q=0.9"})
    assert (
        ranked.headers["content-language"] == "zh-CN" and ranked.json()["detail"] == "没有这个地址：/nowhere"
    )


# --- no 5xx for what is not a bug ---------------------------------------------------------------


async def test_a_database_that_is_away_answers_503_with_retry_after_and_logs_once(
    apps: dict[str, ServiceApp],
) -> None:
    healthy = apps["intake"].runtime
    # A pool on a port where no PostgreSQL listens: every acquire is refused, as in an outage.
    away = await asyncpg.create_pool(
        f"postgresql://nobody@127.0.0.1:{_closed_port()}/none", min_size=0, max_size=2
    )
    runtime = Runtime(
        service="intake",
        pool=away,
        store=healthy.store,
        cipher=healthy.cipher,
        jurisdictions=healthy.jurisdictions,
        projector=healthy.projector,
    )
    app = served_app(DEFINITIONS["intake"], runtime)
    outages.up("database")
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://i") as client:
            with structlog.testing.capture_logs() as logs:
                for _ in range(5):
                    listed = await client.get(f"/reports?jurisdiction={COUNTY}", headers=OFFICE)
                    p = problem(listed, 503)
                    assert p["code"] == "service_unavailable"
                    assert int(listed.headers["retry-after"]) > 0
                created = await client.post("/reports", json=report(), headers=OFFICE)
                problem(created, 503)
        assert [e["event"] for e in logs if e["log_level"] in ("warning", "error")] == [
            "database.unavailable"
        ]
    finally:
        outages.up("database")
        await away.close()


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _ReleaseFails:
    """A pool whose connections cannot be handed back (PostgreSQL shutting down after the commit)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self.failed = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)

    async def release(self, conn: Any, *, timeout: float | None = None) -> None:
        await self._pool.release(conn)
        self.failed += 1
        raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")


async def test_a_command_that_committed_answers_its_success(apps: dict[str, ServiceApp]) -> None:
    intake = apps["intake"]
    pool = intake.runtime.pool
    failing = _ReleaseFails(pool)
    intake.runtime.pool = failing  # type: ignore[assignment]
    try:
        created = await intake.client.post("/reports", json=report(), headers=OFFICE)
    finally:
        intake.runtime.pool = pool
    assert failing.failed >= 1
    assert created.status_code == 201, created.text
    stored = await pool.fetchval(
        "SELECT count(*) FROM events WHERE stream_id = $1", f"report-{created.json()['report_id']}"
    )
    assert stored == 1
