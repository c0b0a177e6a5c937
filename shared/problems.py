"""The languages of a problem body: which one the caller prefers (Accept-Language), and the title
of each kind of problem in Chinese and English (the Chinese one doubles as the generic wording of a
problem that brings no sentence of its own)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

Language = Literal["zh", "en"]
"""zh-CN (the default: the commission's officers read Chinese) or English."""

CONTENT_LANGUAGE: dict[Language, str] = {"zh": "zh-CN", "en": "en"}
"""The Content-Language header of an answer in each language."""

_RANGE = re.compile(r"^(?:\*|[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*)$")
_QUALITY = re.compile(r"^q=(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$", re.IGNORECASE)


def preferred_language(accept_language: str | None) -> Language:
    """English when the caller's Accept-Language (RFC 9110 §12.5.4) ranks English above Chinese,
    Chinese otherwise. A range counts by its primary subtag (en-US is English, zh-TW Chinese); `*`
    gives its weight to a language the header does not name; of two equal weights the one listed
    first wins; a malformed entry is ignored, and so is the whole header when nothing in it parses."""
    weights: dict[str, tuple[float, int]] = {}
    wildcard: tuple[float, int] | None = None
    for position, entry in enumerate((accept_language or "").split(",")):
        tag, *params = (part.strip() for part in entry.split(";"))
        if not tag or not _RANGE.match(tag):
            continue
        quality = 1.0
        qualities = [p for p in params if p[:2].lower() == "q="]
        if qualities:
            if not _QUALITY.match(qualities[0]):
                continue
            quality = float(qualities[0][2:])
        if tag == "*":
            wildcard = wildcard or (quality, position)
            continue
        primary = tag.split("-", 1)[0].lower()
        best = weights.get(primary)
        # The highest weight of a language's ranges counts (en;q=0.5, en-GB: English at 1).
        if best is None or quality > best[0]:
            weights[primary] = (quality, position)
    none = (0.0, 1 << 30)
    en = weights.get("en") or wildcard or none
    zh = weights.get("zh") or wildcard or none
    if en[0] > 0 and (en[0] > zh[0] or (en[0] == zh[0] and en[1] < zh[1])):
        return "en"
    return "zh"


def language_of(scope: Mapping[str, Any]) -> Language:
    """The preferred language of an ASGI request (its Accept-Language header)."""
    headers: Iterable[tuple[bytes, bytes]] = scope.get("headers") or ()
    for name, value in headers:
        if name.lower() == b"accept-language":
            return preferred_language(value.decode("latin-1"))
    return "zh"


TITLES: dict[str, tuple[str, str]] = {
    # The edge's own problems.
    "invalid_input": ("请求内容无效", "Invalid input"),
    "malformed_body": ("请求体无法解析", "Malformed body"),
    "not_found": ("未找到", "Not found"),
    "route_not_found": ("没有这个地址", "No such route"),
    "method_not_allowed": ("不支持此请求方法", "Method not allowed"),
    "payload_too_large": ("请求体过大", "Payload too large"),
    "unauthorized": ("需要有效的登录令牌", "Authentication required"),
    "forbidden": ("无权进行此操作", "Forbidden"),
    "role_forbidden": ("当前角色无权进行此操作", "Role not allowed"),
    "jurisdiction_forbidden": ("无权访问该辖区", "Jurisdiction not allowed"),
    "concurrency_conflict": ("案件已被他人修改", "Concurrent change"),
    # Operations (运维).
    "consumer_not_found": ("没有这个消费者", "No such consumer"),
    "dead_letter_not_found": ("没有这条死信", "No such dead letter"),
    "purge_reason_required": ("须写明清除理由", "A reason is required"),
    "out_of_range": ("数值超出可处理的范围", "Value out of range"),
    "service_unavailable": ("服务暂时不可用", "Service unavailable"),
    "internal_error": ("内部错误", "Internal error"),
    "idempotency_key_invalid": ("幂等键无效", "Invalid idempotency key"),
    "idempotency_key_in_use": ("幂等键正在使用", "Idempotency key in use"),
    "idempotency_key_reused": ("幂等键已用于其他请求", "Idempotency key reused"),
    "rule_violated": ("违反业务规则", "Rule violated"),
    "conflict": ("与当前状态冲突", "Conflict with the current state"),
    # Every step.
    "wrong_state": ("当前环节不能进行此操作", "Wrong state for this step"),
    "already_recorded": ("已经登记过", "Already recorded"),
    "already_signed": ("已经签署过", "Already signed"),
    "another_persons_clarification": ("这是另一被反映人的澄清事项", "Another person's clarification"),
    "not_verified_untrue": ("检举控告未经核查认定失实", "Not verified untrue"),
    "supplementary_pending": ("补充核查尚未办结", "Supplementary verification pending"),
    "not_a_group_member": ("不是澄清质效评估小组成员", "Not a member of the quality-evaluation group"),
    "other_reason_required": ("须写明其他确有必要澄清的理由", "Reason required"),
    "source_agency_required": ("须写明移送机关", "Source agency required"),
    "login_failed": ("登录失败", "Login failed"),
    "user_exists": ("用户已存在", "User exists"),
    "user_not_found": ("没有这个用户", "No such user"),
    "password_length": ("密码长度不符合要求", "Password length"),
    "date_before_previous_step": ("日期早于上一环节", "Date before the previous step"),
    "unknown_allegation": ("不是本件的反映问题", "Unknown allegation"),
    # Intake: 检举控告的接收、登记、受理、转送、移送承办.
    "duplicate_allegation": ("反映问题编号重复", "Duplicate allegation id"),
    "reporter_required": ("实名检举控告须有检举控告人身份", "Reporter identity required"),
    "anonymous_with_identity": ("匿名检举控告不得携带身份", "Anonymous report with an identity"),
    "subject_incomplete": ("被反映人信息不全", "Reported person incomplete"),
    "no_higher_level": ("没有更高一级可报送", "No higher level"),
    "not_the_higher_level": ("不是上一级机关", "Not the higher level"),
    "no_lower_level": ("只有市级可以转送下级", "No lower level"),
    "not_a_county": ("不是本市所辖县（市、区）", "Not a county of the city"),
    "unknown_matter": ("本辖区没有该件", "Unknown matter"),
    "repeat_of_itself": ("不能作为自身的重复件", "Repeat of itself"),
    "anonymous_report": ("匿名检举控告，无法告知", "Anonymous report"),
    "repeat_report": ("该件是重复件", "Repeat report"),
    "matter_moved": ("该件已转送下级", "Matter sent down"),
    "not_a_subject": ("申请人不是被反映人", "Not a reported subject"),
    "objection_needs_real_name": ("只有实名检举控告人可以提出异议", "Objection needs a real-name reporter"),
    "reporter_erased": ("检举控告人身份信息已销毁", "Reporter erased"),
    "text_required": ("须填写该项内容", "Text required"),
    "reporter_identity_in_text": ("内容含有检举控告人身份信息", "Text names the reporter"),
    "objection_not_found": ("没有该异议", "No such objection"),
    "objection_not_examined": ("异议尚未复查", "Objection not re-examined yet"),
    # Review: 核查、认定、办结.
    "collective_decision_required": ("处置决定须集体研究", "Collective decision required"),
    "approval_required": ("须写明审批领导", "Approval required"),
    "false_accusation_needs_city_approval": ("诬告陷害须经市级以上审批", "City-level approval required"),
    "referral_date_required": ("须写明移送日期", "Referral date required"),
    "referral_only_for_false_accusation": ("只有诬告陷害才移送", "Referral only for a false accusation"),
    "honest_mistake_not_false_accusation": (
        "错告不得认定为诬告陷害",
        "An honest mistake is no false accusation",
    ),
    "quarter_not_over": ("季度尚未结束", "Quarter not over"),
    "flags_for_unscreened_case": ("优先标记不属于本次起底", "Flags for an unscreened matter"),
    "already_decided": ("已作出处置决定", "Already decided"),
    "already_concluded": ("核查已办结", "Already concluded"),
    "findings_missing": ("尚有反映问题未认定", "Findings missing"),
    "already_reported": ("本季度结果已报送", "Already reported"),
    "proposal_pending": ("处置建议正待审批", "Proposal awaiting approval"),
    "no_pending_proposal": ("没有待审批的处置建议", "No proposal awaiting approval"),
    "false_accusation_pending": ("诬告陷害认定建议正待市级审批", "False accusation awaiting approval"),
    "false_accusation_only_on_untrue_point": (
        "办结后只有失实或查无实据的问题才能认定为诬告陷害",
        "False accusation only on an untrue or unproven point",
    ),
    # Clarification: 澄清正名.
    "group_incomplete": ("质量评查小组组成不全", "Quality-evaluation group incomplete"),
    "approval_level": ("审批层级不符", "Wrong approval level"),
    "scope_required": ("须写明通报范围", "Scope required"),
    "outside_quarter": ("日期不在该季度内", "Date outside the quarter"),
    "not_a_candidate": ("不在澄清备选库中", "Not a candidate"),
    "consent_required": ("须经本人同意", "Consent required"),
    "reason_required": ("须写明理由", "Reason required"),
    "not_approved": ("与批准的澄清方式和范围不一致", "Not as approved"),
    "unknown_subject": ("不是本件的被反映人", "Unknown subject"),
    "round_held": ("本季度集中澄清已开展", "Round already held"),
    "nothing_ready": ("没有可集中澄清的事项", "Nothing ready"),
    # 澄清内容: drafted by the department, approved by the case-trial office.
    "content_reveals_reporter": ("澄清内容含有检举控告人身份信息", "Content reveals the reporter"),
    "content_not_approved": ("澄清内容尚未经审理室审核通过", "Content not approved"),
    "content_not_drafted": ("没有待审核的澄清内容", "No content drafted for review"),
    "identity_check_unavailable": ("暂时无法核对检举控告人身份", "Identity check unavailable"),
    "point_not_untrue": ("该问题未经核查认定失实", "Point not verified untrue"),
    "wording_required": ("澄清内容不能为空", "Wording required"),
    "wording_missing": ("有失实问题尚未拟定澄清内容", "Wording missing"),
    # Archive: 备案、回访、档案、通报.
    "invalid_quarter": ("季度格式无效", "Invalid quarter"),
    "visit_not_found": ("没有该回访", "No such return visit"),
    "visit_before_clarification": ("回访日期早于澄清日期", "Visit before the clarification"),
    "already_issued": ("通报已印发", "Notice already issued"),
    "period_not_over": ("通报期间尚未结束", "Period not over"),
    "file_not_found": ("没有该档案", "No such file"),
    "merge_with_itself": ("档案不能与自身合并", "A file cannot be merged with itself"),
    "files_already_merged": ("两份档案已经合并", "Files already merged"),
    "merge_person_with_unit": ("个人档案与单位档案不能合并", "A person's file and a unit's cannot merge"),
}
"""The name of each kind of problem, by code: (Chinese, English)."""

STATUS_TITLES: dict[int, tuple[str, str]] = {
    400: ("请求有误", "Bad request"),
    401: ("需要有效的登录令牌", "Authentication required"),
    403: ("无权进行此操作", "Forbidden"),
    404: ("未找到所请求的资源", "Not found"),
    405: ("不支持此请求方法", "Method not allowed"),
    409: ("与当前状态冲突", "Conflict"),
    413: ("请求体过大", "Payload too large"),
    422: ("请求违反业务规则", "Unprocessable request"),
    500: ("内部错误", "Internal error"),
    503: ("服务暂时不可用", "Service unavailable"),
}
"""The name of a problem whose code has no title of its own, by status."""


def title(code: str, status: int, language: Language) -> str:
    """The name of a kind of problem: its code's, else its status's."""
    zh, en = TITLES.get(code) or STATUS_TITLES.get(status) or ("请求无法处理", "Request not processed")
    return zh if language == "zh" else en


def generic_chinese(code: str, status: int) -> str:
    """The Chinese of a problem that brings no sentence of its own: the name of its kind."""
    return title(code, status, "zh")
