"""Archive service on the real PostgreSQL: consumers fed with other services' events (shuffled,
duplicated), filing, return visits, the personnel notice on the outbox, roles and jurisdictions."""

from __future__ import annotations

import contextlib
import json
import random
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from pydantic import BaseModel

from services.archive.api import build_api
from services.archive.main import definition
from shared.auth import Principal, mint
from shared.consumer import EventConsumer
from shared.envelope import GENESIS_HASH, JURISDICTIONS, Actor, EventEnvelope, seal
from shared.events import registry
from shared.events.archive import PersonnelNoticeV1
from shared.events.clarification import (
    ApprovalRefused,
    ApprovalSentBack,
    AssessmentRecorded,
    CandidateAdded,
    ClarificationDeclined,
    ClarificationDiscontinued,
    ClarificationFiled,
    ClarificationPerformed,
    ClarificationStarted,
    ClarificationWithdrawn,
    TreatmentCorrected,
)
from shared.events.common import Allegation, Channel, Finding, Subject
from shared.events.intake import ReportLogged, ReportMergedAsRepeat, ReportReceived
from shared.events.review import FalseAccusationReferred, VerificationConcluded, VerificationReopened
from shared.runtime import Runtime
from shared.topics import events_topic
from tests.integration.conftest import fresh_runtime

ALL = sorted(JURISDICTIONS)
JINYUN = "331122"
JINGNING = "331127"
OTHER_ACTOR = Actor(user_id="u-other", role="handling_department", unit="缙云县纪委监委第一监督检查室")


@dataclass(frozen=True)
class Foreign:
    """An event of another service as it would arrive from Kafka."""

    context: str
    envelope: EventEnvelope
    payload: BaseModel

    @property
    def topic(self) -> str:
        return events_topic(self.envelope.jurisdiction, self.context)


def foreign(
    context: str, payload: BaseModel, *, stream_id: str, case_id: str, jurisdiction: str, version: int = 1
) -> Foreign:
    event_type, schema_version, body = registry.encode(payload)
    envelope = seal(
        event_type=event_type,
        schema_version=schema_version,
        stream_id=stream_id,
        stream_version=version,
        case_id=case_id,
        jurisdiction=jurisdiction,
        occurred_at=datetime.now(UTC),
        actor=OTHER_ACTOR,
        correlation_id=uuid.uuid4(),
        causation_id=None,
        payload=body,
        prev_hash=GENESIS_HASH,
    )
    return Foreign(context, envelope, payload)


def person_of(jurisdiction: str, k: int, kind: str = "person") -> Subject:
    if kind == "unit":
        return Subject(kind="unit", name=f"{JURISDICTIONS[jurisdiction]}某局{k}", cadre_level="county")
    return Subject(
        kind="person",
        name=f"干部{jurisdiction}-{k}",
        post="乡镇党委书记",
        unit=f"{JURISDICTIONS[jurisdiction]}某镇{k}",
    )


def full_case(
    jurisdiction: str,
    k: int,
    *,
    kind: str = "person",
    channel: Channel = "letter",
    on_time: bool = True,
    false_accusation: bool = False,
    concluded_on: date = date(2023, 2, 10),
    performed_on: date = date(2023, 3, 20),
) -> list[Foreign]:
    """Every foreign event the archive hears about one matter, from report to filing."""
    case_id = f"{jurisdiction}-2023-{k:06d}"
    person = person_of(jurisdiction, k, kind)
    points = [
        Allegation(allegation_id="A1", summary="收受礼金"),
        Allegation(allegation_id="A2", summary="违规用车"),
    ]
    findings: dict[str, Finding] = {
        "A1": "untrue",
        "A2": "false_accusation" if false_accusation else "untrue",
    }
    received_on = date(2023, 1, 4)

    def at(context: str, payload: BaseModel, stream: str, version: int = 1) -> Foreign:
        return foreign(
            context, payload, stream_id=stream, case_id=case_id, jurisdiction=jurisdiction, version=version
        )

    events = [
        at(
            "intake",
            ReportReceived(
                report_id=case_id,
                channel=channel,
                received_on=received_on,
                real_name=False,
                subjects=[person],
                allegations=points,
            ),
            stream=f"report-{case_id}",
        ),
        at(
            "intake",
            ReportLogged(logged_on=received_on, disposition_due=date(2023, 1, 11)),
            stream=f"report-{case_id}",
            version=2,
        ),
        at(
            "review",
            VerificationConcluded(
                concluded_on=concluded_on,
                received_on=received_on,
                findings=findings,
                untrue_points=[p for p in points if findings[p.allegation_id] == "untrue"],
                subjects=[person],
                eligible_for_pool=True,
            ),
            stream=f"verification-{case_id}",
        ),
        at(
            "clarification",
            CandidateAdded(via="conclusion", added_on=concluded_on),
            stream=f"clarification-{case_id}",
        ),
        at(
            "clarification",
            ClarificationStarted(initiated_by="person", person=person, consent=True, started_on=concluded_on),
            stream=f"clarification-{case_id}",
            version=2,
        ),
        at(
            "clarification",
            ClarificationPerformed(
                performed_on=performed_on,
                forms=["written_notice", "unit_meeting"],
                points=points,
                person=person,
                concluded_on=concluded_on,
                on_time=on_time,
            ),
            stream=f"clarification-{case_id}",
            version=3,
        ),
        at(
            "clarification",
            ClarificationFiled(
                filed_on=date(2023, 3, 24),
                person=person,
                points=points,
                forms=["written_notice", "unit_meeting"],
                concluded_on=concluded_on,
                clarified_on=performed_on,
            ),
            stream=f"clarification-{case_id}",
            version=4,
        ),
    ]
    if false_accusation:
        events.insert(
            3,
            at(
                "review",
                FalseAccusationReferred(
                    allegation_id="A2", referred_on=date(2023, 2, 15), referred_to="公安机关"
                ),
                stream=f"verification-{case_id}",
                version=2,
            ),
        )
    return events


def scenario() -> list[Foreign]:
    """Q1 2023: every jurisdiction clarifies one person; Jinyun three matters (one a unit, one late,
    one with a false accusation referred) plus a candidate not yet clarified and a true report."""
    events: list[Foreign] = []
    for j in ALL:
        events += full_case(j, 1, channel="online" if j == JINYUN else "letter", false_accusation=j == JINYUN)
    events += full_case(JINYUN, 2, kind="unit", on_time=False, performed_on=date(2023, 3, 28))
    events += full_case(JINYUN, 3, concluded_on=date(2022, 12, 20), performed_on=date(2023, 1, 16))
    extra = f"{JINYUN}-2023-000004"
    events.append(
        foreign(
            "clarification",
            CandidateAdded(via="sweep", added_on=date(2023, 3, 1)),
            stream_id=f"clarification-{extra}",
            case_id=extra,
            jurisdiction=JINYUN,
        )
    )
    true_case = f"{JINYUN}-2023-000005"
    events.append(
        foreign(
            "review",
            VerificationConcluded(
                concluded_on=date(2023, 3, 1),
                received_on=date(2023, 1, 9),
                findings={"A1": "true"},
                untrue_points=[],
                subjects=[person_of(JINYUN, 5)],
                eligible_for_pool=False,
            ),
            stream_id=f"verification-{true_case}",
            case_id=true_case,
            jurisdiction=JINYUN,
        )
    )
    return events


class Deliverer:
    """Hands foreign events to the archive's consumers as the consumer runner would: inbox row and
    effect in one transaction, each consumer whose pattern matches the event's topic."""

    def __init__(self, runtime: Runtime) -> None:
        self.specs = [
            (re.compile(spec.pattern), EventConsumer(spec.name, runtime.pool, registry, spec.apply))
            for spec in definition.consumers(runtime)
        ]
        self.offset = 0

    async def deliver(self, event: Foreign) -> list[str]:
        outcomes = []
        for pattern, consumer in self.specs:
            if pattern.match(event.topic):
                self.offset += 1
                position = {"topic": event.topic, "partition": 0, "offset": self.offset}
                outcomes.append(await consumer.apply_once(event.envelope, event.payload, position))
        return outcomes

    async def deliver_all(self, events: list[Foreign]) -> None:
        for event in events:
            await self.deliver(event)


@pytest.fixture
async def runtime() -> AsyncIterator[Runtime]:
    async with fresh_runtime(definition) as rt:
        yield rt


@contextlib.asynccontextmanager
async def client_for(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_api(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://archive") as client:
        yield client


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(runtime) as c:
        yield c


def auth(role: str, *jurisdictions: str) -> dict[str, str]:
    principal = Principal(
        user_id=f"u-{role}",
        role=role,
        unit="丽水市纪委监委",
        jurisdictions=list(jurisdictions or ALL),
    )
    return {"Authorization": f"Bearer {mint(principal)}"}


async def counts(runtime: Runtime) -> dict[str, int]:
    tables = ["events", "outbox", "filings", "visits", "integrity_entries", "notices"]
    return {t: await runtime.pool.fetchval(f"SELECT count(*) FROM {t}") for t in tables}


async def snapshot(client: httpx.AsyncClient) -> dict[str, Any]:
    """Everything the read side answers about the scenario."""
    headers = auth("auditor")
    out: dict[str, Any] = {}
    for quarter in ("2022Q4", "2023Q1", "2023Q2"):
        response = await client.get("/statistics", params={"quarter": quarter}, headers=headers)
        assert response.status_code == 200, response.text
        out[quarter] = response.json()
    for j in ALL:
        response = await client.get("/filings", params={"jurisdiction": j}, headers=headers)
        out[f"filings-{j}"] = response.json()
    subject = person_of(JINYUN, 1).subject_id
    out["file"] = (await client.get(f"/files/{subject}", headers=headers)).json()
    return out


def row(report: dict[str, Any], jurisdiction: str) -> dict[str, Any]:
    found: dict[str, Any] = next(r for r in report["rows"] if r["jurisdiction"] == jurisdiction)
    return found


# --- consumers: order and duplicates ------------------------------------------------------------------


async def test_shuffled_and_duplicated_delivery_gives_the_same_statistics() -> None:
    events = scenario()
    shuffled = list(events)
    random.Random(20230331).shuffle(shuffled)
    duplicated = shuffled + random.Random(7).sample(events, 15)
    async with fresh_runtime(definition) as in_order, fresh_runtime(definition) as out_of_order:
        await Deliverer(in_order).deliver_all(events)
        await Deliverer(out_of_order).deliver_all(duplicated)
        async with client_for(in_order) as a, client_for(out_of_order) as b:
            expected = await snapshot(a)
            assert await snapshot(b) == expected

    q1 = expected["2023Q1"]
    jinyun = row(q1, JINYUN)["figures"]
    assert jinyun["reports_received"] == 3 and jinyun["reports_by_channel"]["online"] == 1
    assert jinyun["untrue_conclusions"] == 2  # the third concluded in 2022, the fifth was true
    assert jinyun["candidates"] == 3 and jinyun["clarifications"] == 3
    assert (jinyun["persons_clarified"], jinyun["units_clarified"]) == (2, 1)
    assert jinyun["forms_used"]["written_notice"] == 3 and jinyun["forms_used"]["unit_meeting"] == 3
    assert jinyun["on_time_clarifications"] == 2
    assert jinyun["false_accusations_referred"] == 1 and jinyun["filings"] == 3
    # 10 Feb -> 20 Mar 2023 is 26 working days, 10 Feb -> 28 Mar 32, 20 Dec 2022 -> 16 Jan 2023 18.
    assert jinyun["working_days_to_clarify_median"] == 26.0
    assert jinyun["working_days_to_clarify_mean"] == 25.3
    assert row(q1, JINYUN)["indicator"]["score"] is not None

    total = q1["total"]
    assert total["scope"] == "city_wide" and total["coverage"]["text"] == "covered 10 of 10"
    assert total["figures"]["persons_clarified"] == 11 and total["figures"]["units_clarified"] == 1
    assert total["figures"]["clarifications"] == sum(r["figures"]["clarifications"] for r in q1["rows"])
    assert total["indicator"]["components"]["coverage"] == 1.0
    # The return visits fall due 60 working days after the clarifications: in Q2.
    assert q1["total"]["figures"]["return_visits_due"] == 0
    assert expected["2023Q2"]["total"]["figures"]["return_visits_due"] == 24
    assert row(expected["2022Q4"], JINYUN)["figures"]["untrue_conclusions"] == 1


async def test_a_duplicate_delivery_changes_nothing(runtime: Runtime, client: httpx.AsyncClient) -> None:
    events = full_case(JINYUN, 1, false_accusation=True)
    deliverer = Deliverer(runtime)
    await deliverer.deliver_all(events)
    before, stats = await counts(runtime), await snapshot(client)

    again = [outcome for event in events for outcome in await deliverer.deliver(event)]
    assert set(again) == {"duplicate"}
    # Even past the inbox (a redelivery under a new event id, or a replay), nothing is counted twice:
    # the facts are keyed by event id and the filing is idempotent per case.
    for event in events:
        for _, consumer in deliverer.specs:
            async with runtime.pool.acquire() as conn, conn.transaction():
                await consumer.apply(conn, event.envelope, event.payload)
    filed = events[-1]
    refiled = foreign(
        "clarification",
        filed.payload,
        stream_id=filed.envelope.stream_id,
        case_id=filed.envelope.case_id,
        jurisdiction=JINYUN,
        version=5,
    )
    assert set(await deliverer.deliver(refiled)) == {"applied"}
    assert await counts(runtime) == before
    assert await snapshot(client) == stats


async def test_clarification_filed_gives_filing_integrity_entry_and_two_visits(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    events = full_case(JINYUN, 1)
    filed = events[-1]
    await Deliverer(runtime).deliver(filed)

    stored = await runtime.store.load(f"archive-{JINYUN}-2023-000001")
    assert [e.event_type for e in stored] == [
        "FilingRecorded",
        "IntegrityFileEntered",
        "ReturnVisitScheduled",
        "ReturnVisitScheduled",
    ]
    assert all(e.causation_id == filed.envelope.event_id for e in stored)
    assert all(e.correlation_id == filed.envelope.correlation_id for e in stored)
    assert {e.actor.user_id for e in stored} == {"system:archive"}
    assert {e.jurisdiction for e in stored} == {JINYUN}

    subject = person_of(JINYUN, 1).subject_id
    response = await client.get(f"/files/{subject}", headers=auth("handling_department", JINYUN))
    assert response.status_code == 200, response.text
    file = response.json()
    assert file["name"] == "干部331122-1" and len(file["filings"]) == 1
    filing = file["filings"][0]
    assert filing["clarified_on"] == "2023-03-20" and filing["forms"] == ["written_notice", "unit_meeting"]
    assert [p["allegation_id"] for p in filing["points"]] == ["A1", "A2"]
    [entry] = file["integrity_entries"]
    assert "2项" in entry["summary"] and "2023年3月20日" in entry["summary"]
    visits = {v["visit_id"]: v for v in file["visits"]}
    assert set(visits) == {f"{JINYUN}-2023-000001-V1", f"{JINYUN}-2023-000001-V2"}
    assert {v["visit_with"] for v in visits.values()} == {"person", "unit"}
    assert {v["due_on"] for v in visits.values()} == {"2023-06-14"}  # 60 working days on
    assert all(v["visited_on"] is None for v in visits.values())


# --- return visits ------------------------------------------------------------------------------------

VISIT = {
    "visited_on": "2023-06-01",
    "state_of_mind": "放下包袱，干劲足",
    "work": "牵头推进征迁工作",
    "leader_views": "党委认可其担当",
    "colleague_views": "同事支持",
}


async def test_record_a_visit_once_and_list_overdue(runtime: Runtime, client: httpx.AsyncClient) -> None:
    await Deliverer(runtime).deliver_all(
        full_case(JINYUN, 1) + full_case(JINYUN, 2, performed_on=date(2023, 3, 28))
    )
    v1 = f"{JINYUN}-2023-000001-V1"
    headers = auth("handling_department", JINYUN)

    response = await client.post(f"/visits/{v1}/record", json=VISIT, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["visited_on"] == "2023-06-01" and response.json()["work"] == "牵头推进征迁工作"
    [recorded] = [
        e for e in await runtime.store.load(f"archive-{JINYUN}-2023-000001") if e.stream_version == 5
    ]
    assert recorded.event_type == "ReturnVisitRecorded" and recorded.actor.role == "handling_department"

    before = await counts(runtime)
    again = await client.post(f"/visits/{v1}/record", json=VISIT, headers=auth("case_management", JINYUN))
    assert again.status_code == 409 and again.json()["code"] == "already_recorded"
    early = await client.post(
        f"/visits/{JINYUN}-2023-000001-V2/record", json={**VISIT, "visited_on": "2023-03-19"}, headers=headers
    )
    assert early.status_code == 422
    assert (early.json()["field"], early.json()["code"]) == ("visited_on", "visit_before_clarification")
    blank = await client.post(
        f"/visits/{JINYUN}-2023-000001-V2/record", json={**VISIT, "work": ""}, headers=headers
    )
    assert blank.status_code == 422 and blank.json()["field"] == "body.work"
    unknown = await client.post(f"/visits/{JINYUN}-2023-000009-V1/record", json=VISIT, headers=headers)
    assert unknown.status_code == 404
    assert await counts(runtime) == before

    async def overdue(as_of: str) -> list[str]:
        response = await client.get(
            "/visits/overdue", params={"jurisdiction": JINYUN, "as_of": as_of}, headers=headers
        )
        assert response.status_code == 200, response.text
        return [v["visit_id"] for v in response.json()["visits"]]

    # Case 1 due 14 June (V1 done); case 2, clarified 28 March, is due Sunday 25 June, a working day
    # made up for the Dragon Boat Festival.
    assert await overdue("2023-06-14") == []
    assert await overdue("2023-06-15") == [f"{JINYUN}-2023-000001-V2"]
    assert await overdue("2023-07-01") == [
        f"{JINYUN}-2023-000001-V2",
        f"{JINYUN}-2023-000002-V1",
        f"{JINYUN}-2023-000002-V2",
    ]
    bad = await client.get(
        "/visits/overdue", params={"jurisdiction": JINYUN, "as_of": "soon"}, headers=headers
    )
    assert bad.status_code == 422 and bad.json()["field"] == "query.as_of"

    q2 = await client.get("/statistics", params={"quarter": "2023Q2"}, headers=auth("head", JINYUN))
    figures = row(q2.json(), JINYUN)["figures"]
    assert (figures["return_visits_done"], figures["return_visits_due"]) == (1, 4)
    assert figures["return_visits_due_done_on_time"] == 1


# --- the personnel notice -----------------------------------------------------------------------------

NOTICE_TOPIC = f"zm.{JINYUN}.public.personnel-notices.v1"


async def public_rows(runtime: Runtime) -> list[asyncpg.Record]:
    return await runtime.pool.fetch("SELECT topic, key, body FROM outbox WHERE topic LIKE '%.public.%'")


async def test_notice_writes_one_public_message_and_only_once(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    await Deliverer(runtime).deliver_all(
        full_case(JINYUN, 1) + full_case(JINYUN, 2, kind="unit") + full_case(JINGNING, 1)
    )
    headers = auth("case_management", JINYUN)
    before = await counts(runtime)

    response = await client.post(
        "/notices",
        json={"jurisdiction": JINYUN, "period": "2023Q1", "issued_on": "2023-04-03"},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    notice = response.json()
    assert notice["notice_id"] == f"PN-{JINYUN}-2023Q1"
    assert {e["subject_id"] for e in notice["entries"]} == {
        person_of(JINYUN, 1).subject_id,
        person_of(JINYUN, 2, "unit").subject_id,
    }
    after = await counts(runtime)
    assert after["events"] == before["events"] + 1 and after["outbox"] == before["outbox"] + 2

    [public] = await public_rows(runtime)
    assert public["topic"] == NOTICE_TOPIC and public["key"] == notice["notice_id"]
    message = PersonnelNoticeV1.model_validate_json(public["body"])
    assert message.jurisdiction == JINYUN and message.period == "2023Q1" and len(message.entries) == 2
    assert set(json.loads(public["body"])) == set(PersonnelNoticeV1.model_fields)
    assert b"reporter" not in bytes(public["body"])
    stream = await runtime.store.load(f"notices-{JINYUN}-2023Q1")
    assert [(e.event_type, e.case_id) for e in stream] == [
        ("PersonnelNoticeIssued", f"notices-{JINYUN}-2023Q1")
    ]

    again = await client.post(
        "/notices",
        json={"jurisdiction": JINYUN, "period": "2023Q1", "issued_on": "2023-04-10"},
        headers=headers,
    )
    assert again.status_code == 409 and again.json()["code"] == "already_issued"
    early = await client.post(
        "/notices",
        json={"jurisdiction": JINYUN, "period": "2023Q2", "issued_on": "2023-06-30"},
        headers=headers,
    )
    assert early.status_code == 422 and (early.json()["field"], early.json()["code"]) == (
        "issued_on",
        "period_not_over",
    )
    malformed = await client.post(
        "/notices",
        json={"jurisdiction": JINYUN, "period": "2023Q5", "issued_on": "2024-01-02"},
        headers=headers,
    )
    assert malformed.status_code == 422 and malformed.json()["field"] == "body.period"
    elsewhere = await client.post(
        "/notices",
        json={"jurisdiction": JINGNING, "period": "2023Q1", "issued_on": "2023-04-03"},
        headers=headers,
    )
    assert elsewhere.status_code == 403 and elsewhere.json()["code"] == "jurisdiction_forbidden"
    assert await counts(runtime) == after and len(await public_rows(runtime)) == 1

    listed = await client.get(
        "/notices", params={"jurisdiction": JINYUN}, headers=auth("organisation_department", JINYUN)
    )
    assert listed.status_code == 200 and listed.json() == [notice]


async def test_a_corrected_treatment_reaches_the_file_the_notice_and_the_figures(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    """纠正错误处理 (art. 51): in the person's file (even one never clarified: who declined, say), in
    the period's notice to the organisation department, and counted."""
    deliver = Deliverer(runtime)
    await deliver.deliver_all(full_case(JINYUN, 1))
    clarified, declined = person_of(JINYUN, 1), person_of(JINYUN, 3)
    for k, (person, on) in enumerate(
        ((clarified, date(2023, 3, 15)), (declined, date(2023, 3, 20))), start=1
    ):
        case = f"{JINYUN}-2023-00095{k}"
        corrected = TreatmentCorrected(
            person=person,
            corrected_on=on,
            treatment="诫勉",
            organ="缙云县委组织部",
            correction="撤销诫勉决定",
        )
        event = foreign(
            "clarification",
            corrected,
            stream_id=f"clarification-{case}",
            case_id=case,
            jurisdiction=JINYUN,
            version=9,
        )
        assert "applied" in await deliver.deliver(event)
        await deliver.deliver(event)  # a second delivery records nothing more

    reader = auth("case_management", JINYUN)
    file = (await client.get(f"/files/{declined.subject_id}", headers=reader)).json()
    assert (file["name"], file["filings"]) == (declined.name, [])
    assert [(c["treatment"], c["organ"], c["correction"]) for c in file["corrections"]] == [
        ("诫勉", "缙云县委组织部", "撤销诫勉决定")
    ]
    clarified_file = (await client.get(f"/files/{clarified.subject_id}", headers=reader)).json()
    assert len(clarified_file["filings"]) == 1 and len(clarified_file["corrections"]) == 1
    elsewhere = await client.get(f"/files/{declined.subject_id}", headers=auth("case_management", JINGNING))
    assert elsewhere.status_code == 404

    response = await client.post(
        "/notices",
        json={"jurisdiction": JINYUN, "period": "2023Q1", "issued_on": "2023-04-03"},
        headers=reader,
    )
    assert response.status_code == 201, response.text
    notice = response.json()
    assert [c["name"] for c in notice["corrections"]] == [clarified.name, declined.name]
    [public] = await public_rows(runtime)
    message = PersonnelNoticeV1.model_validate_json(public["body"])
    assert [c.corrected_on for c in message.corrections] == [date(2023, 3, 15), date(2023, 3, 20)]
    report = (
        await client.get(
            "/statistics",
            params={"quarter": "2023Q1", "jurisdiction": JINYUN},
            headers=auth("auditor", JINYUN),
        )
    ).json()
    assert row(report, JINYUN)["figures"]["treatments_corrected"] == 2


# --- roles and jurisdictions --------------------------------------------------------------------------


async def test_organisation_department_reads_notices_and_statistics_only(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    await Deliverer(runtime).deliver_all(full_case(JINYUN, 1))
    headers = auth("organisation_department", JINYUN)
    subject = person_of(JINYUN, 1).subject_id
    refused = [
        await client.get(f"/files/{subject}", headers=headers),
        await client.get("/filings", params={"jurisdiction": JINYUN}, headers=headers),
        await client.get(
            "/visits/overdue", params={"jurisdiction": JINYUN, "as_of": "2023-07-01"}, headers=headers
        ),
        await client.post(f"/visits/{JINYUN}-2023-000001-V1/record", json=VISIT, headers=headers),
        await client.post(
            "/notices",
            json={"jurisdiction": JINYUN, "period": "2023Q1", "issued_on": "2023-04-03"},
            headers=headers,
        ),
    ]
    assert [r.status_code for r in refused] == [403] * 5
    assert {r.json()["code"] for r in refused} == {"role_forbidden"}
    assert (await client.get("/notices", headers=headers)).status_code == 200
    stats = await client.get("/statistics", params={"quarter": "2023Q1"}, headers=headers)
    assert stats.status_code == 200 and [r["jurisdiction"] for r in stats.json()["rows"]] == [JINYUN]
    assert stats.json()["total"] is None  # a county does not see the city-wide total
    assert (await client.get("/statistics", params={"quarter": "2023Q1"})).status_code == 401


async def test_other_jurisdictions_are_invisible(runtime: Runtime, client: httpx.AsyncClient) -> None:
    await Deliverer(runtime).deliver_all(full_case(JINYUN, 1))
    before = await counts(runtime)
    stranger = auth("handling_department", JINGNING)
    subject = person_of(JINYUN, 1).subject_id

    assert (await client.get(f"/files/{subject}", headers=stranger)).status_code == 404
    recorded = await client.post(f"/visits/{JINYUN}-2023-000001-V1/record", json=VISIT, headers=stranger)
    assert recorded.status_code == 404
    overdue = await client.get(
        "/visits/overdue", params={"jurisdiction": JINYUN, "as_of": "2023-07-01"}, headers=stranger
    )
    assert overdue.status_code == 403 and overdue.json()["field"] == "jurisdiction"
    filings = await client.get("/filings", params={"jurisdiction": JINYUN}, headers=stranger)
    assert filings.status_code == 403
    stats = await client.get(
        "/statistics", params={"quarter": "2023Q1", "jurisdiction": JINYUN}, headers=auth("head", JINGNING)
    )
    assert stats.status_code == 403
    notices = await client.get("/notices", params={"jurisdiction": JINYUN}, headers=auth("auditor", JINGNING))
    assert notices.status_code == 403
    assert await counts(runtime) == before

    # The city sees the county's file; the county head sees its own row and no total.
    assert (await client.get(f"/files/{subject}", headers=auth("auditor"))).status_code == 200
    assert (await client.get(f"/files/{subject}", headers=auth("letters_office"))).status_code == 403


async def test_statistics_quarter_is_validated_and_filtered(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    await Deliverer(runtime).deliver_all(full_case(JINYUN, 1) + full_case("331100", 1))
    headers = auth("case_management")
    bad = await client.get("/statistics", params={"quarter": "2023-1"}, headers=headers)
    assert bad.status_code == 422 and (bad.json()["field"], bad.json()["code"]) == (
        "quarter",
        "invalid_quarter",
    )
    missing = await client.get("/statistics", headers=headers)
    assert missing.status_code == 422 and missing.json()["field"] == "query.quarter"

    everything = (await client.get("/statistics", params={"quarter": "2023Q1"}, headers=headers)).json()
    assert [r["jurisdiction"] for r in everything["rows"]] == ALL
    assert everything["total"]["coverage"]["text"] == "covered 2 of 10"
    one = (
        await client.get("/statistics", params={"quarter": "2023Q1", "jurisdiction": JINYUN}, headers=headers)
    ).json()
    assert [r["jurisdiction"] for r in one["rows"]] == [JINYUN] and one["total"] is None
    city = (
        await client.get(
            "/statistics", params={"quarter": "2023Q1", "jurisdiction": "331100"}, headers=headers
        )
    ).json()
    assert [r["jurisdiction"] for r in city["rows"]] == ["331100"]
    assert city["total"] == everything["total"]  # the city level's view keeps the city-wide total
    filings = await client.get(
        "/filings", params={"jurisdiction": JINYUN, "quarter": "2023Q2"}, headers=auth("head", JINYUN)
    )
    assert filings.status_code == 200 and filings.json() == []


async def test_openapi_documents_every_route(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {
        "/statistics",
        "/files/{subject_id}",
        "/filings",
        "/visits/{visit_id}/record",
        "/visits/overdue",
        "/notices",
    } <= set(paths)
    assert all(op.get("summary") for item in paths.values() for op in item.values())


async def test_a_conclusion_whose_only_untrue_point_is_a_false_accusation_counts_as_untrue(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    case = f"{JINYUN}-2023-000901"
    event = foreign(
        "review",
        VerificationConcluded(
            concluded_on=date(2023, 2, 1),
            received_on=date(2023, 1, 9),
            findings={"A1": "false_accusation", "A2": "not_proven"},
            untrue_points=[],
            subjects=[person_of(JINYUN, 901)],
            eligible_for_pool=True,
        ),
        stream_id=f"verification-{case}",
        case_id=case,
        jurisdiction=JINYUN,
    )
    assert set(await Deliverer(runtime).deliver(event)) == {"applied"}
    report = (
        await client.get(
            "/statistics",
            params={"quarter": "2023Q1", "jurisdiction": JINYUN},
            headers=auth("auditor", JINYUN),
        )
    ).json()
    assert row(report, JINYUN)["figures"]["untrue_conclusions"] == 1


async def test_matters_refusals_and_the_pools_stock_are_counted(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    """事项 (reports less merged repeats), 不予澄清 by reason, and what waits in the pool at the end."""
    deliver = Deliverer(runtime)
    original, repeat = f"{JINYUN}-2023-000801", f"{JINYUN}-2023-000802"
    waiting, refused = f"{JINYUN}-2023-000803", f"{JINYUN}-2023-000804"
    await deliver.deliver_all(full_case(JINYUN, 801))  # received, candidate, started, clarified
    for case, version, payload in [
        (
            repeat,
            1,
            ReportReceived(
                report_id=repeat,
                channel="visit",
                received_on=date(2023, 2, 1),
                real_name=False,
                subjects=[person_of(JINYUN, 801)],
                allegations=[Allegation(allegation_id="A1", summary="收受礼金")],
            ),
        ),
        (repeat, 2, ReportMergedAsRepeat(merged_on=date(2023, 2, 2), repeats_matter_id=original)),
    ]:
        await deliver.deliver(
            foreign(
                "intake",
                payload,
                stream_id=f"report-{case}",
                case_id=case,
                jurisdiction=JINYUN,
                version=version,
            )
        )
    for case, version, payload in [
        (waiting, 1, CandidateAdded(via="conclusion", added_on=date(2023, 3, 10))),
        (refused, 1, CandidateAdded(via="conclusion", added_on=date(2023, 2, 20))),
        (
            refused,
            2,
            ClarificationStarted(
                initiated_by="department",
                person=person_of(JINYUN, 804),
                consent=True,
                started_on=date(2023, 3, 1),
            ),
        ),
        (
            refused,
            3,
            AssessmentRecorded(
                assessed_on=date(2023, 3, 2),
                eligible=False,
                bad_effects=[],
                effect_only_from_interviews=False,
                refusals=["no_bad_effect"],
                reason="尚未对被反映人造成不良影响，不予澄清",
            ),
        ),
    ]:
        await deliver.deliver(
            foreign(
                "clarification",
                payload,
                stream_id=f"clarification-{case}",
                case_id=case,
                jurisdiction=JINYUN,
                version=version,
            )
        )
    report = (
        await client.get(
            "/statistics",
            params={"quarter": "2023Q1", "jurisdiction": JINYUN},
            headers=auth("auditor", JINYUN),
        )
    ).json()
    figures = row(report, JINYUN)["figures"]
    assert (figures["reports_received"], figures["matters"]) == (2, 1)
    assert (figures["refused"], figures["refused_by_reason"]) == (1, {"no_bad_effect": 1})
    assert figures["waiting_in_pool"] == 1  # 000801 and 000804 were started, 000803 waits
    spec = (await client.get("/openapi.json")).json()["components"]["schemas"]["Figures"]["properties"]
    assert all("。" in field["description"] for field in spec.values()), "each figure described, zh and en"


async def test_declined_withdrawn_and_returned_by_the_head_are_counted(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    """本人不同意或撤回 (declined, by its date; a declined candidate no longer waits in the pool) and
    主要负责人不予批准或退回 (returned_by_head, each decision), through the statistics consumer."""
    deliver = Deliverer(runtime)
    declined, withdrawn = f"{JINYUN}-2023-000901", f"{JINYUN}-2023-000902"
    refused, returned, later = f"{JINYUN}-2023-000903", f"{JINYUN}-2023-000904", f"{JINYUN}-2023-000905"
    ended = f"{JINYUN}-2023-000906"

    def started(k: int) -> ClarificationStarted:
        return ClarificationStarted(
            initiated_by="department", person=person_of(JINYUN, k), consent=True, started_on=date(2023, 2, 21)
        )

    head = {"approver": "u-head", "level": JINYUN}
    for case, version, payload in [
        (declined, 1, CandidateAdded(via="conclusion", added_on=date(2023, 2, 20))),
        (
            declined,
            2,
            ClarificationDeclined(
                person=person_of(JINYUN, 901), declined_on=date(2023, 3, 1), reason="不同意"
            ),
        ),
        (withdrawn, 1, CandidateAdded(via="conclusion", added_on=date(2023, 2, 20))),
        (withdrawn, 2, started(902)),
        (
            withdrawn,
            3,
            ClarificationWithdrawn(
                person=person_of(JINYUN, 902), withdrawn_on=date(2023, 3, 2), reason="撤回"
            ),
        ),
        (refused, 1, CandidateAdded(via="conclusion", added_on=date(2023, 2, 20))),
        (refused, 2, started(903)),
        (refused, 3, ApprovalRefused(refused_on=date(2023, 3, 6), reason="不予批准", **head)),
        (returned, 1, CandidateAdded(via="conclusion", added_on=date(2023, 2, 20))),
        (returned, 2, started(904)),
        (returned, 3, ApprovalSentBack(sent_back_on=date(2023, 3, 6), reason="退回重新复核", **head)),
        (returned, 4, ApprovalSentBack(sent_back_on=date(2023, 3, 9), reason="再次退回", **head)),
        # A candidate whose revised conclusion no longer allows a clarification leaves the pool.
        (ended, 1, CandidateAdded(via="conclusion", added_on=date(2023, 2, 20))),
        (
            ended,
            2,
            ClarificationDiscontinued(discontinued_on=date(2023, 3, 10), revision=1, reason="部分属实"),
        ),
        # Declined after the quarter: counted in Q2, and waiting in the pool at the end of Q1.
        (later, 1, CandidateAdded(via="conclusion", added_on=date(2023, 3, 20))),
        (
            later,
            2,
            ClarificationDeclined(
                person=person_of(JINYUN, 905), declined_on=date(2023, 4, 3), reason="不同意"
            ),
        ),
    ]:
        event = foreign(
            "clarification",
            payload,
            stream_id=f"clarification-{case}",
            case_id=case,
            jurisdiction=JINYUN,
            version=version,
        )
        assert "applied" in await deliver.deliver(event)
        await deliver.deliver(event)  # a second delivery counts nothing more

    async def figures(quarter: str) -> dict[str, Any]:
        report = (
            await client.get(
                "/statistics",
                params={"quarter": quarter, "jurisdiction": JINYUN},
                headers=auth("auditor", JINYUN),
            )
        ).json()
        found: dict[str, Any] = row(report, JINYUN)["figures"]
        return found

    q1, q2 = await figures("2023Q1"), await figures("2023Q2")
    assert (q1["declined"], q1["returned_by_head"], q1["waiting_in_pool"]) == (2, 3, 1)
    assert (q2["declined"], q2["returned_by_head"], q2["waiting_in_pool"]) == (1, 0, 0)
    assert (q1["discontinued"], q2["discontinued"]) == (1, 0)
    spec = (await client.get("/openapi.json")).json()["components"]["schemas"]["Figures"]["properties"]
    assert (
        "本人不同意" in spec["declined"]["description"] and "head" in spec["returned_by_head"]["description"]
    )


async def test_supplementary_verifications_are_counted_once_per_matter(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    """补充核查 (supplementary_verifications): each verification reopened in the quarter, once however
    often it was reopened, by the reopening's date, through the statistics consumer."""
    deliver = Deliverer(runtime)
    twice, once, later = f"{JINYUN}-2023-001001", f"{JINYUN}-2023-001002", f"{JINYUN}-2023-001003"

    def reopened(on: date) -> VerificationReopened:
        return VerificationReopened(reopened_on=on, origin="re_review", reason="核查不全面")

    for case, version, payload in [
        (twice, 7, reopened(date(2023, 2, 1))),
        (twice, 9, reopened(date(2023, 3, 1))),
        (once, 7, reopened(date(2023, 3, 31))),
        (later, 7, reopened(date(2023, 4, 1))),
    ]:
        event = foreign(
            "review",
            payload,
            stream_id=f"verification-{case}",
            case_id=case,
            jurisdiction=JINYUN,
            version=version,
        )
        assert "applied" in await deliver.deliver(event)
        await deliver.deliver(event)  # a second delivery counts nothing more

    async def figures(quarter: str) -> dict[str, Any]:
        report = (
            await client.get(
                "/statistics",
                params={"quarter": quarter, "jurisdiction": JINYUN},
                headers=auth("auditor", JINYUN),
            )
        ).json()
        found: dict[str, Any] = row(report, JINYUN)["figures"]
        return found

    assert (await figures("2023Q1"))["supplementary_verifications"] == 2
    assert (await figures("2023Q2"))["supplementary_verifications"] == 1
    spec = (await client.get("/openapi.json")).json()["components"]["schemas"]["Figures"]["properties"]
    description = spec["supplementary_verifications"]["description"]
    assert "补充核查" in description and "supplementary verification" in description
