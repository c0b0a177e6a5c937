"""What an officer can do on a case page: each command of the chain as a form with Chinese labels,
the rules' choices as options worded as the rules word them, shown to the role that gives it when
the case stands where the command applies. The services decide; a form the case has moved past
gets the service's refusal, shown beside the form.

The form fields are named as the command's body fields, so a service's validation error
(`body.logged_on`) lands beside its field.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal
from urllib.parse import quote

from console.labels import CHANNELS
from services.clarification.commands import WORDING_MAX
from services.clarification.documents import BAD_EFFECT_NAMES, FORM_NAMES
from services.clarification.domain import WITHDRAWABLE
from shared.envelope import CITY, JURISDICTIONS
from shared.errors import OutOfRange
from shared.events.common import FINDING_NAMES, HANDLING_METHOD_NAMES, UNTRUE_FINDINGS
from shared.workdays import add_working_days

Kind = Literal["date", "text", "textarea", "select", "checkboxes", "checkbox", "hidden"]

CHECKS: dict[str, str] = {
    "verification_complete": "核查全面：核查工作全面、深入，调查取证充分",
    "conclusion_clear": "结论清楚：核查结论事实清楚、证据确实充分",
    "disposal_adequate": "处置到位：对反映问题已作出恰当处置",
}
"""The re-review's three checks (复核), as the group's form words them."""

INITIATED_BY = {"department": "承办部门征求本人意见后提出", "person": "本人书面申请"}
REPORT_CHANNELS = {code: name for code, name in CHANNELS.items() if code != "agency_transfer"}
"""The channels an officer registers by hand (other agencies' transfers arrive on the inbound topic)."""
DEPARTMENTS = ("第一监督检查室", "第二监督检查室", "第三监督检查室", "第四监督检查室")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
IDENTIFIER = re.compile(r"^[\w.-]{1,100}$")


class NotASegment(ValueError):
    """An id that cannot be one path segment of a service's URL (the page is a 404)."""


def seg(value: str) -> str:
    """One path segment of a service's URL, every character that could end it escaped; a dot
    segment (`.`, `..`), which a URL resolves, is refused."""
    if value in (".", "..") or not value:
        raise NotASegment(f"not a path segment: {value!r}")
    return quote(value, safe="")


def identifier(value: str) -> bool:
    """Whether a case id of a URL can name a case (a path segment of word characters, - and .)."""
    return bool(IDENTIFIER.match(value)) and value not in (".", "..")


@dataclass(frozen=True)
class Input:
    name: str
    """The body field (dotted for a nested one: `reporter.name`)."""
    label: str
    kind: Kind = "text"
    choices: Mapping[str, str] = field(default_factory=dict)
    required: bool = True
    hint: str = ""
    max_length: int = 2000


@dataclass
class Form:
    """One action for one case: where it posts, its inputs and their current values."""

    key: str
    title: str
    service: str
    path: str
    inputs: list[Input]
    values: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    danger: bool = False
    build: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    """Turns the parsed values into the body, when fields and body differ (the 澄清内容's points)."""
    case_id: str = ""
    """The case whose page the form is on (set by forms_for)."""
    aliases: tuple[tuple[str, str], ...] = ()
    """(pattern, input) pairs naming the input of a body field a service refused, where they differ."""

    def input_of(self, body_field: str) -> str | None:
        """The input a service's refusal of `body_field` belongs beside, if the form has it."""
        names = {i.name for i in self.inputs}
        if body_field in names:
            return body_field
        for pattern, name in self.aliases:
            if re.fullmatch(pattern, body_field):
                return re.sub(pattern, name, body_field) if "\\" in name else name
        return None


def options(names: Mapping[Any, str]) -> dict[str, str]:
    """A vocabulary's codes and their Chinese wording, as a select's or checkboxes' options."""
    return {str(code): text for code, text in names.items()}


def _on(name: str, label: str) -> Input:
    return Input(name, label, "date")


CLARIFICATION_REASON_MAX = 2000
"""A reason of the clarification's commands (the review's take up to 4000)."""


def _reason(label: str = "理由", max_length: int = CLARIFICATION_REASON_MAX) -> Input:
    return Input("reason", label, "textarea", max_length=max_length)


def parse(form: Form, data: Mapping[str, list[str]]) -> tuple[dict[str, Any], dict[str, str]]:
    """The body a submitted form makes, or the Chinese message beside each field it cannot take."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for i in form.inputs:
        raw = [v.strip() for v in data.get(i.name, [])]
        first = raw[0] if raw else ""
        if i.kind == "checkbox":
            values[i.name] = first in ("on", "true", "1")
            continue
        if i.kind == "checkboxes":
            picked = [v for v in raw if v]
            unknown = [v for v in picked if v not in i.choices]
            if unknown:
                errors[i.name] = "请从列出的选项中选择"
            elif i.required and not picked:
                errors[i.name] = f"请至少选择一项{i.label}"
            values[i.name] = picked
            continue
        if not first:
            if i.required:
                errors[i.name] = f"请选择{i.label}" if i.kind in ("select", "date") else f"请填写{i.label}"
            values[i.name] = None
            continue
        if len(first) > i.max_length:
            errors[i.name] = f"{i.label}不能超过 {i.max_length} 个字"
        elif i.kind == "date":
            if not DATE.match(first):
                errors[i.name] = "日期格式应为 年-月-日，如 2023-03-15"
            else:
                try:
                    date.fromisoformat(first)
                except ValueError:
                    errors[i.name] = "没有这一天，请检查日期"
        elif i.kind == "select" and first not in i.choices:
            errors[i.name] = "请从列出的选项中选择"
        values[i.name] = first
    if errors:
        return values, errors
    body: dict[str, Any] = {}
    for name, value in values.items():
        if value is None:
            continue
        target = body
        *parents, leaf = name.split(".")
        for p in parents:
            target = target.setdefault(p, {})
        target[leaf] = value
    return (form.build(body) if form.build else body), {}


# --- which actions a case offers ---------------------------------------------------------------------


@dataclass
class Case:
    """Everything the services told this user about one case (None: not theirs to see, or not yet)."""

    case_id: str
    report: dict[str, Any] | None = None
    verification: dict[str, Any] | None = None
    clarification: dict[str, Any] | None = None
    visits: list[dict[str, Any]] = field(default_factory=list)
    """回访 of this case (the archive's file of the person)."""

    @property
    def jurisdiction(self) -> str | None:
        for view in (self.report, self.verification, self.clarification):
            if view:
                return str(view["jurisdiction"])
        return None


def _steps(matter: dict[str, Any]) -> list[dict[str, Any]]:
    return list(matter.get("steps") or [])


RE_REVIEW_RESETS = ("re_reviewed", "assessed", "returned_by_head", "outcome_revised", "started")
"""Steps after which a new re-review begins: the signatures before them no longer count."""


def current_signatures(matter: dict[str, Any]) -> list[dict[str, Any]]:
    """The signatures (ReReviewSigned steps) of the re-review under way."""
    signed: list[dict[str, Any]] = []
    for s in _steps(matter):
        if s["step"] == "re_review_signed":
            signed.append(s)
        elif s["step"] in RE_REVIEW_RESETS:
            signed = []
    return signed


def signed_offices(matter: dict[str, Any]) -> set[str]:
    """The offices that have signed, and passed, the re-review now under way."""
    return {str(s.get("office")) for s in current_signatures(matter) if s.get("passed")}


def has_step(matter: dict[str, Any], step: str) -> bool:
    return any(s["step"] == step for s in _steps(matter))


def intake_forms(case: Case, role: str) -> list[Form]:
    r = case.report
    if r is None or role != "letters_office":
        return []
    path = f"/reports/{seg(case.case_id)}"
    forms: list[Form] = []
    state = r["state"]
    if state == "received":
        forms.append(Form("log", "登记", "intake", f"{path}/log", [_on("logged_on", "登记日期")]))
    if state == "logged":
        forms.append(Form("accept", "受理", "intake", f"{path}/accept", [_on("accepted_on", "受理日期")]))
        here = str(r["jurisdiction"])
        up = {CITY: JURISDICTIONS[CITY]} if here != CITY else {}
        down = {c: n for c, n in JURISDICTIONS.items() if c != CITY} if here == CITY else {}
        if up:
            forms.append(
                Form(
                    "send-up",
                    "报送上级",
                    "intake",
                    f"{path}/send-up",
                    [Input("to_jurisdiction", "报送机关", "select", up), _on("sent_on", "报送日期")],
                    values={"to_jurisdiction": CITY},
                )
            )
        if down:
            forms.append(
                Form(
                    "send-down",
                    "转送下级",
                    "intake",
                    f"{path}/send-down",
                    [Input("to_jurisdiction", "转送机关", "select", down), _on("sent_on", "转送日期")],
                )
            )
        forms.append(
            Form(
                "merge",
                "并入原件（重复件）",
                "intake",
                f"{path}/merge",
                [
                    Input("repeats_matter_id", "原件编号", max_length=100, hint="如 331122-2023-000001"),
                    _on("merged_on", "并入日期"),
                ],
            )
        )
    if state == "accepted":
        forms.append(
            Form(
                "hand-over",
                "移送承办部门",
                "intake",
                f"{path}/hand-over",
                [
                    Input("department", "承办部门", "select", {d: d for d in DEPARTMENTS}),
                    _on("handed_on", "移送日期"),
                ],
            )
        )
    notified = r.get("notified") or {}
    due_notices = (
        ("acceptance", "告知检举人受理情况", state in ("accepted", "handed_over")),
        ("result", "告知检举人处理结果", bool(r.get("concluded_on"))),
    )
    for kind, title, due in due_notices:
        if r.get("real_name") and due and kind not in notified:
            forms.append(
                Form(
                    f"notify-{kind}",
                    title,
                    "intake",
                    f"{path}/notify",
                    [Input("kind", "告知事项", "hidden"), _on("notified_on", "告知日期")],
                    values={"kind": kind},
                )
            )
    if r.get("real_name") and r.get("concluded_on"):
        forms.append(
            Form(
                "object",
                "登记检举人异议",
                "intake",
                f"{path}/objections",
                [
                    _on("lodged_on", "提出日期"),
                    Input("grounds", "异议理由", "textarea", max_length=4000),
                    Input("new_evidence", "新的证据或线索", "textarea", max_length=4000),
                ],
            )
        )
    for o in r.get("objections") or []:
        if o.get("stage") == "examined":
            forms.append(
                Form(
                    f"objection-feedback-{o['objection_id']}",
                    "向检举人反馈异议复查结果",
                    "intake",
                    f"{path}/objections/{seg(o['objection_id'])}/feedback",
                    [_on("fed_back_on", "反馈日期"), Input("note", "反馈情况", "textarea", required=False)],
                )
            )
    return forms


def review_forms(case: Case, role: str, *, city_head: bool) -> list[Form]:
    v = case.verification
    if v is None:
        return []
    path = f"/verifications/{seg(case.case_id)}"
    state = v["state"]
    forms: list[Form] = []
    if role == "handling_department":
        if state == "open":
            forms.append(
                Form(
                    "decision",
                    "提出处置方式（报主要负责人审批）",
                    "review",
                    f"{path}/decision",
                    [
                        Input("method", "处置方式", "select", options(HANDLING_METHOD_NAMES)),
                        _on("decided_on", "集体研究日期"),
                        Input("collective", "经集体研究决定", "checkbox"),
                        Input("note", "说明", "textarea", required=False),
                    ],
                    values={"collective": True, "method": "preliminary_verification"},
                )
            )
        if state in ("decided", "reopened"):
            for a in v.get("allegations") or []:
                aid = a["allegation_id"]
                if aid in (v.get("false_accusation_proposals") or {}):
                    continue
                found = (v.get("findings") or {}).get(aid)
                if found and state == "decided":
                    continue  # recorded; it is corrected only after a reopening
                forms.append(
                    Form(
                        f"finding-{aid}",
                        f"认定{aid}：{a['summary'][:40]}" + ("（已认定，可更正）" if found else ""),
                        "review",
                        f"{path}/findings",
                        [
                            Input("allegation_id", "问题", "hidden"),
                            Input("finding", "核查结论", "select", options(FINDING_NAMES)),
                            Input("basis", "认定依据", "textarea", max_length=4000),
                            _on("found_on", "认定日期"),
                            Input(
                                "referred_on",
                                "移送追责日期（仅诬告陷害，报市级审批）",
                                "date",
                                required=False,
                            ),
                        ],
                        values={"allegation_id": aid, "finding": (found or {}).get("finding", "untrue")},
                    )
                )
            forms.append(
                Form("conclude", "办结", "review", f"{path}/conclude", [_on("concluded_on", "办结日期")])
            )
        for o in v.get("objections") or []:
            if o.get("examined_on") is None:
                forms.append(
                    Form(
                        f"examine-{o['objection_id']}",
                        "复查检举人异议",
                        "review",
                        f"{path}/objections/{seg(o['objection_id'])}/examine",
                        [
                            _on("examined_on", "复查日期"),
                            Input("upheld", "异议成立（重新核查）", "checkbox"),
                            Input("reason", "复查意见", "textarea", max_length=4000),
                        ],
                    )
                )
    if role == "head":
        if state == "proposed" and v.get("proposal"):
            forms.append(
                Form(
                    "decision-approve",
                    "批准处置方式",
                    "review",
                    f"{path}/decision/approve",
                    [_on("approved_on", "批准日期")],
                )
            )
            forms.append(
                Form(
                    "decision-send-back",
                    "退回处置方式",
                    "review",
                    f"{path}/decision/send-back",
                    [_on("sent_back_on", "退回日期"), _reason("退回理由", 4000)],
                    danger=True,
                )
            )
        if city_head:
            for aid in v.get("false_accusation_proposals") or {}:
                forms.append(
                    Form(
                        f"fa-approve-{aid}",
                        f"批准{aid}认定为诬告陷害（市级审批）",
                        "review",
                        f"{path}/false-accusations/{seg(aid)}/approve",
                        [_on("approved_on", "批准日期")],
                    )
                )
                forms.append(
                    Form(
                        f"fa-refuse-{aid}",
                        f"不批准{aid}认定为诬告陷害",
                        "review",
                        f"{path}/false-accusations/{seg(aid)}/refuse",
                        [_on("refused_on", "日期"), _reason("不予批准理由", 4000)],
                        danger=True,
                    )
                )
    return forms


def content_wording(matter: dict[str, Any]) -> dict[str, str]:
    """The 澄清内容 to start from: what was drafted, else "经核查，反映<person>……的问题失实。" per
    point verified untrue (the department rewords it; the summary is the intake's wording)."""
    drafted = dict((matter.get("content") or {}).get("points") or {})
    outcome = matter.get("outcome") or {}
    person = matter.get("person") or {}
    named = (
        f"{person.get('name', '')}同志"
        if person.get("kind", "person") == "person"
        else person.get("name", "")
    )
    out: dict[str, str] = {}
    for point in outcome.get("untrue_points") or []:
        aid = point["allegation_id"]
        if (outcome.get("findings") or {}).get(aid) not in UNTRUE_FINDINGS:
            continue
        summary = str(point["summary"]).strip().rstrip("。；;，,")
        out[aid] = drafted.get(aid) or f"经核查，反映{named}{summary}的问题失实。"
    return out


def _points(body: dict[str, Any]) -> dict[str, Any]:
    points = body.pop("points", {})
    return {**body, "points": [{"allegation_id": k, "wording": v} for k, v in points.items()]}


RE_REVIEW_OPEN = ("assessed", "sent_back", "returned_by_head")
RE_REVIEW_OFFICES = ("letters_office", "case_trial", "case_management")


def clarification_forms(
    case: Case, role: str, user_id: str, *, today: date, city_head: bool = False
) -> list[Form]:
    m = case.clarification
    if m is None:
        return []
    path = f"/clarifications/{seg(case.case_id)}"
    state = m["state"]
    content = m.get("content") or {}
    forms: list[Form] = []
    person_id = (m.get("person") or {}).get("subject_id") or (m.get("outcome") or {}).get("person_subject_id")
    if role == "handling_department":
        if state == "candidate":
            forms.append(
                Form(
                    "start",
                    "启动澄清（本人同意）",
                    "clarification",
                    f"{path}/start",
                    [
                        Input("initiated_by", "启动方式", "select", INITIATED_BY),
                        Input("person_subject_id", "被澄清人", "hidden"),
                        Input("consent", "本人同意澄清", "checkbox"),
                        Input("consent_note", "征求意见情况", "textarea", required=False),
                        _on("started_on", "启动日期"),
                    ],
                    values={"person_subject_id": person_id, "consent": True, "initiated_by": "department"},
                )
            )
            forms.append(
                Form(
                    "consent-request",
                    "印发拟澄清告知书（征求本人意见）",
                    "clarification",
                    f"{path}/consent-request",
                    [Input("person_subject_id", "被澄清人", "hidden"), _on("requested_on", "告知日期")],
                    values={"person_subject_id": person_id},
                )
            )
            forms.append(
                Form(
                    "decline",
                    "本人不同意澄清",
                    "clarification",
                    f"{path}/decline",
                    [
                        Input("person_subject_id", "被澄清人", "hidden"),
                        _on("declined_on", "日期"),
                        _reason("本人意见"),
                    ],
                    values={"person_subject_id": person_id},
                    danger=True,
                )
            )
        # The 澄清内容 is drafted (again) until it is approved, at any step before the clarification.
        if state in WITHDRAWABLE and content.get("state") in (None, "none", "returned", "drafted"):
            wording = content_wording(m)
            forms.append(
                Form(
                    "content",
                    "拟定澄清内容（报审理室审核）",
                    "clarification",
                    f"{path}/content",
                    [_on("drafted_on", "拟定日期")]
                    + [
                        Input(f"points.{aid}", f"澄清内容 {aid}", "textarea", max_length=WORDING_MAX)
                        for aid in wording
                    ],
                    values={f"points.{aid}": text for aid, text in wording.items()},
                    aliases=tuple((rf"points\.{i}(\..*)?", f"points.{aid}") for i, aid in enumerate(wording)),
                    note="只写明经核查失实的问题，不作整体评价；不得引用检举控告原文或透露检举人信息。",
                    build=_points,
                )
            )
        if state == "started":
            forms.append(
                Form(
                    "assess",
                    "评估（对照正反清单）",
                    "clarification",
                    f"{path}/assess",
                    [
                        _on("assessed_on", "评估日期"),
                        Input(
                            "bad_effects",
                            "造成的不良影响（正面清单；均未勾选即不予澄清）",
                            "checkboxes",
                            options(BAD_EFFECT_NAMES),
                            required=False,
                        ),
                        Input(
                            "effect_only_from_interviews",
                            "不良影响仅因核查谈话产生（负面清单：不予澄清）",
                            "checkbox",
                        ),
                        Input("other_reason", "其他确有必要澄清的理由", "textarea", required=False),
                        Input(
                            "proposed_forms",
                            "拟澄清方式（书面澄清总是包含）",
                            "checkboxes",
                            options(FORM_NAMES),
                            required=False,
                        ),
                        Input("proposed_scope", "拟通报范围", "text", required=False, max_length=500),
                    ],
                    values={"proposed_forms": ["written_notice"]},
                )
            )
        if state in WITHDRAWABLE:
            forms.append(
                Form(
                    "withdraw",
                    "本人撤回澄清申请",
                    "clarification",
                    f"{path}/withdraw",
                    [_on("withdrawn_on", "撤回日期"), _reason("本人意见")],
                    danger=True,
                )
            )
        if state == "approved":
            approved = m.get("approved_on")
            due = m.get("clarify_by")
            forms.append(
                Form(
                    "perform",
                    "实施澄清",
                    "clarification",
                    f"{path}/perform",
                    [
                        _on("performed_on", "澄清日期"),
                        Input("forms", "澄清方式", "checkboxes", options(FORM_NAMES)),
                    ],
                    values={"forms": _approved_forms(m)},
                    note=f"经批准于 {approved}，应在 5 个工作日内（{due} 前）实施。" if approved else "",
                )
            )
        if state == "performed":
            if not has_step(m, "feedback"):
                person = m.get("person") or {}
                forms.append(
                    Form(
                        "feedback",
                        "向所在单位党委（党组）及主要负责人反馈",
                        "clarification",
                        f"{path}/feedback",
                        [
                            _on("given_on", "反馈日期"),
                            Input("party_committee", "所在单位党委（党组）", max_length=100),
                            Input("unit_head", "所在单位主要负责人", max_length=100),
                        ],
                        values={"party_committee": f"{person.get('unit') or person.get('name', '')}党委"},
                    )
                )
            if not has_step(m, "acknowledged"):
                forms.append(
                    Form(
                        "acknowledge",
                        "本人知悉澄清结果",
                        "clarification",
                        f"{path}/acknowledge",
                        [
                            _on("acknowledged_on", "告知日期"),
                            Input("note", "本人意见", "textarea", required=False),
                        ],
                        values={"note": "本人已知悉澄清结果"},
                    )
                )
    if role == "case_trial" and content.get("state") == "drafted":
        forms.append(
            Form(
                "content-approve",
                "审核通过澄清内容",
                "clarification",
                f"{path}/content/approve",
                [_on("approved_on", "审核日期")],
            )
        )
        forms.append(
            Form(
                "content-return",
                "退回澄清内容",
                "clarification",
                f"{path}/content/return",
                [_on("returned_on", "退回日期"), _reason("退回理由")],
                danger=True,
            )
        )
    if (
        role in RE_REVIEW_OFFICES
        and state in RE_REVIEW_OPEN
        and m.get("eligible")
        and role not in signed_offices(m)
        and not _signed_by(m, user_id)
    ):
        forms.append(
            Form(
                "re-review",
                "复核签署（质量评估小组）",
                "clarification",
                f"{path}/re-review",
                [
                    _on("reviewed_on", "复核日期"),
                    *(Input(k, text, "checkbox") for k, text in CHECKS.items()),
                    Input("expected_effect", "预期澄清效果", "textarea"),
                    Input("note", "复核意见", "textarea", required=False),
                ],
                values={"expected_effect": "澄清后可消除不良影响，激励干部担当作为"},
                note="三项均勾选为通过；任一项未勾选即退回，请在复核意见中写明理由。",
            )
        )
    if (
        role == "case_management"
        and state == "performed"
        and has_step(m, "feedback")
        and has_step(m, "acknowledged")
    ):
        forms.append(Form("file", "备案", "clarification", f"{path}/file", [_on("filed_on", "备案日期")]))
    city_cadre = (m.get("person") or {}).get("cadre_level") == "city"
    if role == "head" and state == "re_reviewed" and (city_head or not city_cadre):
        forms.append(
            Form(
                "approve",
                "批准澄清（含澄清方式和范围）",
                "clarification",
                f"{path}/approve",
                [
                    _on("approved_on", "批准日期"),
                    Input("forms", "批准的澄清方式", "checkboxes", options(FORM_NAMES)),
                    Input("scope", "批准的通报范围", "text", required=False, max_length=500),
                ],
                values={"forms": _proposed_forms(m), "scope": _proposed_scope(m)},
                note=_clarify_within(today),
            )
        )
        forms.append(
            Form(
                "send-back",
                "退回重新复核",
                "clarification",
                f"{path}/send-back",
                [_on("sent_back_on", "退回日期"), _reason("退回理由")],
                danger=True,
            )
        )
        forms.append(
            Form(
                "refuse-approval",
                "不予批准",
                "clarification",
                f"{path}/refuse-approval",
                [_on("refused_on", "日期"), _reason("不予批准理由")],
                danger=True,
            )
        )
    return forms


def _clarify_within(today: date) -> str:
    try:
        due = add_working_days(today, 5).isoformat()
    except OutOfRange:  # a year the working-day calendar does not know yet: no date is guessed
        return "批准后应在 5 个工作日内实施澄清（工作日日历尚无该年度安排，期限请人工核定）。"
    return f"批准后应在 5 个工作日内（{due} 前）实施澄清。"


def _signed_by(matter: dict[str, Any], user_id: str) -> bool:
    """Whether this user has signed the re-review under way (for any office)."""
    return any(str(s.get("by")) == user_id for s in current_signatures(matter))


def _last(matter: dict[str, Any], step: str) -> dict[str, Any]:
    return next((s for s in reversed(_steps(matter)) if s["step"] == step), {})


def _proposed_forms(matter: dict[str, Any]) -> list[str]:
    return list(_last(matter, "assessed").get("proposed_forms") or ["written_notice"])


def _proposed_scope(matter: dict[str, Any]) -> str:
    return str(_last(matter, "assessed").get("proposed_scope") or "")


def _approved_forms(matter: dict[str, Any]) -> list[str]:
    return list(_last(matter, "approved").get("forms") or ["written_notice"])


def forms_for(case: Case, role: str, user_id: str, *, city_head: bool, today: date) -> list[Form]:
    """Every action this user may take on the case now."""
    forms = [
        *intake_forms(case, role),
        *review_forms(case, role, city_head=city_head),
        *clarification_forms(case, role, user_id, today=today, city_head=city_head),
        *visit_forms(case, role),
    ]
    for f in forms:
        f.case_id = case.case_id
    return forms


VISITORS = ("handling_department", "case_management")


def visit_forms(case: Case, role: str) -> list[Form]:
    """回访 of the person and of the unit, each once it is scheduled and until it is recorded."""
    if role not in VISITORS:
        return []
    who = {"person": "本人", "unit": "所在单位"}
    return [
        Form(
            f"visit-{v['visit_id']}",
            f"记录回访{who.get(v['visit_with'], '')}（应于 {v['due_on']} 前）",
            "archive",
            f"/visits/{seg(v['visit_id'])}/record",
            [
                _on("visited_on", "回访日期"),
                Input("state_of_mind", "思想状况", "textarea"),
                Input("work", "工作状态", "textarea"),
                Input("leader_views", "领导评价", "textarea"),
                Input("colleague_views", "同事评价", "textarea"),
            ],
        )
        for v in case.visits
        if not v.get("visited_on")
    ]


def register_form(jurisdictions: list[tuple[str, str]]) -> Form:
    """接收: a report with one reported person or unit and up to three allegations."""
    inputs = [
        Input("jurisdiction", "受理机关", "select", dict(jurisdictions)),
        Input("channel", "来源渠道", "select", REPORT_CHANNELS),
        _on("received_on", "收到日期"),
        Input("real_name", "实名检举控告", "checkbox"),
        Input("reporter.name", "检举人姓名（实名时填写，严格保密）", required=False, max_length=100),
        Input("reporter.contact", "检举人联系方式（实名时填写）", required=False, max_length=200),
        Input("subject.kind", "被反映对象类别", "select", {"person": "个人", "unit": "单位"}),
        Input("subject.name", "被反映人姓名（或单位名称）", max_length=100),
        Input("subject.post", "职务（被反映人为个人时必填）", required=False, max_length=200),
        Input("subject.unit", "工作单位", required=False, max_length=200),
        Input("subject.cadre_level", "干部管理权限", "select", {"county": "县管干部", "city": "市管干部"}),
        Input("allegation.1", "反映问题一", "textarea"),
        Input("allegation.2", "反映问题二", "textarea", required=False),
        Input("allegation.3", "反映问题三", "textarea", required=False),
    ]
    return Form(
        "register",
        "接收检举控告",
        "intake",
        "/reports",
        inputs,
        values={"channel": "letter", "subject.kind": "person", "subject.cadre_level": "county"},
        build=_report_body,
        aliases=(
            (r"subjects\.0\.(\w+)", r"subject.\1"),
            (r"subjects(\.0)?", "subject.name"),
            (r"reporter\.(\w+)", r"reporter.\1"),
            (r"reporter", "reporter.name"),
            (r"allegations.*", "allegation.1"),
            (r"summary", "allegation.1"),
        ),
    )


def _report_body(body: dict[str, Any]) -> dict[str, Any]:
    allegations = [v for _, v in sorted(body.pop("allegation", {}).items()) if v]
    subject = body.pop("subject")
    reporter = body.pop("reporter", None)
    real = bool(body.get("real_name"))
    return {
        **body,
        "reporter": reporter if real else None,
        "subjects": [subject],
        "allegations": [{"summary": a} for a in allegations],
        "summary": "；".join(allegations)[:8000],
    }
