"""统一文书模板: the three documents rendered from event data (names, untrue points only, dates, the
commission's name), strict about missing data, and with no way to carry the reporter's identity."""

from __future__ import annotations

from datetime import date

import pytest
from jinja2 import UndefinedError, meta

from services.clarification.commands import Approve, Assess, Perform, ReReview, Start
from services.clarification.documents import (
    ENVIRONMENT,
    TEMPLATES,
    TEMPLATES_DIR,
    approval_form,
    clarification_documents,
    cn_date,
    performed_context,
    render,
)
from services.clarification.domain import Clarification
from shared.auth import Principal
from shared.events.clarification import ClarificationApproved, ClarificationPerformed
from shared.events.common import Allegation, Subject
from shared.events.review import VerificationConcluded

CASE = "331122-2023-000007"
PERSON = Subject(kind="person", name="李明", post="镇党委书记", unit="缙云县壶镇镇<&>", cadre_level="county")
UNIT = Subject(kind="unit", name="缙云县壶镇镇人民政府")
UNTRUE = Allegation(allegation_id="A1", summary="收受工程老板礼金")
NOT_PROVEN = Allegation(allegation_id="A2", summary="违规插手土地征收")
TRUE = Allegation(allegation_id="A3", summary="公车私用")
REPORTER_FIELDS = ("reporter", "检举人", "举报人", "控告人")


def walk_to_approval(subject: Subject) -> tuple[Clarification, ClarificationApproved]:
    """A matter whose review listed a not-proven point among the untrue ones by mistake."""
    c = Clarification(CASE, "331122")
    for event in c.note_outcome(
        VerificationConcluded(
            concluded_on=date(2023, 2, 10),
            received_on=date(2023, 1, 5),
            findings={"A1": "untrue", "A2": "not_proven"},
            untrue_points=[UNTRUE, NOT_PROVEN],
            subjects=[subject],
            eligible_for_pool=True,
        )
    ):
        c.evolve(event)
    for event in c.start(
        Start(
            initiated_by="department",
            person_subject_id=subject.subject_id,
            consent=True,
            consent_note="本人同意",
            started_on=date(2023, 3, 1),
        )
    ):
        c.evolve(event)
    for event in c.assess(
        Assess(
            assessed_on=date(2023, 3, 2),
            bad_effects=["selection_affected"],
            effect_only_from_interviews=False,
        )
    ):
        c.evolve(event)
    for event in c.re_review(
        ReReview(
            reviewed_on=date(2023, 3, 3),
            verification_complete=True,
            conclusion_clear=True,
            disposal_adequate=True,
            expected_effect="在全镇范围内消除不良影响",
            members={"letters_office": "xf-01", "case_trial": "sl-01", "case_management": "ag-01"},
        )
    ):
        c.evolve(event)
    [approved] = c.approve(
        Approve(approved_on=date(2023, 3, 6)),
        Principal(user_id="head-331122", role="head", unit="缙云县纪委监委", jurisdictions=["331122"]),
    )
    assert isinstance(approved, ClarificationApproved)
    c.evolve(approved)
    return c, approved


def performed(subject: Subject) -> ClarificationPerformed:
    c, _ = walk_to_approval(subject)
    [event] = c.perform(
        Perform(performed_on=date(2023, 3, 8), forms=["scoped_notice"], scope="壶镇镇机关干部")
    )
    assert isinstance(event, ClarificationPerformed)
    return event


def test_the_notice_and_the_letter_name_the_person_and_only_the_untrue_points() -> None:
    notice, letter = clarification_documents(CASE, "331122", performed(PERSON))
    assert (notice.doc_id, notice.title) == (f"{CASE}-notice", "澄清通知书")
    assert (letter.doc_id, letter.title) == (f"{CASE}-unit_letter", "关于失实检举控告澄清的函")
    for document in (notice, letter):
        assert "李明" in document.body
        assert "收受工程老板礼金" in document.body
        assert "违规插手土地征收" not in document.body
        assert "公车私用" not in document.body
        assert "缙云县纪委监委" in document.body
        assert CASE in document.body
        assert cn_date(date(2023, 2, 10)) in document.body and "2023年3月8日" in document.body
        assert "壶镇镇机关干部" in document.body
        assert document.created_on == date(2023, 3, 8)
    assert notice.body.splitlines()[5] == "李明同志："
    assert "缙云县壶镇镇<&>党组织：" in letter.body  # plain text: nothing escaped
    assert "不作为对被反映人的全面评价" in letter.body


def test_a_unit_is_addressed_as_a_unit() -> None:
    notice, letter = clarification_documents(CASE, "331122", performed(UNIT))
    assert "缙云县壶镇镇人民政府：" in notice.body and "同志" not in notice.body.splitlines()[5]
    assert "缙云县壶镇镇人民政府党组织：" in letter.body


def test_the_approval_form_carries_the_whole_chain() -> None:
    c, approved = walk_to_approval(PERSON)
    form = approval_form(c, "331122", approved)
    assert (form.doc_id, form.title) == (f"{CASE}-approval_form", "失实检举控告澄清审批表")
    for text in (
        "失实检举控告澄清审批表",
        "李明",
        "镇党委书记",
        "县管干部",
        "收受工程老板礼金",
        "影响选拔任用",
        "信访室 xf-01",
        "审理室 sl-01",
        "案管室 ag-01",
        "head-331122",
        "2023年3月6日",
        "2023年3月13日前",
    ):
        assert text in form.body, text
    assert "违规插手土地征收" not in form.body


def test_the_commission_comes_from_the_jurisdiction() -> None:
    notice, _ = clarification_documents(CASE, "331100", performed(PERSON))
    assert notice.body.startswith("丽水市纪委监委\n澄清通知书")


def test_templates_reference_no_reporter_field() -> None:
    for name in TEMPLATES.values():
        source = (TEMPLATES_DIR / name).read_text(encoding="utf-8")
        variables = meta.find_undeclared_variables(ENVIRONMENT.parse(source))
        assert not any(f in v for v in variables for f in REPORTER_FIELDS), (name, variables)
        assert not any(f in source for f in REPORTER_FIELDS), name
    context = performed_context(CASE, "331122", performed(PERSON))
    assert not any(f in key for key in context for f in REPORTER_FIELDS)


def test_rendering_ignores_anything_a_template_does_not_name() -> None:
    context = {**performed_context(CASE, "331122", performed(PERSON)), "reporter": "实名举报人赵六"}
    assert "赵六" not in render("notice", context)


def test_missing_data_is_an_error_not_a_blank() -> None:
    context = performed_context(CASE, "331122", performed(PERSON))
    del context["points"]
    with pytest.raises(UndefinedError):
        render("notice", context)
