"""Chinese names of the services' codes, for pages: the services' own tables where they have one."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from services.clarification.documents import BAD_EFFECT_NAMES, FORM_NAMES, OFFICE_NAMES
from services.clarification.domain import CONTENT_STATE_NAMES, STATE_NAMES
from services.intake.domain import REPORT_STATE_NAMES
from shared.envelope import JURISDICTIONS
from shared.events.common import FINDING_NAMES, HANDLING_METHOD_NAMES, role_name

VERIFICATION_STATES = {
    "open": "待提出处置方式",
    "proposed": "处置方式待审批",
    "decided": "核查中",
    "concluded": "已办结",
    "reopened": "补充核查中",
}
CHANNELS = {
    "letter": "来信",
    "visit": "来访",
    "online": "网络举报（12388）",
    "phone": "电话举报",
    "referred_down": "上级转办",
    "agency_transfer": "其他机关移送",
}
SERVICES = {"intake": "信访受理", "review": "核查", "clarification": "澄清正名", "archive": "备案回访"}
INTAKE_OVERDUE = {
    "disposition": "登记后 5 个工作日内处置",
    "acceptance_notice": "15 个工作日内告知实名检举人受理情况",
    "result_notice": "办结后 15 个工作日内告知处理结果",
    "sent_down_response": "转送件 5 个工作日内答复",
}
EVENTS = {
    "ReportReceived": "接收检举控告",
    "ReportLogged": "登记",
    "ReportAccepted": "受理",
    "ReportSentUp": "报送上级",
    "ReportSentDown": "转送下级",
    "ReportMergedAsRepeat": "并入原件（重复件）",
    "ReportHandedOver": "移送承办部门",
    "ReporterNotified": "告知检举人",
    "ReportResultDue": "办结，待告知结果",
    "ReporterErased": "删除检举人信息",
    "ClarificationApplicationFiled": "本人提出澄清申请",
    "ObjectionLodged": "检举人提出异议",
    "ObjectionAnswered": "异议复查结果",
    "ObjectionFedBack": "向检举人反馈异议结果",
    "VerificationOpened": "开始核查",
    "HandlingProposed": "提出处置方式",
    "HandlingSentBack": "退回处置方式",
    "HandlingDecided": "批准处置方式",
    "FindingRecorded": "认定核查结论",
    "FalseAccusationProposed": "提出诬告陷害认定",
    "FalseAccusationRefused": "不批准诬告陷害认定",
    "FalseAccusationReferred": "诬告陷害移送查处",
    "VerificationConcluded": "核查办结",
    "VerificationReopened": "补充核查",
    "CandidateScreened": "大起底筛查入库",
    "ResultsReportedBack": "季度结果反馈信访室",
    "ObjectionReceived": "收到异议",
    "ObjectionExamined": "复查异议",
    "ApplicationNoted": "收到澄清申请",
    "OutcomeNoted": "收到核查结论",
    "PriorityNoted": "标记优先澄清件",
    "CandidateAdded": "进入澄清备选库",
    "ApplicationDeclined": "澄清申请不予受理",
    "ConsentRequested": "印发拟澄清告知书",
    "ClarificationStarted": "启动澄清",
    "AssessmentRecorded": "评估",
    "ReReviewSigned": "复核签署",
    "ReReviewRecorded": "复核完成",
    "ClarificationApproved": "主要负责人批准",
    "ApprovalRefused": "主要负责人不予批准",
    "ApprovalSentBack": "主要负责人退回",
    "ClarificationDeclined": "本人不同意澄清",
    "ClarificationDiscontinued": "终止澄清",
    "ClarificationWithdrawn": "本人撤回",
    "ClarificationPerformed": "实施澄清",
    "FeedbackGiven": "反馈所在单位",
    "AcknowledgementRecorded": "本人知悉澄清结果",
    "ClarificationFiled": "备案",
    "TreatmentCorrected": "纠正错误处理",
    "ContentDrafted": "拟定澄清内容",
    "ContentApproved": "审理室审核通过澄清内容",
    "ContentReturned": "审理室退回澄清内容",
    "QuarterlyRoundHeld": "季度集中澄清",
    "FilingRecorded": "备案登记",
    "IntegrityFileEntered": "记入廉政档案",
    "ReturnVisitScheduled": "安排回访",
    "ReturnVisitRecorded": "回访",
    "PersonnelNoticeIssued": "通报组织部门",
    "FilesMerged": "合并档案",
}


CONTEXT_DAYS = frozenset({"received_on", "concluded_on", "added_on", "due_on", "clarified_on", "opened_on"})


def cn_date(value: Any) -> str:
    """2023-03-15 as 2023年3月15日 (anything else as it is)."""
    if isinstance(value, str) and len(value) >= 10:
        try:
            value = date.fromisoformat(value[:10])
        except ValueError:
            return str(value)
    if isinstance(value, date):
        return f"{value.year}年{value.month}月{value.day}日"
    return "" if value is None else str(value)


def _name(table: Mapping[Any, str], code: str) -> str:
    return str(table.get(code, code))


def place(code: str) -> str:
    return JURISDICTIONS.get(code, code)


def report_state(state: str) -> str:
    return _name(REPORT_STATE_NAMES, state)


def verification_state(state: str) -> str:
    return VERIFICATION_STATES.get(state, state)


def clarification_state(state: str) -> str:
    return _name(STATE_NAMES, state)


def content_state(state: str) -> str:
    return _name(CONTENT_STATE_NAMES, state)


def finding(code: str) -> str:
    return _name(FINDING_NAMES, code)


def method(code: str) -> str:
    return _name(HANDLING_METHOD_NAMES, code)


def form(code: str) -> str:
    return _name(FORM_NAMES, code)


def bad_effect(code: str) -> str:
    return _name(BAD_EFFECT_NAMES, code)


def office(code: str) -> str:
    return OFFICE_NAMES.get(code) or role_name(code)


def role(code: str) -> str:
    return role_name(code)


def channel(code: str) -> str:
    return CHANNELS.get(code, code)


def service(code: str) -> str:
    return SERVICES.get(code, code)


def event(kind: str) -> str:
    return EVENTS.get(kind, kind)


def intake_overdue(kind: str) -> str:
    return INTAKE_OVERDUE.get(kind, kind)


def actor(event: dict[str, Any]) -> str:
    a = event.get("actor") or {}
    who = a.get("name") or a.get("user_id") or ""
    return f"{role_name(str(a.get('role', '')))} {who}".strip()


def event_day(event: dict[str, Any]) -> str:
    """The business date an event records (its *_on field), else when it was recorded."""
    payload = event.get("payload") or {}
    days = [(k, v) for k, v in payload.items() if k.endswith("_on") and isinstance(v, str)]
    # An event also carries the dates it follows from (the report's receipt, the conclusion):
    # the date of its own act comes first.
    own = [v for k, v in days if k not in CONTEXT_DAYS] or [v for _, v in days]
    return cn_date(own[0] if own else str(event.get("recorded_at") or "")[:10])
