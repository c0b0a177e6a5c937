"""The real-name reporter's objection (异议) end to end, through the running services: lodged by
the letters office in intake, received by review, re-examined by the handling department, answered
in intake and fed back; the wrong users refused; and the reporter in no Kafka message of the case."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared import settings
from tests.e2e.conftest import day, quarter
from tests.e2e.test_workflow import J, open_case, plan
from zhengming.client import Client
from zhengming.driver import Driver

OTHER_COUNTY = "331121"  # 青田县
GROUNDS = "检举人不同意核查结论，认为关键事实未查清"
NEW_EVIDENCE = "新提供银行转账记录三份及证人一名"


async def case_messages(case_id: str, until: str, timeout_s: float = 60) -> list[str]:
    """Every message on zhengming's topics keyed by the case (value and headers), read from the
    start until one of type `until` is among them (the relays publish asynchronously)."""
    deadline = time.monotonic() + timeout_s
    while True:
        texts = await _read_case(case_id)
        if any(until in t for t in texts) or time.monotonic() > deadline:
            return texts


async def _read_case(case_id: str) -> list[str]:
    bootstrap = settings.kafka().bootstrap
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        topics = sorted(t for t in await consumer.topics() if t.startswith("zm."))
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            described = await admin.describe_topics(topics)
        finally:
            await admin.close()
        partitions = [TopicPartition(d["topic"], p["partition"]) for d in described for p in d["partitions"]]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        remaining = {tp for tp, end in ends.items() if end > 0}
        texts: list[str] = []
        while remaining:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10000)
            if not batch:
                break
            for tp, records in batch.items():
                for record in records:
                    if record.key == case_id.encode():
                        value = (record.value or b"").decode("utf-8", errors="replace")
                        headers = " ".join(v.decode("utf-8", "replace") for _, v in record.headers)
                        texts.append(f"{value} {headers}")
                if records and records[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
        return texts
    finally:
        await consumer.stop()


def objection_of(report: dict[str, Any] | None, objection_id: str) -> dict[str, Any] | None:
    found: Iterable[dict[str, Any]] = (report or {}).get("objections") or []
    return next((o for o in found if o["objection_id"] == objection_id), None)


async def test_an_objection_is_lodged_re_examined_answered_and_fed_back(
    client: Client, driver: Driver
) -> None:
    p = plan(["untrue"], day(5, 10))
    assert p.reporter is not None and p.reporter.id_number is not None
    secrets = {p.reporter.name, p.reporter.contact, p.reporter.id_number}
    case_id = await open_case(driver, p)
    await driver.verify(p, case_id)  # concluded on day(6, 4)
    path = f"/reports/{case_id}/objections"
    body = {"lodged_on": day(6, 10).isoformat(), "grounds": GROUNDS, "new_evidence": NEW_EVIDENCE}

    # The wrong users: the department cannot lodge it; another county's office does not see the case.
    refused = await client.request(
        "POST", "intake", path, role="handling_department", jurisdiction=J, body=body
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "role_forbidden")
    other = await client.request(
        "POST", "intake", path, role="letters_office", jurisdiction=OTHER_COUNTY, body=body
    )
    assert (other.status_code, other.json()["code"]) == (404, "not_found")
    named = {**body, "new_evidence": f"{p.reporter.name}补充的证据"}
    leak = await client.request("POST", "intake", path, role="letters_office", jurisdiction=J, body=named)
    assert (leak.status_code, leak.json()["code"], leak.json()["field"]) == (
        422,
        "reporter_identity_in_text",
        "new_evidence",
    )

    lodged = await driver.case.object_to(
        J, case_id, on=day(6, 10), grounds=GROUNDS, new_evidence=NEW_EVIDENCE
    )
    objection_id = lodged["objections"][-1]["objection_id"]
    assert lodged["objections"][-1]["stage"] == "lodged"

    async def received() -> dict[str, Any] | None:
        return objection_of(await driver.case.verification(J, case_id), objection_id)

    seen = await client.eventually("the objection received by review", received)
    assert (seen["grounds"], seen["new_evidence"], seen["examined_on"]) == (GROUNDS, NEW_EVIDENCE, None)

    # The letters office records and feeds back; it does not re-examine.
    examine = f"/verifications/{case_id}/objections/{objection_id}/examine"
    exam = {"examined_on": day(6, 20).isoformat(), "upheld": True, "reason": "新证据足以重新核查"}
    wrong = await client.request("POST", "review", examine, role="letters_office", jurisdiction=J, body=exam)
    assert (wrong.status_code, wrong.json()["code"]) == (403, "role_forbidden")
    elsewhere = await client.request(
        "POST", "review", examine, role="handling_department", jurisdiction=OTHER_COUNTY, body=exam
    )
    assert elsewhere.status_code == 404
    done = await driver.case.examine_objection(
        J, case_id, objection_id, on=day(6, 20), upheld=True, reason="新证据足以重新核查"
    )
    # Upheld after the conclusion: the verification reopens on the new facts (补充核查).
    assert done["recorded"] == ["ObjectionExamined", "VerificationReopened"]
    assert done["verification"]["state"] == "reopened"
    assert done["verification"]["reopenings"][-1]["origin"] == "objection"

    async def answered() -> dict[str, Any] | None:
        report = await client.ok(
            "GET", "intake", f"/reports/{case_id}", role="letters_office", jurisdiction=J
        )
        found = objection_of(report, objection_id)
        return found if found and found["stage"] == "examined" else None

    answer = await client.eventually("the answer back in intake", answered)
    assert (answer["examined_on"], answer["upheld"], answer["reason"]) == (
        day(6, 20).isoformat(),
        True,
        "新证据足以重新核查",
    )
    feedback = f"/reports/{case_id}/objections/{objection_id}/feedback"
    dept = await client.request(
        "POST",
        "intake",
        feedback,
        role="handling_department",
        jurisdiction=J,
        body={"fed_back_on": day(6, 25).isoformat()},
    )
    assert dept.status_code == 403
    fed = await driver.case.feed_back_objection(
        J, case_id, objection_id, on=day(6, 25), note="已书面反馈复查结果"
    )
    assert objection_of(fed, objection_id) == {
        **answer,
        "stage": "fed_back",
        "fed_back_on": day(6, 25).isoformat(),
        "note": "已书面反馈复查结果",
    }

    # Other roles see the objection, never the reporter; the department may ask whether a text names them.
    shown = await client.ok(
        "GET", "intake", f"/reports/{case_id}", role="handling_department", jurisdiction=J
    )
    assert objection_of(shown, objection_id) and shown["reporter"] == {"masked": True}
    check = f"/reports/{case_id}/identity-check"
    for text, contains in [
        (f"经核查，{p.reporter.name}反映的问题失实", True),
        ("经核查，反映的问题失实", False),
    ]:
        asked = await client.ok(
            "POST", "intake", check, role="handling_department", jurisdiction=J, body={"text": text}
        )
        assert asked == {"contains": contains}

    async def counted() -> dict[str, Any] | None:
        stats = await client.ok(
            "GET",
            "archive",
            "/statistics",
            role="auditor",
            jurisdiction=J,
            params={"quarter": quarter(2), "jurisdiction": J},
        )
        figures: dict[str, Any] = stats["rows"][0]["figures"]
        return figures if figures["objections"] >= 1 and figures["objections_upheld"] >= 1 else None

    await client.eventually("the objection in the statistics", counted)

    # Every message of the case on Kafka, the objection's included, and none names the reporter.
    messages = await case_messages(case_id, until="ObjectionFedBack")
    for kind in (
        "ObjectionLodged",
        "ObjectionReceived",
        "ObjectionExamined",
        "ObjectionAnswered",
        "ObjectionFedBack",
    ):
        assert any(kind in m for m in messages), f"no {kind} on Kafka"
    for message in messages:
        assert not any(secret in message for secret in secrets), "the reporter in a Kafka message"


async def test_an_anonymous_report_s_objection_is_refused(client: Client, driver: Driver) -> None:
    p = plan(["untrue"], day(5, 12), reporter=None)
    case_id = await open_case(driver, p)
    body = {"lodged_on": day(5, 20).isoformat(), "grounds": GROUNDS, "new_evidence": NEW_EVIDENCE}
    refused = await client.request(
        "POST", "intake", f"/reports/{case_id}/objections", role="letters_office", jurisdiction=J, body=body
    )
    assert (refused.status_code, refused.json()["code"], refused.json()["field"]) == (
        422,
        "objection_needs_real_name",
        "real_name",
    )
    assert refused.json()["detail_zh"] and refused.json()["detail_en"]
