"""统一文书模板: the clarification documents rendered with Jinja2 from event data only (no reporter,
ever: clarification never receives the reporter's identity and the templates name no such field)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from services.clarification.domain import (
    QUALITY_GROUP_OFFICES,
    RE_REVIEW_CHECKS,
    Clarification,
    DocumentKind,
    clarifiable_points,
    document_id,
)
from shared.envelope import JURISDICTIONS
from shared.events.clarification import ClarificationApproved, ClarificationPerformed
from shared.events.common import Allegation, BadEffect, ClarificationForm, Subject

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

TEMPLATES: dict[DocumentKind, str] = {
    "approval_form": "approval_form.txt",
    "notice": "notice.txt",
    "unit_letter": "unit_letter.txt",
}
TITLES: dict[DocumentKind, str] = {
    "approval_form": "失实检举控告澄清审批表",
    "notice": "澄清通知书",
    "unit_letter": "关于失实检举控告澄清的函",
}
FORM_NAMES: dict[ClarificationForm, str] = {
    "written_notice": "书面澄清（送达澄清通知书）",
    "face_to_face": "当面澄清",
    "unit_meeting": "在所在单位会议上澄清",
    "scoped_notice": "在一定范围内通报澄清",
}
BAD_EFFECT_NAMES: dict[BadEffect, str] = {
    "repeated_reports": "多次被检举控告",
    "selection_affected": "影响选拔任用、评先评优或换届选举",
    "rights_harmed": "合法权益受到损害",
    "wide_spread": "不实信息传播范围较广",
    "other_necessary": "其他确有必要澄清的情形",
}
OFFICE_NAMES: dict[str, str] = {
    "letters_office": "信访室",
    "case_trial": "审理室",
    "case_management": "案管室",
}


def cn_date(day: date) -> str:
    """Dates as formal documents write them: 2023年3月15日."""
    return f"{day.year}年{day.month}月{day.day}日"


def commission_name(jurisdiction: str) -> str:
    return JURISDICTIONS[jurisdiction] + "纪委监委"


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        # Plain-text documents: escaping HTML would corrupt names and points.
        autoescape=select_autoescape(enabled_extensions=("html", "xml"), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["cn_date"] = cn_date
    return env


ENVIRONMENT = _environment()


@dataclass(frozen=True)
class Document:
    """One issued document: its text is kept as rendered, never rendered again."""

    doc_id: str
    case_id: str
    kind: DocumentKind
    title: str
    body: str
    created_on: date


def render(kind: DocumentKind, context: dict[str, Any]) -> str:
    return ENVIRONMENT.get_template(TEMPLATES[kind]).render(context)


def _person(person: Subject) -> dict[str, Any]:
    return {
        "kind": person.kind,
        "name": person.name,
        "post": person.post or "",
        "unit": person.unit or "",
        "cadre_level": "市管干部" if person.cadre_level == "city" else "县管干部",
    }


def _points(points: list[Allegation]) -> list[str]:
    return [p.summary for p in points]


def _document(case_id: str, kind: DocumentKind, context: dict[str, Any], created_on: date) -> Document:
    return Document(
        doc_id=document_id(case_id, kind),
        case_id=case_id,
        kind=kind,
        title=TITLES[kind],
        body=render(kind, context),
        created_on=created_on,
    )


def performed_context(case_id: str, jurisdiction: str, performed: ClarificationPerformed) -> dict[str, Any]:
    return {
        "commission": commission_name(jurisdiction),
        "case_id": case_id,
        "person": _person(performed.person),
        "points": _points(performed.points),
        "concluded_on": performed.concluded_on,
        "performed_on": performed.performed_on,
        "forms": [FORM_NAMES[f] for f in performed.forms],
        "scope": performed.scope,
        "in_round": performed.round_id is not None,
    }


def clarification_documents(
    case_id: str, jurisdiction: str, performed: ClarificationPerformed
) -> list[Document]:
    """澄清通知书 to the person and 关于失实检举控告澄清的函 to the unit."""
    context = performed_context(case_id, jurisdiction, performed)
    return [
        _document(case_id, "notice", context, performed.performed_on),
        _document(case_id, "unit_letter", context, performed.performed_on),
    ]


def approval_context(
    clarification: Clarification, jurisdiction: str, approved: ClarificationApproved
) -> dict[str, Any]:
    started, assessment, review = (
        clarification.started,
        clarification.assessment,
        clarification.last_re_review,
    )
    outcome = clarification.outcome
    assert started is not None and assessment is not None and review is not None and outcome is not None
    return {
        "commission": commission_name(jurisdiction),
        "case_id": clarification.case_id,
        "person": _person(started.person),
        "concluded_on": outcome.concluded_on,
        "points": _points(clarifiable_points(outcome)),
        "initiated_by": "承办部门征求本人意见后提出"
        if started.initiated_by == "department"
        else "本人书面申请",
        "consent_note": started.consent_note,
        "started_on": started.started_on,
        "assessed_on": assessment.assessed_on,
        "bad_effects": [BAD_EFFECT_NAMES[e] for e in assessment.bad_effects],
        "reviewed_on": review.reviewed_on,
        "checks": [{"label": c.label, "passed": bool(getattr(review, c.name))} for c in RE_REVIEW_CHECKS],
        "expected_effect": review.expected_effect,
        "members": [{"office": OFFICE_NAMES[o], "member": review.members[o]} for o in QUALITY_GROUP_OFFICES],
        "approver": approved.approver,
        "approval_level": commission_name(approved.level),
        "approved_on": approved.approved_on,
        "clarify_by": approved.clarify_by,
    }


def approval_form(
    clarification: Clarification, jurisdiction: str, approved: ClarificationApproved
) -> Document:
    """失实检举控告澄清审批表."""
    context = approval_context(clarification, jurisdiction, approved)
    return _document(clarification.case_id, "approval_form", context, approved.approved_on)
