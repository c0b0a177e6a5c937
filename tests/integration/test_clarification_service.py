"""The clarification service on the real PostgreSQL: consumers fed in every order (with duplicates),
the chain through HTTP, rounds, overdue list, problem bodies with nothing written, and replay."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime
from itertools import permutations
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from services.clarification.api import build_api
from services.clarification.main import definition
from services.clarification.projections import project
from shared.auth import Principal, mint
from shared.consumer import EventConsumer
from shared.envelope import GENESIS_HASH, Actor, EventEnvelope, seal
from shared.events import registry
from shared.events.common import Allegation, Finding, Subject
from shared.events.intake import ClarificationApplicationFiled
from shared.events.review import CandidateScreened, VerificationConcluded
from shared.runtime import Runtime
from tests.integration.conftest import fresh_runtime
from zhengming.driver import content_points

J = "331122"
OTHER_J = "331121"
PERSON = Subject(kind="person", name="李明", post="镇党委书记", unit="缙云县壶镇镇", cadre_level="county")
CITY_CADRE = Subject(kind="person", name="王芳", post="县委副书记", unit="中共缙云县委", cadre_level="city")
UNTRUE = Allegation(allegation_id="A1", summary="收受工程老板礼金")
PARTLY = Allegation(allegation_id="A2", summary="违规插手土地征收")
QUALITY_GROUP = ("letters_office", "case_trial", "case_management")
REVIEWER = Actor(user_id="reviewer-1", role="handling_department", unit="缙云县纪委监委第一监督检查室")


# --- Fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture
async def runtime(schema: str) -> AsyncIterator[Runtime]:
    async with fresh_runtime(definition, schema) as rt:
        yield rt


class NoReporter:
    """Intake's answer for matters it never registered: no reporter identity to reveal (the
    check itself runs against intake in test_clarification_content.py)."""

    async def reveals(self, case_id: str, text: str, authorization: str | None) -> bool:
        return False


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_api(runtime, NoReporter()))
    async with httpx.AsyncClient(transport=transport, base_url="http://clarification") as c:
        yield c


def auth(role: str, *jurisdictions: str, user: str | None = None) -> dict[str, str]:
    principal = Principal(
        user_id=user or f"{role}-{'-'.join(jurisdictions)}",
        role=role,
        unit=f"{role} unit",
        jurisdictions=list(jurisdictions or (J,)),
    )
    return {"Authorization": f"Bearer {mint(principal)}"}


DEPT = auth("handling_department", J)
TRIAL = auth("case_trial", J)
HEAD = auth("head", J)
CITY_HEAD = auth("head", "331100", J)
AUDITOR = auth("auditor", J)


def envelope(payload: BaseModel, *, stream: str, case_id: str, jurisdiction: str = J) -> EventEnvelope:
    event_type, version, body = registry.encode(payload)
    return seal(
        event_type=event_type,
        schema_version=version,
        stream_id=stream,
        stream_version=1,
        case_id=case_id,
        jurisdiction=jurisdiction,
        occurred_at=datetime.now(UTC),
        actor=REVIEWER,
        correlation_id=uuid.uuid4(),
        causation_id=None,
        payload=body,
        prev_hash=GENESIS_HASH,
    )


def conclusion(
    case_id: str,
    findings: dict[str, Finding] | None = None,
    points: Sequence[Allegation] = (UNTRUE,),
    *,
    subjects: Sequence[Subject] = (PERSON,),
    concluded_on: date = date(2023, 2, 10),
    jurisdiction: str = J,
) -> EventEnvelope:
    findings = findings or {"A1": "untrue"}
    payload = VerificationConcluded(
        concluded_on=concluded_on,
        received_on=date(2023, 1, 5),
        findings=findings,
        untrue_points=list(points),
        subjects=list(subjects),
        eligible_for_pool=all(f not in ("true", "partly_true") for f in findings.values()),
    )
    return envelope(payload, stream=f"verification-{case_id}", case_id=case_id, jurisdiction=jurisdiction)


def sweep(case_id: str, flags: Sequence[str] = ("frontline_reform",)) -> EventEnvelope:
    payload = CandidateScreened.model_validate(
        {"sweep_id": "SW-2023Q1", "screened_on": date(2023, 3, 1), "priority_flags": list(flags)}
    )
    return envelope(payload, stream=f"verification-{case_id}", case_id=case_id)


def application(case_id: str, application_id: str = "APP-1") -> EventEnvelope:
    payload = ClarificationApplicationFiled(
        application_id=application_id,
        matter_id=case_id,
        applicant=PERSON,
        untrue_points=["A1"],
        request="请求对失实问题予以澄清",
        filed_on=date(2023, 1, 20),
    )
    return envelope(payload, stream=f"application-{application_id}", case_id=case_id)


class Feed:
    """The service's consumers, applied as the runner applies them (inbox and effect together)."""

    def __init__(self, runtime: Runtime) -> None:
        self.consumers = {
            spec.name: EventConsumer(spec.name, runtime.pool, registry, spec.apply)
            for spec in definition.consumers(runtime)
        }
        self.offset = 0

    async def deliver(self, event: EventEnvelope) -> str:
        context = "intake" if event.stream_id.startswith("application-") else "review"
        self.offset += 1
        position = {
            "topic": f"zm.{event.jurisdiction}.{context}.events",
            "partition": 0,
            "offset": self.offset,
        }
        return await self.consumers[f"clarification.{context}"].apply_once(
            event, registry.decode(event), position
        )


async def counts(runtime: Runtime) -> tuple[int, int, int]:
    async with runtime.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM events) AS e, (SELECT count(*) FROM outbox) AS o,"
            " (SELECT count(*) FROM documents) AS d"
        )
    assert row is not None
    return row["e"], row["o"], row["d"]


async def stream_types(runtime: Runtime, stream: str) -> list[str]:
    return [e.event_type for e in await runtime.store.load(stream)]


def problem(response: httpx.Response, status: int, code: str, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    if field is not None:
        assert body["field"] == field, body
    return body


async def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


async def word_content(
    client: httpx.AsyncClient, case_id: str, jurisdiction: str = J, on: str = "2023-03-01"
) -> None:
    """The 澄清内容 drafted by the department and approved by 审理室 (the matter started)."""
    base = f"/clarifications/{case_id}"
    matter = await ok(await client.get(base, headers=auth("handling_department", jurisdiction)))
    body = {"drafted_on": on, "points": content_points(matter)}
    await ok(
        await client.post(f"{base}/content", headers=auth("handling_department", jurisdiction), json=body)
    )
    approve = {"approved_on": on}
    await ok(
        await client.post(f"{base}/content/approve", headers=auth("case_trial", jurisdiction), json=approve)
    )


async def to_re_reviewed(
    client: httpx.AsyncClient, case_id: str, person: Subject = PERSON, jurisdiction: str = J
) -> None:
    base = f"/clarifications/{case_id}"
    dept = auth("handling_department", jurisdiction)
    await ok(
        await client.post(
            f"{base}/start",
            headers=dept,
            json={
                "initiated_by": "department",
                "person_subject_id": person.subject_id,
                "consent": True,
                "consent_note": "本人同意澄清",
                "started_on": "2023-03-01",
            },
        )
    )
    await word_content(client, case_id, jurisdiction)
    await ok(
        await client.post(
            f"{base}/assess",
            headers=dept,
            json={
                "assessed_on": "2023-03-02",
                "bad_effects": ["repeated_reports"],
                "effect_only_from_interviews": False,
            },
        )
    )
    await sign_all(client, base, jurisdiction=jurisdiction)


async def sign_all(
    client: httpx.AsyncClient, base: str, *, on: str = "2023-03-03", jurisdiction: str = J
) -> dict[str, Any]:
    """复核: each office's member signs in their own session; the answer of the last signature."""
    answer: dict[str, Any] = {}
    for office in QUALITY_GROUP:
        answer = await ok(
            await client.post(
                f"{base}/re-review", headers=auth(office, jurisdiction), json=re_review_body(on=on)
            )
        )
    return answer


async def to_approved(
    client: httpx.AsyncClient,
    case_id: str,
    jurisdiction: str = J,
    approved_on: str = "2023-03-06",
    forms: Sequence[str] | None = None,
) -> dict[str, Any]:
    await to_re_reviewed(client, case_id, PERSON, jurisdiction)
    named = {} if forms is None else {"forms": list(forms)}
    approved: dict[str, Any] = await ok(
        await client.post(
            f"/clarifications/{case_id}/approve",
            headers=auth("head", jurisdiction),
            json={"approved_on": approved_on, **named},
        )
    )
    return approved


def re_review_body(*, clear: bool = True, on: str = "2023-03-03", **extra: Any) -> dict[str, Any]:
    return {
        "reviewed_on": on,
        "verification_complete": True,
        "conclusion_clear": clear,
        "disposal_adequate": True,
        "expected_effect": "消除不良影响，激励担当作为",
        **extra,
    }


# --- The pool: consumers in every order --------------------------------------------------------


async def test_the_pool_converges_whatever_the_order_of_arrival(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    feed = Feed(runtime)
    views = []
    for n, order in enumerate(permutations(("conclusion", "sweep", "application"))):
        case_id = f"{J}-2023-0001{n:02d}"
        facts = {
            "conclusion": conclusion(case_id),
            "sweep": sweep(case_id),
            "application": application(case_id),
        }
        for name in order:
            assert await feed.deliver(facts[name]) == "applied"
        view = await ok(await client.get(f"/clarifications/{case_id}", headers=AUDITOR))
        views.append(
            (
                view["state"],
                view["candidate"],
                view["priority_flags"],
                [(a["application_id"], a["status"]) for a in view["applications"]],
            )
        )
    assert all(v == views[0] for v in views), views
    assert views[0] == (
        "candidate",
        {"via": "conclusion", "added_on": "2023-02-10"},
        ["frontline_reform"],
        [("APP-1", "in_pool")],
    )
    pool = await ok(await client.get("/pool", params={"jurisdiction": J}, headers=DEPT))
    assert len(pool) == 6 and all(p["priority"] for p in pool)


async def test_a_green_channel_application_waits_for_the_conclusion(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    feed = Feed(runtime)
    case_id = f"{J}-2023-000201"
    await feed.deliver(application(case_id))
    view = await ok(await client.get(f"/clarifications/{case_id}", headers=DEPT))
    assert view["state"] == "awaiting_outcome" and view["applications"][0]["status"] == "pending"
    assert await ok(await client.get("/pool", params={"jurisdiction": J}, headers=DEPT)) == []
    await feed.deliver(conclusion(case_id, concluded_on=date(2023, 2, 14)))
    [entry] = await ok(await client.get("/pool", params={"jurisdiction": J}, headers=DEPT))
    assert (entry["case_id"], entry["via"], entry["added_on"]) == (case_id, "conclusion", "2023-02-14")
    assert entry["applied_on"] == "2023-01-20"  # the green-channel origin: the person applied
    assert await stream_types(runtime, f"clarification-{case_id}") == [
        "ApplicationNoted",
        "OutcomeNoted",
        "CandidateAdded",
    ]


@pytest.mark.parametrize("application_first", [True, False])
async def test_a_partly_true_matter_declines_the_application_and_never_enters_the_pool(
    runtime: Runtime, client: httpx.AsyncClient, application_first: bool
) -> None:
    feed = Feed(runtime)
    case_id = f"{J}-2023-000301"
    facts = [conclusion(case_id, {"A1": "untrue", "A2": "partly_true"}), application(case_id)]
    for fact in reversed(facts) if application_first else facts:
        await feed.deliver(fact)
    view = await ok(await client.get(f"/clarifications/{case_id}", headers=DEPT))
    assert view["state"] == "not_eligible" and view["candidate"] is None
    [declined] = view["applications"]
    assert declined["status"] == "declined" and "部分属实" in declined["reason"]
    assert await ok(await client.get("/pool", params={"jurisdiction": J}, headers=DEPT)) == []
    response = await client.post(
        f"/clarifications/{case_id}/start",
        headers=DEPT,
        json={
            "initiated_by": "person",
            "person_subject_id": PERSON.subject_id,
            "consent": True,
            "started_on": "2023-03-01",
        },
    )
    problem(response, 409, "not_a_candidate")
    types = await stream_types(runtime, f"clarification-{case_id}")
    assert "CandidateAdded" not in types and types.count("ApplicationDeclined") == 1


async def test_duplicates_change_nothing(runtime: Runtime) -> None:
    feed = Feed(runtime)
    case_id = f"{J}-2023-000401"
    concluded, applied = conclusion(case_id), application(case_id)
    assert await feed.deliver(concluded) == "applied"
    assert await feed.deliver(concluded) == "duplicate"  # redelivery: the inbox knows it
    assert await feed.deliver(applied) == "applied"
    before = await counts(runtime)
    # The same facts under new event ids (e.g. re-published): applied, but nothing new is recorded.
    assert await feed.deliver(conclusion(case_id)) == "applied"
    assert await feed.deliver(application(case_id)) == "applied"
    assert await feed.deliver(sweep(case_id)) == "applied"
    assert await feed.deliver(sweep(case_id)) == "applied"
    after = await counts(runtime)
    assert after[0] == before[0] + 1  # only the first sweep's PriorityNoted
    assert await stream_types(runtime, f"clarification-{case_id}") == [
        "OutcomeNoted",
        "CandidateAdded",
        "ApplicationNoted",
        "PriorityNoted",
    ]


async def test_both_consumers_at_once_on_one_matter_still_converge(runtime: Runtime) -> None:
    """The review and intake consumers run side by side: they take turns on a matter's stream."""
    feed = Feed(runtime)
    cases = [f"{J}-2023-00045{n}" for n in range(6)]
    outcomes = await asyncio.gather(
        *(feed.deliver(fact) for case_id in cases for fact in (application(case_id), conclusion(case_id)))
    )
    assert outcomes == ["applied"] * 12
    for case_id in cases:
        types = sorted(await stream_types(runtime, f"clarification-{case_id}"))
        assert types == ["ApplicationNoted", "CandidateAdded", "OutcomeNoted"]


async def test_the_pool_puts_priority_first_then_the_oldest(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    feed = Feed(runtime)
    await feed.deliver(conclusion(f"{J}-2023-000501", concluded_on=date(2023, 1, 10)))
    await feed.deliver(conclusion(f"{J}-2023-000502", concluded_on=date(2023, 2, 20)))
    await feed.deliver(conclusion(f"{J}-2023-000503", concluded_on=date(2023, 1, 30)))
    await feed.deliver(sweep(f"{J}-2023-000502", flags=["work_record"]))
    await feed.deliver(conclusion(f"{OTHER_J}-2023-000504", jurisdiction=OTHER_J))
    pool = await ok(await client.get("/pool", params={"jurisdiction": J}, headers=DEPT))
    assert [p["case_id"] for p in pool] == [f"{J}-2023-000502", f"{J}-2023-000501", f"{J}-2023-000503"]


# --- The chain through HTTP --------------------------------------------------------------------


async def test_the_chain_from_start_to_filing(runtime: Runtime, client: httpx.AsyncClient) -> None:
    feed = Feed(runtime)
    case_id = f"{J}-2023-000601"
    await feed.deliver(
        conclusion(
            case_id, {"A1": "untrue", "A3": "not_proven"}, points=(UNTRUE,), subjects=(PERSON, CITY_CADRE)
        )
    )
    base = f"/clarifications/{case_id}"
    start = {
        "initiated_by": "department",
        "person_subject_id": PERSON.subject_id,
        "consent": False,
        "consent_note": "",
        "started_on": "2023-03-01",
    }
    nothing_written = await counts(runtime)

    problem(await client.post(f"{base}/start", headers=DEPT, json=start), 422, "consent_required", "consent")
    body = problem(
        await client.post(f"{base}/start", headers=DEPT, json={**start, "started_on": None}),
        422,
        "invalid_input",
        "body.started_on",
    )
    assert body["errors"][0]["field"] == "body.started_on"
    problem(
        await client.post(
            f"{base}/start", headers=DEPT, json={**start, "consent": True, "person_subject_id": "x"}
        ),
        422,
        "unknown_subject",
        "person_subject_id",
    )
    problem(
        await client.post(
            f"{base}/start", headers=DEPT, json={**start, "consent": True, "started_on": "2023-02-01"}
        ),
        422,
        "date_before_previous_step",
        "started_on",
    )
    problem(
        await client.post(f"{base}/start", headers=TRIAL, json={**start, "consent": True}),
        403,
        "role_forbidden",
    )
    assert await counts(runtime) == nothing_written

    started = await ok(await client.post(f"{base}/start", headers=DEPT, json={**start, "consent": True}))
    assert started["state"] == "started" and started["person"]["name"] == "李明"

    assessed = await ok(
        await client.post(
            f"{base}/assess",
            headers=DEPT,
            json={
                "assessed_on": "2023-03-02",
                "bad_effects": ["selection_affected", "repeated_reports"],
                "effect_only_from_interviews": False,
            },
        )
    )
    assert assessed["eligible"] and assessed["state"] == "assessed"
    assert assessed["bad_effects"] == ["repeated_reports", "selection_affected"]

    before = await counts(runtime)
    # One caller can no longer name the group: each member signs for their own office.
    named = problem(
        await client.post(f"{base}/re-review", headers=TRIAL, json=re_review_body(members={"x": "y"})),
        422,
        "invalid_input",
    )
    assert [e["field"] for e in named["errors"]] == ["body.members"]
    problem(
        await client.post(f"{base}/re-review", headers=HEAD, json=re_review_body()), 403, "role_forbidden"
    )
    problem(
        await client.post(f"{base}/re-review", headers=DEPT, json=re_review_body()), 403, "role_forbidden"
    )
    assert await counts(runtime) == before

    sent_back = await ok(
        await client.post(f"{base}/re-review", headers=TRIAL, json=re_review_body(clear=False))
    )
    assert (sent_back["passed"], sent_back["state"]) == (False, "sent_back")
    assert sent_back["reasons"] == ["核查结论不清楚，退回进一步查明后重新复核"]
    problem(
        await client.post(f"{base}/approve", headers=HEAD, json={"approved_on": "2023-03-06"}),
        409,
        "wrong_state",
    )
    first = await ok(
        await client.post(f"{base}/re-review", headers=TRIAL, json=re_review_body(on="2023-03-04"))
    )
    assert (first["event"], first["state"], first["signed_offices"]) == (
        "ReReviewSigned",
        "sent_back",
        ["case_trial"],
    )
    # One office signs once; another office's member signs for their own.
    problem(
        await client.post(
            f"{base}/re-review",
            headers=auth("case_trial", J, user="sl-02"),
            json=re_review_body(on="2023-03-04"),
        ),
        409,
        "already_signed",
    )
    for office in ("letters_office", "case_management"):
        passed = await ok(
            await client.post(
                f"{base}/re-review", headers=auth(office, J), json=re_review_body(on="2023-03-04")
            )
        )
    assert (passed["passed"], passed["state"], passed["event"]) == (True, "re_reviewed", "ReReviewRecorded")
    assert passed["members"] == {o: f"{o}-{J}" for o in QUALITY_GROUP}
    # The 审批表 is put before the head when the re-review passes, not after the approval.
    assert passed["documents"] == [f"{case_id}-approval_form"] and sent_back["documents"] == []

    problem(
        await client.post(
            f"{base}/approve", headers=auth("head", OTHER_J), json={"approved_on": "2023-03-06"}
        ),
        404,
        "not_found",
    )
    approval = {
        "approved_on": "2023-03-06",
        "forms": ["scoped_notice", "face_to_face"],
        "scope": "壶镇镇班子成员",
    }
    before = await counts(runtime)
    # The department cannot approve for the head; the head names a scope with a scoped notice.
    problem(await client.post(f"{base}/approve", headers=DEPT, json=approval), 403, "role_forbidden")
    problem(
        await client.post(f"{base}/approve", headers=HEAD, json={**approval, "scope": " "}),
        422,
        "scope_required",
        "scope",
    )
    assert await counts(runtime) == before
    approved = await ok(await client.post(f"{base}/approve", headers=HEAD, json=approval))
    assert (approved["level"], approved["clarify_by"], approved["state"]) == (J, "2023-03-13", "approved")
    assert (approved["forms"], approved["scope"]) == (
        ["written_notice", "face_to_face", "scoped_notice"],
        "壶镇镇班子成员",
    )
    assert "documents" not in approved

    # Only the 澄清内容 approved by 审理室 is clarified.
    problem(
        await client.post(f"{base}/perform", headers=DEPT, json={"performed_on": "2023-03-08"}),
        409,
        "content_not_approved",
    )
    await word_content(client, case_id, on="2023-03-07")

    before = await counts(runtime)
    # The clarification is performed in the approved forms and scope, never in others.
    problem(
        await client.post(
            f"{base}/perform", headers=DEPT, json={"performed_on": "2023-03-08", "forms": ["scoped_notice"]}
        ),
        422,
        "not_approved",
        "forms",
    )
    problem(
        await client.post(
            f"{base}/perform", headers=DEPT, json={"performed_on": "2023-03-08", "scope": "全镇干部"}
        ),
        422,
        "not_approved",
        "scope",
    )
    problem(
        await client.post(f"{base}/perform", headers=DEPT, json={"performed_on": "2023-03-05"}),
        422,
        "date_before_previous_step",
        "performed_on",
    )
    problem(
        await client.post(
            f"{base}/perform", headers=DEPT, json={"performed_on": "2023-03-08", "forms": ["poster"]}
        ),
        422,
        "invalid_input",
        "body.forms.0",
    )
    assert await counts(runtime) == before

    performed = await ok(
        await client.post(
            f"{base}/perform",
            headers=DEPT,
            json={
                "performed_on": "2023-03-08",
                "forms": ["face_to_face", "scoped_notice"],
                "scope": "壶镇镇班子成员",
            },
        )
    )
    assert performed["forms"] == ["written_notice", "face_to_face", "scoped_notice"]
    assert performed["points"] == [UNTRUE.model_dump()] and performed["on_time"]
    assert performed["wording"] == {"A1": "经核查，反映李明同志收受工程老板礼金的问题失实。"}
    assert performed["documents"] == [f"{case_id}-notice"]
    assert (await counts(runtime))[2] == before[2] + 1

    notice = await client.get(f"{base}/documents/{case_id}-notice", headers=AUDITOR)
    assert notice.status_code == 200 and notice.headers["content-type"] == "text/plain; charset=utf-8"
    assert "李明同志" in notice.text and "1．经核查，反映李明同志收受工程老板礼金的问题失实。" in notice.text
    assert notice.text.startswith("中共缙云县纪律检查委员会\n缙云县监察委员会\n缙纪澄〔2023〕")
    form = await client.get(f"{base}/documents/{case_id}-approval_form", headers=DEPT)
    assert "失实检举控告澄清审批表" in form.text and "王芳" not in form.text

    problem(
        await client.post(f"{base}/file", headers=DEPT, json={"filed_on": "2023-03-20"}), 409, "wrong_state"
    )
    await ok(
        await client.post(
            f"{base}/feedback",
            headers=DEPT,
            json={
                "given_on": "2023-03-09",
                "party_committee": "中共缙云县壶镇镇委员会",
                "unit_head": "张书记",
            },
        )
    )
    await ok(
        await client.post(
            f"{base}/acknowledge", headers=DEPT, json={"acknowledged_on": "2023-03-09", "note": "已知悉"}
        )
    )
    filed = await ok(
        await client.post(f"{base}/file", headers=auth("case_management", J), json={"filed_on": "2023-03-10"})
    )
    assert filed["state"] == "filed" and filed["clarified_on"] == "2023-03-08"

    view = await ok(await client.get(base, headers=AUDITOR))
    assert view["state"] == "filed"
    assert [(s["step"], s["on"]) for s in view["steps"] if s["step"] != "re_review_signed"] == [
        ("started", "2023-03-01"),
        ("assessed", "2023-03-02"),
        ("re_reviewed", "2023-03-03"),
        ("re_reviewed", "2023-03-04"),
        ("approved", "2023-03-06"),
        ("performed", "2023-03-08"),
        ("feedback", "2023-03-09"),
        ("acknowledged", "2023-03-09"),
        ("filed", "2023-03-10"),
    ]
    signed = [s for s in view["steps"] if s["step"] == "re_review_signed"]
    assert [(s["office"], s["by"], s["passed"]) for s in signed] == [
        ("case_trial", f"case_trial-{J}", False),
        ("case_trial", f"case_trial-{J}", True),
        ("letters_office", f"letters_office-{J}", True),
        ("case_management", f"case_management-{J}", True),
    ]
    chain = [s for s in view["steps"] if s["step"] != "re_review_signed"]
    assert chain[2]["passed"] is False and chain[3]["passed"] is True
    assert {d["doc_id"] for d in view["documents"]} == {
        f"{case_id}-approval_form",
        f"{case_id}-notice",
        f"{case_id}-unit_letter",
    }
    letter = await client.get(f"{base}/documents/{case_id}-unit_letter", headers=AUDITOR)
    assert "中共缙云县壶镇镇委员会：" in letter.text and "党组织" not in letter.text
    assert await runtime.store.verify() is None
    topics = await runtime.pool.fetch("SELECT DISTINCT topic FROM outbox")
    assert [r["topic"] for r in topics] == ["zm.331122.clarification.events"]


async def test_a_refused_assessment_is_a_recorded_decision(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    case_id = f"{J}-2023-000701"
    await Feed(runtime).deliver(conclusion(case_id))
    base = f"/clarifications/{case_id}"
    await ok(
        await client.post(
            f"{base}/start",
            headers=DEPT,
            json={
                "initiated_by": "person",
                "person_subject_id": PERSON.subject_id,
                "consent": True,
                "started_on": "2023-03-01",
            },
        )
    )
    refused = await ok(
        await client.post(
            f"{base}/assess",
            headers=DEPT,
            json={
                "assessed_on": "2023-03-02",
                "bad_effects": ["wide_spread"],
                "effect_only_from_interviews": True,
            },
        )
    )
    assert (refused["eligible"], refused["state"]) == (False, "refused")
    assert refused["refusals"] == ["effect_only_from_interviews"]
    assert "谈话函询" in refused["reason"]
    problem(await client.post(f"{base}/re-review", headers=TRIAL, json=re_review_body()), 409, "wrong_state")
    listed = await ok(
        await client.get("/clarifications", params={"jurisdiction": J, "state": "refused"}, headers=HEAD)
    )
    assert [m["case_id"] for m in listed] == [case_id]


async def test_approval_follows_cadre_management_authority(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    case_id = f"{J}-2023-000801"
    await Feed(runtime).deliver(conclusion(case_id, subjects=(CITY_CADRE,)))
    await to_re_reviewed(client, case_id, CITY_CADRE)
    before = await counts(runtime)
    response = await client.post(
        f"/clarifications/{case_id}/approve", headers=HEAD, json={"approved_on": "2023-03-06"}
    )
    problem(response, 403, "approval_level")
    assert await counts(runtime) == before  # no event, no approval form
    approved = await ok(
        await client.post(
            f"/clarifications/{case_id}/approve", headers=CITY_HEAD, json={"approved_on": "2023-03-06"}
        )
    )
    assert (approved["level"], approved["approver"]) == ("331100", "head-331100-331122")

    # The city's head holds the city's jurisdiction only (as the seeded directory users do): a
    # city-managed cadre of a county is still theirs to read and approve; a county-managed one is not.
    city_only = auth("head", "331100", user="head-331100")
    county_case, city_case = f"{J}-2023-000811", f"{J}-2023-000812"
    await Feed(runtime).deliver(conclusion(county_case))
    await Feed(runtime).deliver(conclusion(city_case, subjects=(CITY_CADRE,)))
    await to_re_reviewed(client, county_case)
    await to_re_reviewed(client, city_case, CITY_CADRE)
    for path in ("", f"/documents/{county_case}-approval_form"):
        problem(await client.get(f"/clarifications/{county_case}{path}", headers=city_only), 404, "not_found")
    problem(
        await client.post(
            f"/clarifications/{county_case}/approve", headers=city_only, json={"approved_on": "2023-03-06"}
        ),
        404,
        "not_found",
    )
    # What waits for each head: the city's, the city-managed cadre; the county's, the county's own.
    waiting = await ok(await client.get("/clarifications/awaiting-approval", headers=city_only))
    assert city_case in {m["case_id"] for m in waiting} and county_case not in {m["case_id"] for m in waiting}
    county_head = auth("head", J, user=f"head-{J}")
    waiting = await ok(await client.get("/clarifications/awaiting-approval", headers=county_head))
    assert county_case in {m["case_id"] for m in waiting} and city_case not in {m["case_id"] for m in waiting}
    form = await client.get(
        f"/clarifications/{city_case}/documents/{city_case}-approval_form", headers=city_only
    )
    assert form.status_code == 200 and CITY_CADRE.name in form.text
    approved = await ok(
        await client.post(
            f"/clarifications/{city_case}/approve", headers=city_only, json={"approved_on": "2023-03-06"}
        )
    )
    assert (approved["level"], approved["approver"]) == ("331100", "head-331100")
    assert (await ok(await client.get(f"/clarifications/{city_case}", headers=city_only)))[
        "state"
    ] == "approved"


# --- Rounds and the overdue list -----------------------------------------------------------------


async def test_a_quarterly_round_clarifies_every_approved_matter_at_once(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    feed = Feed(runtime)
    ready = [f"{J}-2023-000901", f"{J}-2023-000902"]
    waiting = f"{J}-2023-000903"
    elsewhere = f"{OTHER_J}-2023-000904"
    for case_id in [*ready, waiting]:
        await feed.deliver(conclusion(case_id))
    await feed.deliver(conclusion(elsewhere, jurisdiction=OTHER_J))
    for case_id in ready:
        await to_approved(client, case_id, forms=["unit_meeting"])
    await to_approved(client, elsewhere, jurisdiction=OTHER_J)
    body = {
        "jurisdiction": J,
        "quarter": "2023Q1",
        "held_on": "2023-03-10",
        "forms": ["unit_meeting"],
        "scope": "",
    }

    before = await counts(runtime)
    problem(
        await client.post("/rounds", headers=DEPT, json={**body, "forms": ["scoped_notice"]}),
        422,
        "scope_required",
        "scope",
    )
    problem(
        await client.post("/rounds", headers=DEPT, json={**body, "held_on": "2023-04-03"}),
        422,
        "outside_quarter",
        "held_on",
    )
    # A round clarifies in the forms the head approved for each matter, not in others.
    problem(
        await client.post("/rounds", headers=DEPT, json={**body, "forms": ["face_to_face"]}),
        422,
        "not_approved",
        "forms",
    )
    problem(
        await client.post("/rounds", headers=DEPT, json={**body, "jurisdiction": OTHER_J}),
        403,
        "jurisdiction_forbidden",
        "jurisdiction",
    )
    problem(
        await client.post("/rounds", headers=DEPT, json={**body, "quarter": "2023Q5"}), 422, "invalid_input"
    )
    assert await counts(runtime) == before

    held = await ok(await client.post("/rounds", headers=DEPT, json=body))
    assert held["round_id"] == "round-331122-2023Q1" and held["matters"] == ready
    for case_id in ready:
        events = await runtime.store.load(f"clarification-{case_id}")
        assert events[-1].event_type == "ClarificationPerformed"
        assert events[-1].payload["round_id"] == "round-331122-2023Q1"
        assert events[-1].payload["forms"] == ["written_notice", "unit_meeting"]
    [round_event] = await runtime.store.load("round-331122-2023Q1")
    assert (round_event.event_type, round_event.case_id) == ("QuarterlyRoundHeld", "round-331122-2023Q1")
    # One unit of work: every event of the round was committed by one transaction.
    xids = await runtime.pool.fetch(
        "SELECT DISTINCT xmin::text FROM events WHERE stream_id = ANY($1::text[])",
        ["round-331122-2023Q1", *(f"clarification-{c}" for c in ready)],
    )
    assert len(xids) > 1  # earlier steps were other transactions...
    performed = await runtime.pool.fetch(
        "SELECT DISTINCT xmin::text FROM events"
        " WHERE event_type IN ('ClarificationPerformed', 'QuarterlyRoundHeld') AND jurisdiction = $1",
        J,
    )
    assert len(performed) == 1  # ...but the round's events were one
    after = await counts(runtime)
    # One 澄清通知书 per matter (the letters to the units follow at their feedback).
    assert (after[0] - before[0], after[2] - before[2]) == (3, 2)

    states = {
        m["case_id"]: m["state"]
        for m in await ok(await client.get("/clarifications", params={"jurisdiction": J}, headers=DEPT))
    }
    assert states == {ready[0]: "performed", ready[1]: "performed", waiting: "candidate"}
    other = await ok(await client.get(f"/clarifications/{elsewhere}", headers=auth("auditor", OTHER_J)))
    assert other["state"] == "approved"
    problem(await client.post("/rounds", headers=DEPT, json=body), 409, "round_held")
    rounds = await ok(await client.get("/rounds", params={"jurisdiction": J}, headers=AUDITOR))
    assert [(r["round_id"], r["matters"]) for r in rounds] == [("round-331122-2023Q1", ready)]


async def test_a_round_with_nothing_ready_is_refused(runtime: Runtime, client: httpx.AsyncClient) -> None:
    await Feed(runtime).deliver(conclusion(f"{J}-2023-001001"))
    body = {"jurisdiction": J, "quarter": "2023Q1", "held_on": "2023-03-10"}
    problem(await client.post("/rounds", headers=DEPT, json=body), 422, "nothing_ready")
    assert (await counts(runtime))[0] == 2


async def test_the_overdue_list(runtime: Runtime, client: httpx.AsyncClient) -> None:
    case_id = f"{J}-2023-001101"
    await Feed(runtime).deliver(conclusion(case_id))
    approved = await to_approved(client, case_id)
    assert approved["clarify_by"] == "2023-03-13"
    on_time = await ok(
        await client.get("/overdue", params={"jurisdiction": J, "as_of": "2023-03-13"}, headers=HEAD)
    )
    assert on_time == []
    [late] = await ok(
        await client.get("/overdue", params={"jurisdiction": J, "as_of": "2023-03-16"}, headers=HEAD)
    )
    assert (late["case_id"], late["working_days_late"]) == (case_id, 3)
    performed = await ok(
        await client.post(
            f"/clarifications/{case_id}/perform", headers=DEPT, json={"performed_on": "2023-03-16"}
        )
    )
    assert performed["on_time"] is False
    assert (
        await ok(
            await client.get("/overdue", params={"jurisdiction": J, "as_of": "2023-03-16"}, headers=HEAD)
        )
        == []
    )


# --- Access ---------------------------------------------------------------------------------------


async def test_reads_stay_within_the_callers_jurisdictions(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    case_id = f"{J}-2023-001201"
    await Feed(runtime).deliver(conclusion(case_id))
    outsider = auth("auditor", OTHER_J)
    problem(await client.get(f"/clarifications/{case_id}", headers=outsider), 404, "not_found")
    problem(
        await client.get(f"/clarifications/{case_id}/documents/{case_id}-notice", headers=DEPT),
        404,
        "not_found",
    )
    problem(
        await client.get("/pool", params={"jurisdiction": J}, headers=outsider), 403, "jurisdiction_forbidden"
    )
    problem(
        await client.post(
            f"/clarifications/{case_id}/start",
            headers=auth("handling_department", OTHER_J),
            json={
                "initiated_by": "person",
                "person_subject_id": PERSON.subject_id,
                "consent": True,
                "started_on": "2023-03-01",
            },
        ),
        404,
        "not_found",
    )
    problem(await client.get("/pool", params={"jurisdiction": J}), 401, "unauthorized")
    problem(
        await client.get("/pool", params={"jurisdiction": J}, headers=auth("organisation_department", J)),
        403,
        "role_forbidden",
    )
    problem(await client.get("/clarifications/331122-2099-999999", headers=DEPT), 404, "not_found")
    schema = (await client.get("/openapi.json")).json()
    assert "/clarifications/{case_id}/re-review" in schema["paths"]


# --- Every exit: the person declines or withdraws, the head refuses or sends back ---------------


async def test_the_person_declines_before_the_start_and_the_matter_leaves_the_pool(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    feed = Feed(runtime)
    case_id = f"{J}-2023-001401"
    await feed.deliver(conclusion(case_id))
    base = f"/clarifications/{case_id}"
    await ok(
        await client.post(
            f"{base}/consent-request",
            headers=DEPT,
            json={"person_subject_id": PERSON.subject_id, "requested_on": "2023-02-20"},
        )
    )
    decline = {
        "person_subject_id": PERSON.subject_id,
        "declined_on": "2023-02-22",
        "reason": "本人不同意澄清",
    }
    before = await counts(runtime)
    problem(
        await client.post(f"{base}/decline", headers=DEPT, json={**decline, "reason": " "}),
        422,
        "reason_required",
        "reason",
    )
    problem(
        await client.post(f"{base}/decline", headers=DEPT, json={**decline, "declined_on": "2023-02-15"}),
        422,
        "date_before_previous_step",
        "declined_on",
    )
    problem(
        await client.post(f"{base}/decline", headers=DEPT, json={**decline, "person_subject_id": "x"}),
        422,
        "unknown_subject",
        "person_subject_id",
    )
    problem(await client.post(f"{base}/decline", headers=TRIAL, json=decline), 403, "role_forbidden")
    problem(
        await client.post(f"{base}/decline", headers=auth("handling_department", OTHER_J), json=decline),
        404,
        "not_found",
    )
    assert await counts(runtime) == before

    declined = await ok(await client.post(f"{base}/decline", headers=DEPT, json=decline))
    assert (declined["state"], declined["event"]) == ("declined", "ClarificationDeclined")
    assert declined["reason"] == "本人不同意澄清" and declined["person"]["name"] == "李明"
    problem(await client.post(f"{base}/decline", headers=DEPT, json=decline), 409, "wrong_state")
    start = {
        "initiated_by": "department",
        "person_subject_id": PERSON.subject_id,
        "consent": True,
        "started_on": "2023-03-01",
    }
    problem(await client.post(f"{base}/start", headers=DEPT, json=start), 409, "wrong_state")

    assert await ok(await client.get("/pool", params={"jurisdiction": J}, headers=DEPT)) == []
    [listed] = await ok(
        await client.get("/clarifications", params={"jurisdiction": J, "state": "declined"}, headers=AUDITOR)
    )
    assert listed["case_id"] == case_id
    assert listed["ended"] == {
        "exit": "declined",
        "on": "2023-02-22",
        "by": "handling_department-331122",
        "reason": "本人不同意澄清",
    }
    view = await ok(await client.get(base, headers=AUDITOR))
    assert [s["step"] for s in view["steps"]] == ["consent_requested", "declined"]
    assert view["state"] == "declined" and view["ended"]["exit"] == "declined"


async def test_the_person_withdraws_after_the_start_before_the_clarification(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    feed = Feed(runtime)
    candidate, case_id = f"{J}-2023-001501", f"{J}-2023-001502"
    await feed.deliver(conclusion(candidate))
    await feed.deliver(conclusion(case_id))
    withdraw = {"withdrawn_on": "2023-03-07", "reason": "本人申请撤回澄清"}
    # Only after the start: a candidate declines instead.
    problem(
        await client.post(f"/clarifications/{candidate}/withdraw", headers=DEPT, json=withdraw),
        409,
        "wrong_state",
    )
    await to_approved(client, case_id)
    base = f"/clarifications/{case_id}"
    before = await counts(runtime)
    problem(
        await client.post(f"{base}/withdraw", headers=DEPT, json={**withdraw, "withdrawn_on": "2023-03-05"}),
        422,
        "date_before_previous_step",
        "withdrawn_on",
    )
    problem(
        await client.post(f"{base}/withdraw", headers=DEPT, json={**withdraw, "reason": ""}),
        422,
        "reason_required",
        "reason",
    )
    problem(await client.post(f"{base}/withdraw", headers=HEAD, json=withdraw), 403, "role_forbidden")
    assert await counts(runtime) == before

    withdrawn = await ok(await client.post(f"{base}/withdraw", headers=DEPT, json=withdraw))
    assert (withdrawn["state"], withdrawn["event"]) == ("withdrawn", "ClarificationWithdrawn")
    problem(
        await client.post(f"{base}/perform", headers=DEPT, json={"performed_on": "2023-03-08"}),
        409,
        "wrong_state",
    )
    # A withdrawn matter is not approved any more: no round clarifies it.
    problem(
        await client.post(
            "/rounds", headers=DEPT, json={"jurisdiction": J, "quarter": "2023Q1", "held_on": "2023-03-10"}
        ),
        422,
        "nothing_ready",
    )
    view = await ok(await client.get(base, headers=AUDITOR))
    assert view["steps"][-1]["step"] == "withdrawn" and view["steps"][-1]["reason"] == "本人申请撤回澄清"
    assert view["ended"]["exit"] == "withdrawn"


async def test_the_head_refuses_or_sends_back_with_reasons(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    feed = Feed(runtime)
    refused_case, returned_case = f"{J}-2023-001601", f"{J}-2023-001602"
    for case_id in (refused_case, returned_case):
        await feed.deliver(conclusion(case_id))
        await to_re_reviewed(client, case_id)

    refuse = {"refused_on": "2023-03-06", "reason": "澄清时机尚不成熟"}
    base = f"/clarifications/{refused_case}"
    before = await counts(runtime)
    # The department cannot refuse for the head; a head of another jurisdiction does not see it.
    problem(await client.post(f"{base}/refuse-approval", headers=DEPT, json=refuse), 403, "role_forbidden")
    problem(
        await client.post(f"{base}/refuse-approval", headers=auth("head", OTHER_J), json=refuse),
        404,
        "not_found",
    )
    problem(
        await client.post(f"{base}/refuse-approval", headers=HEAD, json={**refuse, "reason": "  "}),
        422,
        "reason_required",
        "reason",
    )
    problem(
        await client.post(
            f"{base}/refuse-approval", headers=HEAD, json={**refuse, "refused_on": "2023-03-02"}
        ),
        422,
        "date_before_previous_step",
        "refused_on",
    )
    assert await counts(runtime) == before
    refused = await ok(await client.post(f"{base}/refuse-approval", headers=HEAD, json=refuse))
    assert (refused["state"], refused["approver"], refused["level"]) == ("refused_by_head", "head-331122", J)
    problem(
        await client.post(f"{base}/approve", headers=HEAD, json={"approved_on": "2023-03-07"}),
        409,
        "wrong_state",
    )
    problem(
        await client.post(
            f"{base}/withdraw", headers=DEPT, json={"withdrawn_on": "2023-03-07", "reason": "撤回"}
        ),
        409,
        "wrong_state",
    )
    view = await ok(await client.get(base, headers=AUDITOR))
    assert view["ended"] == {
        "exit": "refused_by_head",
        "on": "2023-03-06",
        "by": "head-331122",
        "reason": "澄清时机尚不成熟",
    }

    send_back = {"sent_back_on": "2023-03-06", "reason": "预期效果表述不清，请重新复核"}
    base = f"/clarifications/{returned_case}"
    problem(await client.post(f"{base}/send-back", headers=DEPT, json=send_back), 403, "role_forbidden")
    problem(
        await client.post(f"{base}/send-back", headers=auth("head", OTHER_J), json=send_back),
        404,
        "not_found",
    )
    problem(
        await client.post(f"{base}/send-back", headers=HEAD, json={**send_back, "reason": ""}),
        422,
        "reason_required",
        "reason",
    )
    returned = await ok(await client.post(f"{base}/send-back", headers=HEAD, json=send_back))
    assert (returned["state"], returned["event"]) == ("returned_by_head", "ApprovalSentBack")
    problem(
        await client.post(f"{base}/approve", headers=HEAD, json={"approved_on": "2023-03-07"}),
        409,
        "wrong_state",
    )
    problem(
        await client.post(f"{base}/re-review", headers=TRIAL, json=re_review_body(on="2023-03-05")),
        422,
        "date_before_previous_step",
        "reviewed_on",
    )
    again = await sign_all(client, base, on="2023-03-07")
    # A new 审批表 goes before the head (the first one stays as it was issued).
    assert again["state"] == "re_reviewed" and again["documents"] == [f"{returned_case}-approval_form-2"]
    approved = await ok(
        await client.post(f"{base}/approve", headers=HEAD, json={"approved_on": "2023-03-08"})
    )
    assert approved["forms"] == ["written_notice"] and approved["scope"] == ""
    view = await ok(await client.get(base, headers=AUDITOR))
    chain = [s for s in view["steps"] if s["step"] != "re_review_signed"]
    assert [s["step"] for s in chain] == [
        "started",
        "assessed",
        "re_reviewed",
        "returned_by_head",
        "re_reviewed",
        "approved",
    ]
    assert chain[3]["reason"] == "预期效果表述不清，请重新复核" and view["ended"] is None
    states = {
        m["case_id"]: m["state"]
        for m in await ok(await client.get("/clarifications", params={"jurisdiction": J}, headers=AUDITOR))
    }
    assert states == {refused_case: "refused_by_head", returned_case: "approved"}


async def test_a_supplementary_verification_sent_back_by_the_re_review_resumes_the_chain(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    """补充核查: a member finds the verification incomplete; the re-review waits for the revised
    conclusion (review reopens and concludes again), then resumes on the revised points; a revised
    conclusion that no longer allows it ends the matter (终止澄清)."""
    feed = Feed(runtime)
    resumed, ended = f"{J}-2023-000801", f"{J}-2023-000802"
    two: dict[str, Finding] = {"A1": "untrue", "A2": "untrue"}
    for case_id in (resumed, ended):
        assert await feed.deliver(conclusion(case_id, two, (UNTRUE, PARTLY))) == "applied"
        base = f"/clarifications/{case_id}"
        await ok(
            await client.post(
                f"{base}/start",
                headers=DEPT,
                json={
                    "initiated_by": "department",
                    "person_subject_id": PERSON.subject_id,
                    "consent": True,
                    "started_on": "2023-03-01",
                },
            )
        )
        await ok(
            await client.post(
                f"{base}/assess",
                headers=DEPT,
                json={
                    "assessed_on": "2023-03-02",
                    "bad_effects": ["repeated_reports"],
                    "effect_only_from_interviews": False,
                },
            )
        )
        incomplete = re_review_body(verification_complete=False, note="第二项未核实资金往来")
        sent_back = await ok(
            await client.post(f"{base}/re-review", headers=auth("letters_office", J), json=incomplete)
        )
        assert (sent_back["state"], sent_back["verification_complete"]) == ("sent_back", False)
        assert "信访室：第二项未核实资金往来" in sent_back["reasons"]
        problem(
            await client.post(f"{base}/re-review", headers=TRIAL, json=re_review_body(on="2023-03-04")),
            409,
            "supplementary_pending",
        )

    def revised(case_id: str, findings: dict[str, Finding], points: Sequence[Allegation]) -> EventEnvelope:
        payload = VerificationConcluded(
            concluded_on=date(2023, 3, 20),
            received_on=date(2023, 1, 5),
            findings=findings,
            untrue_points=list(points),
            subjects=[PERSON],
            eligible_for_pool="partly_true" not in findings.values(),
            revision=1,
        )
        return envelope(payload, stream=f"verification-{case_id}", case_id=case_id)

    again = revised(resumed, {"A1": "untrue", "A2": "not_proven"}, (UNTRUE,))
    assert await feed.deliver(again) == "applied"
    assert await feed.deliver(again) == "duplicate"
    passed = await sign_all(client, f"/clarifications/{resumed}", on="2023-03-21")
    assert (passed["state"], passed["passed"]) == ("re_reviewed", True)
    view = await ok(await client.get(f"/clarifications/{resumed}", headers=AUDITOR))
    revised_step = next(s for s in view["steps"] if s["step"] == "outcome_revised")
    assert (revised_step["revision"], revised_step["on"]) == (1, "2023-03-20")
    assert [p["allegation_id"] for p in view["outcome"]["untrue_points"]] == ["A1"]
    form = await client.get(f"/clarifications/{resumed}/documents/{resumed}-approval_form", headers=AUDITOR)
    assert UNTRUE.summary in form.text and PARTLY.summary not in form.text

    assert await feed.deliver(revised(ended, {"A1": "untrue", "A2": "partly_true"}, (UNTRUE,))) == "applied"
    view = await ok(await client.get(f"/clarifications/{ended}", headers=AUDITOR))
    assert view["state"] == "discontinued"
    assert view["ended"]["exit"] == "discontinued" and "部分属实" in view["ended"]["reason"]


async def test_a_wrong_treatment_is_corrected_by_the_department(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    feed = Feed(runtime)
    case_id = f"{J}-2023-000803"
    assert await feed.deliver(conclusion(case_id)) == "applied"
    base = f"/clarifications/{case_id}"
    body = {
        "person_subject_id": PERSON.subject_id,
        "corrected_on": "2023-03-10",
        "treatment": "诫勉",
        "organ": "缙云县委组织部",
        "correction": "撤销诫勉决定",
    }
    problem(await client.post(f"{base}/corrections", headers=TRIAL, json=body), 403, "role_forbidden")
    problem(
        await client.post(f"{base}/corrections", headers=auth("handling_department", OTHER_J), json=body),
        404,
        "not_found",
    )
    problem(
        await client.post(f"{base}/corrections", headers=DEPT, json={**body, "corrected_on": "2023-02-01"}),
        422,
        "date_before_previous_step",
        "corrected_on",
    )
    corrected = await ok(await client.post(f"{base}/corrections", headers=DEPT, json=body))
    assert (corrected["event"], corrected["state"], corrected["organ"]) == (
        "TreatmentCorrected",
        "candidate",
        "缙云县委组织部",
    )
    problem(
        await client.post(f"{base}/corrections", headers=DEPT, json=body),
        409,
        "already_recorded",
        "treatment",
    )
    assert await stream_types(runtime, f"clarification-{case_id}") == [
        "OutcomeNoted",
        "CandidateAdded",
        "TreatmentCorrected",
    ]
    view = await ok(await client.get(base, headers=AUDITOR))
    assert [(s["step"], s["treatment"]) for s in view["steps"]] == [("treatment_corrected", "诫勉")]


async def test_each_person_a_matter_names_has_a_clarification_of_their_own(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    """A matter naming two persons: two clarifications (the matter's id and `-2`), each bound to its
    person, in the pool, flagged by the sweep, with its own green-channel application, chain and
    documents."""
    feed = Feed(runtime)
    case_id = f"{J}-2023-000821"
    second = f"{case_id}-2"
    assert await feed.deliver(conclusion(case_id, subjects=(PERSON, CITY_CADRE))) == "applied"
    assert await feed.deliver(sweep(case_id)) == "applied"
    theirs = application(case_id, "APP-2").payload | {"applicant": CITY_CADRE.model_dump(mode="json")}
    filed = ClarificationApplicationFiled.model_validate(theirs)
    assert await feed.deliver(envelope(filed, stream="application-APP-2", case_id=case_id)) == "applied"

    first_view = await ok(await client.get(f"/clarifications/{case_id}", headers=AUDITOR))
    second_view = await ok(await client.get(f"/clarifications/{second}", headers=AUDITOR))
    assert [(p["case_id"], p["name"], p["state"]) for p in first_view["persons"]] == [
        (case_id, PERSON.name, "candidate"),
        (second, CITY_CADRE.name, "candidate"),
    ]
    assert second_view["matter_id"] == case_id and second_view["persons"] == first_view["persons"]
    assert first_view["priority_flags"] == second_view["priority_flags"] == ["frontline_reform"]
    assert first_view["applications"] == []
    assert [a["application_id"] for a in second_view["applications"]] == ["APP-2"]

    start = {"initiated_by": "department", "consent": True, "started_on": "2023-03-01"}
    refused = problem(
        await client.post(
            f"/clarifications/{case_id}/start",
            headers=DEPT,
            json={**start, "person_subject_id": CITY_CADRE.subject_id},
        ),
        422,
        "another_persons_clarification",
        "person_subject_id",
    )
    assert second in refused["detail"]
    await to_re_reviewed(client, second, CITY_CADRE)
    approved = await ok(
        await client.post(
            f"/clarifications/{second}/approve", headers=CITY_HEAD, json={"approved_on": "2023-03-06"}
        )
    )
    assert approved["state"] == "approved"
    city_only = auth("head", "331100", user="head-331100")
    seen = await ok(await client.get(f"/clarifications/{second}", headers=city_only))
    assert [p["case_id"] for p in seen["persons"]] == [second]  # not the county-managed other
    view = await ok(await client.get(f"/clarifications/{second}", headers=AUDITOR))
    assert [d["doc_id"] for d in view["documents"]] == [f"{second}-approval_form"]
    form = await client.get(f"/clarifications/{second}/documents/{second}-approval_form", headers=AUDITOR)
    assert CITY_CADRE.name in form.text and PERSON.name not in form.text
    # The first person's clarification is untouched by the second's.
    assert (await ok(await client.get(f"/clarifications/{case_id}", headers=AUDITOR)))["state"] == "candidate"


# --- Replay ---------------------------------------------------------------------------------------


async def test_the_read_models_rebuild_from_the_events_alone(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    feed = Feed(runtime)
    for n in range(3):
        await feed.deliver(application(f"{J}-2023-00130{n}"))
        await feed.deliver(conclusion(f"{J}-2023-00130{n}"))
    await feed.deliver(sweep(f"{J}-2023-001300"))
    await feed.deliver(conclusion(f"{J}-2023-001309", {"A1": "partly_true"}, points=()))
    await to_approved(client, f"{J}-2023-001301")
    await to_approved(client, f"{J}-2023-001302")
    await ok(
        await client.post(
            "/rounds", headers=DEPT, json={"jurisdiction": J, "quarter": "2023Q1", "held_on": "2023-03-10"}
        )
    )
    await ok(
        await client.post(
            f"/clarifications/{J}-2023-001301/feedback",
            headers=DEPT,
            json={"given_on": "2023-03-11", "party_committee": "镇党委", "unit_head": "张书记"},
        )
    )
    await ok(
        await client.post(
            f"/clarifications/{J}-2023-001300/decline",
            headers=DEPT,
            json={
                "person_subject_id": PERSON.subject_id,
                "declined_on": "2023-03-02",
                "reason": "本人不同意",
            },
        )
    )

    async def snapshot() -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
        async with runtime.pool.acquire() as conn:
            matters = [dict(r) for r in await conn.fetch("SELECT * FROM clarifications ORDER BY case_id")]
            rounds = [dict(r) for r in await conn.fetch("SELECT * FROM rounds ORDER BY round_id")]
            documents = await conn.fetchval("SELECT count(*) FROM documents")
        return matters, rounds, documents

    live = await snapshot()
    assert live[2] == 5  # two 审批表, two 澄清通知书, one letter (the one feedback given)
    async with runtime.pool.acquire() as conn, conn.transaction():
        await conn.execute("TRUNCATE clarifications, rounds")
        async for event in runtime.store.iter_all():
            await project(conn, event, registry.decode(event))
    assert await snapshot() == live
    # Replaying over a live read model changes nothing either.
    async with runtime.pool.acquire() as conn, conn.transaction():
        async for event in runtime.store.iter_all():
            await project(conn, event, registry.decode(event))
    assert await snapshot() == live
