"""统一文书: the four clarification documents, worded by editable Jinja2 templates from event data only
(no reporter, ever: clarification never receives the reporter's identity and the templates name no
such field), and laid out as party and government documents (GB/T 9704-2012: 发文机关标志, 发文字号,
标题, 主送, 正文, 署名, 成文日期, 印章, 抄送, 印发机关和印发日期). The layout is kept as issued; the text
preview, the DOCX and the PDF are renderings of it (formats.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from pydantic import BaseModel

from services.clarification.domain import (
    QUALITY_GROUP_OFFICES,
    RE_REVIEW_CHECKS,
    Clarification,
    DocumentKind,
    clarifiable_points,
    required_level,
)
from services.clarification.settings import DocumentSettings
from shared.events.clarification import (
    ClarificationPerformed,
    ConsentRequested,
    FeedbackGiven,
    ReReviewRecorded,
)
from shared.events.common import Allegation, BadEffect, ClarificationForm, Subject

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

TEMPLATES: dict[DocumentKind, str] = {
    "consent_request": "consent_request.txt",
    "approval_form": "approval_form.txt",
    "notice": "notice.txt",
    "unit_letter": "unit_letter.txt",
}
TITLES: dict[DocumentKind, str] = {
    "consent_request": "拟澄清告知书",
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
WE = "我委"
"""How the commission names itself in a body (纪委监委合署办公): its full names head and sign the page."""
ROW_MARK = "｜"


def cn_date(day: date) -> str:
    """Dates as formal documents write them: 2023年3月15日."""
    return f"{day.year}年{day.month}月{day.day}日"


def one_line(value: Any) -> Any:
    """Every value a template interpolates stays on its line: the wording is read back line by line
    ("label｜value"), so a newline or a "｜" in a summary or a note must not make a row of its own."""
    if isinstance(value, str):
        return " ".join(value.replace("｜", "|").split("\n"))
    return value


def _environment() -> Environment:
    env = Environment(
        finalize=one_line,
        loader=FileSystemLoader(TEMPLATES_DIR),
        # The wording templates are plain text: escaping would corrupt names and points (the HTML
        # and DOCX renderings escape on their own).
        autoescape=select_autoescape(enabled_extensions=("html", "xml"), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["cn_date"] = cn_date
    return env


ENVIRONMENT = _environment()


def render(kind: DocumentKind, context: dict[str, Any]) -> str:
    """The wording of one document (its addressee and paragraphs, or the form's rows)."""
    return ENVIRONMENT.get_template(TEMPLATES[kind]).render(context)


# --- The layout ----------------------------------------------------------------------------------


class Row(BaseModel):
    """One row of a form: a section heading, or a label and its value's lines."""

    label: str
    lines: list[str] = []
    heading: bool = False


class Layout(BaseModel):
    """A document as GB/T 9704-2012 lays it out, kept as issued."""

    kind: DocumentKind
    organ: list[str]  # 发文机关标志: the issuing organs' full names
    number: str  # 发文字号 (a form's 编号)
    title: str
    addressee: str = ""  # 主送机关 or the person addressed
    paragraphs: list[str] = []  # 正文 (letters)
    rows: list[Row] = []  # the 审批表's rows (forms)
    signatories: list[str] = []  # 发文机关署名
    sealed: bool = False  # 印章: pressed over the 署名 and the 成文日期
    dated: date  # 成文日期 (a form's 填报日期)
    cc: list[str] = []  # 抄送机关
    printer: str = ""  # 印发机关
    printed_on: date | None = None  # 印发日期

    @property
    def is_form(self) -> bool:
        return bool(self.rows)


def letter_parts(text: str) -> tuple[str, list[str]]:
    """A letter's wording: the first line addresses, every other non-blank line is a paragraph."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    addressee = lines[0].removesuffix("：") if lines else ""
    return addressee, lines[1:]


def form_rows(text: str) -> list[Row]:
    """A form's wording: "label｜value" rows, "｜value" continuing the row above, headings alone."""
    rows: list[Row] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if ROW_MARK not in line:
            rows.append(Row(label=line, heading=True))
            continue
        label, value = (part.strip() for part in line.split(ROW_MARK, 1))
        if not label and rows and not rows[-1].heading:
            rows[-1].lines.append(value)
        else:
            rows.append(Row(label=label, lines=[value] if value else []))
    return rows


def text_of(layout: Layout) -> str:
    """The plain-text preview, top to bottom as on the page."""
    indent = "　　"
    out = [*layout.organ, layout.number, "", layout.title, ""]
    if layout.is_form:
        for row in layout.rows:
            if row.heading:
                out.append(row.label)
            else:
                first, *rest = row.lines or [""]
                out.append(f"{indent}{row.label}：{first}")
                out.extend(f"{indent}{indent}{line}" for line in rest)
        out += ["", f"填报日期：{cn_date(layout.dated)}"]
    else:
        out.append(f"{layout.addressee}：")
        out.extend(indent + p for p in layout.paragraphs)
        out.append("")
        right = indent * 8
        if layout.sealed:
            out.append(f"{right}（印章）")
        out.extend(right + s for s in layout.signatories)
        out.append(right + cn_date(layout.dated))
    if layout.cc or layout.printer:
        out.append("")
    if layout.cc:
        out.append(f"抄送：{'，'.join(layout.cc)}。")
    if layout.printer and layout.printed_on is not None:
        out.append(f"{layout.printer}{indent}{cn_date(layout.printed_on)}印发")
    return "\n".join(out) + "\n"


# --- Drafts: what a command decided to issue, before its number ---------------------------------


@dataclass(frozen=True)
class Draft:
    """A document a command issues: its wording's data, date and copies; numbered when stored."""

    doc_id: str
    case_id: str
    jurisdiction: str
    kind: DocumentKind
    context: dict[str, Any]
    dated: date
    cc: tuple[str, ...] = ()


@dataclass(frozen=True)
class Document:
    """One issued document: its layout is kept as issued, never rendered from events again."""

    doc_id: str
    case_id: str
    kind: DocumentKind
    title: str
    number: str
    body: str
    created_on: date
    layout: Layout


def issue(draft: Draft, number: str, settings: DocumentSettings | None = None) -> Document:
    """The document with its 发文字号: worded, laid out and previewed (pure)."""
    settings = settings or DocumentSettings()
    organ = settings.organ(draft.jurisdiction)
    kind = draft.kind
    wording = render(kind, draft.context)
    common: dict[str, Any] = {"kind": kind, "organ": organ.names, "number": number, "title": TITLES[kind]}
    if kind == "approval_form":
        layout = Layout(**common, rows=form_rows(wording), dated=draft.dated)
    else:
        addressee, paragraphs = letter_parts(wording)
        layout = Layout(
            **common,
            addressee=addressee,
            paragraphs=paragraphs,
            signatories=organ.names,
            sealed=True,
            dated=draft.dated,
            cc=list(draft.cc),
            printer=organ.printer,
            printed_on=draft.dated,
        )
    return Document(
        doc_id=draft.doc_id,
        case_id=draft.case_id,
        kind=kind,
        title=TITLES[kind],
        number=number,
        body=text_of(layout),
        created_on=draft.dated,
        layout=layout,
    )


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


def _worded(points: list[Allegation], wording: dict[str, str]) -> list[str]:
    """The approved 澄清内容 of each point; a clarification recorded before the content was approved
    (no wording) printed the allegations' summaries, and so does its letter."""
    return [wording.get(p.allegation_id, p.summary) for p in points] if wording else _points(points)


def content_rows(matter: Clarification) -> dict[str, Any]:
    """What the 审批表 says of the 澄清内容 when it is issued, honestly: the approved wording, else
    the wording drafted (marked as a draft, and as returned when the case-trial office returned
    it), else only the points as reported (反映问题), the content not drafted yet."""
    outcome, draft = matter.outcome, matter.content
    assert outcome is not None
    points = clarifiable_points(outcome)
    if draft is None:
        return {"content": "none", "content_points": _points(points)}
    wording = [draft.points.get(p.allegation_id, p.summary) for p in points]
    state = {"approved": "approved", "returned": "returned"}.get(matter.content_state, "draft")
    approval = matter.content_approval
    return {
        "content": state,
        "content_points": wording,
        "content_approved_on": approval.approved_on if approval is not None else None,
    }


def _organ_name(jurisdiction: str, settings: DocumentSettings) -> str:
    return "、".join(settings.organ(jurisdiction).names)


def consent_request(matter: Clarification, requested: ConsentRequested) -> Draft:
    """拟澄清告知书 to the person (or unit), before the start: the untrue points, asking consent."""
    outcome = matter.outcome
    assert outcome is not None
    [doc_id] = requested.documents
    context = {
        "we": WE,
        "person": _person(requested.person),
        "points": _points(clarifiable_points(outcome)),
        "concluded_on": outcome.concluded_on,
    }
    return Draft(
        doc_id, matter.case_id, matter.jurisdiction, "consent_request", context, requested.requested_on
    )


def approval_form(
    matter: Clarification, reviewed: ReReviewRecorded, settings: DocumentSettings | None = None
) -> Draft:
    """失实检举控告澄清审批表, put before the head once the re-review passed: the chain so far and the
    proposed forms and scope, the head's opinion blank."""
    settings = settings or DocumentSettings()
    started, assessment, outcome = matter.started, matter.assessment, matter.outcome
    assert started is not None and assessment is not None and outcome is not None
    [doc_id] = reviewed.documents
    level = required_level(started.person.cadre_level, matter.jurisdiction)
    forms = assessment.proposed_forms or ["written_notice"]
    context = {
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
        "forms": [FORM_NAMES[f] for f in forms],
        "scope": assessment.proposed_scope,
        "reviewed_on": reviewed.reviewed_on,
        "checks": [{"label": c.label, "passed": bool(getattr(reviewed, c.name))} for c in RE_REVIEW_CHECKS],
        "expected_effect": reviewed.expected_effect,
        "members": [
            {"office": OFFICE_NAMES[o], "member": reviewed.member_names.get(o) or reviewed.members[o]}
            for o in QUALITY_GROUP_OFFICES
        ],
        "approval_organ": _organ_name(level, settings),
        **content_rows(matter),
    }
    return Draft(doc_id, matter.case_id, matter.jurisdiction, "approval_form", context, reviewed.reviewed_on)


def performed_context(
    matter: Clarification, performed: ClarificationPerformed, settings: DocumentSettings | None = None
) -> dict[str, Any]:
    settings = settings or DocumentSettings()
    approval = matter.approval
    assert approval is not None
    return {
        "we": WE,
        "person": _person(performed.person),
        "points": _worded(performed.points, performed.wording),
        "worded": bool(performed.wording),
        "concluded_on": performed.concluded_on,
        "performed_on": performed.performed_on,
        "forms": [FORM_NAMES[f] for f in performed.forms],
        "scope": performed.scope,
        "in_round": performed.round_id is not None,
        "approval_organ": _organ_name(approval.level, settings),
    }


def notice(
    matter: Clarification, performed: ClarificationPerformed, settings: DocumentSettings | None = None
) -> Draft:
    """澄清通知书 to the person, copied to the organisation department of the cadre's managing level."""
    settings = settings or DocumentSettings()
    approval = matter.approval
    assert approval is not None
    [doc_id] = performed.documents
    context = performed_context(matter, performed, settings)
    cc = (settings.organ(approval.level).organisation_department,)
    return Draft(doc_id, matter.case_id, matter.jurisdiction, "notice", context, performed.performed_on, cc)


def unit_letter(
    matter: Clarification, feedback: FeedbackGiven, settings: DocumentSettings | None = None
) -> Draft:
    """关于失实检举控告澄清的函 to the unit's 党委（党组）, by the name given at feedback."""
    performed = matter.performance
    assert performed is not None
    [doc_id] = feedback.documents
    context = {
        **performed_context(matter, performed, settings),
        "party_committee": feedback.party_committee,
        "unit_head": feedback.unit_head,
    }
    return Draft(doc_id, matter.case_id, matter.jurisdiction, "unit_letter", context, feedback.given_on)
