"""The clarification procedure end to end: four service processes, real Kafka and PostgreSQL,
driven only through HTTP and Kafka."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from faker import Faker

from services.intake.inbound import seal_for_intake
from shared import settings
from shared.envelope import CITY
from shared.events.archive import PersonnelNoticeV1
from shared.topics import inbound_reports_topic, personnel_notices_topic
from tests.e2e.conftest import TRANSCRIPT, day, quarter
from zhengming.client import Client
from zhengming.driver import CasePlan, Driver, Reporter

fake = Faker("zh_CN")
J = "331122"  # 缙云县


def person(cadre_level: str = "county") -> dict[str, Any]:
    return {
        "kind": "person",
        "name": fake.name() + uuid.uuid4().hex[:3],
        "post": fake.job(),
        "unit": f"缙云县{fake.city_name()}镇",
        "cadre_level": cadre_level,
    }


def reporter() -> Reporter:
    name = f"{fake.name()}{uuid.uuid4().hex[:4]}"
    TRANSCRIPT.reporter_names.add(name)
    return Reporter(name=name, contact=fake.phone_number(), id_number=fake.ssn())


def plan(findings: list[str], received: date, **kwargs: Any) -> CasePlan:
    kwargs.setdefault("jurisdiction", J)
    return CasePlan(
        subject=kwargs.pop("subject", person()),
        allegations=[fake.sentence() for _ in findings],
        findings=findings,
        received_on=received,
        reporter=kwargs.pop("reporter", reporter()),
        **kwargs,
    )


async def open_case(driver: Driver, p: CasePlan) -> str:
    case_id = await driver.register(p)
    TRANSCRIPT.case_ids.add(case_id)
    await driver.intake(p, case_id)
    return case_id


async def test_full_chain_from_report_to_archive(client: Client, driver: Driver) -> None:
    p = plan(["untrue", "untrue"], day(1, 9))
    case_id = await open_case(driver, p)
    await driver.verify(p, case_id)
    assert await driver.clarify_until_approved(p, case_id, day(3, 1)) == "approved"
    performed = await client.ok(
        "POST",
        "clarification",
        f"/clarifications/{case_id}/perform",
        role="handling_department",
        jurisdiction=J,
        body={"performed_on": day(3, 7).isoformat(), "forms": ["face_to_face"]},
    )
    assert performed["forms"][0] == "written_notice"
    assert {pt["summary"] for pt in performed["points"]} == set(p.allegations)
    await driver.finish(p, case_id, day(3, 7))

    docs = (
        await client.ok("GET", "clarification", f"/clarifications/{case_id}", role="auditor", jurisdiction=J)
    )["documents"]
    assert len(docs) == 3
    notice = next(d for d in docs if d["kind"] == "notice")
    text = (
        await client.request(
            "GET",
            "clarification",
            f"/clarifications/{case_id}/documents/{notice['doc_id']}",
            role="auditor",
            jurisdiction=J,
        )
    ).text
    assert p.subject["name"] in text and all(a in text for a in p.allegations)

    files = await client.eventually(
        "the person's file",
        lambda: client.get_if(
            "archive",
            f"/files/{docs and (performed['person']['subject_id'])}",
            role="case_management",
            jurisdiction=J,
        ),
    )
    assert [f["case_id"] for f in files["filings"]] == [case_id]
    assert len(files["integrity_entries"]) == 1
    assert {v["visit_with"] for v in files["visits"]} == {"person", "unit"}

    report = await client.ok("GET", "intake", f"/reports/{case_id}", role="letters_office", jurisdiction=J)
    assert report["reporter"]["name"] == p.reporter.name if p.reporter else False

    # The statistics are archive's consumers of each context's events, apart from the filing's:
    # they may be a moment behind the person's file.
    async def counted() -> dict[str, Any] | None:
        stats = await client.ok(
            "GET",
            "archive",
            "/statistics",
            role="auditor",
            jurisdiction=J,
            params={"quarter": quarter(1), "jurisdiction": J},
        )
        figures: dict[str, Any] = stats["rows"][0]["figures"]
        return figures if figures["clarifications"] >= 1 and figures["filings"] >= 1 else None

    assert await client.eventually("the quarter's statistics", counted)


async def test_each_person_a_matter_names_is_clarified_and_filed(client: Client, driver: Driver) -> None:
    """A report naming two persons: each has a clarification of their own (the matter's id and
    `-2`), clarified in their own name, filed in their own file."""
    first, second = person(), person()
    p = plan(["untrue"], day(2, 6), subject=first, also=[second])
    case_id = await open_case(driver, p)
    await driver.verify(p, case_id)
    theirs = replace(p, subject=second, also=[])
    for who, cid in ((p, case_id), (theirs, f"{case_id}-2")):
        assert await driver.clarify_until_approved(who, cid, day(4, 3)) == "approved"
        performed = await client.ok(
            "POST",
            "clarification",
            f"/clarifications/{cid}/perform",
            role="handling_department",
            jurisdiction=J,
            body={"performed_on": day(4, 10).isoformat(), "forms": p.forms},
        )
        assert performed["person"]["name"] == who.subject["name"]
        await driver.finish(who, cid, day(4, 10))
        notice = await client.request(
            "GET",
            "clarification",
            f"/clarifications/{cid}/documents/{cid}-notice",
            role="auditor",
            jurisdiction=J,
        )
        assert who.subject["name"] in notice.text
        other = (second if who is p else first)["name"]
        assert other not in notice.text
        path = f"/files/{performed['person']['subject_id']}"

        async def filed(path: str = path) -> Any:
            return await client.get_if("archive", path, role="case_management", jurisdiction=J)

        file = await client.eventually(f"the file of {who.subject['name']}", filed)
        assert [f["case_id"] for f in file["filings"]] == [cid]
    matter = await client.ok(
        "GET", "clarification", f"/clarifications/{case_id}", role="auditor", jurisdiction=J
    )
    assert [(m["case_id"], m["state"]) for m in matter["persons"]] == [
        (case_id, "filed"),
        (f"{case_id}-2", "filed"),
    ]
    # The matter's audit timeline holds both persons' clarifications.
    timeline = await client.ok(
        "GET", "clarification", f"/audit/cases/{case_id}/events", role="auditor", jurisdiction=J
    )
    assert {e["stream_id"] for e in timeline} == {f"clarification-{case_id}", f"clarification-{case_id}-2"}
    second_only = await client.ok(
        "GET", "clarification", f"/audit/cases/{case_id}-2/events", role="auditor", jurisdiction=J
    )
    assert {e["stream_id"] for e in second_only} == {f"clarification-{case_id}-2"}


def id_number() -> str:
    """A valid 居民身份证号码 (GB 11643 check character), new to this run."""
    first17 = f"332526{fake.random_int(1960, 1995)}0{fake.random_int(1, 9)}1{fake.random_int(0, 9)}" + (
        f"{fake.random_int(0, 999):03d}"
    )
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    number = first17 + "10X98765432"[sum(int(d) * w for d, w in zip(first17, weights, strict=True)) % 11]
    TRANSCRIPT.id_numbers.add(number)
    return number


async def clarified(client: Client, driver: Driver, p: CasePlan, month: int) -> str:
    case_id = await open_case(driver, p)
    await driver.verify(p, case_id)
    assert await driver.clarify_until_approved(p, case_id, day(month, 1)) == "approved"
    await client.ok(
        "POST",
        "clarification",
        f"/clarifications/{case_id}/perform",
        role="handling_department",
        jurisdiction=J,
        body={"performed_on": day(month, 7).isoformat(), "forms": p.forms},  # as the head approved
    )
    await driver.finish(p, case_id, day(month, 7))
    return case_id


async def test_the_file_follows_the_person_across_units(client: Client, driver: Driver) -> None:
    """一人一档 by the organisation department's officer id: a cadre clarified in one unit and, after
    a transfer, in another has one file; the ID number given with the second report is kept nowhere."""
    officer_id = f"ZZB-{uuid.uuid4().hex[:10]}"
    before = {**person(), "officer_id": officer_id}
    after = {**person(), "name": before["name"], "officer_id": officer_id, "id_number": id_number()}
    first = await clarified(client, driver, plan(["untrue"], day(4, 1), subject=before), 5)
    second = await clarified(client, driver, plan(["untrue"], day(4, 2), subject=after), 6)

    async def both() -> dict[str, Any] | None:
        found = await client.get_if(
            "archive", f"/files/o-{officer_id}", role="case_management", jurisdiction=J
        )
        return found if found and len(found["filings"]) == 2 else None

    file = await client.eventually("the person's one file", both)
    assert [f["case_id"] for f in file["filings"]] == [first, second]
    assert [f["unit"] for f in file["filings"]] == [before["unit"], after["unit"]]
    assert file["person_key"] == f"o-{officer_id}" and file["unit"] == after["unit"]


async def test_repeat_report_is_merged_into_its_matter(client: Client, driver: Driver) -> None:
    first = plan(["untrue"], day(4, 3))
    case_id = await driver.register(first)
    await client.ok(
        "POST",
        "intake",
        f"/reports/{case_id}/log",
        role="letters_office",
        jurisdiction=J,
        body={"logged_on": day(4, 3).isoformat()},
    )
    repeat = plan(["untrue"], day(4, 6), subject=first.subject)
    repeat_id = await driver.register(repeat)
    await client.ok(
        "POST",
        "intake",
        f"/reports/{repeat_id}/log",
        role="letters_office",
        jurisdiction=J,
        body={"logged_on": day(4, 6).isoformat()},
    )
    await client.ok(
        "POST",
        "intake",
        f"/reports/{repeat_id}/merge",
        role="letters_office",
        jurisdiction=J,
        body={"merged_on": day(4, 7).isoformat(), "repeats_matter_id": case_id},
    )
    matter = await client.ok("GET", "intake", f"/reports/{case_id}", role="letters_office", jurisdiction=J)
    assert repeat_id in [r if isinstance(r, str) else r.get("report_id") for r in matter["repeats"]]
    merged = await client.ok("GET", "intake", f"/reports/{repeat_id}", role="letters_office", jurisdiction=J)
    assert merged["state"] in {"repeat", "merged"}
    await client.ok(
        "POST",
        "intake",
        f"/reports/{case_id}/accept",
        role="letters_office",
        jurisdiction=J,
        body={"accepted_on": day(4, 10).isoformat()},
    )
    await client.ok(
        "POST",
        "intake",
        f"/reports/{case_id}/hand-over",
        role="letters_office",
        jurisdiction=J,
        body={"department": "第二监督检查室", "handed_on": day(4, 11).isoformat()},
    )
    verification = await driver.wait_verification(first, case_id)
    assert verification["case_id"] == case_id
    # The repeat is kept on file and never becomes a matter of its own.
    missing = await client.request(
        "GET", "review", f"/verifications/{repeat_id}", role="handling_department", jurisdiction=J
    )
    assert missing.status_code == 404


async def test_green_channel_application_before_the_conclusion(client: Client, driver: Driver) -> None:
    p = plan(["untrue", "untrue"], day(5, 4))
    case_id = await open_case(driver, p)
    await driver.wait_verification(p, case_id)
    filed = await client.ok(
        "POST",
        "intake",
        "/applications",
        role="letters_office",
        jurisdiction=J,
        body={
            "jurisdiction": J,
            "matter_id": case_id,
            "applicant": p.subject,
            "untrue_points": ["A1", "A2"],
            "request": "请求对失实问题予以澄清",
            "filed_on": day(5, 8).isoformat(),
        },
    )
    waiting = await client.eventually("the application noted", lambda: driver.clarification(p, case_id))
    assert waiting["state"] == "awaiting_outcome"
    assert [a["status"] for a in waiting["applications"]] == ["pending"]
    await driver.verify(p, case_id)
    await driver.wait_state(p, case_id, {"candidate"})
    after = await driver.clarification(p, case_id)
    assert after is not None
    assert after["applications"][0]["application_id"] == filed["application_id"]
    assert after["applications"][0]["status"] == "in_pool"


async def test_partly_true_matter_never_enters_the_pool(client: Client, driver: Driver) -> None:
    p = plan(["untrue", "partly_true"], day(5, 11))
    case_id = await open_case(driver, p)
    await driver.wait_verification(p, case_id)
    await client.ok(
        "POST",
        "intake",
        "/applications",
        role="letters_office",
        jurisdiction=J,
        body={
            "jurisdiction": J,
            "matter_id": case_id,
            "applicant": p.subject,
            "untrue_points": ["A1"],
            "request": "请求澄清",
            "filed_on": day(5, 12).isoformat(),
        },
    )
    await driver.verify(p, case_id)
    state = await driver.wait_state(p, case_id, {"not_eligible"})
    assert state == "not_eligible"
    current = await driver.clarification(p, case_id)
    assert current is not None and current["applications"][0]["status"] == "declined"
    pool = await client.ok(
        "GET",
        "clarification",
        "/pool",
        role="handling_department",
        jurisdiction=J,
        params={"jurisdiction": J},
    )
    assert case_id not in {c["case_id"] for c in pool}
    start = await client.request(
        "POST",
        "clarification",
        f"/clarifications/{case_id}/start",
        role="handling_department",
        jurisdiction=J,
        body={
            "initiated_by": "person",
            "person_subject_id": "x",
            "consent": True,
            "started_on": day(6, 1).isoformat(),
        },
    )
    assert start.status_code in {404, 409, 422}


async def test_negative_list_refusals(client: Client, driver: Driver) -> None:
    """Not proven never enters the pool; no bad effect and an effect only from the verification
    interviews are refused at assessment with their reasons recorded."""
    not_proven = plan(["not_proven"], day(6, 5))
    case_id = await open_case(driver, not_proven)
    await driver.verify(not_proven, case_id)
    assert await driver.wait_state(not_proven, case_id, {"not_eligible"}) == "not_eligible"

    for kwargs, rule in (
        ({"bad_effects": []}, "no_bad_effect"),
        (
            {"bad_effects": ["rights_harmed"], "effect_only_from_interviews": True},
            "effect_only_from_interviews",
        ),
    ):
        p = plan(["untrue"], day(6, 8), **kwargs)
        cid = await open_case(driver, p)
        await driver.verify(p, cid)
        assert await driver.clarify_until_approved(p, cid, day(7, 3)) == "refused"
        refused = await driver.clarification(p, cid)
        assert refused is not None and refused["state"] == "refused"
        assessed = next(s for s in refused["steps"] if s["step"] == "assessed")
        assert rule in assessed["refusals"] and assessed["reason"]

    no_consent = plan(["untrue"], day(6, 9), consent=False)
    cid = await open_case(driver, no_consent)
    await driver.verify(no_consent, cid)
    await driver.wait_state(no_consent, cid, {"candidate"})
    refused_start = await client.request(
        "POST",
        "clarification",
        f"/clarifications/{cid}/start",
        role="handling_department",
        jurisdiction=J,
        body={
            "initiated_by": "department",
            "person_subject_id": (await driver.clarification(no_consent, cid) or {})["outcome"]["subjects"][
                0
            ]["subject_id"],
            "consent": False,
            "started_on": day(7, 3).isoformat(),
        },
    )
    assert refused_start.status_code == 422 and refused_start.json()["code"] == "consent_required"


async def test_failed_re_review_is_sent_back_and_passes_the_second_time(
    client: Client, driver: Driver
) -> None:
    p = plan(["untrue"], day(7, 6), fail_re_review_once=True)
    case_id = await open_case(driver, p)
    await driver.verify(p, case_id)
    assert await driver.clarify_until_approved(p, case_id, day(8, 1)) == "approved"
    steps = (await driver.clarification(p, case_id) or {})["steps"]
    reviews = [s for s in steps if s["step"] == "re_reviewed"]
    assert [s["passed"] for s in reviews] == [False, True]
    assert reviews[0]["reasons"] and not reviews[1]["reasons"]


async def test_false_accusation_branch(client: Client, driver: Driver) -> None:
    p = plan(["false_accusation"], day(8, 3))
    case_id = await open_case(driver, p)
    verification = await driver.wait_verification(p, case_id)
    await driver.case.decide(J, case_id, method="preliminary_verification", on=day(8, 5))
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
            "basis": "捏造事实",
            "referred_on": day(8, 20).isoformat(),
        },
    )
    assert proposed["recorded"] == ["FalseAccusationProposed"]
    approve = f"/verifications/{case_id}/false-accusations/{allegation}/approve"
    county_only = await client.request(
        "POST", "review", approve, role="head", jurisdiction=J, body={"approved_on": day(8, 20).isoformat()}
    )
    assert county_only.status_code == 403
    assert county_only.json()["code"] == "false_accusation_needs_city_approval"
    await client.ok(
        "POST",
        "review",
        approve,
        role="head",
        jurisdiction=CITY,
        body={"approved_on": day(8, 20).isoformat()},
    )
    referred = await client.ok(
        "GET",
        "review",
        "/false-accusations",
        role="case_management",
        jurisdiction=J,
        params={"jurisdiction": J},
    )
    assert case_id in {r["case_id"] for r in referred}

    async def counted() -> Any:
        stats = await client.ok(
            "GET",
            "archive",
            "/statistics",
            role="auditor",
            jurisdiction=J,
            params={"quarter": quarter(3), "jurisdiction": J},
        )
        return stats["rows"][0]["figures"]["false_accusations_referred"] >= 1

    await client.eventually("the referral in the statistics", counted)


async def test_quarterly_round_return_visit_and_personnel_notice(client: Client, driver: Driver) -> None:
    j = "331124"  # 松阳县: its own quarter round in this run
    # Proposed and approved in the forms the round uses (a round in other forms is refused).
    forms = ["written_notice", "unit_meeting"]
    plans = [
        plan(["untrue"], day(10, 9), jurisdiction=j, subject={**person(), "unit": "松阳县某局"}, forms=forms)
        for _ in range(2)
    ]
    plans.append(
        plan(
            ["untrue"],
            day(10, 9),
            jurisdiction=j,
            subject={"kind": "unit", "name": f"松阳县{uuid.uuid4().hex[:4]}局"},
            forms=forms,
        )
    )
    cases = []
    for p in plans:
        cid = await open_case(driver, p)
        await driver.verify(p, cid)
        assert await driver.clarify_until_approved(p, cid, day(12, 1)) == "approved"
        cases.append(cid)
    held = await client.ok(
        "POST",
        "clarification",
        "/rounds",
        role="handling_department",
        jurisdiction=j,
        body={
            "jurisdiction": j,
            "quarter": quarter(4),
            "held_on": day(12, 7).isoformat(),
            "forms": ["unit_meeting"],
            "scope": "",
        },
    )
    # Every approved matter of the jurisdiction is clarified in the round (on a database reused
    # across runs that may include one an earlier, interrupted run left approved).
    assert set(cases) <= set(held["matters"])
    again = await client.request(
        "POST",
        "clarification",
        "/rounds",
        role="handling_department",
        jurisdiction=j,
        body={
            "jurisdiction": j,
            "quarter": quarter(4),
            "held_on": day(12, 8).isoformat(),
            "forms": [],
            "scope": "",
        },
    )
    assert again.status_code == 409
    for p, cid in zip(plans, cases, strict=True):
        await driver.finish(p, cid, day(12, 7))

    async def filed() -> Any:
        rows = await client.ok(
            "GET",
            "archive",
            "/filings",
            role="case_management",
            jurisdiction=j,
            params={"jurisdiction": j, "quarter": quarter(4)},
        )
        return len([r for r in rows if r["case_id"] in cases]) == 3

    await client.eventually("three filings", filed)
    visit = f"{cases[0]}-V1"
    overdue = await client.ok(
        "GET",
        "archive",
        "/visits/overdue",
        role="case_management",
        jurisdiction=j,
        params={"jurisdiction": j, "as_of": date(day(12, 7).year + 1, 6, 1).isoformat()},
    )
    assert visit in {v["visit_id"] for v in overdue["visits"]}
    await client.ok(
        "POST",
        "archive",
        f"/visits/{visit}/record",
        role="case_management",
        jurisdiction=j,
        body={
            "visited_on": day(12, 20).isoformat(),
            "state_of_mind": "心态积极",
            "work": "工作干劲足",
            "leader_views": "领导认可",
            "colleague_views": "同事评价良好",
        },
    )
    overdue = await client.ok(
        "GET",
        "archive",
        "/visits/overdue",
        role="case_management",
        jurisdiction=j,
        params={"jurisdiction": j, "as_of": date(day(12, 7).year + 1, 6, 1).isoformat()},
    )
    assert visit not in {v["visit_id"] for v in overdue["visits"]}

    notice = await client.ok(
        "POST",
        "archive",
        "/notices",
        role="case_management",
        jurisdiction=j,
        body={
            "jurisdiction": j,
            "period": quarter(4),
            "issued_on": date(day(1, 1).year + 1, 1, 10).isoformat(),
        },
    )
    assert {e["name"] for e in notice["entries"]} >= {p.subject["name"] for p in plans}
    consumer = AIOKafkaConsumer(
        personnel_notices_topic(j),
        bootstrap_servers=settings.kafka().bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    try:
        published: PersonnelNoticeV1 | None = None
        for _ in range(60):
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for r in records:
                    candidate = PersonnelNoticeV1.model_validate_json(r.value or b"")
                    if candidate.notice_id == notice["notice_id"]:
                        published = candidate
            if published:
                break
    finally:
        await consumer.stop()
    assert published is not None, "the personnel notice never reached its public topic"
    assert {e.name for e in published.entries} == {e["name"] for e in notice["entries"]}
    org = await client.ok(
        "GET",
        "archive",
        "/notices",
        role="organisation_department",
        jurisdiction=j,
        params={"jurisdiction": j},
    )
    assert notice["notice_id"] in {n["notice_id"] for n in org}
    refused = await client.request(
        "GET",
        "archive",
        f"/files/{published.entries[0].subject_id}",
        role="organisation_department",
        jurisdiction=j,
    )
    assert refused.status_code == 403


async def test_report_from_another_agency_arrives_on_the_inbound_topic(
    client: Client, driver: Driver
) -> None:
    pem = await client.ok("GET", "intake", "/inbound/public-key", role="letters_office", jurisdiction=J)
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    key = load_pem_public_key(pem["public_key_pem"].encode())
    who = reporter()
    reference = f"公安-{uuid.uuid4().hex[:8]}"
    message = {
        "message_id": str(uuid.uuid4()),
        "schema_version": 1,
        "source_agency": "缙云县公安局",
        "source_reference": reference,
        "jurisdiction": J,
        "received_on": day(9, 4).isoformat(),
        "real_name": True,
        "reporter_sealed": seal_for_intake({"name": who.name, "contact": who.contact}, key),  # type: ignore[arg-type]
        "subjects": [person()],
        "allegations": [{"summary": "违规插手工程项目"}],
        "summary": "移送线索",
    }
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka().bootstrap)
    await producer.start()
    try:
        body = json.dumps(message, ensure_ascii=False).encode()
        await producer.send_and_wait(inbound_reports_topic(J), body, key=reference.encode())
        await producer.send_and_wait(inbound_reports_topic(J), body, key=reference.encode())  # redelivered
        await producer.send_and_wait(inbound_reports_topic(J), b'{"schema_version": 1}', key=b"bad")
    finally:
        await producer.stop()

    async def registered() -> Any:
        rows = await client.ok(
            "GET",
            "intake",
            "/reports",
            role="letters_office",
            jurisdiction=J,
            params={"jurisdiction": J, "limit": 5000},
        )
        return [r for r in rows if r.get("source_reference") == reference]

    rows = await client.eventually("the inbound report registered", registered)
    assert len(rows) == 1 and rows[0]["channel"] == "agency_transfer"
    report = await client.ok(
        "GET", "intake", f"/reports/{rows[0]['report_id']}", role="letters_office", jurisdiction=J
    )
    assert report["reporter"]["name"] == who.name
    masked = await client.ok(
        "GET", "intake", f"/reports/{rows[0]['report_id']}", role="auditor", jurisdiction=J
    )
    assert masked["reporter"] == {"masked": True}


async def test_another_jurisdiction_is_invisible(client: Client, driver: Driver) -> None:
    p = plan(["untrue"], day(2, 6))
    case_id = await open_case(driver, p)
    await driver.wait_verification(p, case_id)
    other = "331102"
    for service, path in (("intake", f"/reports/{case_id}"), ("review", f"/verifications/{case_id}")):
        response = await client.request("GET", service, path, role="auditor", jurisdiction=other)
        assert response.status_code == 404, (service, response.text)
    listing = await client.request(
        "GET", "intake", "/reports", role="letters_office", jurisdiction=other, params={"jurisdiction": J}
    )
    assert listing.status_code == 403
    command = await client.request(
        "POST",
        "review",
        f"/verifications/{case_id}/decision",
        role="handling_department",
        jurisdiction=other,
        body={"method": "close", "decided_on": day(2, 9).isoformat(), "collective": True},
    )
    assert command.status_code == 404
    no_token = await client.http.get(settings.services().url("archive") + "/statistics?quarter=2023Q1")
    assert no_token.status_code == 401


async def test_bad_input_is_a_problem_naming_the_field(client: Client) -> None:
    response = await client.request(
        "POST",
        "intake",
        "/reports",
        role="letters_office",
        jurisdiction=J,
        body={
            "jurisdiction": J,
            "channel": "pigeon",
            "received_on": day(1, 5).isoformat(),
            "real_name": False,
            "reporter": None,
            "subjects": [],
            "allegations": [{"summary": "x"}],
        },
    )
    assert response.status_code == 422
    problem = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    fields = {e["field"] for e in problem["errors"]}
    assert any("channel" in f for f in fields) and any("subjects" in f for f in fields)
    wrong_role = await client.request("POST", "intake", "/reports", role="auditor", jurisdiction=J, body={})
    assert wrong_role.status_code == 403
    _ = timedelta


async def test_every_exit_of_the_chain_by_the_users_who_take_it(client: Client, driver: Driver) -> None:
    """The person declines (before the start) or withdraws (after it); the head refuses or sends back:
    each by its own user, each visible in the matter and counted in the quarter's statistics."""
    cases: dict[str, tuple[CasePlan, str, str]] = {}
    for name in ("declined", "withdrawn", "refused", "returned"):
        p = plan(["untrue"], day(5, 4))
        cid = await open_case(driver, p)
        await driver.verify(p, cid)
        await driver.wait_state(p, cid, {"candidate"})
        subject_id = (await driver.clarification(p, cid) or {})["outcome"]["subjects"][0]["subject_id"]
        cases[name] = (p, cid, subject_id)

    async def post(cid: str, action: str, role: str, body: dict[str, Any]) -> Any:
        return await client.request(
            "POST", "clarification", f"/clarifications/{cid}/{action}", role=role, jurisdiction=J, body=body
        )

    p, cid, subject_id = cases["declined"]
    decline = {
        "person_subject_id": subject_id,
        "declined_on": day(7, 3).isoformat(),
        "reason": "本人不同意澄清",
    }
    assert (await post(cid, "decline", "case_trial", decline)).status_code == 403
    assert (await post(cid, "decline", "handling_department", decline)).json()["state"] == "declined"
    # 纠正错误处理: the person had been passed over on the strength of the report; corrected, and the
    # archive keeps it in the person's file although they were never clarified.
    correction = {
        "person_subject_id": subject_id,
        "corrected_on": day(7, 6).isoformat(),
        "treatment": "因被举报暂缓提拔",
        "organ": "中共缙云县委组织部",
        "correction": "恢复提拔考察程序",
    }
    assert (await post(cid, "corrections", "case_trial", correction)).status_code == 403
    corrected = (await post(cid, "corrections", "handling_department", correction)).json()
    assert (corrected["event"], corrected["state"]) == ("TreatmentCorrected", "declined")

    async def in_the_file() -> Any:
        found = await client.get_if("archive", f"/files/{subject_id}", role="case_management", jurisdiction=J)
        return found if found and found["corrections"] else None

    kept = await client.eventually("the correction in the person's file", in_the_file)
    assert [(c["treatment"], c["organ"]) for c in kept["corrections"]] == [
        ("因被举报暂缓提拔", "中共缙云县委组织部")
    ]

    p, cid, _ = cases["withdrawn"]
    assert await driver.clarify_until_approved(p, cid, day(7, 3)) == "approved"
    withdraw = {"withdrawn_on": day(7, 10).isoformat(), "reason": "本人申请撤回"}
    assert (await post(cid, "withdraw", "handling_department", withdraw)).json()["state"] == "withdrawn"

    for name in ("refused", "returned"):
        p, cid, subject_id = cases[name]
        await driver.case.start(J, cid, driver.case.start_body(subject_id, day(7, 3)))
        await driver.case.assess(J, cid, on=day(7, 4), bad_effects=["repeated_reports"])
        await driver.case.re_review(J, cid, on=day(7, 5))
    refuse = {"refused_on": day(7, 6).isoformat(), "reason": "澄清时机尚不成熟"}
    send_back = {"sent_back_on": day(7, 6).isoformat(), "reason": "请重新复核预期效果"}
    _, refused, _ = cases["refused"]
    _, returned, _ = cases["returned"]
    # The department cannot decide for the head.
    assert (await post(refused, "refuse-approval", "handling_department", refuse)).status_code == 403
    assert (await post(returned, "send-back", "handling_department", send_back)).status_code == 403
    assert (await post(refused, "refuse-approval", "head", refuse)).json()["state"] == "refused_by_head"
    assert (await post(returned, "send-back", "head", send_back)).json()["state"] == "returned_by_head"
    # The new re-review is signed by each office's member in their own session.
    review = {
        "reviewed_on": day(7, 7).isoformat(),
        "verification_complete": True,
        "conclusion_clear": True,
        "disposal_adequate": True,
        "expected_effect": "澄清后可消除不良影响",
    }
    assert (await post(returned, "re-review", "handling_department", review)).status_code == 403
    first = (await post(returned, "re-review", "case_trial", review)).json()
    assert (first["event"], first["state"]) == ("ReReviewSigned", "returned_by_head")
    assert (await post(returned, "re-review", "case_trial", review)).status_code == 409
    assert (await post(returned, "re-review", "letters_office", review)).json()["event"] == "ReReviewSigned"
    passed = (await post(returned, "re-review", "case_management", review)).json()
    assert (passed["event"], passed["state"], passed["passed"]) == ("ReReviewRecorded", "re_reviewed", True)
    assert sorted(passed["members"]) == ["case_management", "case_trial", "letters_office"]
    approved = await driver.case.approve(J, returned, day(7, 8))
    assert approved["state"] == "approved"

    ended = {
        name: (await driver.clarification(p, cid) or {}).get("ended") for name, (p, cid, _) in cases.items()
    }
    assert {name: e and e["exit"] for name, e in ended.items()} == {
        "declined": "declined",
        "withdrawn": "withdrawn",
        "refused": "refused_by_head",
        "returned": None,
    }
    assert ended["refused"] and ended["refused"]["reason"] == "澄清时机尚不成熟"

    async def counted() -> bool:
        stats = await client.ok(
            "GET",
            "archive",
            "/statistics",
            role="auditor",
            jurisdiction=J,
            params={"quarter": quarter(3), "jurisdiction": J},
        )
        figures = stats["rows"][0]["figures"]
        return bool(
            figures["declined"] >= 2
            and figures["returned_by_head"] >= 2
            and figures["treatments_corrected"] >= 1
        )

    await client.eventually("the exits in the statistics", counted)
