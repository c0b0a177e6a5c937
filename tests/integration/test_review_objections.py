"""Review's side of the real-name reporter's objection (异议) on the real PostgreSQL: intake's
ObjectionLodged through the handover consumer (once, before or after the conclusion), the
department's re-examination over HTTP, its problems, and the verification view listing both."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date

import httpx
import pytest

from services.review.api import build_api
from services.review.main import definition
from shared.events.intake import ObjectionLodged
from shared.runtime import Runtime
from tests.integration.conftest import fresh_runtime
from tests.integration.test_review_service import (
    HANDLER,
    OTHER,
    J,
    concluded_case,
    deliver,
    intake_event,
    open_case,
    stream_types,
    token,
)


@pytest.fixture
async def runtime() -> AsyncIterator[Runtime]:
    async with fresh_runtime(definition) as rt:
        yield rt


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_api(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://review") as c:
        yield c


def lodged(case_id: str, n: int = 1, on: date = date(2023, 3, 10)) -> ObjectionLodged:
    return ObjectionLodged(
        objection_id=f"{case_id}-OB{n}",
        lodged_on=on,
        grounds="不同意核查结论",
        new_evidence="新的转账记录三份",
    )


async def lodge(runtime: Runtime, case_id: str, n: int = 1, version: int = 7) -> str:
    """Intake's ObjectionLodged delivered to review (twice: redelivery records nothing more)."""
    envelope = intake_event(lodged(case_id, n), case_id, version=version)
    assert await deliver(runtime, envelope) == "applied"
    assert await deliver(runtime, envelope) == "duplicate"
    return f"{case_id}-OB{n}"


EXAMINE = {"examined_on": "2023-03-20", "upheld": True, "reason": "新的转账记录足以重新核查"}


async def test_a_received_objection_is_examined_and_listed_with_its_result(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    case_id = await concluded_case(runtime, client, ("untrue", "untrue"))
    objection = await lodge(runtime, case_id)
    # The same objection in a second intake event (a replayed copy) is still received once.
    assert await deliver(runtime, intake_event(lodged(case_id), case_id, version=8)) == "applied"
    assert (await stream_types(runtime, case_id)).count("ObjectionReceived") == 1

    view = (await client.get(f"/verifications/{case_id}", headers=token("case_trial", J))).json()
    assert view["objections"] == [
        {
            "objection_id": objection,
            "lodged_on": "2023-03-10",
            "grounds": "不同意核查结论",
            "new_evidence": "新的转账记录三份",
            "examined_on": None,
            "upheld": None,
            "reason": None,
        }
    ]
    r = await client.post(
        f"/verifications/{case_id}/objections/{objection}/examine", json=EXAMINE, headers=HANDLER
    )
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["recorded"] == ["ObjectionExamined", "VerificationReopened"]
    [seen] = done["verification"]["objections"]
    assert (seen["examined_on"], seen["upheld"], seen["reason"]) == ("2023-03-20", True, EXAMINE["reason"])
    # Upheld after the conclusion: the verification reopens on the new facts (补充核查).
    assert done["verification"]["state"] == "reopened"
    listed = (await client.get("/verifications", params={"jurisdiction": J}, headers=HANDLER)).json()
    assert listed[0]["objections"][0]["upheld"] is True

    again = await client.post(
        f"/verifications/{case_id}/objections/{objection}/examine", json=EXAMINE, headers=HANDLER
    )
    assert (again.status_code, again.json()["code"], again.json()["field"]) == (
        409,
        "already_recorded",
        "objection_id",
    )


async def test_an_objection_before_the_conclusion_is_recorded_too(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    case_id = await open_case(runtime)
    objection = await lodge(runtime, case_id, version=2)
    view = (await client.get(f"/verifications/{case_id}", headers=HANDLER)).json()
    assert view["state"] == "open" and [o["objection_id"] for o in view["objections"]] == [objection]
    assert await stream_types(runtime, case_id) == ["VerificationOpened", "ObjectionReceived"]


async def test_the_examination_is_the_department_s_of_the_jurisdiction(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    case_id = await concluded_case(runtime, client, ("untrue", "untrue"))
    objection = await lodge(runtime, case_id)
    path = f"/verifications/{case_id}/objections/{objection}/examine"
    for role in ("letters_office", "case_trial", "head"):
        r = await client.post(path, json=EXAMINE, headers=token(role, J))
        assert (r.status_code, r.json()["code"]) == (403, "role_forbidden")
    r = await client.post(path, json=EXAMINE, headers=token("handling_department", OTHER))
    assert (r.status_code, r.json()["code"]) == (404, "not_found")
    cases = [
        ({**EXAMINE, "examined_on": "2023-03-09"}, 422, "date_before_previous_step", "examined_on"),
        ({**EXAMINE, "reason": "  "}, 422, "reason_required", "reason"),
    ]
    for body, status, code, field in cases:
        r = await client.post(path, json=body, headers=HANDLER)
        assert (r.status_code, r.json()["code"], r.json()["field"]) == (status, code, field), r.text
        assert r.json()["detail_zh"] and r.json()["detail_en"]
    r = await client.post(path, json={**EXAMINE, "upheld": "yes"}, headers=HANDLER)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.upheld"
    unknown = await client.post(
        f"/verifications/{case_id}/objections/{case_id}-OB9/examine", json=EXAMINE, headers=HANDLER
    )
    assert (unknown.status_code, unknown.json()["code"]) == (404, "objection_not_found")
    assert "ObjectionExamined" not in await stream_types(runtime, case_id)
