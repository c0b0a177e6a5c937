"""Intake's side of the real-name reporter's objection (异议) on the real PostgreSQL: lodged by the
letters office, answered by review's re-examination through the consumer, fed back; the identity
check; who may do what; and the reporter's identity in no event, outbox row, log line or answer."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
import structlog
from pydantic import BaseModel

from services.intake.api import build_api
from services.intake.main import definition
from shared.envelope import GENESIS_HASH, Actor, EventEnvelope, seal
from shared.events import registry
from shared.events.review import ObjectionExamined
from shared.runtime import Runtime
from tests.integration.conftest import fresh_runtime
from tests.integration.test_intake_service import (
    IDENTITY,
    OFFICE,
    accepted,
    auth,
    deliver,
    post,
    register,
    stream,
    written,
)

OBJECTION = {"lodged_on": "2023-03-10", "grounds": "不同意核查结论", "new_evidence": "新的转账记录三份"}
OTHER_COUNTY = "331121"


@pytest.fixture
async def runtime() -> AsyncIterator[Runtime]:
    async with fresh_runtime(definition) as rt:
        yield rt


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_api(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as c:
        yield c


async def handed_over(client: httpx.AsyncClient, **changes: Any) -> str:
    rid = await accepted(client, **changes)
    await post(
        client, f"/reports/{rid}/hand-over", {"department": "第一监督检查室", "handed_on": "2023-01-20"}
    )
    return rid


def examined(objection_id: str, matter_id: str, *, upheld: bool = True, on: date = date(2023, 3, 20)) -> Any:
    """Review's ObjectionExamined as review's store would have sealed it."""
    payload: BaseModel = ObjectionExamined(
        objection_id=objection_id, examined_on=on, upheld=upheld, reason="新证据足以重新核查"
    )
    event_type, version, body = registry.encode(payload)
    envelope: EventEnvelope = seal(
        event_type=event_type,
        schema_version=version,
        stream_id=f"verification-{matter_id}",
        stream_version=9,
        case_id=matter_id,
        jurisdiction="331122",
        occurred_at=datetime.now(UTC),
        actor=Actor(user_id="u-dept", role="handling_department", unit="第一监督检查室"),
        correlation_id=uuid.uuid4(),
        causation_id=None,
        payload=body,
        prev_hash=GENESIS_HASH,
    )
    return envelope, registry.decode(envelope)


def problem(response: httpx.Response) -> tuple[int, str, str | None]:
    body = response.json()
    assert body["detail_zh"] and body["detail_en"], body
    return response.status_code, body["code"], body.get("field")


async def test_an_objection_goes_from_lodged_to_examined_to_fed_back(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    rid = await handed_over(client)
    with structlog.testing.capture_logs() as lines:
        lodged = await post(client, f"/reports/{rid}/objections", OBJECTION)
    [objection] = lodged["objections"]
    assert objection["objection_id"] == f"{rid}-OB1" and objection["stage"] == "lodged"
    assert (objection["grounds"], objection["new_evidence"]) == (
        OBJECTION["grounds"],
        OBJECTION["new_evidence"],
    )
    assert not any(value in json.dumps(lines, default=str) for value in IDENTITY.values())

    # Review's answer arrives twice: the report records it once.
    envelope, payload = examined(objection["objection_id"], rid)
    assert await deliver(runtime, "intake.results", envelope, payload) == "applied"
    assert await deliver(runtime, "intake.results", envelope, payload) == "duplicate"
    again, again_payload = examined(objection["objection_id"], rid, upheld=False)  # another copy
    assert await deliver(runtime, "intake.results", again, again_payload) == "applied"
    assert (await stream(runtime, rid)).count("ObjectionAnswered") == 1

    view = (await client.get(f"/reports/{rid}", headers=auth("handling_department"))).json()
    [seen] = view["objections"]
    assert (seen["stage"], seen["examined_on"], seen["upheld"]) == ("examined", "2023-03-20", True)
    assert view["reporter"] == {"masked": True}

    path = f"/reports/{rid}/objections/{objection['objection_id']}/feedback"
    early = await client.post(path, json={"fed_back_on": "2023-03-19"}, headers=OFFICE)
    assert problem(early) == (422, "date_before_previous_step", "fed_back_on")
    named = await client.post(
        path, json={"fed_back_on": "2023-03-22", "note": "已告知郑实名"}, headers=OFFICE
    )
    assert problem(named) == (422, "reporter_identity_in_text", "note")
    fed = await post(client, path, {"fed_back_on": "2023-03-22", "note": "已书面反馈复查结果"})
    assert fed["objections"][0]["stage"] == "fed_back" and fed["objections"][0]["fed_back_on"] == "2023-03-22"
    twice = await client.post(path, json={"fed_back_on": "2023-03-23"}, headers=OFFICE)
    assert problem(twice) == (409, "already_recorded", "objection_id")
    assert (await stream(runtime, rid))[-3:] == ["ObjectionLodged", "ObjectionAnswered", "ObjectionFedBack"]

    # Neither the events nor what the relay will publish name the reporter.
    async with runtime.pool.acquire() as conn:
        texts = [r["p"] for r in await conn.fetch("SELECT payload::text AS p FROM events")]
        texts += [bytes(r["body"]).decode() for r in await conn.fetch("SELECT body FROM outbox")]
    assert any("ObjectionLodged" in t or "new_evidence" in t for t in texts)
    for text in texts:
        for value in IDENTITY.values():
            assert value not in text
    assert await runtime.store.verify() is None


async def test_feedback_waits_for_the_examination(client: httpx.AsyncClient) -> None:
    rid = await handed_over(client)
    await post(client, f"/reports/{rid}/objections", OBJECTION)
    early = await client.post(
        f"/reports/{rid}/objections/{rid}-OB1/feedback", json={"fed_back_on": "2023-03-22"}, headers=OFFICE
    )
    assert problem(early) == (409, "objection_not_examined", "objection_id")
    unknown = await client.post(
        f"/reports/{rid}/objections/{rid}-OB7/feedback", json={"fed_back_on": "2023-03-22"}, headers=OFFICE
    )
    assert problem(unknown) == (404, "objection_not_found", "objection_id")


async def test_only_the_letters_office_of_the_jurisdiction_records_objections(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    rid = await handed_over(client)
    before = await written(runtime)
    for role in ("handling_department", "case_trial", "head", "auditor"):
        refused = await client.post(f"/reports/{rid}/objections", json=OBJECTION, headers=auth(role))
        assert problem(refused) == (403, "role_forbidden", None)
    other = await client.post(
        f"/reports/{rid}/objections", json=OBJECTION, headers=auth("letters_office", OTHER_COUNTY)
    )
    assert (other.status_code, other.json()["code"]) == (404, "not_found")
    assert await written(runtime) == before


async def test_objections_that_cannot_be_lodged_write_nothing(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    anonymous = await handed_over(client, real_name=False, reporter=None)
    not_yet = await accepted(client)
    rid = await handed_over(client)
    before = await written(runtime)
    cases = [
        (anonymous, OBJECTION, (422, "objection_needs_real_name", "real_name")),
        (not_yet, OBJECTION, (409, "wrong_state", "state")),
        (rid, {**OBJECTION, "grounds": "检举人郑实名不服"}, (422, "reporter_identity_in_text", "grounds")),
        (
            rid,
            {**OBJECTION, "new_evidence": "电话 138 1234 5678"},
            (422, "reporter_identity_in_text", "new_evidence"),
        ),
        (rid, {**OBJECTION, "new_evidence": "   "}, (422, "text_required", "new_evidence")),
        (rid, {**OBJECTION, "lodged_on": "2023-01-19"}, (422, "date_before_previous_step", "lodged_on")),
    ]
    for report_id, body, expected in cases:
        response = await client.post(f"/reports/{report_id}/objections", json=body, headers=OFFICE)
        assert problem(response) == expected, response.text
        assert "郑实名" not in response.text and "13812345678" not in response.text
    missing = await client.post(
        f"/reports/{rid}/objections",
        json={k: v for k, v in OBJECTION.items() if k != "new_evidence"},
        headers=OFFICE,
    )
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "body.new_evidence"
    assert await written(runtime) == before


async def test_the_identity_check_answers_yes_or_no_to_the_department_and_case_trial(
    client: httpx.AsyncClient,
) -> None:
    rid = await register(client)
    anonymous = await register(client, real_name=False, reporter=None)
    check = f"/reports/{rid}/identity-check"
    for role in ("handling_department", "case_trial"):
        for text, contains in [
            ("经核查，郑实名反映的问题失实", True),
            ("联系电话：138-1234-5678", True),
            ("证件号 332526198805050022", True),
            ("经核查，反映李某违规收受礼金的问题失实", False),
        ]:
            answer = await client.post(check, json={"text": text}, headers=auth(role))
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"contains": contains}
    nobody = await client.post(
        f"/reports/{anonymous}/identity-check", json={"text": "郑实名"}, headers=auth("handling_department")
    )
    assert nobody.json() == {"contains": False}
    for role in ("letters_office", "head", "auditor"):
        refused = await client.post(check, json={"text": "郑实名"}, headers=auth(role))
        assert problem(refused) == (403, "role_forbidden", None)
    other = await client.post(
        check, json={"text": "郑实名"}, headers=auth("handling_department", OTHER_COUNTY)
    )
    assert other.status_code == 404


async def test_the_reporters_of_the_repeats_merged_into_the_matter_are_protected_alike(
    client: httpx.AsyncClient,
) -> None:
    matter = await handed_over(client)
    second = {"name": "钱重复", "contact": "0578-3123456"}
    repeat = await register(client, reporter=second)
    await post(client, f"/reports/{repeat}/log", {"logged_on": "2023-01-17"})
    await post(client, f"/reports/{repeat}/merge", {"merged_on": "2023-01-18", "repeats_matter_id": matter})
    named = await client.post(
        f"/reports/{matter}/objections", json={**OBJECTION, "grounds": "钱重复也反映过"}, headers=OFFICE
    )
    assert problem(named) == (422, "reporter_identity_in_text", "grounds")
    assert "钱重复" not in named.text
    for text, contains in [("另据 0578 3123456 反映", True), ("郑实名", True), ("李某", False)]:
        answer = await client.post(
            f"/reports/{matter}/identity-check", json={"text": text}, headers=auth("case_trial")
        )
        assert answer.json() == {"contains": contains}, text
