"""Review service (核查) on the real PostgreSQL: the handover consumer, the HTTP commands and their
problems, the sweep, quarterly results and who may see what."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from services.review.api import build_api
from services.review.main import definition
from shared.auth import Principal, mint
from shared.consumer import EventConsumer
from shared.envelope import GENESIS_HASH, JURISDICTIONS, Actor, EventEnvelope, seal
from shared.events import registry
from shared.events.clarification import ReReviewRecorded
from shared.events.common import Allegation, Subject
from shared.events.intake import ReportAccepted, ReportHandedOver
from shared.runtime import Runtime
from shared.topics import events_topic
from tests.integration.conftest import fresh_runtime

J = "331122"
OTHER = "331121"
INTAKE = Actor(user_id="system:intake", role="system", unit="zhengming intake")
CHANNEL = 0


@pytest.fixture
async def runtime() -> AsyncIterator[Runtime]:
    async with fresh_runtime(definition) as rt:
        yield rt


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_api(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://review") as c:
        yield c


def token(role: str, *jurisdictions: str, user: str = "u-1", name: str | None = None) -> dict[str, str]:
    principal = Principal(
        user_id=user, role=role, unit="缙云县纪委监委", jurisdictions=list(jurisdictions or (J,)), name=name
    )
    return {"Authorization": f"Bearer {mint(principal)}"}


HANDLER = token("handling_department", J)
HEAD = token("head", J, user="head-331122")
CITY_HEAD = token("head", *sorted(JURISDICTIONS), user="head-331100")
DECISION = {"method": "preliminary_verification", "decided_on": "2023-01-12", "collective": True}


def intake_event(
    payload: BaseModel, case_id: str, *, jurisdiction: str = J, version: int = 1, stream: str = "report"
) -> EventEnvelope:
    """An intake (or another context's) event as its store would have sealed it."""
    event_type, schema_version, body = registry.encode(payload)
    return seal(
        event_type=event_type,
        schema_version=schema_version,
        stream_id=f"{stream}-{case_id}",
        stream_version=version,
        case_id=case_id,
        jurisdiction=jurisdiction,
        occurred_at=datetime.now(UTC),
        actor=INTAKE,
        correlation_id=uuid.uuid4(),
        causation_id=None,
        payload=body,
        prev_hash=GENESIS_HASH,
    )


def handed_over(handed_on: date = date(2023, 1, 10), allegations: int = 2) -> ReportHandedOver:
    return ReportHandedOver(
        handed_on=handed_on,
        department="第三纪检监察室",
        received_on=date(handed_on.year, handed_on.month, 1),
        real_name=True,
        subjects=[Subject(kind="person", name="李某", post="村支书", unit="某村")],
        allegations=[
            Allegation(allegation_id=f"A{i}", summary=f"问题{i}") for i in range(1, allegations + 1)
        ],
    )


def runner(runtime: Runtime, name: str = "review.handover") -> EventConsumer:
    [spec] = [s for s in definition.consumers(runtime) if s.name == name]
    return EventConsumer(spec.name, runtime.pool, registry, spec.apply)


async def deliver(
    runtime: Runtime, envelope: EventEnvelope, consumer: str = "review.handover", context: str = "intake"
) -> str:
    """Apply one message the way the consumer runner does (inbox + effect in one transaction)."""
    global CHANNEL
    CHANNEL += 1
    position = {"topic": f"zm.{envelope.jurisdiction}.{context}.events", "partition": 0, "offset": CHANNEL}
    return await runner(runtime, consumer).apply_once(envelope, registry.decode(envelope), position)


async def open_case(
    runtime: Runtime, case_id: str | None = None, *, jurisdiction: str = J, **kwargs: Any
) -> str:
    case_id = case_id or f"{jurisdiction}-2023-{uuid.uuid4().hex[:6]}"
    assert await deliver(
        runtime, intake_event(handed_over(**kwargs), case_id, jurisdiction=jurisdiction)
    ) == ("applied")
    return case_id


async def event_count(runtime: Runtime) -> int:
    count: int = await runtime.pool.fetchval("SELECT count(*) FROM events")
    return count


async def stream_types(runtime: Runtime, case_id: str) -> list[str]:
    return [e.event_type for e in await runtime.store.load(f"verification-{case_id}")]


async def decide(client: httpx.AsyncClient, case_id: str, on: str = "2023-01-12") -> None:
    """Proposed by the department, approved by the county's head the same day."""
    r = await client.post(
        f"/verifications/{case_id}/decision", json={**DECISION, "decided_on": on}, headers=HANDLER
    )
    assert r.status_code == 200, r.text
    assert r.json()["recorded"] == ["HandlingProposed"]
    r = await client.post(
        f"/verifications/{case_id}/decision/approve", json={"approved_on": on}, headers=HEAD
    )
    assert r.status_code == 200, r.text
    assert r.json()["recorded"] == ["HandlingDecided"]


async def find(client: httpx.AsyncClient, case_id: str, allegation: str, finding: str) -> None:
    r = await client.post(
        f"/verifications/{case_id}/findings",
        json={"allegation_id": allegation, "finding": finding, "basis": "谈话核实"},
        headers=HANDLER,
    )
    assert r.status_code == 200, r.text


async def concluded_case(
    runtime: Runtime,
    client: httpx.AsyncClient,
    findings: tuple[str, str],
    *,
    opened: date = date(2023, 1, 10),
    concluded: date = date(2023, 3, 1),
) -> str:
    case_id = await open_case(runtime, handed_on=opened)
    await decide(client, case_id, opened.isoformat())
    for i, value in enumerate(findings, start=1):
        await find(client, case_id, f"A{i}", value)
    r = await client.post(
        f"/verifications/{case_id}/conclude", json={"concluded_on": concluded.isoformat()}, headers=HANDLER
    )
    assert r.status_code == 200, r.text
    return case_id


# -- the handover consumer ----------------------------------------------------------------------


async def test_handover_opens_the_verification_once(runtime: Runtime, client: httpx.AsyncClient) -> None:
    [spec] = [s for s in definition.consumers(runtime) if s.name == "review.handover"]
    assert re.match(spec.pattern, events_topic(J, "intake"))
    assert not re.match(spec.pattern, events_topic(J, "review"))
    case_id = f"{J}-2023-000001"
    # A command that arrives before the handover finds no verification yet ...
    early = {"method": "close", "decided_on": "2023-01-12", "collective": True}
    r = await client.post(f"/verifications/{case_id}/decision", json=early, headers=HANDLER)
    assert (r.status_code, r.json()["code"]) == (404, "not_found")
    envelope = intake_event(handed_over(), case_id)
    assert await deliver(runtime, envelope) == "applied"
    assert await deliver(runtime, envelope) == "duplicate"  # redelivery of the same event
    # A second, distinct handover of the same matter opens nothing new.
    again = intake_event(handed_over(handed_on=date(2023, 1, 20)), case_id, version=2)
    assert await deliver(runtime, again) == "applied"
    # Other intake events are not review's business.
    accepted = intake_event(ReportAccepted(accepted_on=date(2023, 1, 5)), case_id, version=3)
    assert await deliver(runtime, accepted) == "applied"

    [opened] = await runtime.store.load(f"verification-{case_id}")
    assert opened.event_type == "VerificationOpened"
    assert opened.jurisdiction == J and opened.case_id == case_id
    assert opened.causation_id == envelope.event_id
    assert opened.correlation_id == envelope.correlation_id
    assert opened.actor.user_id == "system:review"
    assert await event_count(runtime) == 1

    r = await client.get(f"/verifications/{case_id}", headers=token("case_trial", J))
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["state"] == "open"
    assert view["opened_on"] == "2023-01-10"
    assert [a["allegation_id"] for a in view["allegations"]] == ["A1", "A2"]
    # ... and succeeds once it has arrived.
    r = await client.post(f"/verifications/{case_id}/decision", json=early, headers=HANDLER)
    assert r.status_code == 200, r.text


# -- decision, findings, conclusion over HTTP ----------------------------------------------------


async def test_decide_find_conclude(runtime: Runtime, client: httpx.AsyncClient) -> None:
    case_id = await open_case(runtime)
    await decide(client, case_id)
    await find(client, case_id, "A1", "untrue")
    await find(client, case_id, "A2", "not_proven")
    r = await client.post(
        f"/verifications/{case_id}/conclude", json={"concluded_on": "2023-03-01"}, headers=HANDLER
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["recorded"] == ["VerificationConcluded"]
    view = body["verification"]
    assert view["state"] == "concluded"
    assert view["eligible_for_pool"] is True
    assert [p["allegation_id"] for p in view["untrue_points"]] == ["A1"]
    assert view["decision"]["approved_by"] == "head-331122"
    assert view["revision"] == 0 and view["reopenings"] == []
    assert {k: v["finding"] for k, v in view["findings"].items()} == {"A1": "untrue", "A2": "not_proven"}
    assert await stream_types(runtime, case_id) == [
        "VerificationOpened",
        "HandlingProposed",
        "HandlingDecided",
        "FindingRecorded",
        "FindingRecorded",
        "VerificationConcluded",
    ]
    [concluded] = await runtime.store.load(f"verification-{case_id}", after_version=5)
    assert concluded.payload["findings"] == {"A1": "untrue", "A2": "not_proven"}
    assert concluded.payload["received_on"] == "2023-01-01"
    assert concluded.actor.role == "handling_department"
    assert concluded.payload["revision"] == 0

    states = await client.get(
        "/verifications", params={"jurisdiction": J, "state": "concluded"}, headers=HANDLER
    )
    assert [v["case_id"] for v in states.json()] == [case_id]
    opened = await client.get("/verifications", params={"jurisdiction": J, "state": "open"}, headers=HANDLER)
    assert opened.json() == []


async def problem(
    runtime: Runtime, client: httpx.AsyncClient, path: str, body: dict[str, Any], status: int
) -> dict[str, Any]:
    """Post a command expected to fail; the answer is a problem and nothing is written."""
    before = await event_count(runtime)
    r = await client.post(path, json=body, headers=HANDLER)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert await event_count(runtime) == before
    answer: dict[str, Any] = r.json()
    return answer


async def test_bad_decisions_are_refused_and_write_nothing(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    case_id = await open_case(runtime)
    path = f"/verifications/{case_id}/decision"
    good = {"method": "talk_inquiry", "decided_on": "2023-01-12", "collective": True}

    p = await problem(runtime, client, path, {**good, "collective": False}, 422)
    assert (p["code"], p["field"]) == ("collective_decision_required", "collective")
    p = await problem(runtime, client, path, {**good, "collective": "yes"}, 422)
    assert (p["code"], p["field"]) == ("invalid_input", "body.collective")
    # The department names no approver: the head approves in a session of their own.
    p = await problem(runtime, client, path, {**good, "approved_by": "head-1"}, 422)
    assert (p["code"], p["field"]) == ("invalid_input", "body.approved_by")
    p = await problem(runtime, client, path, {**good, "method": "forget_it"}, 422)
    assert p["field"] == "body.method"
    p = await problem(runtime, client, path, {**good, "decided_on": "2023-01-09"}, 422)
    assert (p["code"], p["field"]) == ("date_before_previous_step", "decided_on")
    p = await problem(runtime, client, f"/verifications/{J}-2023-nothing/decision", good, 404)
    assert p["code"] == "not_found"

    r = await client.post(path, json=good, headers=HANDLER)
    assert r.status_code == 200, r.text
    p = await problem(runtime, client, path, good, 409)
    assert p["code"] == "proposal_pending"
    r = await client.post(f"{path}/approve", json={"approved_on": "2023-01-12"}, headers=HEAD)
    assert r.status_code == 200, r.text
    p = await problem(runtime, client, path, good, 409)
    assert p["code"] == "already_decided"


async def test_bad_findings_are_refused_and_write_nothing(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    case_id = await open_case(runtime)
    path = f"/verifications/{case_id}/findings"
    good = {"allegation_id": "A1", "finding": "untrue", "basis": "谈话核实"}

    p = await problem(runtime, client, path, good, 409)
    assert p["code"] == "wrong_state"  # no decision yet
    await decide(client, case_id)
    p = await problem(runtime, client, path, {**good, "allegation_id": "A9"}, 422)
    assert (p["code"], p["field"]) == ("unknown_allegation", "allegation_id")
    p = await problem(runtime, client, path, {**good, "finding": "maybe"}, 422)
    assert p["field"] == "body.finding"
    p = await problem(runtime, client, path, {**good, "basis": ""}, 422)
    assert p["field"] == "body.basis"
    accusation = {**good, "finding": "false_accusation", "referred_on": "2023-02-01"}
    for stale in ({"approved_by": "city-head"}, {"approval_jurisdiction": "331100"}):
        p = await problem(runtime, client, path, {**accusation, **stale}, 422)
        assert (p["code"], p["field"]) == ("invalid_input", f"body.{next(iter(stale))}")
    no_date = {k: v for k, v in accusation.items() if k != "referred_on"}
    p = await problem(runtime, client, path, no_date, 422)
    assert (p["code"], p["field"]) == ("referral_date_required", "referred_on")

    await find(client, case_id, "A1", "untrue")
    p = await problem(runtime, client, path, {**good, "finding": "true"}, 409)
    assert (p["code"], p["field"]) == ("already_recorded", "allegation_id")


async def propose_false_accusation(
    client: httpx.AsyncClient, case_id: str, allegation: str, referred_on: str = "2023-02-01"
) -> httpx.Response:
    return await client.post(
        f"/verifications/{case_id}/findings",
        json={
            "allegation_id": allegation,
            "finding": "false_accusation",
            "basis": "捏造事实、故意陷害",
            "referred_on": referred_on,
        },
        headers=HANDLER,
    )


async def test_false_accusation_is_approved_by_a_city_head_and_referred(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    case_id = await open_case(runtime)
    await decide(client, case_id)
    r = await propose_false_accusation(client, case_id, "A1")
    assert r.status_code == 200, r.text
    assert r.json()["recorded"] == ["FalseAccusationProposed"]
    view = r.json()["verification"]
    assert "A1" not in view["findings"]
    assert view["false_accusation_proposals"]["A1"]["referred_on"] == "2023-02-01"
    assert view["false_accusation_proposals"]["A1"]["proposed_by"] == "u-1"
    await find(client, case_id, "A2", "untrue")
    p = await problem(
        runtime, client, f"/verifications/{case_id}/conclude", {"concluded_on": "2023-03-01"}, 409
    )
    assert p["code"] == "false_accusation_pending"
    assert "A1" in p["detail_zh"] and "A1" in p["detail_en"]

    approve = f"/verifications/{case_id}/false-accusations/A1/approve"
    before = await event_count(runtime)
    for who, status, code in (
        (HANDLER, 403, "role_forbidden"),  # the department cannot approve its own proposal
        (HEAD, 403, "false_accusation_needs_city_approval"),  # a county head is not the city
        (token("head", OTHER, user="head-331121"), 404, "not_found"),  # nor a head who cannot see it
    ):
        r = await client.post(approve, json={"approved_on": "2023-02-01"}, headers=who)
        assert (r.status_code, r.json()["code"]) == (status, code), r.text
    county = (await client.post(approve, json={"approved_on": "2023-02-01"}, headers=HEAD)).json()
    assert "市级" in county["detail_zh"] and "city" in county["detail_en"]
    assert await event_count(runtime) == before

    r = await client.post(approve, json={"approved_on": "2023-02-01"}, headers=CITY_HEAD)
    assert r.status_code == 200, r.text
    assert r.json()["recorded"] == ["FindingRecorded", "FalseAccusationReferred"]
    view = r.json()["verification"]
    assert view["false_accusation_proposals"] == {}
    assert view["findings"]["A1"]["approved_by"] == "head-331100"
    assert view["findings"]["A1"]["approval_jurisdiction"] == "331100"
    events = await runtime.store.load(f"verification-{case_id}")
    assert events[-2].actor.user_id == "head-331100" and events[-2].actor.role == "head"
    again = await client.post(approve, json={"approved_on": "2023-02-01"}, headers=CITY_HEAD)
    assert (again.status_code, again.json()["code"]) == (404, "not_found")

    r = await client.get("/false-accusations", params={"jurisdiction": J}, headers=token("auditor", J))
    assert r.status_code == 200, r.text
    [referred] = r.json()
    assert referred["case_id"] == case_id and referred["allegation_id"] == "A1"
    assert referred["referred_to"] == "案件监督管理室"
    assert (referred["approved_by"], referred["approval_jurisdiction"]) == ("head-331100", "331100")
    other = await client.get("/false-accusations", headers=token("auditor", OTHER))
    assert other.json() == []


async def test_the_city_head_approves_a_county_false_accusation_without_holding_the_county(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    """The directory's city head holds 331100 only: a county's 诬告陷害 is still theirs to read and
    approve (市级以上审批); the county's other verifications stay out of their sight."""
    city_only = token("head", "331100", user="head-331100")
    plain, proposed = await open_case(runtime), await open_case(runtime)
    for case_id in (plain, proposed):
        await decide(client, case_id)
    assert (await client.get(f"/verifications/{plain}", headers=city_only)).status_code == 404
    assert (await propose_false_accusation(client, proposed, "A1")).status_code == 200
    seen = await client.get(f"/verifications/{proposed}", headers=city_only)
    assert seen.status_code == 200 and "A1" in seen.json()["false_accusation_proposals"]
    approve = f"/verifications/{proposed}/false-accusations/A1/approve"
    r = await client.post(approve, json={"approved_on": "2023-02-01"}, headers=city_only)
    assert r.status_code == 200, r.text
    assert r.json()["verification"]["findings"]["A1"]["approved_by"] == "head-331100"
    decision = await client.post(
        f"/verifications/{plain}/decision/approve", json={"approved_on": "2023-01-12"}, headers=city_only
    )
    assert decision.status_code == 404
    # Refusing the only 诬告陷害 takes the matter out of the city head's sight; the refusal still
    # answers what it recorded.
    refused = await open_case(runtime)
    await decide(client, refused)
    assert (await propose_false_accusation(client, refused, "A1")).status_code == 200
    r = await client.post(
        f"/verifications/{refused}/false-accusations/A1/refuse",
        json={"refused_on": "2023-02-01", "reason": "证据不足以认定诬告陷害"},
        headers=city_only,
    )
    assert r.status_code == 200, r.text
    assert r.json()["recorded"] == ["FalseAccusationRefused"]
    assert (await client.get(f"/verifications/{refused}", headers=city_only)).status_code == 404


async def test_a_refused_false_accusation_is_found_again_and_an_honest_mistake_never_proposed(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    case_id = await open_case(runtime)
    await decide(client, case_id)
    assert (await propose_false_accusation(client, case_id, "A1")).status_code == 200
    refuse = f"/verifications/{case_id}/false-accusations/A1/refuse"
    p = await problem(runtime, client, refuse, {"refused_on": "2023-02-02", "reason": "证据不足"}, 403)
    assert p["code"] == "role_forbidden"
    r = await client.post(refuse, json={"refused_on": "2023-02-02", "reason": "  "}, headers=CITY_HEAD)
    assert (r.status_code, r.json()["field"]) == (422, "body.reason")
    r = await client.post(refuse, json={"refused_on": "2023-02-02", "reason": "证据不足"}, headers=CITY_HEAD)
    assert r.status_code == 200, r.text
    assert r.json()["recorded"] == ["FalseAccusationRefused"]
    view = r.json()["verification"]
    assert view["false_accusation_proposals"] == {}
    assert view["false_accusation_refusals"] == [
        {"allegation_id": "A1", "refused_on": "2023-02-02", "reason": "证据不足", "refused_by": "head-331100"}
    ]
    await find(client, case_id, "A1", "untrue")

    await find(client, case_id, "A2", "honest_mistake")
    r = await propose_false_accusation(client, case_id, "A2", "2023-02-02")
    assert (r.status_code, r.json()["code"]) == (409, "honest_mistake_not_false_accusation")


async def test_the_head_approves_the_proposed_decision_in_person(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    case_id = await open_case(runtime)
    path = f"/verifications/{case_id}/decision"
    r = await client.post(path, json={**DECISION, "note": "集体研究"}, headers=HANDLER)
    assert r.status_code == 200, r.text
    view = r.json()["verification"]
    assert view["state"] == "proposed" and view["decision"] is None
    assert view["proposal"] == {
        "method": "preliminary_verification",
        "decided_on": "2023-01-12",
        "note": "集体研究",
        "proposed_by": "u-1",
    }
    listed = await client.get("/verifications", params={"state": "proposed"}, headers=HEAD)
    assert [v["case_id"] for v in listed.json()] == [case_id]
    p = await problem(
        runtime,
        client,
        f"/verifications/{case_id}/findings",
        {"allegation_id": "A1", "finding": "untrue", "basis": "b"},
        409,
    )
    assert p["code"] == "wrong_state"  # findings wait for the approved decision

    before = await event_count(runtime)
    for who, status, code in (
        (HANDLER, 403, "role_forbidden"),  # the department cannot approve
        (token("head", OTHER, user="head-331121"), 404, "not_found"),  # another county's head
    ):
        r = await client.post(f"{path}/approve", json={"approved_on": "2023-01-13"}, headers=who)
        assert (r.status_code, r.json()["code"]) == (status, code), r.text
        r = await client.post(
            f"{path}/send-back", json={"sent_back_on": "2023-01-13", "reason": "r"}, headers=who
        )
        assert (r.status_code, r.json()["code"]) == (status, code), r.text
    r = await client.post(f"{path}/approve", json={"approved_on": "2023-01-11"}, headers=HEAD)
    assert (r.status_code, r.json()["field"]) == (422, "approved_on")
    assert await event_count(runtime) == before

    # Sent back with the reason; the department proposes again, and the head approves.
    r = await client.post(
        f"{path}/send-back", json={"sent_back_on": "2023-01-13", "reason": "须补充研究"}, headers=HEAD
    )
    assert r.status_code == 200, r.text
    view = r.json()["verification"]
    assert (view["state"], view["proposal"]) == ("open", None)
    assert view["sent_back"] == [
        {"sent_back_on": "2023-01-13", "reason": "须补充研究", "sent_back_by": "head-331122"}
    ]
    r = await client.post(f"{path}/approve", json={"approved_on": "2023-01-13"}, headers=HEAD)
    assert (r.status_code, r.json()["code"]) == (409, "no_pending_proposal")
    r = await client.post(path, json={**DECISION, "decided_on": "2023-01-14"}, headers=HANDLER)
    assert r.status_code == 200, r.text
    named = token("head", J, user="head-331122", name="王书记")
    r = await client.post(f"{path}/approve", json={"approved_on": "2023-01-15"}, headers=named)
    assert r.status_code == 200, r.text
    view = r.json()["verification"]
    assert view["state"] == "decided" and view["proposal"] is None
    assert view["decision"] == {
        "method": "preliminary_verification",
        "decided_on": "2023-01-14",
        "approved_by": "head-331122",
        "note": "",
        "approved_on": "2023-01-15",
        "approver_name": "王书记",
    }
    *_, decided = await runtime.store.load(f"verification-{case_id}")
    assert decided.event_type == "HandlingDecided"
    assert (decided.actor.user_id, decided.actor.role) == ("head-331122", "head")
    await find(client, case_id, "A1", "untrue")


async def test_conclude_with_missing_findings_names_them(runtime: Runtime, client: httpx.AsyncClient) -> None:
    case_id = await open_case(runtime, allegations=3)
    await decide(client, case_id)
    await find(client, case_id, "A2", "untrue")
    p = await problem(
        runtime, client, f"/verifications/{case_id}/conclude", {"concluded_on": "2023-03-01"}, 422
    )
    assert p["code"] == "findings_missing"
    assert "A1" in p["detail_en"] and "A3" in p["detail_en"] and "A2" not in p["detail_en"]
    assert p["detail_zh"] == "以下反映问题尚未认定：A1、A3"


# -- sweep (大起底) --------------------------------------------------------------------------------


async def test_sweep_screens_eligible_matters_of_three_years_once(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    eligible = await concluded_case(runtime, client, ("untrue", "not_proven"))
    true_one = await concluded_case(runtime, client, ("untrue", "partly_true"))
    old = await concluded_case(
        runtime, client, ("untrue", "untrue"), opened=date(2020, 1, 2), concluded=date(2020, 6, 29)
    )
    edge = await concluded_case(
        runtime, client, ("untrue", "untrue"), opened=date(2020, 1, 2), concluded=date(2020, 6, 30)
    )
    still_open = await open_case(runtime)
    sweepers = token("case_management", J)
    body = {
        "jurisdiction": J,
        "as_of": "2023-06-30",
        "priority_flags": {eligible: ["reputation", "work_record"]},
    }

    # Flags for a matter the sweep does not screen: refused, naming it, and nothing written.
    before = await event_count(runtime)
    for stray in (true_one, old, still_open):
        r = await client.post(
            "/sweeps", json={**body, "priority_flags": {stray: ["reputation"]}}, headers=sweepers
        )
        assert r.status_code == 422, r.text
        assert (r.json()["code"], r.json()["field"]) == (
            "flags_for_unscreened_case",
            f"priority_flags.{stray}",
        )
    assert await event_count(runtime) == before

    r = await client.post("/sweeps", json=body, headers=sweepers)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "sweep_id": f"{J}-sweep-2023-06-30",
        "screened": [edge, eligible],
        "newly_screened": [edge, eligible],
    }
    after_first = await event_count(runtime)
    assert after_first == before + 2
    [screened] = await runtime.store.load(f"verification-{eligible}", after_version=6)
    assert screened.event_type == "CandidateScreened"
    assert screened.payload == {
        "sweep_id": f"{J}-sweep-2023-06-30",
        "screened_on": "2023-06-30",
        "priority_flags": ["reputation", "work_record"],
    }

    again = await client.post("/sweeps", json=body, headers=HANDLER)
    assert again.status_code == 200, again.text
    assert again.json()["screened"] == [edge, eligible]
    assert again.json()["newly_screened"] == []
    assert await event_count(runtime) == after_first

    view = (await client.get(f"/verifications/{eligible}", headers=HANDLER)).json()
    assert view["screenings"] == [screened.payload]

    other = await client.post("/sweeps", json={**body, "jurisdiction": OTHER}, headers=sweepers)
    assert (other.status_code, other.json()["code"]) == (403, "jurisdiction_forbidden")


# -- quarterly results ----------------------------------------------------------------------------


async def test_results_reported_back_once_per_quarter(runtime: Runtime, client: httpx.AsyncClient) -> None:
    eligible = await concluded_case(runtime, client, ("untrue", "untrue"))
    true_one = await concluded_case(runtime, client, ("true", "untrue"))
    await concluded_case(runtime, client, ("untrue", "untrue"), concluded=date(2023, 4, 3))  # Q2
    body = {"jurisdiction": J, "quarter": "2023Q1", "reported_on": "2023-04-05"}

    p = await problem(runtime, client, "/results-reports", {**body, "reported_on": "2023-03-15"}, 422)
    assert (p["code"], p["field"]) == ("quarter_not_over", "reported_on")
    p = await problem(runtime, client, "/results-reports", {**body, "quarter": "2023Q5"}, 422)
    assert p["field"] == "body.quarter"

    r = await client.post("/results-reports", json=body, headers=HANDLER)
    assert r.status_code == 200, r.text
    assert r.json()["matters"] == {eligible: "eligible", true_one: "true"}
    [reported] = await runtime.store.load(f"results-{J}-2023Q1")
    assert reported.event_type == "ResultsReportedBack" and reported.case_id == f"results-{J}-2023Q1"

    p = await problem(runtime, client, "/results-reports", body, 409)
    assert p["code"] == "already_reported"

    listed = await client.get(
        "/results-reports", params={"jurisdiction": J}, headers=token("letters_office", J)
    )
    assert listed.status_code == 200, listed.text
    assert [x["quarter"] for x in listed.json()] == ["2023Q1"]


# -- who may see and do what ---------------------------------------------------------------------


async def test_other_jurisdiction_sees_nothing(runtime: Runtime, client: httpx.AsyncClient) -> None:
    case_id = await open_case(runtime)
    outsider = token("head", OTHER)
    r = await client.get(f"/verifications/{case_id}", headers=outsider)
    assert (r.status_code, r.json()["code"]) == (404, "not_found")
    r = await client.get(f"/verifications/{J}-2023-absent", headers=outsider)
    assert r.status_code == 404
    r = await client.get("/verifications", headers=outsider)
    assert r.json() == []
    r = await client.get("/verifications", params={"jurisdiction": J}, headers=outsider)
    assert (r.status_code, r.json()["code"]) == (403, "jurisdiction_forbidden")

    before = await event_count(runtime)
    r = await client.post(
        f"/verifications/{case_id}/decision",
        json={"method": "close", "decided_on": "2023-01-12", "collective": True},
        headers=token("handling_department", OTHER),
    )
    assert (r.status_code, r.json()["code"]) == (404, "not_found")
    assert await event_count(runtime) == before

    city = await client.get(f"/verifications/{case_id}", headers=token("auditor", "331100", J))
    assert city.status_code == 200


async def test_roles_are_refused(runtime: Runtime, client: httpx.AsyncClient) -> None:
    case_id = await open_case(runtime)
    before = await event_count(runtime)
    decision = {"method": "close", "decided_on": "2023-01-12", "collective": True}
    for role in ("letters_office", "case_trial", "head", "auditor", "organisation_department"):
        r = await client.post(f"/verifications/{case_id}/decision", json=decision, headers=token(role, J))
        assert (r.status_code, r.json()["code"]) == (403, "role_forbidden"), role
    for role in ("letters_office", "case_trial", "handling_department", "auditor", "case_management"):
        for verb, body in (
            ("decision/approve", {"approved_on": "2023-01-12"}),
            ("decision/send-back", {"sent_back_on": "2023-01-12", "reason": "r"}),
            ("false-accusations/A1/approve", {"approved_on": "2023-01-12"}),
            ("false-accusations/A1/refuse", {"refused_on": "2023-01-12", "reason": "r"}),
        ):
            r = await client.post(
                f"/verifications/{case_id}/{verb}", json=body, headers=token(role, "331100", J)
            )
            assert (r.status_code, r.json()["code"]) == (403, "role_forbidden"), (role, verb)
    r = await client.post(
        "/sweeps", json={"jurisdiction": J, "as_of": "2023-06-30"}, headers=token("letters_office", J)
    )
    assert r.status_code == 403
    r = await client.post(
        "/results-reports",
        json={"jurisdiction": J, "quarter": "2023Q1", "reported_on": "2023-04-01"},
        headers=token("case_management", J),
    )
    assert r.status_code == 403
    for role in ("letters_office", "organisation_department"):
        r = await client.get(f"/verifications/{case_id}", headers=token(role, J))
        assert (r.status_code, r.json()["code"]) == (403, "role_forbidden"), role
    r = await client.get(f"/verifications/{case_id}")
    assert (r.status_code, r.json()["code"]) == (401, "unauthorized")
    assert await event_count(runtime) == before


async def test_openapi_lists_the_routes(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    for path in (
        "/verifications/{case_id}/decision",
        "/verifications/{case_id}/decision/approve",
        "/verifications/{case_id}/decision/send-back",
        "/verifications/{case_id}/findings",
        "/verifications/{case_id}/false-accusations/{allegation_id}/approve",
        "/verifications/{case_id}/false-accusations/{allegation_id}/refuse",
        "/verifications/{case_id}/conclude",
        "/sweeps",
        "/results-reports",
        "/verifications",
        "/false-accusations",
    ):
        assert path in spec["paths"], path


# -- 诬告陷害 after the conclusion; 补充核查 ---------------------------------------------------------


async def test_a_false_accusation_after_the_conclusion_revises_it(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    case_id = await concluded_case(runtime, client, ("not_proven", "true"))
    view = (await client.get(f"/verifications/{case_id}", headers=HANDLER)).json()
    assert (view["state"], view["eligible_for_pool"], view["revision"]) == ("concluded", False, 0)
    # A point found true stays true; the point not proven may turn out a false accusation.
    r = await propose_false_accusation(client, case_id, "A2", "2023-03-10")
    assert (r.status_code, r.json()["code"]) == (409, "false_accusation_only_on_untrue_point")
    r = await client.post(
        f"/verifications/{case_id}/findings",
        json={"allegation_id": "A1", "finding": "untrue", "basis": "b"},
        headers=HANDLER,
    )
    assert (r.status_code, r.json()["code"]) == (409, "wrong_state")
    r = await propose_false_accusation(client, case_id, "A1", "2023-03-10")
    assert r.status_code == 200, r.text
    assert r.json()["verification"]["state"] == "concluded"
    r = await client.post(
        f"/verifications/{case_id}/false-accusations/A1/approve",
        json={"approved_on": "2023-03-09"},
        headers=CITY_HEAD,
    )
    assert r.status_code == 200, r.text
    assert r.json()["recorded"] == ["FindingRecorded", "FalseAccusationReferred", "VerificationConcluded"]
    view = r.json()["verification"]
    assert (view["state"], view["revision"], view["concluded_on"]) == ("concluded", 1, "2023-03-09")
    assert view["findings"]["A1"]["finding"] == "false_accusation"
    assert view["eligible_for_pool"] is False  # A2 was found true: still not eligible
    *_, revised = await runtime.store.load(f"verification-{case_id}")
    assert revised.event_type == "VerificationConcluded"
    assert revised.payload["revision"] == 1
    assert revised.payload["findings"] == {"A1": "false_accusation", "A2": "true"}


async def test_a_not_proven_matter_turned_false_accusation_becomes_eligible(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    case_id = await concluded_case(runtime, client, ("not_proven", "not_proven"))
    assert (await propose_false_accusation(client, case_id, "A2", "2023-03-10")).status_code == 200
    r = await client.post(
        f"/verifications/{case_id}/false-accusations/A2/approve",
        json={"approved_on": "2023-03-10"},
        headers=CITY_HEAD,
    )
    assert r.status_code == 200, r.text
    view = r.json()["verification"]
    assert (view["eligible_for_pool"], view["revision"]) == (True, 1)
    assert [p["allegation_id"] for p in view["untrue_points"]] == ["A2"]


def re_review(
    case_id: str, *, complete: bool, passed: bool | None = None, on: date = date(2023, 4, 3)
) -> EventEnvelope:
    reviewed = ReReviewRecorded(
        reviewed_on=on,
        verification_complete=complete,
        conclusion_clear=True,
        disposal_adequate=True,
        expected_effect="澄清后可消除不良影响",
        members={"letters_office": "l", "case_trial": "t", "case_management": "m"},
        passed=complete if passed is None else passed,
        reasons=[] if complete else ["核查不全面，退回补充核查后重新复核"],
    )
    return intake_event(reviewed, case_id, stream="clarification")


async def send_back(runtime: Runtime, envelope: EventEnvelope) -> str:
    return await deliver(runtime, envelope, consumer="review.re-review", context="clarification")


async def test_a_second_persons_re_review_reopens_the_matters_verification(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    """The second person of a matter (clarification <matter>-2) re-reviewed: the matter's one
    verification reopens."""
    case_id = await concluded_case(runtime, client, ("untrue", "untrue"))
    assert await send_back(runtime, re_review(f"{case_id}-2", complete=False)) == "applied"
    view = (await client.get(f"/verifications/{case_id}", headers=HANDLER)).json()
    assert view["state"] == "reopened"


async def test_a_re_review_finding_the_verification_incomplete_reopens_it(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    [spec] = [s for s in definition.consumers(runtime) if s.name == "review.re-review"]
    assert re.match(spec.pattern, events_topic(J, "clarification"))
    assert not re.match(spec.pattern, events_topic(J, "intake"))
    case_id = await concluded_case(runtime, client, ("untrue", "not_proven"))
    before = await event_count(runtime)
    # A passing re-review, or one failing on other checks, is not review's business.
    assert await send_back(runtime, re_review(case_id, complete=True)) == "applied"
    assert await send_back(runtime, re_review(case_id, complete=True, passed=False)) == "applied"
    assert await event_count(runtime) == before

    incomplete = re_review(case_id, complete=False)
    assert await send_back(runtime, incomplete) == "applied"
    assert await send_back(runtime, incomplete) == "duplicate"
    *_, reopened = await runtime.store.load(f"verification-{case_id}")
    assert reopened.event_type == "VerificationReopened"
    assert reopened.payload["origin"] == "re_review" and reopened.payload["reopened_on"] == "2023-04-03"
    assert reopened.causation_id == incomplete.event_id and reopened.actor.user_id == "system:review"
    assert await event_count(runtime) == before + 1

    view = (await client.get(f"/verifications/{case_id}", headers=HANDLER)).json()
    assert view["state"] == "reopened"
    assert view["reopenings"] == [
        {"reopened_on": "2023-04-03", "origin": "re_review", "reason": "核查不全面，退回补充核查后重新复核"}
    ]
    listed = await client.get("/verifications", params={"state": "reopened"}, headers=HANDLER)
    assert [v["case_id"] for v in listed.json()] == [case_id]

    # The department finds again (replacing a finding) and concludes again: revision 1.
    r = await client.post(
        f"/verifications/{case_id}/findings",
        json={"allegation_id": "A2", "finding": "untrue", "basis": "补充核查", "found_on": "2023-04-10"},
        headers=HANDLER,
    )
    assert r.status_code == 200, r.text
    r = await client.post(
        f"/verifications/{case_id}/conclude", json={"concluded_on": "2023-04-12"}, headers=HANDLER
    )
    assert r.status_code == 200, r.text
    view = r.json()["verification"]
    assert (view["state"], view["revision"], view["concluded_on"]) == ("concluded", 1, "2023-04-12")
    assert {k: v["finding"] for k, v in view["findings"].items()} == {"A1": "untrue", "A2": "untrue"}
    *_, concluded = await runtime.store.load(f"verification-{case_id}")
    assert (concluded.event_type, concluded.payload["revision"]) == ("VerificationConcluded", 1)

    # A second send-back after the later conclusion reopens it again.
    assert await send_back(runtime, re_review(case_id, complete=False, on=date(2023, 4, 20))) == "applied"
    view = (await client.get(f"/verifications/{case_id}", headers=HANDLER)).json()
    assert view["state"] == "reopened" and len(view["reopenings"]) == 2


async def test_a_send_back_of_a_verification_not_concluded_changes_nothing(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    case_id = await open_case(runtime)
    await decide(client, case_id)
    before = await event_count(runtime)
    assert await send_back(runtime, re_review(case_id, complete=False)) == "applied"
    assert await send_back(runtime, re_review(f"{J}-2023-unknown", complete=False)) == "applied"
    assert await event_count(runtime) == before
    view = (await client.get(f"/verifications/{case_id}", headers=HANDLER)).json()
    assert view["state"] == "decided" and view["reopenings"] == []
