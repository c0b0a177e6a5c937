"""The typed answers of intake's HTTP API (its OpenAPI schemas): a report as commands and reads
answer it. Extra keys pass through, so a field added to the read is never an error."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from services.intake.domain import ReportState
from shared.events.common import Allegation, Channel, Subject


def _d(zh: str, en: str, **field: Any) -> Any:
    return Field(description=f"{zh}。{en}", **field)


class Deadlines(BaseModel):
    """期限: what is due by when (null: not yet, or no longer, due)."""

    disposition_due: date | None = _d("处置期限", "Disposition due")
    acceptance_notice_due: date | None = _d(
        "实名检举受理告知期限", "Acceptance notice to a named reporter due"
    )
    sent_down_response_due: date | None = _d("交办件回复期限", "Response to a sent-down report due")
    result_notice_due: date | None = _d("处理结果告知期限", "Result notice to a named reporter due")


class ObjectionView(BaseModel):
    """异议 and where it stands: lodged, examined, fed back."""

    model_config = ConfigDict(extra="allow")

    objection_id: str
    stage: str = _d("所处环节", "Where it stands")
    lodged_on: date = _d("提出日期", "Lodged on")


class ReportView(BaseModel):
    """检举控告件 as a command answers it: state, dates and deadlines (never the reporter)."""

    model_config = ConfigDict(extra="allow")

    report_id: str = _d("检举控告件编号", "The report id")
    jurisdiction: str = _d("辖区代码", "The jurisdiction code")
    state: ReportState = _d("状态", "The state")
    channel: Channel = _d("来源渠道", "The channel it came by")
    received_on: date | None = _d("收件日期", "Received on")
    real_name: bool = _d("是否实名", "Whether the reporter gave their name")
    reporter_subject_id: str | None = _d(
        "检举人的假名编号（仅信访室可见）", "The reporter's pseudonym (the letters office only)"
    )
    subjects: list[Subject] = _d("被检举控告对象", "The reported persons or units")
    allegations: list[Allegation] = _d("反映的问题", "The allegations")
    summary: str = _d("摘要", "Summary")
    logged_on: date | None = _d("登记日期", "Logged on")
    accepted_on: date | None = _d("受理日期", "Accepted on")
    disposed_on: date | None = _d("处置日期", "Disposed of on")
    handed_on: date | None = _d("移交日期", "Handed over on")
    concluded_on: date | None = _d("办结日期", "Concluded on")
    notified: dict[str, date] = _d("已告知检举人的事项及日期", "What the reporter was notified of, and when")
    reporter_erased: bool = _d("检举人身份是否已销毁", "Whether the reporter's identity was erased")
    objections: list[ObjectionView] = _d("异议", "Objections")
    deadlines: Deadlines = _d("期限", "Deadlines")


class ReportDetail(ReportView):
    """One report as read: the reporter's identity only for the letters office, repeats, applications."""

    reporter: dict[str, Any] | None = _d(
        "检举人身份：信访室可见；其他角色为 {masked: true}，销毁后为 {erased: true}",
        "The reporter: the letters office sees them; others get {masked: true}; {erased: true} once erased",
    )
    repeats: list[str] = _d("并入本件的重复件的编号", "The ids of the repeats merged into this report")
    applications: list[dict[str, Any]] = _d("被检举人的澄清申请（绿色通道）", "Green-channel applications")
