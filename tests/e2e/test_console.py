"""The officers' console in a real browser: Debian's Chromium driven headless by Playwright, on the
console process and the four services this package started, with the directory's users logging in.

One case goes from registration to filing, each step by the officer whose role it is, in their own
browser session; then the things that must not work are tried: another county's case by its URL, a
form without its CSRF token, a form with a missing or impossible date.
"""

from __future__ import annotations

import asyncio
import random
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, BrowserContext, Page, Request, async_playwright

from shared import settings
from tests.e2e.conftest import day, quarter
from zhengming.users_cli import seed_officers

CHROMIUM = Path("/usr/bin/chromium")
HAVE_CHROMIUM = CHROMIUM.exists()
SCREENSHOTS = settings.PROJECT_ROOT / ".local" / "screenshots"
PASSWORD = secrets.token_urlsafe(12)
J, OTHER = "331121", "331122"
ROLES = (
    "letters_office",
    "handling_department",
    "case_trial",
    "case_management",
    "head",
    "auditor",
    "operator",
)
REPORTER = f"检举人{random.randint(1000, 9999)}"
PERSON = f"柳{random.choice('明华强军伟')}{random.randint(10, 99)}"

pytestmark = pytest.mark.integration


def base() -> str:
    return settings.services().url("console")


@dataclass
class Seen:
    """Every URL any page of the run asked for (the browser's network log)."""

    urls: list[str] = field(default_factory=list)

    def record(self, request: Request) -> None:
        self.urls.append(request.url)


SEEN = Seen()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    if not HAVE_CHROMIUM:
        pytest.fail("Chromium is missing: install Debian's package `chromium` (make system does)")
    await seed_officers(PASSWORD, {f"{r}-{code}" for r in ROLES for code in (J, OTHER, "331100")})
    async with async_playwright() as p:
        # Chinese as the browser's own language: date pickers read 年/月/日 as on the officers' desks.
        launched = await p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--lang=zh-CN"]
        )
        yield launched
        await launched.close()


class Officer:
    """One user in a browser session of their own (a context: cookies of their own)."""

    def __init__(self, context: BrowserContext, page: Page, user_id: str) -> None:
        self.context = context
        self.page = page
        self.user_id = user_id

    @classmethod
    async def log_in(cls, browser: Browser, user_id: str) -> Officer:
        context = await browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
        context.on("request", SEEN.record)
        page = await context.new_page()
        await page.goto(base() + "/")
        assert "/login" in page.url
        await page.fill("#user_id", user_id)
        await page.fill("#password", PASSWORD)
        await page.click("button.primary")
        await page.wait_for_load_state()
        name = await page.text_content("#user-name")
        assert name, await page.content()
        return cls(context, page, user_id)

    async def open(self, path: str) -> int:
        response = await self.page.goto(base() + path)
        assert response is not None
        return response.status

    async def wait_for(self, case_id: str, key: str, timeout_s: float = 60) -> None:
        """Reload the case page until the action is offered (the services react through Kafka)."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            await self.open(f"/cases/{case_id}")
            if await self.page.locator(f"#action-{key}").count():
                return
            if asyncio.get_running_loop().time() > deadline:
                offered = await self.page.locator("details.action").evaluate_all("els => els.map(e => e.id)")
                raise AssertionError(f"{self.user_id}: no action {key} on {case_id} (offered: {offered})")
            await asyncio.sleep(0.5)

    async def fill(self, key: str, values: dict[str, Any]) -> None:
        form = self.page.locator(f"#action-{key}")
        if await form.get_attribute("open") is None:
            await form.locator("summary").click()
        for name, value in values.items():
            fields = form.locator(f'[name="{name}"]')
            if isinstance(value, bool):
                await fields.set_checked(value)
            elif isinstance(value, list):
                for box in await fields.all():
                    await box.set_checked(await box.get_attribute("value") in value)
            elif await fields.evaluate("e => e.tagName") == "SELECT":
                await fields.select_option(value)
            else:
                await fields.fill(value.isoformat() if isinstance(value, date) else value)

    async def submit(self, key: str) -> None:
        async with self.page.expect_navigation():
            await self.page.locator(f"#action-{key} button[type=submit]").click()

    async def act(self, case_id: str, key: str, **values: Any) -> None:
        """Do one step on the case page and see it done."""
        await self.wait_for(case_id, key)
        await self.fill(key, values)
        await self.submit(key)
        done = self.page.locator(".message.ok")
        if not await done.count():
            raise AssertionError(f"{self.user_id}: {key} on {case_id} refused: {await self.errors()}")

    async def errors(self) -> list[str]:
        """The messages the page shows for a refused form."""
        return await self.page.locator(".message.error, .field .error").all_text_contents()

    async def shot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture(scope="module")
async def officers(browser: Browser) -> AsyncIterator[dict[str, Officer]]:
    logged = {r: await Officer.log_in(browser, f"{r}-{J}") for r in ROLES}
    yield logged
    for o in logged.values():
        await o.context.close()


@pytest.fixture(scope="module")
async def case_id(officers: dict[str, Officer]) -> str:
    """A real-name report registered by the letters office in the browser."""
    lo = officers["letters_office"]
    assert await lo.open("/reports/new") == 200
    await lo.fill(
        "register",
        {
            "jurisdiction": J,
            "channel": "letter",
            "received_on": day(3, 1),
            "real_name": True,
            "reporter.name": REPORTER,
            "reporter.contact": "13900001111",
            "subject.name": PERSON,
            "subject.post": "副局长",
            "subject.unit": "青田县农业农村局",
            "allegation.1": "在农村道路项目验收中收受施工方好处",
        },
    )
    await lo.shot("register")
    await lo.submit("register")
    text = await lo.page.text_content("#case-id")
    assert text and re.fullmatch(r"331121-\d{4}-\d{6}", text), await lo.page.content()
    return text


async def test_a_whole_case_registration_to_filing_each_step_by_its_officer(
    officers: dict[str, Officer], case_id: str
) -> None:
    lo, hd, ct, cm, head = (officers[r] for r in ROLES[:5])
    # 信访室: the reporter's name is on the letters office's page, on nobody else's.
    await lo.open(f"/cases/{case_id}")
    assert REPORTER in (await lo.page.text_content("#reporter") or "")
    await lo.act(case_id, "log", logged_on=day(3, 1))
    await lo.act(case_id, "accept", accepted_on=day(3, 2))
    await lo.act(case_id, "hand-over", department="第一监督检查室", handed_on=day(3, 3))
    # 承办部门 proposes, the head approves in a session of their own.
    await hd.act(
        case_id, "decision", method="preliminary_verification", decided_on=day(3, 6), collective=True
    )
    assert REPORTER not in await hd.page.content()
    await head.act(case_id, "decision-approve", approved_on=day(3, 6))
    await hd.act(
        case_id, "finding-A1", finding="untrue", basis="经初步核实，反映问题失实", found_on=day(3, 20)
    )
    await hd.act(case_id, "conclude", concluded_on=day(3, 21))
    # 澄清: start with consent, word the content, assess against the positive list.
    await hd.act(case_id, "start", initiated_by="department", consent=True, started_on=day(3, 24))
    await hd.act(case_id, "content", drafted_on=day(3, 24))
    await hd.act(
        case_id,
        "assess",
        assessed_on=day(3, 25),
        bad_effects=["repeated_reports"],
        proposed_forms=["written_notice", "face_to_face"],
    )
    await ct.act(case_id, "content-approve", approved_on=day(3, 25))
    # 复核: each office's member signs in their own session, all three checks passed.
    checks = {"verification_complete": True, "conclusion_clear": True, "disposal_adequate": True}
    for member in (lo, ct, cm):
        await member.act(case_id, "re-review", reviewed_on=day(3, 27), **checks)
    await head.page.goto(base() + "/")
    assert case_id in (await head.page.text_content("#tasks") or "")
    await head.shot("tasks-head")
    await head.act(case_id, "approve", approved_on=day(3, 28), forms=["written_notice", "face_to_face"])
    await hd.act(case_id, "perform", performed_on=day(3, 29), forms=["written_notice", "face_to_face"])
    await hd.act(
        case_id,
        "feedback",
        given_on=day(3, 30),
        party_committee="青田县农业农村局党组",
        unit_head="单位主要负责人",
    )
    await hd.act(case_id, "acknowledge", acknowledged_on=day(3, 30))
    await cm.act(case_id, "file", filed_on=day(3, 31))
    assert (await cm.page.text_content("#state-clarification") or "").startswith("已备案")
    await cm.shot("case-filed")

    # The whole timeline, across the four services, names the officers who acted.
    timeline = await cm.page.text_content("#timeline") or ""
    for step in ("接收检举控告", "批准处置方式", "核查办结", "复核签署", "主要负责人批准", "备案"):
        assert step in timeline, step
    assert "主要负责人" in timeline and "审理室" in timeline

    # Documents: preview, PDF and DOCX as the services issued them.
    links = await cm.page.locator(".documents a").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    pages = [link for link in links if not link.endswith((".pdf", ".docx"))]
    assert len(pages) == 3, links  # 审批表, 澄清通知书, 关于失实检举控告澄清的函
    assert await cm.open(pages[1]) == 200
    assert PERSON in (await cm.page.text_content("body") or "")
    assert REPORTER not in await cm.page.content()
    await cm.shot("document")
    pdf = await cm.page.request.get(base() + pages[1] + ".pdf")
    assert pdf.status == 200 and (await pdf.body()).startswith(b"%PDF")
    docx = await cm.page.request.get(base() + pages[1] + ".docx")
    assert docx.status == 200 and (await docx.body()).startswith(b"PK")


async def test_a_user_of_another_county_gets_a_404_without_data(browser: Browser, case_id: str) -> None:
    other = await Officer.log_in(browser, f"handling_department-{OTHER}")
    try:
        assert await other.open(f"/cases/{case_id}") == 404
        body = await other.page.content()
        assert PERSON not in body and REPORTER not in body and "未找到" in body
        assert await other.open(f"/cases/{case_id}/documents/{case_id}-notice.pdf") == 404
        await other.open(f"/search?q={PERSON}")
        assert case_id not in await other.page.content()
    finally:
        await other.context.close()


async def test_an_officer_logs_in_and_out_with_the_keyboard_only(browser: Browser) -> None:
    context = await browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    context.on("request", SEEN.record)
    page = await context.new_page()
    try:
        await page.goto(base() + "/login")
        # The user id field takes the focus by itself (autofocus) once the page is there.
        await page.wait_for_function("document.activeElement && document.activeElement.id === 'user_id'")
        await page.keyboard.type(f"case_trial-{J}")
        await page.keyboard.press("Tab")
        await page.keyboard.type(PASSWORD)
        async with page.expect_navigation():
            await page.keyboard.press("Enter")
        assert await page.text_content("#user-role") == "审理室"
        assert "青田县" in (await page.text_content("#user-places") or "")
        # The skip link is the first stop of Tab, and reaches the page's content.
        await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.textContent") == "跳到正文"
        await page.locator("form[action='/logout'] button").focus()
        async with page.expect_navigation():
            await page.keyboard.press("Enter")
        assert "/login" in page.url
        assert await page.goto(base() + "/") and "/login" in page.url  # the session is gone
    finally:
        await context.close()


async def test_a_form_without_its_csrf_token_is_refused(officers: dict[str, Officer], case_id: str) -> None:
    lo = officers["letters_office"]
    refused = await lo.page.request.post(
        base() + f"/cases/{case_id}/actions/log", form={"logged_on": day(3, 1).isoformat()}
    )
    assert refused.status == 403
    forged = await lo.page.request.post(
        base() + f"/cases/{case_id}/actions/log", form={"logged_on": day(3, 1).isoformat(), "csrf": "x" * 43}
    )
    assert forged.status == 403
    # A login form posted from elsewhere (no login token cookie) is refused too.
    fresh = await lo.context.browser.new_context() if lo.context.browser else None
    assert fresh is not None
    login = await fresh.request.post(base() + "/login", form={"user_id": lo.user_id, "password": PASSWORD})
    assert login.status == 403
    await fresh.close()


async def test_validation_messages_stand_in_chinese_beside_their_field(officers: dict[str, Officer]) -> None:
    lo = officers["letters_office"]
    assert await lo.open("/reports/new") == 200
    await lo.fill(
        "register", {"jurisdiction": J, "channel": "letter", "received_on": day(4, 1), "subject.name": ""}
    )
    await lo.submit("register")
    name_error = lo.page.locator('[data-field="subject.name"] .error')
    assert await name_error.text_content() == "请填写被反映人姓名（或单位名称）"
    assert await lo.page.locator('[data-field="allegation.1"] .error').text_content() == "请填写反映问题一"
    # The service's own refusal lands beside its field too: logged before it was received.
    await lo.fill("register", {"subject.name": PERSON + "乙", "allegation.1": "违规发放津贴补贴"})
    await lo.submit("register")
    # The service's own rule, beside its field: a person reported needs a post.
    assert (
        await lo.page.locator('[data-field="subject.post"] .error').text_content()
        == "被反映人须填写职务（post）"
    )
    await lo.fill("register", {"subject.post": "科长", "subject.unit": "青田县财政局"})
    await lo.submit("register")
    assert await lo.page.locator("#case-id").count(), await lo.errors()
    registered = await lo.page.text_content("#case-id")
    assert registered
    await lo.wait_for(registered, "log")
    await lo.fill("log", {"logged_on": ""})
    await lo.submit("log")
    assert (
        await lo.page.locator('#action-log [data-field="logged_on"] .error').text_content()
        == "请选择登记日期"
    )
    await lo.fill("log", {"logged_on": day(3, 1)})
    await lo.submit("log")
    beside = await lo.page.locator('#action-log [data-field="logged_on"] .error').text_content()
    assert beside and re.search(r"[\u4e00-\u9fff]", beside), await lo.page.content()
    await lo.shot("validation")


async def test_dashboards_for_the_city_and_a_county(browser: Browser, case_id: str) -> None:
    city = await Officer.log_in(browser, "auditor-331100")
    county = await Officer.log_in(browser, f"auditor-{J}")
    try:
        assert await city.open(f"/statistics?quarter={quarter(1)}") == 200
        await city.page.wait_for_selector("#chart[data-rendered=true] svg")
        heads = await city.page.locator("#statistics thead th").all_text_contents()
        assert len(heads) == 1 + 10 + 1  # the figure's label, ten jurisdictions, the city-wide total
        await city.shot("statistics")
        csv = await city.page.request.get(base() + f"/statistics.csv?quarter={quarter(1)}")
        assert csv.status == 200 and "青田县" in (await csv.body()).decode("utf-8-sig")
        xlsx = await city.page.request.get(base() + f"/statistics.xlsx?quarter={quarter(1)}")
        assert xlsx.status == 200 and (await xlsx.body()).startswith(b"PK")
        assert await county.open(f"/statistics?quarter={quarter(1)}") == 200
        county_heads = await county.page.locator("#statistics thead th").all_text_contents()
        assert county_heads[1:] == ["青田县"]
        assert await county.open("/overdue") == 200
        assert await city.open("/audit") == 200
        assert await city.page.locator("#audit tbody tr").count() == 4
        await city.shot("audit")
    finally:
        await city.context.close()
        await county.context.close()


async def test_the_operator_sees_each_consumers_lag_and_dead_letters(officers: dict[str, Officer]) -> None:
    operator = officers["operator"]
    assert await operator.open("/operations") == 200
    rows = await operator.page.locator("#consumers tbody tr").all_text_contents()
    assert any("archive.clarification" in r for r in rows), rows
    assert len(rows) >= 10 and not any("无法" in r for r in rows), rows  # the services' ten consumers
    lags = await operator.page.locator("#consumers tbody tr td:nth-child(5)").all_text_contents()
    assert all(lag.isdigit() for lag in lags), lags
    await operator.shot("operations")
    # Case pages are not the operator's: no case data, no statistics of persons.
    assert await officers["operator"].open("/reports/new") == 404


def test_zz_no_request_of_the_browser_left_the_console() -> None:
    """The browser's network log: every request went to the console on 127.0.0.1 (scripts, styles
    and fonts included), none to the internet."""
    assert SEEN.urls, "the browser tests ran no page"
    # Chromium's own pages (its PDF viewer: chrome://, chrome-extension://) and inline data
    # never leave the machine; every request over the network went to the console.
    internal = {"chrome", "chrome-extension", "data", "blob", "about"}
    outside = {u for u in SEEN.urls if not u.startswith(base() + "/") and urlsplit(u).scheme not in internal}
    assert not outside, sorted(outside)[:10]
    assert base().startswith("http://127.0.0.1:")
    assert any(u.endswith("/static/vendor/echarts.min.js") for u in SEEN.urls)
