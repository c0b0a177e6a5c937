"""Intake against the real PostgreSQL: the HTTP API, reporter confidentiality, review's conclusions
and inbound agency reports driven through the consumers' own code."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
import structlog
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from pydantic import BaseModel

from services.intake.api import build_api
from services.intake.inbound import InboundConsumer, intake_public_key, seal_for_intake
from services.intake.main import definition
from shared.auth import Principal, mint
from shared.consumer import DeadLetter, EventConsumer
from shared.envelope import GENESIS_HASH, Actor, EventEnvelope, seal
from shared.events import registry
from shared.events.common import Allegation, Subject
from shared.events.review import VerificationConcluded
from shared.runtime import ConsumerSpec, Runtime
from tests.integration.conftest import fresh_runtime

COUNTY = "331122"
CITY = "331100"
IDENTITY = {"name": "郑实名", "contact": "13812345678", "id_number": "332526198805050022"}
PERSON = {"kind": "person", "name": "李某", "post": "镇长", "unit": "缙云县某镇人民政府"}


@pytest.fixture
async def runtime() -> AsyncIterator[Runtime]:
    async with fresh_runtime(definition) as rt:
        yield rt


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_api(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as c:
        yield c


def auth(role: str = "letters_office", *jurisdictions: str) -> dict[str, str]:
    principal = Principal(
        user_id=f"u-{role}", role=role, unit="缙云县纪委监委", jurisdictions=list(jurisdictions or [COUNTY])
    )
    return {"Authorization": f"Bearer {mint(principal)}"}


OFFICE = auth()
CITY_OFFICE = auth("letters_office", CITY)


def report_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "jurisdiction": COUNTY,
        "channel": "letter",
        "received_on": "2023-01-16",
        "real_name": True,
        "reporter": IDENTITY,
        "subjects": [PERSON],
        "allegations": [{"summary": "违规收受礼金"}, {"summary": "公车私用"}],
        "summary": "反映李某问题",
    }
    body.update(changes)
    return body


async def post(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], headers: dict[str, str] = OFFICE
) -> Any:
    response = await client.post(path, json=body, headers=headers)
    assert response.status_code in (200, 201), response.text
    return response.json()


async def register(client: httpx.AsyncClient, headers: dict[str, str] = OFFICE, **changes: Any) -> str:
    rid: str = (await post(client, "/reports", report_body(**changes), headers))["report_id"]
    return rid


async def accepted(client: httpx.AsyncClient, **changes: Any) -> str:
    rid = await register(client, **changes)
    await post(client, f"/reports/{rid}/log", {"logged_on": "2023-01-17"})
    await post(client, f"/reports/{rid}/accept", {"accepted_on": "2023-01-18"})
    return rid


async def written(runtime: Runtime) -> tuple[int, int, int]:
    """Events, outbox rows and numbering rows: what a rejected command must leave unchanged."""
    async with runtime.pool.acquire() as conn:
        return (
            await conn.fetchval("SELECT count(*) FROM events"),
            await conn.fetchval("SELECT count(*) FROM outbox"),
            await conn.fetchval("SELECT coalesce(sum(last), 0) FROM report_sequences"),
        )


async def stream(runtime: Runtime, report_id: str) -> list[str]:
    return [e.event_type for e in await runtime.store.load(f"report-{report_id}")]


def spec(runtime: Runtime, name: str) -> ConsumerSpec:
    return next(s for s in definition.consumers(runtime) if s.name == name)


def concluded(
    matter_id: str, concluded_on: date, jurisdiction: str = COUNTY
) -> tuple[EventEnvelope, BaseModel]:
    payload = VerificationConcluded(
        concluded_on=concluded_on,
        received_on=date(2023, 1, 16),
        findings={"A1": "untrue", "A2": "untrue"},
        untrue_points=[Allegation(allegation_id="A1", summary="违规收受礼金")],
        subjects=[Subject.model_validate(PERSON)],
        eligible_for_pool=True,
    )
    envelope = seal(
        event_type="VerificationConcluded",
        schema_version=1,
        stream_id=f"verification-{matter_id}",
        stream_version=3,
        case_id=matter_id,
        jurisdiction=jurisdiction,
        occurred_at=datetime.now(UTC),
        actor=Actor(user_id="system:review", role="system", unit="zhengming review"),
        correlation_id=uuid.uuid4(),
        causation_id=None,
        payload=payload.model_dump(mode="json"),
        prev_hash=GENESIS_HASH,
    )
    return envelope, registry.decode(envelope)


async def deliver(runtime: Runtime, name: str, envelope: EventEnvelope, payload: BaseModel) -> str:
    """Hand an event to a consumer as the runner does (inbox and effect in one transaction)."""
    s = spec(runtime, name)
    consumer = s.consumer_class(s.name, runtime.pool, registry, s.apply)
    return await consumer.apply_once(envelope, payload, {"topic": "t", "partition": 0, "offset": 0})


# ---- registration and confidentiality ----------------------------------------------------


async def test_a_registered_report_holds_no_reporter_identity_in_events_or_outbox(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    answer = await post(client, "/reports", report_body())
    assert answer["report_id"] == f"{COUNTY}-2023-000001"
    assert [a["allegation_id"] for a in answer["allegations"]] == ["A1", "A2"]
    assert await register(client) == f"{COUNTY}-2023-000002"
    assert await register(client, received_on="2024-01-02") == f"{COUNTY}-2024-000001"

    async with runtime.pool.acquire() as conn:
        payloads = [r["p"] for r in await conn.fetch("SELECT payload::text AS p FROM events")]
        bodies = [bytes(r["body"]).decode() for r in await conn.fetch("SELECT body FROM outbox")]
        first = json.loads(payloads[0])
    assert len(payloads) == 3
    for text in payloads + bodies:
        for value in IDENTITY.values():
            assert value not in text
    assert first["reporter"]["subject_id"] == first["reporter_subject_id"]
    assert first["reporter_subject_id"].startswith("reporter-")
    assert await runtime.store.verify() is None


async def test_the_identity_is_shown_to_the_letters_office_of_the_jurisdiction_only(
    client: httpx.AsyncClient,
) -> None:
    rid = await register(client)
    own = (await client.get(f"/reports/{rid}", headers=OFFICE)).json()
    assert own["reporter"] == IDENTITY and own["reporter_subject_id"].startswith("reporter-")
    for role in ("auditor", "handling_department", "case_trial", "case_management", "head"):
        seen = await client.get(f"/reports/{rid}", headers=auth(role))
        assert seen.status_code == 200
        assert seen.json()["reporter"] == {"masked": True}
        assert seen.json()["reporter_subject_id"] is None
        assert IDENTITY["name"] not in seen.text
    other = await client.get(f"/reports/{rid}", headers=auth("letters_office", "331121"))
    assert other.status_code == 404 and IDENTITY["name"] not in other.text
    refused = await client.get(f"/reports/{rid}", headers=auth("organisation_department"))
    assert refused.status_code == 403 and refused.json()["code"] == "role_forbidden"
    listing = await client.get("/reports", params={"jurisdiction": COUNTY}, headers=OFFICE)
    assert [r["report_id"] for r in listing.json()] == [rid]
    assert IDENTITY["name"] not in listing.text and "reporter" not in listing.text
    assert (
        await client.get("/reports", params={"jurisdiction": "331121"}, headers=OFFICE)
    ).status_code == 403
    assert (await client.get(f"/reports/{rid}")).status_code == 401


async def test_no_log_line_holds_the_identity(client: httpx.AsyncClient) -> None:
    with structlog.testing.capture_logs() as lines:
        rid = await register(client)
        await client.get(f"/reports/{rid}", headers=OFFICE)
        await client.post("/reports", json=report_body(real_name=False), headers=OFFICE)  # rejected
    text = json.dumps(lines, ensure_ascii=False, default=str)
    assert lines and all(value not in text for value in IDENTITY.values())


async def test_erasure_destroys_the_key_and_the_report_says_erased(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    city_rid = await register(client, CITY_OFFICE, jurisdiction=CITY)
    await post(client, f"/reports/{city_rid}/log", {"logged_on": "2023-01-17"}, CITY_OFFICE)
    lower = (
        await post(
            client,
            f"/reports/{city_rid}/send-down",
            {"sent_on": "2023-01-18", "to_jurisdiction": COUNTY},
            CITY_OFFICE,
        )
    )["lower_report_id"]
    subject = (await client.get(f"/reports/{lower}", headers=OFFICE)).json()["reporter_subject_id"]

    erased = await post(client, f"/reporters/{subject}/erase", {"erased_on": "2023-05-04"})
    assert erased["reports"] == [city_rid, lower]
    for rid, headers in ((lower, OFFICE), (city_rid, CITY_OFFICE)):
        assert (await client.get(f"/reports/{rid}", headers=headers)).json()["reporter"] == {"erased": True}
        assert (await stream(runtime, rid))[-1] == "ReporterErased"
    async with runtime.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM subject_keys WHERE subject_id = $1", subject) == 0
    assert await runtime.store.verify() is None  # the trail still holds without the key

    before = await written(runtime)
    again = await client.post(f"/reporters/{subject}/erase", json={"erased_on": "2023-05-05"}, headers=OFFICE)
    assert again.status_code == 409 and again.json()["code"] == "already_recorded"
    unknown = await client.post(
        "/reporters/reporter-nobody/erase", json={"erased_on": "2023-05-05"}, headers=OFFICE
    )
    assert unknown.status_code == 404
    assert await written(runtime) == before


# ---- disposition --------------------------------------------------------------------------


async def test_a_report_goes_from_logging_to_handover_with_its_repeats(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    rid = await register(client)
    logged = await post(client, f"/reports/{rid}/log", {"logged_on": "2023-01-20"})
    assert logged["deadlines"]["disposition_due"] == "2023-02-01"  # across the Spring Festival
    assert logged["deadlines"]["acceptance_notice_due"] == "2023-02-09"
    await post(client, f"/reports/{rid}/accept", {"accepted_on": "2023-01-28"})

    repeat = await register(client, real_name=False, reporter=None, channel="online")
    await post(client, f"/reports/{repeat}/log", {"logged_on": "2023-01-29"})
    merged = await post(
        client, f"/reports/{repeat}/merge", {"merged_on": "2023-01-29", "repeats_matter_id": rid}
    )
    assert merged["state"] == "repeat"
    second = await register(client, real_name=False, reporter=None)
    await post(client, f"/reports/{second}/log", {"logged_on": "2023-01-30"})
    merged = await post(
        client, f"/reports/{second}/merge", {"merged_on": "2023-01-30", "repeats_matter_id": repeat}
    )
    assert merged["repeats_matter_id"] == rid  # a repeat of a repeat points at the original

    await post(client, f"/reports/{rid}/notify", {"kind": "acceptance", "notified_on": "2023-01-30"})
    handed = await post(
        client, f"/reports/{rid}/hand-over", {"department": "第一监督检查室", "handed_on": "2023-01-31"}
    )
    assert handed["state"] == "handed_over"

    events = await runtime.store.load(f"report-{rid}")
    handover = events[-1]
    assert handover.event_type == "ReportHandedOver"
    assert handover.payload["repeat_count"] == 2 and handover.payload["real_name"] is True
    assert "reporter" not in json.dumps(handover.payload)
    detail = (await client.get(f"/reports/{rid}", headers=auth("auditor"))).json()
    assert detail["repeats"] == [repeat, second]
    assert detail["notified"] == {"acceptance": "2023-01-30"}


async def test_rejected_commands_write_nothing(client: httpx.AsyncClient, runtime: Runtime) -> None:
    rid = await register(client)
    before = await written(runtime)

    async def refused(path: str, body: dict[str, Any], status: int, code: str, field: str | None) -> None:
        response = await client.post(path, json=body, headers=OFFICE)
        assert response.status_code == status, response.text
        problem = response.json()
        assert problem["code"] == code and problem.get("field") == field, problem
        assert response.headers["content-type"] == "application/problem+json"

    await refused("/reports", report_body(reporter=None), 422, "reporter_required", "reporter")
    await refused("/reports", report_body(real_name=False), 422, "anonymous_with_identity", "reporter")
    await refused("/reports", report_body(channel="fax"), 422, "invalid_input", "body.channel")
    await refused("/reports", report_body(subjects=[]), 422, "invalid_input", "body.subjects")
    await refused(
        "/reports",
        report_body(subjects=[{"kind": "person", "name": "张某"}]),
        422,
        "subject_incomplete",
        "subjects.0.post",
    )
    await refused(
        "/reports",
        report_body(
            allegations=[{"allegation_id": "A1", "summary": "a"}, {"allegation_id": "A1", "summary": "b"}]
        ),
        422,
        "duplicate_allegation",
        "allegations",
    )
    await refused(
        "/reports", report_body(jurisdiction="331121"), 403, "jurisdiction_forbidden", "jurisdiction"
    )
    await refused(f"/reports/{rid}/accept", {"accepted_on": "2023-01-17"}, 409, "wrong_state", None)
    await refused(
        f"/reports/{rid}/log", {"logged_on": "2023-01-01"}, 422, "date_before_previous_step", "logged_on"
    )
    await refused(
        f"/reports/{rid}/hand-over", {"department": "d", "handed_on": "2023-01-20"}, 409, "wrong_state", None
    )
    await refused(
        f"/reports/{rid}/notify",
        {"kind": "acceptance", "notified_on": "2023-01-20"},
        409,
        "wrong_state",
        None,
    )
    await refused("/reports/331122-2023-999999/log", {"logged_on": "2023-01-17"}, 404, "not_found", None)
    await post(client, f"/reports/{rid}/log", {"logged_on": "2023-01-17"})
    before = await written(runtime)
    await refused(
        f"/reports/{rid}/send-up",
        {"sent_on": "2023-01-18", "to_jurisdiction": "331121"},
        422,
        "not_the_higher_level",
        "to_jurisdiction",
    )
    await refused(
        f"/reports/{rid}/send-down",
        {"sent_on": "2023-01-18", "to_jurisdiction": "331121"},
        422,
        "no_lower_level",
        "to_jurisdiction",
    )
    await refused(
        f"/reports/{rid}/merge",
        {"merged_on": "2023-01-18", "repeats_matter_id": "331122-2023-000404"},
        422,
        "unknown_matter",
        "repeats_matter_id",
    )
    await refused(
        f"/reports/{rid}/merge",
        {"merged_on": "2023-01-18", "repeats_matter_id": rid},
        422,
        "repeat_of_itself",
        "repeats_matter_id",
    )
    denied = await client.post(
        f"/reports/{rid}/accept", json={"accepted_on": "2023-01-18"}, headers=auth("auditor")
    )
    assert denied.status_code == 403 and denied.json()["code"] == "role_forbidden"
    assert await written(runtime) == before


async def test_a_county_sends_up_and_the_city_cannot(client: httpx.AsyncClient, runtime: Runtime) -> None:
    rid = await register(client)
    await post(client, f"/reports/{rid}/log", {"logged_on": "2023-01-17"})
    sent = await post(client, f"/reports/{rid}/send-up", {"sent_on": "2023-01-18", "to_jurisdiction": CITY})
    assert sent["state"] == "sent_up" and sent["sent_to"] == CITY

    city = await register(client, CITY_OFFICE, jurisdiction=CITY)
    await post(client, f"/reports/{city}/log", {"logged_on": "2023-01-17"}, CITY_OFFICE)
    before = await written(runtime)
    refused = await client.post(
        f"/reports/{city}/send-up",
        json={"sent_on": "2023-01-18", "to_jurisdiction": CITY},
        headers=CITY_OFFICE,
    )
    assert refused.status_code == 422 and refused.json()["code"] == "no_higher_level"
    assert await written(runtime) == before


async def test_sending_down_creates_the_county_report_and_its_response_deadline(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    city = await register(client, CITY_OFFICE, jurisdiction=CITY)
    await post(client, f"/reports/{city}/log", {"logged_on": "2023-01-19"}, CITY_OFFICE)
    sent = await post(
        client,
        f"/reports/{city}/send-down",
        {"sent_on": "2023-01-20", "to_jurisdiction": COUNTY},
        CITY_OFFICE,
    )
    lower = sent["lower_report_id"]
    assert lower == f"{COUNTY}-2023-000001" and sent["deadlines"]["sent_down_response_due"] == "2023-02-01"

    events = await runtime.store.load(f"report-{lower}")
    assert [e.event_type for e in events] == ["ReportReceived"]
    assert events[0].case_id == lower and events[0].jurisdiction == COUNTY
    city_event = (await runtime.store.load(f"report-{city}"))[0]
    assert events[0].payload["reporter"] == city_event.payload["reporter"]  # copied as is
    county_view = (await client.get(f"/reports/{lower}", headers=OFFICE)).json()
    assert county_view["channel"] == "referred_down" and county_view["source_reference"] == city
    assert county_view["reporter"] == IDENTITY
    assert (await client.get(f"/reports/{lower}", headers=CITY_OFFICE)).status_code == 404

    async def overdue(as_of: str) -> list[tuple[str, str]]:
        response = await client.get(
            "/overdue", params={"jurisdiction": CITY, "as_of": as_of}, headers=CITY_OFFICE
        )
        assert response.status_code == 200, response.text
        return [(r["report_id"], r["kind"]) for r in response.json()]

    assert await overdue("2023-02-01") == []
    assert await overdue("2023-02-02") == [(city, "sent_down_response")]
    await post(client, f"/reports/{lower}/log", {"logged_on": "2023-02-02"})
    await post(client, f"/reports/{lower}/accept", {"accepted_on": "2023-02-03"})
    assert await overdue("2023-02-02") == [(city, "sent_down_response")]  # as it stood that day
    assert await overdue("2023-02-06") == []


async def test_the_overdue_list_shows_late_dispositions_and_notices(client: httpx.AsyncClient) -> None:
    late = await register(client)
    await post(client, f"/reports/{late}/log", {"logged_on": "2023-01-20"})
    on_time = await accepted(client)
    await post(client, f"/reports/{on_time}/notify", {"kind": "acceptance", "notified_on": "2023-01-19"})

    response = await client.get(
        "/overdue", params={"jurisdiction": COUNTY, "as_of": "2023-02-10"}, headers=auth("auditor")
    )
    assert response.status_code == 200
    assert response.json() == [
        {"report_id": late, "kind": "disposition", "due_on": "2023-02-01", "days_overdue": 9},
        {"report_id": late, "kind": "acceptance_notice", "due_on": "2023-02-09", "days_overdue": 1},
    ]
    refused = await client.get(
        "/overdue", params={"jurisdiction": COUNTY, "as_of": "2023-02-10"}, headers=auth("head")
    )
    assert refused.status_code == 403


# ---- review's conclusions -----------------------------------------------------------------


async def test_a_conclusion_arriving_twice_or_before_handover_converges(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    matter = await accepted(client)  # not handed over yet
    envelope, payload = concluded(matter, date(2023, 3, 1))
    assert await deliver(runtime, "intake.results", envelope, payload) == "applied"
    assert await deliver(runtime, "intake.results", envelope, payload) == "duplicate"
    later, later_payload = concluded(matter, date(2023, 3, 9))  # another conclusion event
    assert await deliver(runtime, "intake.results", later, later_payload) == "applied"
    assert (await stream(runtime, matter)).count("ReportResultDue") == 1

    await post(client, f"/reports/{matter}/hand-over", {"department": "d", "handed_on": "2023-03-02"})
    detail = (await client.get(f"/reports/{matter}", headers=OFFICE)).json()
    assert detail["concluded_on"] == "2023-03-01"
    assert detail["deadlines"]["result_notice_due"] == "2023-03-22"
    await post(client, f"/reports/{matter}/notify", {"kind": "result", "notified_on": "2023-03-10"})
    assert (await stream(runtime, matter))[-1] == "ReporterNotified"


async def test_real_name_repeats_get_the_result_due_whatever_the_order(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    async def scenario(conclude_first: bool) -> list[list[str]]:
        matter = await accepted(client, real_name=False, reporter=None)
        repeat = await register(client)
        anonymous = await register(client, real_name=False, reporter=None)
        for rid in (repeat, anonymous):
            await post(client, f"/reports/{rid}/log", {"logged_on": "2023-01-17"})
        envelope, payload = concluded(matter, date(2023, 3, 1))
        if conclude_first:
            await deliver(runtime, "intake.results", envelope, payload)
        for rid in (repeat, anonymous):
            await post(
                client, f"/reports/{rid}/merge", {"merged_on": "2023-01-18", "repeats_matter_id": matter}
            )
        if not conclude_first:
            await deliver(runtime, "intake.results", envelope, payload)
        return [await stream(runtime, rid) for rid in (matter, repeat, anonymous)]

    first = await scenario(conclude_first=True)
    assert first == await scenario(conclude_first=False)
    assert "ReportResultDue" not in first[0] + first[2]  # anonymous: nobody to tell
    assert first[1][-1] == "ReportResultDue"


async def test_a_conclusion_of_a_matter_intake_never_had_changes_nothing(runtime: Runtime) -> None:
    before = await written(runtime)
    envelope, payload = concluded("331122-2020-000007", date(2023, 3, 1))
    assert await deliver(runtime, "intake.results", envelope, payload) == "applied"
    assert await written(runtime) == before


# ---- inbound agency reports ---------------------------------------------------------------


def inbound_message(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "message_id": str(uuid.uuid4()),
        "schema_version": 1,
        "source_agency": "丽水市公安局",
        "source_reference": f"LSGA-{uuid.uuid4().hex[:8]}",
        "jurisdiction": COUNTY,
        "received_on": "2023-02-06",
        "real_name": True,
        "reporter_sealed": seal_for_intake(IDENTITY, intake_public_key()),
        "subjects": [PERSON],
        "allegations": [{"summary": "插手工程项目"}],
        "summary": "公安机关移送",
    }
    body.update(changes)
    return body


INBOUND = "zm.331122.inbound.reports"


def inbound_consumer(runtime: Runtime) -> EventConsumer:
    s = spec(runtime, "intake.inbound")
    assert s.consumer_class is InboundConsumer
    return s.consumer_class(s.name, runtime.pool, registry, s.apply)


async def test_an_inbound_report_is_registered_once_with_its_identity_resealed(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    consumer = inbound_consumer(runtime)
    body = json.dumps(inbound_message()).encode()
    envelope, message = consumer.decode(body, INBOUND)
    position = {"topic": "zm.331122.inbound.reports", "partition": 0, "offset": 7}
    assert await consumer.apply_once(envelope, message, position) == "applied"
    again, again_message = consumer.decode(body, INBOUND)  # the broker delivers it a second time
    assert await consumer.apply_once(again, again_message, position) == "duplicate"

    listing = (await client.get("/reports", params={"jurisdiction": COUNTY}, headers=OFFICE)).json()
    assert len(listing) == 1
    rid = listing[0]["report_id"]
    detail = (await client.get(f"/reports/{rid}", headers=OFFICE)).json()
    assert detail["channel"] == "agency_transfer" and detail["source_agency"] == "丽水市公安局"
    assert detail["reporter"] == IDENTITY
    assert [a["allegation_id"] for a in detail["allegations"]] == ["A1"]
    events = await runtime.store.load(f"report-{rid}")
    assert events[0].causation_id == envelope.event_id
    assert events[0].actor.user_id == "agency:丽水市公安局"
    async with runtime.pool.acquire() as conn:
        text = await conn.fetchval("SELECT string_agg(payload::text, '') FROM events")
    assert all(value not in text for value in IDENTITY.values())


async def test_malformed_or_unopenable_inbound_messages_are_dead_letters(runtime: Runtime) -> None:
    consumer = inbound_consumer(runtime)
    with pytest.raises(DeadLetter) as exc:
        consumer.decode(json.dumps(inbound_message(subjects=[], schema_version=2)).encode(), INBOUND)
    assert exc.value.code == "invalid_event" and "subjects" in exc.value.reason

    before = await written(runtime)
    foreign_key = seal_for_intake(IDENTITY, X25519PrivateKey.generate().public_key())
    envelope, message = consumer.decode(
        json.dumps(inbound_message(reporter_sealed=foreign_key)).encode(), INBOUND
    )
    with pytest.raises(DeadLetter) as exc:
        await consumer.apply_once(envelope, message, {"topic": "t", "partition": 0, "offset": 1})
    assert exc.value.code == "invalid_event" and "cannot be opened" in exc.value.reason
    incomplete = inbound_message(subjects=[{"kind": "person", "name": "吴某"}])
    envelope, message = consumer.decode(json.dumps(incomplete).encode(), INBOUND)
    with pytest.raises(DeadLetter) as exc:
        await consumer.apply_once(envelope, message, {"topic": "t", "partition": 0, "offset": 2})
    assert "subject_incomplete" in exc.value.reason
    assert await written(runtime) == before
    async with runtime.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM inbox") == 0


# ---- green channel ------------------------------------------------------------------------


async def test_green_channel_applications_name_points_of_a_known_matter(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    matter = await accepted(client)
    body = {
        "jurisdiction": COUNTY,
        "matter_id": matter,
        "applicant": PERSON,
        "untrue_points": ["A1"],
        "request": "请求对失实问题予以澄清",
        "filed_on": "2023-01-19",
    }
    first = await post(client, "/applications", body)
    assert first["application_id"] == f"{matter}-GC1"
    assert (await post(client, "/applications", {**body, "untrue_points": ["A2"]}))[
        "application_id"
    ] == f"{matter}-GC2"
    events = await runtime.store.load(f"application-{matter}-GC1")
    assert [(e.event_type, e.case_id) for e in events] == [("ClarificationApplicationFiled", matter)]
    detail = (await client.get(f"/reports/{matter}", headers=OFFICE)).json()
    assert [a["application_id"] for a in detail["applications"]] == [f"{matter}-GC1", f"{matter}-GC2"]

    before = await written(runtime)
    for changes, code, field in (
        ({"untrue_points": ["A1", "A7"]}, "unknown_allegation", "untrue_points"),
        ({"matter_id": "331122-2023-000404"}, "unknown_matter", "matter_id"),
        ({"applicant": {"kind": "unit", "name": "某局"}}, "not_a_subject", "applicant"),
        ({"untrue_points": []}, "invalid_input", "body.untrue_points"),
    ):
        response = await client.post("/applications", json={**body, **changes}, headers=OFFICE)
        assert response.status_code == 422 and response.json()["code"] == code, response.text
        assert response.json()["field"] == field
    other = await client.post(
        "/applications", json={**body, "jurisdiction": "331121"}, headers=auth("letters_office", "331121")
    )
    assert other.status_code == 422 and other.json()["code"] == "unknown_matter"
    assert await written(runtime) == before


async def test_an_agency_transfer_entered_over_http_keeps_its_source_agency(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    before = await written(runtime)
    refused = await client.post("/reports", json=report_body(channel="agency_transfer"), headers=OFFICE)
    assert refused.status_code == 422, refused.text
    assert (refused.json()["code"], refused.json()["field"]) == ("source_agency_required", "source_agency")
    assert await written(runtime) == before
    rid = await register(
        client, channel="agency_transfer", source_agency="丽水市审计局", source_reference="丽审移〔2023〕3号"
    )
    detail = (await client.get(f"/reports/{rid}", headers=OFFICE)).json()
    assert (detail["source_agency"], detail["source_reference"]) == ("丽水市审计局", "丽审移〔2023〕3号")
