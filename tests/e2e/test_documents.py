"""The four documents of a real-name report, end to end: drawn through the running services, downloaded
as PDF and DOCX over HTTP, read back with pdftotext: every part is there, the reporter is not.

With `ZM_DOCUMENT_SAMPLES=docs/documents` the pages are also written there as PNG (pdftoppm): the
pictures of the README."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
import zipfile
from datetime import timedelta
from io import BytesIO
from pathlib import Path

import pytest

from tests.e2e.conftest import day
from tests.e2e.test_workflow import J, open_case, plan, reporter
from zhengming.client import Client
from zhengming.driver import Driver

pytestmark = pytest.mark.skipif(
    shutil.which("pdftotext") is None or shutil.which("pdftoppm") is None,
    reason="poppler-utils (pdftotext, pdftoppm) is not installed",
)

ORGAN = ("中共缙云县纪律检查委员会", "缙云县监察委员会")
KINDS = ("consent_request", "approval_form", "notice", "unit_letter")
TITLES = {
    "consent_request": "拟澄清告知书",
    "approval_form": "失实检举控告澄清审批表",
    "notice": "澄清通知书",
    "unit_letter": "关于失实检举控告澄清的函",
}
SERIES = {"consent_request": "澄告", "approval_form": "澄审", "notice": "澄", "unit_letter": "澄函"}


def pdf_text(path: Path) -> str:
    out = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, check=True, text=True)
    return "".join(out.stdout.split())  # CJK lines wrap anywhere: compare without whitespace


async def download(client: Client, case_id: str, doc_id: str, fmt: str) -> bytes:
    response = await client.request(
        "GET",
        "clarification",
        f"/clarifications/{case_id}/documents/{doc_id}.{fmt}",
        role="handling_department",
        jurisdiction=J,
    )
    assert response.status_code == 200, response.text
    return response.content


async def test_the_four_documents_of_a_real_name_report(
    client: Client, driver: Driver, tmp_path: Path
) -> None:
    informant = reporter()
    assert informant.id_number is not None
    samples = os.environ.get("ZM_DOCUMENT_SAMPLES")
    subject = {
        "kind": "person",
        "name": "李明"
        if samples
        else f"李明{uuid.uuid4().hex[:3]}",  # the README's pictures show a plain name
        "post": "镇党委书记",
        "unit": "缙云县壶镇镇",
        "cadre_level": "county",
    }
    p = plan(["untrue", "not_proven"], day(1, 9), subject=subject, reporter=informant)
    p.allegations = ["收受工程老板礼金", "违规插手土地征收"]
    case_id = await open_case(driver, p)
    await driver.verify(p, case_id)
    await driver.wait_state(p, case_id, {"candidate"})
    matter = await driver.clarification(p, case_id)
    assert matter is not None
    [person] = matter["outcome"]["subjects"]
    start = day(3, 1)
    asked = await client.ok(
        "POST",
        "clarification",
        f"/clarifications/{case_id}/consent-request",
        role="handling_department",
        jurisdiction=J,
        body={
            "person_subject_id": person["subject_id"],
            "requested_on": (start - timedelta(days=3)).isoformat(),
        },
    )
    assert asked["event"] == "ConsentRequested"
    assert await driver.clarify_until_approved(p, case_id, start) == "approved"
    performed_on = start + timedelta(days=6)
    await client.ok(
        "POST",
        "clarification",
        f"/clarifications/{case_id}/perform",
        role="handling_department",
        jurisdiction=J,
        body={"performed_on": performed_on.isoformat(), "forms": ["face_to_face"]},
    )
    await driver.finish(p, case_id, performed_on)

    docs = (
        await client.ok("GET", "clarification", f"/clarifications/{case_id}", role="auditor", jurisdiction=J)
    )["documents"]
    by_kind = {d["kind"]: d for d in docs}
    assert sorted(by_kind) == sorted(KINDS)
    secrets = [informant.name, informant.contact, informant.id_number]
    for kind in KINDS:
        doc = by_kind[kind]
        assert re.fullmatch(f"缙纪{SERIES[kind]}〔{start.year}〕[1-9][0-9]*号", doc["number"]), doc
        pdf = await download(client, case_id, doc["doc_id"], "pdf")
        docx = await download(client, case_id, doc["doc_id"], "docx")
        expected = [*ORGAN, doc["number"], TITLES[kind], subject["name"], "收受工程老板礼金"]
        if kind != "consent_request":  # asked before the start: the points as reported
            expected.append(f"经核查，反映{subject['name']}同志收受工程老板礼金的问题失实。")
        if kind == "approval_form":
            expected += ["镇党委书记", "县管干部", "审批意见", "填报日期"]
        else:
            dated = {"consent_request": start - timedelta(days=3), "notice": performed_on}.get(
                kind, performed_on + timedelta(days=1)
            )
            expected += [f"{dated.year}年{dated.month}月{dated.day}日", "印章位置"]
        if kind == "unit_letter":
            expected += ["缙云县壶镇镇党委：", "中共缙云县纪律检查委员会办公室"]
        check(kind, tmp_path / f"{kind}.pdf", pdf, docx, expected, secrets, samples)


def check(
    kind: str,
    path: Path,
    pdf: bytes,
    docx: bytes,
    expected: list[str],
    secrets: list[str],
    samples: str | None,
) -> None:
    """Every part in the PDF's text and the DOCX, no reporter identity in either; the PNG pages."""
    path.write_bytes(pdf)
    text = pdf_text(path)
    for part in expected:
        assert part in text, (kind, part)
    assert ("抄送：中共缙云县委组织部。" in text) == (kind == "notice"), kind
    assert "违规插手土地征收" not in text, kind  # not proven: never clarified
    for secret in secrets:
        assert secret not in text, (kind, "reporter identity in the document")
    with zipfile.ZipFile(BytesIO(docx)) as z:
        xml = z.read("word/document.xml").decode("utf-8")
    assert expected[2] in xml and TITLES[kind] in xml and not any(s in xml for s in secrets), kind
    if samples:
        out = Path(samples)
        out.mkdir(parents=True, exist_ok=True)
        subprocess.run(["pdftoppm", "-png", "-r", "70", str(path), str(out / kind)], check=True)
