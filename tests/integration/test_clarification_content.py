"""澄清内容 on the real PostgreSQL, intake and clarification side by side in process: the department
drafts, intake refuses a wording with a reporter's identity (of the report or of a repeat merged into
it) without naming it, 审理室 returns and approves, nothing is written by a refused draft, intake not
answering is a 503 to try again, and only the approved wording is clarified and printed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.clarification.api import build_api as clarification_api
from services.clarification.main import definition as clarification
from services.clarification.reporters import IntakeIdentityCheck
from services.clarification.settings import IntakeSettings
from services.intake.api import build_api as intake_api
from services.intake.main import definition as intake
from shared.events.common import Allegation, Subject
from shared.runtime import Runtime
from tests.integration.conftest import fresh_runtime
from tests.integration.test_clarification_service import (
    AUDITOR,
    OTHER_J,
    Feed,
    J,
    auth,
    conclusion,
    counts,
    ok,
    problem,
    sign_all,
)

REPORTER = {"name": "郑实名", "contact": "13812345678", "id_number": "332526198805050022"}
REPEATER = {"name": "钱重复", "contact": "qian@example.cn"}
PERSON = Subject(kind="person", name="李某", post="镇长", unit="缙云县某镇人民政府")
DEPT, TRIAL = auth("handling_department", J), auth("case_trial", J)


@pytest.fixture
async def intake_runtime() -> AsyncIterator[Runtime]:
    async with fresh_runtime(intake) as rt:
        yield rt


@pytest.fixture
async def runtime() -> AsyncIterator[Runtime]:
    async with fresh_runtime(clarification) as rt:
        yield rt


@pytest.fixture
async def intake_client(intake_runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=intake_api(intake_runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as c:
        yield c


@pytest.fixture
async def client(runtime: Runtime, intake_client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    check = IntakeIdentityCheck(IntakeSettings(url="http://intake", timeout_s=2), intake_client)
    transport = httpx.ASGITransport(app=clarification_api(runtime, check))
    async with httpx.AsyncClient(transport=transport, base_url="http://clarification") as c:
        yield c


async def report(intake_client: httpx.AsyncClient, reporter: dict[str, Any], on: str) -> str:
    office = auth("letters_office", J)
    body = {
        "jurisdiction": J,
        "channel": "letter",
        "received_on": on,
        "real_name": True,
        "reporter": reporter,
        "subjects": [PERSON.model_dump(exclude_none=True)],
        "allegations": [{"summary": "违规收受礼金"}],
        "summary": "反映李某问题",
    }
    created = await intake_client.post("/reports", json=body, headers=office)
    assert created.status_code == 201, created.text
    report_id: str = created.json()["report_id"]
    logged = await intake_client.post(f"/reports/{report_id}/log", json={"logged_on": on}, headers=office)
    assert logged.status_code == 200, logged.text
    return report_id


async def started_matter(runtime: Runtime, client: httpx.AsyncClient, case_id: str) -> None:
    """The matter concluded untrue (A1) and started in clarification."""
    point = Allegation(allegation_id="A1", summary="违规收受礼金")
    await Feed(runtime).deliver(conclusion(case_id, points=(point,), subjects=(PERSON,)))
    start = {
        "initiated_by": "department",
        "person_subject_id": PERSON.subject_id,
        "consent": True,
        "started_on": "2023-03-01",
    }
    await ok(await client.post(f"/clarifications/{case_id}/start", headers=DEPT, json=start))


def draft(wording: str, on: str = "2023-03-02") -> dict[str, Any]:
    return {"drafted_on": on, "points": [{"allegation_id": "A1", "wording": wording}]}


CLEAN = "经核查，反映李某同志违规收受礼金的问题失实。"


async def test_the_content_is_drafted_checked_against_the_reporter_and_approved(
    runtime: Runtime, client: httpx.AsyncClient, intake_client: httpx.AsyncClient
) -> None:
    case_id = await report(intake_client, REPORTER, "2023-01-16")
    repeat = await report(intake_client, REPEATER, "2023-01-17")
    office = auth("letters_office", J)
    merge = {"merged_on": "2023-01-17", "repeats_matter_id": case_id}
    assert (
        await intake_client.post(f"/reports/{repeat}/merge", json=merge, headers=office)
    ).status_code == 200
    await started_matter(runtime, client, case_id)
    base = f"/clarifications/{case_id}"

    nothing_written = await counts(runtime)
    for revealing in (
        "经核查，郑实名反映李某的问题失实",
        "经核查，郑 实 名反映的问题失实",
        "联系电话１３８ １２３４ ５６７８，反映问题失实",
        "身份证号332526 19880505 0022的检举人反映问题失实",
        "经核查，QIAN@example.cn 反映的问题失实",  # the reporter of a repeat merged into the matter
    ):
        response = await client.post(f"{base}/content", headers=DEPT, json=draft(revealing))
        body = problem(response, 422, "content_reveals_reporter", "points.0.wording")
        for secret in ("郑实名", "13812345678", "332526198805050022", "qian@example.cn"):
            assert secret not in response.text, (revealing, secret)
        assert "检举控告人" in body["detail_zh"]
    problem(await client.post(f"{base}/content", headers=TRIAL, json=draft(CLEAN)), 403, "role_forbidden")
    problem(
        await client.post(f"{base}/content", headers=auth("handling_department", OTHER_J), json=draft(CLEAN)),
        404,
        "not_found",
    )
    assert await counts(runtime) == nothing_written

    drafted = await ok(await client.post(f"{base}/content", headers=DEPT, json=draft(CLEAN)))
    assert (drafted["event"], drafted["state"], drafted["points"]) == (
        "ContentDrafted",
        "started",
        {"A1": CLEAN},
    )
    view = await ok(await client.get(base, headers=AUDITOR))
    assert view["state"] == "started" and view["content"]["state"] == "drafted"
    assert view["content"]["points"] == {"A1": CLEAN}

    approve = {"approved_on": "2023-03-03"}
    problem(await client.post(f"{base}/content/approve", headers=DEPT, json=approve), 403, "role_forbidden")
    problem(
        await client.post(f"{base}/content/approve", headers=auth("case_trial", OTHER_J), json=approve),
        404,
        "not_found",
    )
    returned = await ok(
        await client.post(
            f"{base}/content/return",
            headers=TRIAL,
            json={"returned_on": "2023-03-03", "reason": "措辞须更准确"},
        )
    )
    assert (returned["event"], returned["state"]) == ("ContentReturned", "started")
    problem(
        await client.post(f"{base}/content/approve", headers=TRIAL, json=approve), 409, "content_not_drafted"
    )
    await ok(await client.post(f"{base}/content", headers=DEPT, json=draft(CLEAN, on="2023-03-03")))
    approved = await ok(await client.post(f"{base}/content/approve", headers=TRIAL, json=approve))
    assert (approved["event"], approved["approver"]) == ("ContentApproved", "case_trial-331122")
    view = await ok(await client.get(base, headers=AUDITOR))
    assert view["content"]["state"] == "approved" and view["content"]["approved_on"] == "2023-03-03"
    assert [s["step"] for s in view["steps"]] == ["started"]  # the chain did not move

    # Through the chain; the 审批表 and the notice print the approved wording.
    dept = DEPT
    assessed = {
        "assessed_on": "2023-03-04",
        "bad_effects": ["repeated_reports"],
        "effect_only_from_interviews": False,
    }
    await ok(await client.post(f"{base}/assess", headers=dept, json=assessed))
    passed = await sign_all(client, base, on="2023-03-06")
    await ok(
        await client.post(f"{base}/approve", headers=auth("head", J), json={"approved_on": "2023-03-07"})
    )
    form = await client.get(f"{base}/documents/{passed['documents'][0]}", headers=AUDITOR)
    assert f"1．{CLEAN}" in form.text and "审理室已于2023年3月3日审核通过" in form.text
    performed = await ok(
        await client.post(f"{base}/perform", headers=dept, json={"performed_on": "2023-03-08"})
    )
    assert performed["wording"] == {"A1": CLEAN}
    notice = await client.get(f"{base}/documents/{case_id}-notice", headers=AUDITOR)
    assert f"1．{CLEAN}" in notice.text and "澄清内容如下" in notice.text
    problem(
        await client.post(f"{base}/content", headers=dept, json=draft(CLEAN, on="2023-03-09")),
        409,
        "wrong_state",
    )
    assert await runtime.store.verify() is None


async def test_a_second_persons_content_is_checked_against_the_matters_reporter(
    runtime: Runtime, client: httpx.AsyncClient, intake_client: httpx.AsyncClient
) -> None:
    """The matter's second person (clarification <matter>-2, which intake has no report of): the
    wording is checked against the matter's reporter all the same."""
    case_id = await report(intake_client, REPORTER, "2023-01-16")
    other = Subject(kind="person", name="周某", post="副镇长", unit="缙云县某镇人民政府")
    point = Allegation(allegation_id="A1", summary="违规收受礼金")
    await Feed(runtime).deliver(conclusion(case_id, points=(point,), subjects=(PERSON, other)))
    start = {
        "initiated_by": "department",
        "person_subject_id": other.subject_id,
        "consent": True,
        "started_on": "2023-03-01",
    }
    base = f"/clarifications/{case_id}-2"
    await ok(await client.post(f"{base}/start", headers=DEPT, json=start))
    response = await client.post(f"{base}/content", headers=DEPT, json=draft("经核查，郑实名反映的问题失实"))
    problem(response, 422, "content_reveals_reporter", "points.0.wording")
    assert "郑实名" not in response.text
    drafted = await ok(
        await client.post(
            f"{base}/content", headers=DEPT, json=draft("经核查，反映周某同志违规收受礼金的问题失实。")
        )
    )
    assert drafted["event"] == "ContentDrafted"


async def test_intakes_check_answers_yes_or_no_to_its_jurisdictions_drafters_only(
    intake_runtime: Runtime, intake_client: httpx.AsyncClient
) -> None:
    case_id = await report(intake_client, REPORTER, "2023-01-16")
    path = f"/reports/{case_id}/identity-check"
    for role in ("handling_department", "case_trial"):
        answer = await intake_client.post(path, json={"text": "郑实名"}, headers=auth(role, J))
        assert answer.status_code == 200 and answer.json() == {"contains": True}, answer.text
    clean = await intake_client.post(path, json={"text": CLEAN}, headers=DEPT)
    assert clean.json() == {"contains": False}
    for role in ("letters_office", "head", "auditor"):
        problem(
            await intake_client.post(path, json={"text": "郑实名"}, headers=auth(role, J)),
            403,
            "role_forbidden",
        )
    problem(
        await intake_client.post(path, json={"text": "郑实名"}, headers=auth("handling_department", OTHER_J)),
        404,
        "not_found",
    )
    problem(
        await intake_client.post(
            f"/reports/{J}-2023-999999/identity-check", json={"text": "x"}, headers=DEPT
        ),
        404,
        "not_found",
    )
    problem(
        await intake_client.post(path, json={"text": "a\x00b"}, headers=DEPT),
        422,
        "invalid_input",
        "body.text",
    )
    problem(await intake_client.post(path, json={"text": "x" * 20001}, headers=DEPT), 422, "invalid_input")
    # Erased reporters are gone for good: nothing of theirs is found any more.
    report_view = await intake_client.get(f"/reports/{case_id}", headers=auth("letters_office", J))
    subject_id = report_view.json()["reporter_subject_id"]
    erased = await intake_client.post(
        f"/reporters/{subject_id}/erase", json={"erased_on": "2023-02-01"}, headers=auth("letters_office", J)
    )
    assert erased.status_code == 200, erased.text
    after = await intake_client.post(path, json={"text": "郑实名"}, headers=DEPT)
    assert after.json() == {"contains": False}


async def test_intake_not_answering_refuses_the_draft_for_now(runtime: Runtime) -> None:
    unreachable = IntakeIdentityCheck(IntakeSettings(url="http://127.0.0.1:9", timeout_s=0.5))
    transport = httpx.ASGITransport(app=clarification_api(runtime, unreachable))
    async with httpx.AsyncClient(transport=transport, base_url="http://clarification") as client:
        case_id = f"{J}-2023-000777"
        await started_matter(runtime, client, case_id)
        before = await counts(runtime)
        response = await client.post(f"/clarifications/{case_id}/content", headers=DEPT, json=draft(CLEAN))
        body = problem(response, 503, "identity_check_unavailable")
        assert response.headers["retry-after"] == "5" and body["detail_zh"]
        assert await counts(runtime) == before
        # The rules come first: a draft they refuse never goes to intake.
        wrong = {"drafted_on": "2023-03-02", "points": [{"allegation_id": "A9", "wording": CLEAN}]}
        problem(
            await client.post(f"/clarifications/{case_id}/content", headers=DEPT, json=wrong),
            422,
            "unknown_allegation",
            "points.0.allegation_id",
        )


async def test_a_matter_intake_never_registered_has_no_reporter_to_reveal(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    case_id = f"{J}-2019-000321"  # an old matter the backlog sweep (大起底) found in the files
    await started_matter(runtime, client, case_id)
    drafted = await ok(
        await client.post(f"/clarifications/{case_id}/content", headers=DEPT, json=draft(CLEAN))
    )
    assert drafted["event"] == "ContentDrafted"


async def head_approved(client: httpx.AsyncClient, case_id: str) -> None:
    """Started, assessed, re-reviewed and approved by the head: the 澄清内容 left to the caller."""
    base = f"/clarifications/{case_id}"
    assessed = {
        "assessed_on": "2023-03-02",
        "bad_effects": ["repeated_reports"],
        "effect_only_from_interviews": False,
    }
    await ok(await client.post(f"{base}/assess", headers=DEPT, json=assessed))
    await sign_all(client, base, on="2023-03-03")
    await ok(
        await client.post(f"{base}/approve", headers=auth("head", J), json={"approved_on": "2023-03-06"})
    )


async def test_a_round_clarifies_the_matters_whose_content_is_approved_and_names_the_others(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    worded, unworded = f"{J}-2023-000881", f"{J}-2023-000882"
    for case_id in (worded, unworded):
        await started_matter(runtime, client, case_id)
        await head_approved(client, case_id)
    await ok(await client.post(f"/clarifications/{worded}/content", headers=DEPT, json=draft(CLEAN)))
    problem(
        await client.post(
            "/rounds", headers=DEPT, json={"jurisdiction": J, "quarter": "2023Q1", "held_on": "2023-03-10"}
        ),
        422,
        "nothing_ready",
    )
    await ok(
        await client.post(
            f"/clarifications/{worded}/content/approve", headers=TRIAL, json={"approved_on": "2023-03-06"}
        )
    )
    held = await ok(
        await client.post(
            "/rounds", headers=DEPT, json={"jurisdiction": J, "quarter": "2023Q1", "held_on": "2023-03-10"}
        )
    )
    assert held["matters"] == [worded]
    assert held["skipped"] == [{"case_id": unworded, "code": "content_not_approved"}]
    left = await ok(await client.get(f"/clarifications/{unworded}", headers=AUDITOR))
    assert left["state"] == "approved" and left["content"]["state"] == "none"
    problem(
        await client.post(
            f"/clarifications/{unworded}/perform", headers=DEPT, json={"performed_on": "2023-03-10"}
        ),
        409,
        "content_not_approved",
    )
