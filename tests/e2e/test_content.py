"""澄清内容 end to end through the running services: the department drafts the wording, intake refuses a
wording with the reporter's name (the problem does not repeat it), the wrong roles are refused, 审理室
approves, the clarification waits for the approval, and the notice prints the approved wording."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import day
from tests.e2e.test_documents import pdf_text
from tests.e2e.test_workflow import J, open_case, plan
from zhengming.client import Client
from zhengming.driver import Driver, content_points


def problem_of(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


async def test_the_content_is_drafted_checked_approved_and_printed(
    client: Client, driver: Driver, tmp_path: Path
) -> None:
    p = plan(["untrue", "not_proven"], day(2, 6), word_content=False)
    assert p.reporter is not None
    case_id = await open_case(driver, p)
    await driver.verify(p, case_id)
    assert await driver.clarify_until_approved(p, case_id, day(4, 3)) == "approved"
    base = f"/clarifications/{case_id}"
    performed_on = (day(4, 3) + timedelta(days=6)).isoformat()

    async def post(path: str, role: str, body: dict[str, Any]) -> httpx.Response:
        return await client.request(
            "POST", "clarification", base + path, role=role, jurisdiction=J, body=body
        )

    # Head-approved, but the wording is not: no clarification yet.
    problem_of(
        await post("/perform", "handling_department", {"performed_on": performed_on}),
        409,
        "content_not_approved",
    )

    matter = await driver.clarification(p, case_id)
    assert matter is not None and matter["content"]["state"] == "none"
    [point] = content_points(matter)  # the untrue point only
    drafted_on = day(4, 8).isoformat()
    revealing = {
        "drafted_on": drafted_on,
        "points": [{**point, "wording": f"经核查，{p.reporter.name}所反映的问题失实。"}],
    }
    refused = await post("/content", "handling_department", revealing)
    body = problem_of(refused, 422, "content_reveals_reporter")
    assert body["field"] == "points.0.wording" and p.reporter.name not in refused.text

    wording = {"drafted_on": drafted_on, "points": [point]}
    problem_of(await post("/content", "case_trial", wording), 403, "role_forbidden")
    drafted = await driver.case.draft_content(J, case_id, day(4, 8), [point])
    assert drafted["event"] == "ContentDrafted" and drafted["state"] == "approved"  # the chain's own state

    approve = {"approved_on": drafted_on}
    problem_of(await post("/content/approve", "handling_department", approve), 403, "role_forbidden")
    problem_of(
        await post("/perform", "handling_department", {"performed_on": performed_on}),
        409,
        "content_not_approved",
    )
    approved = await driver.case.approve_content(J, case_id, day(4, 8))
    assert approved["event"] == "ContentApproved"

    performed = await driver.case.perform(J, case_id, day(4, 3) + timedelta(days=6), p.forms)
    assert performed["wording"] == {point["allegation_id"]: point["wording"]}
    [doc_id] = performed["documents"]
    text = (
        await client.request(
            "GET", "clarification", f"{base}/documents/{doc_id}", role="auditor", jurisdiction=J
        )
    ).text
    assert f"1．{point['wording']}" in text and p.allegations[1] not in text
    assert p.reporter.name not in text

    if shutil.which("pdftotext") is None:
        pytest.skip("poppler-utils (pdftotext) is not installed")
    pdf = await client.request(
        "GET", "clarification", f"{base}/documents/{doc_id}.pdf", role="handling_department", jurisdiction=J
    )
    assert pdf.status_code == 200
    path = tmp_path / "notice.pdf"
    path.write_bytes(pdf.content)
    assert "".join(point["wording"].split()) in pdf_text(path)
