"""Events of the intake context (检举控告): reports, their disposition, reporters, green channel."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field

from shared.crypto import SealedField
from shared.events import registry
from shared.events.common import Allegation, Channel, Frozen, Subject

CONTEXT = "intake"


@registry.event("ReportReceived", 1)
class ReportReceived(Frozen):
    """接收: a report arrived. The reporter's identity is sealed with the reporter's own key."""

    report_id: str
    channel: Channel
    received_on: date
    real_name: bool
    reporter: SealedField | None = None
    reporter_subject_id: str | None = None
    subjects: list[Subject] = Field(min_length=1)
    allegations: list[Allegation] = Field(min_length=1)
    summary: str = ""
    source_agency: str | None = None
    source_reference: str | None = None


@registry.event("ReportLogged", 1)
class ReportLogged(Frozen):
    """登记: logged; the disposition is due within 5 working days, a real-name reporter's
    acceptance notice within 15."""

    logged_on: date
    disposition_due: date
    acceptance_notice_due: date | None = None


@registry.event("ReportAccepted", 1)
class ReportAccepted(Frozen):
    """受理."""

    accepted_on: date


@registry.event("ReportSentUp", 1)
class ReportSentUp(Frozen):
    """报送上级."""

    sent_on: date
    to_jurisdiction: str


@registry.event("ReportSentDown", 1)
class ReportSentDown(Frozen):
    """转送下级: the lower level accepts or passes it on within 5 working days."""

    sent_on: date
    to_jurisdiction: str
    lower_report_id: str
    response_due: date


@registry.event("ReportMergedAsRepeat", 1)
class ReportMergedAsRepeat(Frozen):
    """重复件: merged into the matter it repeats and kept on file."""

    merged_on: date
    repeats_matter_id: str


@registry.event("ReportHandedOver", 1)
class ReportHandedOver(Frozen):
    """移送承办: the matter goes to the handling department, with what it needs to verify
    (never the reporter)."""

    handed_on: date
    department: str
    received_on: date
    real_name: bool
    subjects: list[Subject] = Field(min_length=1)
    allegations: list[Allegation] = Field(min_length=1)
    repeat_count: int = 0


@registry.event("ReporterNotified", 1)
class ReporterNotified(Frozen):
    """A real-name reporter was told of acceptance or of the result."""

    kind: Literal["acceptance", "result"]
    notified_on: date


@registry.event("ReportResultDue", 1)
class ReportResultDue(Frozen):
    """The matter's verification concluded: the result notice is due within 15 working days."""

    concluded_on: date
    result_notice_due: date


@registry.event("ReporterErased", 1)
class ReporterErased(Frozen):
    """The reporter's key was destroyed (crypto-shredding): the identity is gone for good."""

    reporter_subject_id: str
    erased_on: date


@registry.event("ClarificationApplicationFiled", 1)
class ClarificationApplicationFiled(Frozen):
    """绿色通道: the reported person asks in writing for the untrue points to be clarified."""

    application_id: str
    matter_id: str
    applicant: Subject
    untrue_points: list[str] = Field(min_length=1)
    request: str = Field(min_length=1, max_length=4000)
    filed_on: date


@registry.event("ObjectionLodged", 1)
class ObjectionLodged(Frozen):
    """异议: the real-name reporter disagrees with the verification's result and brings new facts
    or evidence; the letters office records it for the handling department to re-examine. It
    carries what is objected and what is new, never who objects."""

    objection_id: str
    lodged_on: date
    grounds: str = Field(min_length=1, max_length=4000)
    new_evidence: str = Field(min_length=1, max_length=4000)


@registry.event("ObjectionAnswered", 1)
class ObjectionAnswered(Frozen):
    """The handling department re-examined the objection (review's ObjectionExamined): its answer
    is now the letters office's to feed back to the reporter."""

    objection_id: str
    examined_on: date
    upheld: bool
    reason: str = Field(min_length=1, max_length=4000)


@registry.event("ObjectionFedBack", 1)
class ObjectionFedBack(Frozen):
    """反馈: the letters office told the reporter the result of the re-examination."""

    objection_id: str
    fed_back_on: date
    note: str = Field(default="", max_length=4000)
