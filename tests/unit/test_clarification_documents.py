"""统一文书: the four documents worded from event data (names, untrue points only, dates), laid out with
the organ's full name, a 发文字号, the 署名, 成文日期, seal and 抄送 (GB/T 9704-2012), strict about missing
data, and with no way to carry the reporter's identity; each rendered to DOCX and PDF."""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from datetime import date
from io import BytesIO
from pathlib import Path

import pytest
from jinja2 import UndefinedError, meta
from pydantic import BaseModel

from services.clarification.commands import (
    Approve,
    ApproveContent,
    Assess,
    DraftContent,
    DraftedPoint,
    GiveFeedback,
    Perform,
    RequestConsent,
    ReReview,
    Start,
)
from services.clarification.documents import (
    ENVIRONMENT,
    TEMPLATES,
    TEMPLATES_DIR,
    Document,
    Draft,
    approval_form,
    cn_date,
    consent_request,
    form_rows,
    issue,
    notice,
    performed_context,
    render,
    unit_letter,
)
from services.clarification.domain import Clarification
from services.clarification.formats import content_disposition, to_docx, to_pdf
from services.clarification.settings import DocumentSettings, Organ, default_organ
from shared.auth import Principal
from shared.envelope import JURISDICTIONS
from shared.events.clarification import (
    ClarificationPerformed,
    ConsentRequested,
    FeedbackGiven,
    ReReviewRecorded,
)
from shared.events.common import Allegation, Subject
from shared.events.review import VerificationConcluded

CASE = "331122-2023-000007"
PERSON = Subject(kind="person", name="李明", post="镇党委书记", unit="缙云县壶镇镇<&>", cadre_level="county")
CITY_CADRE = Subject(kind="person", name="王芳", post="县委副书记", unit="中共缙云县委", cadre_level="city")
UNIT = Subject(kind="unit", name="缙云县壶镇镇人民政府")
UNTRUE = Allegation(allegation_id="A1", summary="收受工程老板礼金")
NOT_PROVEN = Allegation(allegation_id="A2", summary="违规插手土地征收")
TRUE = Allegation(allegation_id="A3", summary="公车私用")
REPORTER_FIELDS = ("reporter", "检举人", "举报人", "控告人")
ORGAN = ("中共缙云县纪律检查委员会", "缙云县监察委员会")
COMMITTEE = "中共缙云县壶镇镇委员会"


def apply(c: Clarification, events: list[BaseModel]) -> list[BaseModel]:
    for event in events:
        c.evolve(event)
    return events


def candidate(subject: Subject, jurisdiction: str = "331122") -> Clarification:
    """A matter whose review listed a not-proven point among the untrue ones by mistake."""
    c = Clarification(CASE, jurisdiction)
    apply(
        c,
        c.note_outcome(
            VerificationConcluded(
                concluded_on=date(2023, 2, 10),
                received_on=date(2023, 1, 5),
                findings={"A1": "untrue", "A2": "not_proven"},
                untrue_points=[UNTRUE, NOT_PROVEN],
                subjects=[subject],
                eligible_for_pool=True,
            )
        ),
    )
    return c


def asked(subject: Subject) -> tuple[Clarification, ConsentRequested]:
    c = candidate(subject)
    [event] = apply(
        c,
        c.request_consent(
            RequestConsent(person_subject_id=subject.subject_id, requested_on=date(2023, 2, 20))
        ),
    )
    assert isinstance(event, ConsentRequested)
    return c, event


TRIAL = Principal(user_id="sl-01", role="case_trial", unit="审理室", jurisdictions=["331122"])
WORDING = "经核查，反映的收受工程老板礼金问题失实"


def draft(c: Clarification, wording: str = WORDING, on: date = date(2023, 3, 2)) -> None:
    apply(
        c,
        c.draft_content(
            DraftContent(drafted_on=on, points=[DraftedPoint(allegation_id="A1", wording=wording)])
        ),
    )


def re_reviewed(
    subject: Subject, jurisdiction: str = "331122", content: str = "approved"
) -> tuple[Clarification, ReReviewRecorded]:
    """Started, assessed and re-reviewed; the 澄清内容 approved (or only drafted, or none) before
    the re-review."""
    c = candidate(subject, jurisdiction)
    apply(
        c,
        c.start(
            Start(
                initiated_by="department",
                person_subject_id=subject.subject_id,
                consent=True,
                consent_note="本人同意",
                started_on=date(2023, 3, 1),
            )
        ),
    )
    apply(
        c,
        c.assess(
            Assess(
                assessed_on=date(2023, 3, 2),
                bad_effects=["selection_affected"],
                effect_only_from_interviews=False,
                proposed_forms=["scoped_notice"],
                proposed_scope="壶镇镇机关干部",
            )
        ),
    )
    if content != "none":
        draft(c)
    if content == "approved":
        apply(c, c.approve_content(ApproveContent(approved_on=date(2023, 3, 2)), TRIAL))
    event: BaseModel | None = None
    for office, user in (("letters_office", "xf-01"), ("case_trial", "sl-01"), ("case_management", "ag-01")):
        signer = Principal(user_id=user, role=office, unit="纪委监委", jurisdictions=[jurisdiction])
        *_, event = apply(
            c,
            c.re_review(
                ReReview(
                    reviewed_on=date(2023, 3, 3),
                    verification_complete=True,
                    conclusion_clear=True,
                    disposal_adequate=True,
                    expected_effect="在全镇范围内消除不良影响",
                ),
                signer,
            ),
        )
    assert isinstance(event, ReReviewRecorded)
    return c, event


def performed(subject: Subject, jurisdiction: str = "331122") -> tuple[Clarification, ClarificationPerformed]:
    c, _ = re_reviewed(subject, jurisdiction)
    levels = ["331122", "331100"] if subject.cadre_level == "city" else [jurisdiction]
    head = Principal(user_id="head-1", role="head", unit="纪委监委", jurisdictions=levels)
    apply(c, c.approve(Approve(approved_on=date(2023, 3, 6)), head))
    [event] = apply(
        c, c.perform(Perform(performed_on=date(2023, 3, 8), forms=["scoped_notice"], scope="壶镇镇机关干部"))
    )
    assert isinstance(event, ClarificationPerformed)
    return c, event


def fed_back(subject: Subject) -> tuple[Clarification, FeedbackGiven]:
    c, _ = performed(subject)
    [event] = apply(
        c,
        c.give_feedback(
            GiveFeedback(given_on=date(2023, 3, 9), party_committee=COMMITTEE, unit_head="张书记")
        ),
    )
    assert isinstance(event, FeedbackGiven)
    return c, event


def numbered(draft: Draft, seq: int = 1) -> Document:
    settings = DocumentSettings()
    return issue(draft, settings.number(draft.jurisdiction, draft.kind, draft.dated.year, seq), settings)


def four(subject: Subject = PERSON) -> dict[str, Document]:
    return {
        "consent_request": numbered(consent_request(*asked(subject))),
        "approval_form": numbered(approval_form(*re_reviewed(subject))),
        "notice": numbered(notice(*performed(subject))),
        "unit_letter": numbered(unit_letter(*fed_back(subject))),
    }


# --- Wording -------------------------------------------------------------------------------------


def test_every_document_names_the_organ_in_full_its_number_title_and_only_the_untrue_points() -> None:
    numbers = {
        "consent_request": "缙纪澄告〔2023〕1号",
        "approval_form": "缙纪澄审〔2023〕1号",
        "notice": "缙纪澄〔2023〕1号",
        "unit_letter": "缙纪澄函〔2023〕1号",
    }
    for kind, document in four().items():
        body = document.body
        assert body.startswith("中共缙云县纪律检查委员会\n缙云县监察委员会\n" + numbers[kind]), kind
        assert document.layout.organ == list(ORGAN) and document.number == numbers[kind]
        assert document.title in body and "李明" in body and "收受工程老板礼金" in body, kind
        assert "违规插手土地征收" not in body and "公车私用" not in body, kind
        assert "缙云县纪委监委" not in body, kind  # the abbreviation is gone
        assert "全面评价" not in body or kind == "unit_letter", kind


def test_the_consent_request_asks_the_person_before_the_start() -> None:
    document = four()["consent_request"]
    assert document.doc_id == f"{CASE}-consent_request-{PERSON.subject_id}"
    assert document.layout.addressee == "李明同志" and document.created_on == date(2023, 2, 20)
    assert "是否同意澄清" in document.body and "2023年2月10日" in document.body
    assert document.layout.sealed and document.layout.signatories == list(ORGAN)


def test_the_approval_form_is_for_approval_with_the_proposal_and_a_blank_opinion() -> None:
    document = four()["approval_form"]
    assert (document.doc_id, document.title) == (f"{CASE}-approval_form", "失实检举控告澄清审批表")
    rows = {r.label: r.lines for r in document.layout.rows if not r.heading}
    assert (
        rows["名称"] == ["李明"] and rows["职务"] == ["镇党委书记"] and rows["干部管理权限"] == ["县管干部"]
    )
    assert rows["拟澄清内容"] == [f"1．{WORDING}"]
    assert rows["澄清内容审核"] == ["审理室已于2023年3月2日审核通过"]
    assert rows["拟澄清方式"] == ["书面澄清（送达澄清通知书）；在一定范围内通报澄清"]
    assert rows["拟通报范围"] == ["壶镇镇机关干部"]
    assert rows["小组成员"] == ["信访室 xf-01；审理室 sl-01；案管室 ag-01"]
    assert rows["审批意见"] == [] and rows["签名"] == [] and rows["日期"] == []
    assert "同意澄清。" not in document.body and "审批人" not in document.body
    assert rows["审批机关"] == ["中共缙云县纪律检查委员会、缙云县监察委员会（县管干部，由其主要负责人审批）"]
    assert document.created_on == date(2023, 3, 3) and not document.layout.cc


def form_rows_of(content: str, *, returned: bool = False) -> dict[str, list[str]]:
    c, reviewed = re_reviewed(PERSON, content=content)
    if returned:  # returned after the form's re-review: the form shows the content as it was then
        c.content_state = "returned"
    rows = numbered(approval_form(c, reviewed)).layout.rows
    return {r.label: r.lines for r in rows if not r.heading}


def test_the_approval_form_marks_a_wording_not_approved_as_a_draft() -> None:
    rows = form_rows_of("drafted")
    assert rows["拟澄清内容"] == [f"1．{WORDING}"] and rows["澄清内容审核"] == ["草稿，待审理室审核"]
    assert form_rows_of("drafted", returned=True)["澄清内容审核"] == ["草稿，审理室已退回修改"]


def test_the_approval_form_without_content_shows_the_points_as_reported() -> None:
    rows = form_rows_of("none")
    assert rows["反映问题（经核查失实）"] == ["1．收受工程老板礼金"] and "拟澄清内容" not in rows
    assert rows["澄清内容审核"] == ["澄清内容尚未拟定（以上为反映问题原文，未经审核）"]


def test_the_notice_and_the_letter_print_the_approved_wording() -> None:
    _, performed_event = performed(PERSON)
    assert performed_event.wording == {"A1": WORDING}
    documents = four()
    for kind in ("notice", "unit_letter"):
        paragraphs = documents[kind].layout.paragraphs
        assert f"1．{WORDING}" in paragraphs, kind
        assert "1．收受工程老板礼金" not in paragraphs and "违规插手土地征收" not in documents[kind].body


def test_a_clarification_recorded_before_the_content_prints_the_summaries() -> None:
    c, performed_event = performed(PERSON)
    old = performed_event.model_copy(update={"wording": {}})
    paragraphs = numbered(notice(c, old)).layout.paragraphs
    assert "1．收受工程老板礼金" in paragraphs and any("以下反映问题失实" in p for p in paragraphs)


def test_a_city_cadre_is_approved_and_copied_at_the_city() -> None:
    form = numbered(approval_form(*re_reviewed(CITY_CADRE)))
    assert "中共丽水市纪律检查委员会、丽水市监察委员会（市管干部" in form.body
    document = numbered(notice(*performed(CITY_CADRE)))
    assert document.layout.cc == ["中共丽水市委组织部"]
    assert document.layout.organ == list(ORGAN)  # issued by the county that verified it


def test_the_notice_is_copied_to_the_organisation_department() -> None:
    document = four()["notice"]
    assert (document.doc_id, document.title) == (f"{CASE}-notice", "澄清通知书")
    assert document.layout.addressee == "李明同志" and document.layout.cc == ["中共缙云县委组织部"]
    assert "抄送：中共缙云县委组织部。" in document.body
    assert "中共缙云县纪律检查委员会办公室　　2023年3月8日印发" in document.body
    assert "壶镇镇机关干部" in document.body and document.created_on == date(2023, 3, 8)


def test_the_letter_goes_to_the_party_committee_by_name_at_feedback() -> None:
    document = four()["unit_letter"]
    assert (document.doc_id, document.title) == (f"{CASE}-unit_letter", "关于失实检举控告澄清的函")
    assert document.layout.addressee == COMMITTEE and f"{COMMITTEE}：" in document.body
    assert "党组织" not in document.body and "向单位党委" not in document.body
    assert "张书记同志" in document.body and "缙云县壶镇镇<&>" not in document.body  # plain text
    assert "2023年3月8日" in document.body and document.created_on == date(2023, 3, 9)
    assert "不作为对被反映人的全面评价" in document.body


def test_a_unit_is_addressed_as_a_unit() -> None:
    documents = four(UNIT)
    assert documents["notice"].layout.addressee == "缙云县壶镇镇人民政府"
    assert "同志" not in documents["notice"].body.split("缙云县壶镇镇人民政府：")[1].splitlines()[1]


def test_the_organ_and_numbering_come_from_settings() -> None:
    assert default_organ("331100").names == ["中共丽水市纪律检查委员会", "丽水市监察委员会"]
    assert default_organ("331102").names == ["中共丽水市莲都区纪律检查委员会", "丽水市莲都区监察委员会"]
    assert default_organ("331127").organisation_department == "中共景宁畲族自治县委组织部"
    assert all(default_organ(j).abbreviation.endswith("纪") for j in JURISDICTIONS)
    assert len({default_organ(j).abbreviation for j in JURISDICTIONS}) == len(JURISDICTIONS)
    own = Organ(names=["某某纪委"], abbreviation="某纪", organisation_department="某组织部", printer="某办")
    settings = DocumentSettings(
        organs={"331122": own}, number_format="{abbreviation}{series}[{year}]{seq:03d}"
    )
    c, event = performed(PERSON)
    document = issue(notice(c, event, settings), settings.number("331122", "notice", 2023, 7), settings)
    assert document.number == "某纪澄[2023]007" and document.layout.organ == ["某某纪委"]
    assert document.body.startswith("某某纪委\n某纪澄[2023]007")


def test_form_rows_continue_and_head() -> None:
    rows = form_rows("一、情况\n名称｜李明\n问题｜1．甲\n｜2．乙\n审批意见｜\n")
    assert [(r.label, r.lines, r.heading) for r in rows] == [
        ("一、情况", [], True),
        ("名称", ["李明"], False),
        ("问题", ["1．甲", "2．乙"], False),
        ("审批意见", [], False),
    ]


def test_templates_reference_no_reporter_field() -> None:
    for name in TEMPLATES.values():
        source = (TEMPLATES_DIR / name).read_text(encoding="utf-8")
        variables = meta.find_undeclared_variables(ENVIRONMENT.parse(source))
        assert not any(f in v for v in variables for f in REPORTER_FIELDS), (name, variables)
        assert not any(f in source for f in REPORTER_FIELDS), name
    for name in ("official.html",):
        assert not any(f in (TEMPLATES_DIR / name).read_text(encoding="utf-8") for f in REPORTER_FIELDS)
    context = performed_context(*performed(PERSON))
    assert not any(f in key for key in context for f in REPORTER_FIELDS)


def test_rendering_ignores_anything_a_template_does_not_name() -> None:
    context = {**performed_context(*performed(PERSON)), "reporter": "实名举报人赵六"}
    assert "赵六" not in render("notice", context)


def test_missing_data_is_an_error_not_a_blank() -> None:
    context = performed_context(*performed(PERSON))
    del context["points"]
    with pytest.raises(UndefinedError):
        render("notice", context)


# --- DOCX and PDF --------------------------------------------------------------------------------


def docx_text(data: bytes) -> str:
    with zipfile.ZipFile(BytesIO(data)) as z:
        return z.read("word/document.xml").decode("utf-8")


def test_docx_carries_every_part_escaped() -> None:
    for kind, document in four().items():
        xml = docx_text(to_docx(document.layout))
        for part in (*ORGAN, document.number, document.title, "收受工程老板礼金"):
            assert part in xml, (kind, part)
        assert "{{" not in xml and "{%" not in xml, kind
    letter = docx_text(to_docx(four()["notice"].layout))
    assert "抄送：中共缙云县委组织部。" in letter and "2023年3月8日" in letter and "印章位置" in letter


def test_the_committed_word_templates_are_the_ones_the_script_builds() -> None:
    for name in ("official.docx", "form.docx"):
        xml = docx_text((TEMPLATES_DIR / name).read_bytes())
        assert "{{ number }}" in xml and "{{ title }}" in xml and "{%p for name in organ %}" in xml, name
    assert "{%tr for row in rows %}" in docx_text((TEMPLATES_DIR / "form.docx").read_bytes())


def pdf_text(data: bytes, tmp_path: Path) -> str:
    path = tmp_path / "d.pdf"
    path.write_bytes(data)
    out = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, check=True, text=True)
    return "".join(out.stdout.split())  # CJK lines wrap anywhere: compare without whitespace


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils (pdftotext) is not installed")
def test_pdf_carries_every_part(tmp_path: Path) -> None:
    for kind, document in four().items():
        text = pdf_text(to_pdf(document.layout), tmp_path)
        expected = [*ORGAN, document.number, document.title, "收受工程老板礼金"]
        if not document.layout.is_form:
            expected += [f"{document.layout.addressee}：", cn_date(document.created_on), "印章位置"]
        for part in expected:
            assert part in text, (kind, part)
        assert "违规插手土地征收" not in text, kind
        assert ("抄送：中共缙云县委组织部。" in text) == (kind == "notice"), kind


def test_downloads_are_named_in_ascii_and_in_chinese() -> None:
    value = content_disposition(f"{CASE}-notice", "澄清通知书", "pdf")
    assert value.startswith(f"attachment; filename=\"{CASE}-notice.pdf\"; filename*=UTF-8''")
    assert "%E6%BE%84%E6%B8%85" in value and value.isascii()


def test_a_value_with_a_newline_or_a_row_separator_stays_in_its_row() -> None:
    """A point's summary is the intake clerk's free text: it must not forge a row of the 审批表 (the
    head's opinion) nor split a paragraph of a letter."""
    forged = "收受礼金｜\n审批意见｜同意澄清\n签名｜某某"
    text = ENVIRONMENT.from_string("问题｜{{ point }}\n审批意见｜\n").render(point=forged)
    rows = form_rows(text)
    assert [r.label for r in rows] == ["问题", "审批意见"]
    assert rows[1].lines in ([], [""])  # the head's opinion is still blank
