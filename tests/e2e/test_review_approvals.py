"""Review's approvals performed by the approver, end to end through the running services: the head
approves the handling decision in a session of their own (the department cannot); a city head
approves a 诬告陷害 (a county head cannot), also after the conclusion, which it revises; and a
re-review finding the verification incomplete reopens it (补充核查) for a second conclusion."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared import settings
from shared.envelope import CITY, EventEnvelope
from shared.topics import events_topic
from tests.e2e.conftest import day
from tests.e2e.test_workflow import open_case, plan
from zhengming.client import Client
from zhengming.driver import CaseDriver, Driver

J = "331123"  # 遂昌县: a county whose head is granted only the county
OTHER = "331102"


async def review_events(client: Client, case_id: str) -> list[dict[str, Any]]:
    """The case's events in review's store (the audit endpoint)."""
    events: list[dict[str, Any]] = await client.ok(
        "GET", "review", f"/audit/cases/{case_id}/events", role="auditor", jurisdiction=J
    )
    return events


async def on_kafka(case_id: str, event_type: str, revision: int, timeout_s: float = 60) -> EventEnvelope:
    """The review event of the matter on its Kafka topic (read from offset 0, no group)."""
    kafka = settings.kafka()
    topic = events_topic(J, "review")
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap, **kafka.client_options())
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
    assert partitions, f"no partitions of {topic}"
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap, group_id=None, enable_auto_commit=False, **kafka.client_options()
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
                for record in records:
                    if record.key != case_id.encode():
                        continue
                    envelope = EventEnvelope.from_bytes(record.value or b"")
                    if envelope.event_type == event_type and envelope.payload.get("revision", 0) == revision:
                        return envelope
        raise AssertionError(f"no {event_type} (revision {revision}) of {case_id} on {topic}")
    finally:
        await consumer.stop()


async def test_the_head_approves_the_decision_and_the_department_cannot(
    client: Client, driver: Driver
) -> None:
    p = plan(["untrue"], day(4, 1), jurisdiction=J)
    case_id = await open_case(driver, p)
    await driver.wait_verification(p, case_id)
    proposed = await driver.case.propose_handling(J, case_id, method="preliminary_verification", on=day(4, 6))
    assert proposed["recorded"] == ["HandlingProposed"]
    assert proposed["verification"]["state"] == "proposed"

    path = f"/verifications/{case_id}/decision/approve"
    body = {"approved_on": day(4, 7).isoformat()}
    department = await client.request(
        "POST", "review", path, role="handling_department", jurisdiction=J, body=body
    )
    assert (department.status_code, department.json()["code"]) == (403, "role_forbidden")
    assert department.json()["detail_zh"] and department.json()["detail_en"]
    stranger = await client.request("POST", "review", path, role="head", jurisdiction=OTHER, body=body)
    assert stranger.status_code == 404  # another county's head does not even see the matter
    stale = await client.request(
        "POST",
        "review",
        f"/verifications/{case_id}/decision",
        role="handling_department",
        jurisdiction=J,
        body={"method": "close", "decided_on": day(4, 6).isoformat(), "collective": True, "approved_by": "x"},
    )
    assert (stale.status_code, stale.json()["field"]) == (422, "body.approved_by")

    approved = await driver.case.approve_handling(J, case_id, day(4, 7))
    assert approved["recorded"] == ["HandlingDecided"]
    decision = approved["verification"]["decision"]
    assert (decision["approved_by"], decision["approved_on"]) == (f"head-{J}", day(4, 7).isoformat())
    decided = [e for e in await review_events(client, case_id) if e["event_type"] == "HandlingDecided"]
    assert [(e["actor"]["user_id"], e["actor"]["role"]) for e in decided] == [(f"head-{J}", "head")]


async def test_a_county_head_cannot_approve_a_false_accusation_and_the_city_head_does(
    client: Client, driver: Driver
) -> None:
    p = plan(["false_accusation"], day(4, 2), jurisdiction=J)
    case_id = await open_case(driver, p)
    verification = await driver.wait_verification(p, case_id)
    await driver.case.decide(J, case_id, method="preliminary_verification", on=day(4, 7))
    allegation = verification["allegations"][0]["allegation_id"]
    proposed = await client.ok(
        "POST",
        "review",
        f"/verifications/{case_id}/findings",
        role="handling_department",
        jurisdiction=J,
        body={
            "allegation_id": allegation,
            "finding": "false_accusation",
            "basis": "捏造事实，意图陷害",
            "found_on": day(4, 20).isoformat(),
            "referred_on": day(4, 22).isoformat(),
        },
    )
    assert proposed["recorded"] == ["FalseAccusationProposed"]
    assert allegation in proposed["verification"]["false_accusation_proposals"]
    conclude = await client.request(
        "POST",
        "review",
        f"/verifications/{case_id}/conclude",
        role="handling_department",
        jurisdiction=J,
        body={"concluded_on": day(4, 25).isoformat()},
    )
    assert (conclude.status_code, conclude.json()["code"]) == (409, "false_accusation_pending")

    path = f"/verifications/{case_id}/false-accusations/{allegation}/approve"
    body = {"approved_on": day(4, 22).isoformat()}
    county = await client.request("POST", "review", path, role="head", jurisdiction=J, body=body)
    assert (county.status_code, county.json()["code"]) == (403, "false_accusation_needs_city_approval")
    assert "市级" in county.json()["detail_zh"] and "city" in county.json()["detail_en"]
    department = await client.request(
        "POST", "review", path, role="handling_department", jurisdiction=J, body=body
    )
    assert department.status_code == 403

    # What waits for the city's head (a head holding the city only): the county's proposal.
    path = "/false-accusations/awaiting-approval"
    awaiting = await client.ok("GET", "review", path, role="head", jurisdiction=f"{CITY}+{CITY}")
    assert case_id in {v["case_id"] for v in awaiting}
    elsewhere = "331122" if J != "331122" else "331121"
    assert case_id not in {
        v["case_id"] for v in await client.ok("GET", "review", path, role="head", jurisdiction=elsewhere)
    }

    approved = await driver.case.approve_false_accusation(J, case_id, allegation, day(4, 22))
    assert approved["recorded"] == ["FindingRecorded", "FalseAccusationReferred"]
    awaiting = await client.ok("GET", "review", path, role="head", jurisdiction=f"{CITY}+{CITY}")
    assert case_id not in {v["case_id"] for v in awaiting}
    referred = await client.ok(
        "GET",
        "review",
        "/false-accusations",
        role="case_management",
        jurisdiction=J,
        params={"jurisdiction": J},
    )
    [mine] = [r for r in referred if r["case_id"] == case_id]
    assert (mine["approved_by"], mine["approval_jurisdiction"]) == (f"head-{CITY}", CITY)
    concluded = await driver.case.conclude(J, case_id, day(4, 25))
    assert concluded["verification"]["state"] == "concluded"


async def test_a_false_accusation_after_the_conclusion_makes_a_not_proven_matter_eligible(
    client: Client, driver: Driver
) -> None:
    p = plan(["not_proven"], day(5, 4), jurisdiction=J)
    case_id = await open_case(driver, p)
    await driver.verify(p, case_id)
    await driver.wait_state(p, case_id, {"not_eligible"})
    view = await driver.case.verification(J, case_id)
    assert (view["state"], view["eligible_for_pool"], view["revision"]) == ("concluded", False, 0)
    concluded_on = view["concluded_on"]
    allegation = view["allegations"][0]["allegation_id"]

    # Investigating the reporter afterwards: 诬告陷害, approved by the city's head.
    found = day(6, 10)
    approved = await driver.case.find(
        J,
        case_id,
        allegation_id=allegation,
        finding="false_accusation",
        basis="经查，检举人捏造事实意图陷害",
        found_on=found,
        referred_on=found + timedelta(days=2),
    )
    assert approved["recorded"] == ["FindingRecorded", "FalseAccusationReferred", "VerificationConcluded"]
    view = approved["verification"]
    assert (view["state"], view["revision"], view["eligible_for_pool"]) == ("concluded", 1, True)
    assert view["concluded_on"] == (found + timedelta(days=2)).isoformat() != concluded_on
    assert view["findings"][allegation]["finding"] == "false_accusation"

    stored = [e for e in await review_events(client, case_id) if e["event_type"] == "VerificationConcluded"]
    assert [e["payload"].get("revision", 0) for e in stored] == [0, 1]
    revised = await on_kafka(case_id, "VerificationConcluded", revision=1)
    assert revised.payload["eligible_for_pool"] is True
    assert revised.payload["findings"] == {allegation: "false_accusation"}


async def test_a_re_review_finding_the_verification_incomplete_reopens_it(
    client: Client, driver: Driver
) -> None:
    p = plan(["untrue", "not_proven"], day(7, 1), jurisdiction=J)
    case_id = await open_case(driver, p)
    await driver.verify(p, case_id)
    await driver.wait_state(p, case_id, {"candidate"})
    matter = await driver.clarification(p, case_id) or {}
    subject_id = matter["outcome"]["subjects"][0]["subject_id"]
    start = day(8, 3)
    await driver.case.start(J, case_id, CaseDriver.start_body(subject_id, start))
    await driver.case.assess(J, case_id, on=start + timedelta(days=1), bad_effects=["repeated_reports"])
    # The re-review sends the matter back: the verification is not complete (补充核查).
    sent_back = await driver.case.re_review(
        J, case_id, on=start + timedelta(days=2), verification_complete=False
    )
    assert sent_back["passed"] is False

    async def reopened() -> Any:
        view = await driver.case.verification(J, case_id)
        return view if view and view["state"] == "reopened" else None

    view = await client.eventually("the verification reopened", reopened)
    [reopening] = view["reopenings"]
    assert (reopening["origin"], reopening["reopened_on"]) == (
        "re_review",
        (start + timedelta(days=2)).isoformat(),
    )
    listed = await client.ok(
        "GET",
        "review",
        "/verifications",
        role="handling_department",
        jurisdiction=J,
        params={"jurisdiction": J, "state": "reopened"},
    )
    assert case_id in {v["case_id"] for v in listed}

    # The department verifies further (the unproven point is now found untrue) and concludes again.
    second = view["allegations"][1]["allegation_id"]
    await driver.case.find(
        J,
        case_id,
        allegation_id=second,
        finding="untrue",
        basis="补充核查：反映问题失实",
        found_on=start + timedelta(days=5),
    )
    concluded = await driver.case.conclude(J, case_id, start + timedelta(days=6))
    view = concluded["verification"]
    assert (view["state"], view["revision"]) == ("concluded", 1)
    assert {f["finding"] for f in view["findings"].values()} == {"untrue"}
    events = [e["event_type"] for e in await review_events(client, case_id)]
    assert events[-3:] == ["VerificationReopened", "FindingRecorded", "VerificationConcluded"]
    revised = await on_kafka(case_id, "VerificationConcluded", revision=1)
    assert revised.payload["concluded_on"] == (start + timedelta(days=6)).isoformat()
