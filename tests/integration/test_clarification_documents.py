"""The issued documents on the real PostgreSQL: numbered once per document in the issuing command's
transaction (a refused command takes no number, replay changes none), and downloaded as DOCX and PDF
over HTTP by the roles that read them today."""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from collections.abc import AsyncIterator
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.clarification.api import build_api
from services.clarification.main import definition
from shared.runtime import Runtime
from tests.integration.conftest import fresh_runtime
from tests.integration.test_clarification_service import (
    AUDITOR,
    CITY_CADRE,
    DEPT,
    OTHER_J,
    PERSON,
    Feed,
    J,
    NoReporter,
    auth,
    conclusion,
    counts,
    ok,
    problem,
    to_approved,
)

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@pytest.fixture
async def runtime(schema: str) -> AsyncIterator[Runtime]:
    async with fresh_runtime(definition, schema) as rt:
        yield rt


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_api(runtime, NoReporter()))
    async with httpx.AsyncClient(transport=transport, base_url="http://clarification") as c:
        yield c


async def numbers(runtime: Runtime) -> dict[str, str]:
    rows = await runtime.pool.fetch("SELECT doc_id, number FROM documents ORDER BY doc_id")
    return {r["doc_id"]: r["number"] for r in rows}


async def test_the_consent_request_is_issued_numbered_and_once(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    case_id = f"{J}-2023-000901"
    await Feed(runtime).deliver(conclusion(case_id, subjects=(PERSON, CITY_CADRE)))
    base = f"/clarifications/{case_id}"
    ask = {"person_subject_id": PERSON.subject_id, "requested_on": "2023-02-20"}
    before = await counts(runtime)
    problem(
        await client.post(
            f"{base}/consent-request", headers=DEPT, json={**ask, "requested_on": "2023-02-01"}
        ),
        422,
        "date_before_previous_step",
        "requested_on",
    )
    problem(
        await client.post(f"{base}/consent-request", headers=auth("case_trial", J), json=ask),
        403,
        "role_forbidden",
    )
    assert await counts(runtime) == before and await numbers(runtime) == {}

    first = await ok(await client.post(f"{base}/consent-request", headers=DEPT, json=ask))
    assert (first["event"], first["state"]) == ("ConsentRequested", "candidate")
    # The matter's second person is asked in their own clarification; the series runs on.
    theirs = {**ask, "person_subject_id": CITY_CADRE.subject_id}
    problem(
        await client.post(f"{base}/consent-request", headers=DEPT, json=theirs),
        422,
        "another_persons_clarification",
        "person_subject_id",
    )
    second = await ok(await client.post(f"{base}-2/consent-request", headers=DEPT, json=theirs))
    problem(await client.post(f"{base}/consent-request", headers=DEPT, json=ask), 409, "already_recorded")
    assert await numbers(runtime) == {
        first["documents"][0]: "缙纪澄告〔2023〕1号",
        second["documents"][0]: "缙纪澄告〔2023〕2号",
    }
    view = await ok(await client.get(base, headers=AUDITOR))
    assert [s["step"] for s in view["steps"]] == ["consent_requested"]
    assert [d["number"] for d in view["documents"]] == ["缙纪澄告〔2023〕1号"]
    assert [d["number"] for d in (await ok(await client.get(f"{base}-2", headers=AUDITOR)))["documents"]] == [
        "缙纪澄告〔2023〕2号"
    ]
    preview = await client.get(f"{base}/documents/{first['documents'][0]}", headers=AUDITOR)
    assert "拟澄清告知书" in preview.text and "李明同志：" in preview.text


async def test_numbers_run_per_organ_series_and_year(runtime: Runtime, client: httpx.AsyncClient) -> None:
    feed = Feed(runtime)
    for n, jurisdiction in ((1, J), (2, J), (3, OTHER_J)):
        case_id = f"{jurisdiction}-2023-00095{n}"
        await feed.deliver(conclusion(case_id, jurisdiction=jurisdiction))
        await to_approved(client, case_id, jurisdiction)
        await ok(
            await client.post(
                f"/clarifications/{case_id}/perform",
                headers=auth("handling_department", jurisdiction),
                json={"performed_on": "2023-03-08"},
            )
        )
    issued = await numbers(runtime)
    assert issued == {
        f"{J}-2023-000951-approval_form": "缙纪澄审〔2023〕1号",
        f"{J}-2023-000951-notice": "缙纪澄〔2023〕1号",
        f"{J}-2023-000952-approval_form": "缙纪澄审〔2023〕2号",
        f"{J}-2023-000952-notice": "缙纪澄〔2023〕2号",
        f"{OTHER_J}-2023-000953-approval_form": "青纪澄审〔2023〕1号",
        f"{OTHER_J}-2023-000953-notice": "青纪澄〔2023〕1号",
    }
    layout = await runtime.pool.fetchval(
        "SELECT layout FROM documents WHERE doc_id = $1", f"{OTHER_J}-2023-000953-notice"
    )
    assert layout["organ"] == ["中共青田县纪律检查委员会", "青田县监察委员会"]
    assert layout["cc"] == ["中共青田县委组织部"]


def docx_xml(data: bytes) -> str:
    with zipfile.ZipFile(BytesIO(data)) as z:
        return z.read("word/document.xml").decode("utf-8")


def pdf_text(data: bytes, tmp_path: Path) -> str:
    path = tmp_path / "d.pdf"
    path.write_bytes(data)
    out = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, check=True, text=True)
    return "".join(out.stdout.split())


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils (pdftotext) is not installed")
async def test_documents_download_as_docx_and_pdf(
    runtime: Runtime, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    case_id = f"{J}-2023-000961"
    await Feed(runtime).deliver(conclusion(case_id))
    await to_approved(client, case_id)
    performed: dict[str, Any] = await ok(
        await client.post(
            f"/clarifications/{case_id}/perform", headers=DEPT, json={"performed_on": "2023-03-08"}
        )
    )
    [doc_id] = performed["documents"]
    url = f"/clarifications/{case_id}/documents/{doc_id}"

    pdf = await client.get(f"{url}.pdf", headers=AUDITOR)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"].startswith(f'attachment; filename="{doc_id}.pdf"')
    text = pdf_text(pdf.content, tmp_path)
    for part in (
        "中共缙云县纪律检查委员会",
        "缙纪澄〔2023〕1号",
        "澄清通知书",
        "李明同志：",
        "经核查，反映李明同志收受工程老板礼金的问题失实。",
    ):
        assert part in text, part
    assert "抄送：中共缙云县委组织部。" in text and "2023年3月8日印发" in text

    docx = await client.get(f"{url}.docx", headers=auth("head", J))
    assert docx.status_code == 200 and docx.headers["content-type"] == DOCX
    assert docx.headers["content-disposition"].startswith(f'attachment; filename="{doc_id}.docx"')
    assert "缙纪澄〔2023〕1号" in docx_xml(docx.content)

    preview = await client.get(url, headers=AUDITOR)
    assert (
        preview.headers["content-type"] == "text/plain; charset=utf-8" and "缙纪澄〔2023〕1号" in preview.text
    )

    for response in (
        await client.get(f"{url}.pdf", headers=auth("auditor", OTHER_J)),
        await client.get(f"/clarifications/{case_id}/documents/{case_id}-unit_letter.pdf", headers=AUDITOR),
        await client.get(f"/clarifications/{J}-2023-999999/documents/{doc_id}.docx", headers=AUDITOR),
    ):
        problem(response, 404, "not_found")
    problem(await client.get(f"{url}.pdf"), 401, "unauthorized")
