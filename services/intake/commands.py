"""Intake's commands: the request bodies, validated at the edge and decided on as they are.

They carry no docstrings on purpose: a docstring would become the body's description in the
OpenAPI document, whose bodies keep their fields and descriptions (the schemas are named after
the commands now)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, model_validator

from shared.aggregate import Command
from shared.bounded import BusinessDate, NoControl
from shared.events.common import Channel, Frozen, Subject
from shared.identity import id_number_key, normalise_id_number, valid_id_number

JurisdictionCode = Annotated[str, Field(pattern=r"^\d{6}$")]
MatterId = Annotated[str, Field(pattern=r"^\d{6}-\d{4}-\d{6}$")]

NoticeKind = Literal["acceptance", "result"]


class ReporterIdentity(Frozen):
    """检举控告人: who reported; only ever stored sealed with the reporter's own key."""

    name: Annotated[str, Field(min_length=1, max_length=100), NoControl]
    contact: Annotated[str, Field(min_length=1, max_length=200), NoControl]
    id_number: Annotated[str, Field(max_length=50), NoControl] | None = None


def _id_number(text: str) -> str:
    number = normalise_id_number(text)
    if not valid_id_number(number):
        # Never the number itself: a message is logged and answered.
        raise ValueError("not a valid 18-character ID number (GB 11643: 17 digits and a check character)")
    return number


IdNumber = Annotated[str, Field(min_length=15, max_length=30), AfterValidator(_id_number)]


class ReportedSubject(Subject):
    """被反映人 as a caller reports them: with the 居民身份证号码 when known, which intake turns into
    its keyed hash before any event exists; the number is kept, logged and sent nowhere."""

    id_number: IdNumber | None = Field(
        default=None,
        exclude=True,
        repr=False,
        description="居民身份证号码 (18 characters): matched by keyed hash, never stored or sent",
    )

    @model_validator(mode="after")
    def _person_only(self) -> ReportedSubject:
        if self.kind != "person" and self.id_number is not None:
            raise ValueError("a unit has no ID number")
        if self.id_number_key is not None:  # a key names a file: only intake derives it
            raise ValueError("id_number_key is not given but derived: send id_number")
        return self

    def identified(self, key: bytes | None) -> Subject:
        """The subject as events carry it: the number replaced by its keyed hash."""
        plain = Subject.model_validate(self.model_dump())
        if self.id_number is None:
            return plain
        if key is None:
            raise ValueError("an ID number needs the deployment's HMAC key to be keyed")
        return plain.model_copy(update={"id_number_key": id_number_key(self.id_number, key)})


def _as_reported(values: object) -> object:
    # A Subject (as tests and the inbound contract build them) is a reported subject without number.
    if isinstance(values, list):
        return [
            v.model_dump() if isinstance(v, Subject) and not isinstance(v, ReportedSubject) else v
            for v in values
        ]
    return values


class AllegationDraft(BaseModel):
    """An allegation as a caller gives it: the id is assigned when absent."""

    allegation_id: Annotated[str, Field(min_length=1, max_length=50), NoControl] | None = None
    summary: Annotated[str, Field(min_length=1, max_length=2000), NoControl]


# 接收 (from any channel; inbound agency reports become this command too)
class RegisterReport(Command):
    jurisdiction: JurisdictionCode
    channel: Channel
    received_on: BusinessDate
    real_name: bool
    reporter: ReporterIdentity | None = None
    subjects: Annotated[list[ReportedSubject], BeforeValidator(_as_reported)] = Field(
        min_length=1, max_length=50
    )
    allegations: list[AllegationDraft] = Field(min_length=1, max_length=100)
    summary: Annotated[str, Field(max_length=8000), NoControl] = ""
    source_agency: Annotated[str, Field(min_length=1, max_length=200), NoControl] | None = Field(
        default=None, description="其他机关移送: the transferring agency (required for agency_transfer)"
    )
    source_reference: Annotated[str, Field(min_length=1, max_length=200), NoControl] | None = Field(
        default=None, description="the transferring agency's own reference of the report"
    )


# 登记
class LogReport(Command):
    logged_on: BusinessDate


# 受理
class AcceptReport(Command):
    accepted_on: BusinessDate


# 报送上级
class SendUp(Command):
    sent_on: BusinessDate
    to_jurisdiction: JurisdictionCode


# 转送下级
class SendDown(Command):
    sent_on: BusinessDate
    to_jurisdiction: JurisdictionCode


# 重复件
class MergeAsRepeat(Command):
    merged_on: BusinessDate
    repeats_matter_id: MatterId


# 移送承办
class HandOver(Command):
    department: Annotated[str, Field(min_length=1, max_length=200), NoControl]
    handed_on: BusinessDate


# A real-name reporter was told of acceptance or of the result.
class NotifyReporter(Command):
    kind: NoticeKind
    notified_on: BusinessDate


# Crypto-shredding of a reporter (the path names the reporter).
class EraseReporter(Command):
    erased_on: BusinessDate


# 绿色通道: the reported person's written application for clarification.
class FileApplication(Command):
    jurisdiction: JurisdictionCode
    matter_id: MatterId
    applicant: Subject
    untrue_points: list[Annotated[str, Field(min_length=1, max_length=50), NoControl]] = Field(
        min_length=1, max_length=100
    )
    request: Annotated[str, Field(min_length=1, max_length=4000), NoControl]
    filed_on: BusinessDate


# 异议: the real-name reporter's objection to the result, with what is new (facts or evidence).
class LodgeObjection(Command):
    lodged_on: BusinessDate
    grounds: Annotated[
        str,
        Field(
            min_length=1,
            max_length=4000,
            description="what the reporter disagrees with in the verification's result",
        ),
        NoControl,
    ]
    new_evidence: Annotated[
        str,
        Field(
            min_length=1,
            max_length=4000,
            description="the new facts or evidence the objection brings (required: what is new)",
        ),
        NoControl,
    ]


# 反馈: the letters office told the reporter the result of the re-examination.
class FeedBackObjection(Command):
    fed_back_on: BusinessDate
    note: Annotated[str, Field(max_length=4000), NoControl] = ""


# Does a text name the report's reporter? (asked before a text leaves intake's hands)
class IdentityCheck(Command):
    # As long as a wording of the 澄清内容 (a bounded text answers about a bounded list of guesses).
    text: Annotated[str, Field(max_length=1000), NoControl]
