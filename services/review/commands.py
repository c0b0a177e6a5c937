"""Review's commands: the request bodies, validated at the edge and decided on as they are."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Final, Literal

from pydantic import Field, StrictBool, StringConstraints

from shared.aggregate import Command
from shared.bounded import BusinessDate, NoControl, QuarterLabel
from shared.events.common import Finding, HandlingMethod, PriorityFlag

DEFAULT_REFERRAL_UNIT: Final[str] = "案件监督管理室"
"""Where a suspected false accusation is referred when the department names no one else."""

JurisdictionCode = Annotated[str, StringConstraints(pattern=r"^\d{6}$")]
CaseId = Annotated[str, StringConstraints(min_length=1, max_length=200), NoControl]


Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000), NoControl]


class ProposeHandling(Command):
    """The collective handling decision (集体研究), proposed to the head of the jurisdiction, who
    approves it (or sends it back) in a session of their own."""

    method: HandlingMethod
    decided_on: BusinessDate
    collective: StrictBool
    note: Annotated[str, Field(max_length=4000), NoControl] = ""


class ApproveHandling(Command):
    """The head's approval of the proposed handling."""

    approved_on: BusinessDate


class SendBackHandling(Command):
    """The head sends the proposed handling back to the department, with the reason."""

    sent_back_on: BusinessDate
    reason: Reason


class RecordFinding(Command):
    """The finding on one allegation; a false accusation (with its referral date) is proposed to a
    city head, whose approval makes it the finding."""

    allegation_id: Annotated[str, Field(min_length=1, max_length=50), NoControl]
    finding: Finding
    basis: Annotated[str, Field(min_length=1, max_length=4000), NoControl]
    found_on: BusinessDate | None = Field(default=None, description="when the finding was reached")
    referred_on: BusinessDate | None = None
    referred_to: Annotated[str, Field(min_length=1, max_length=200), NoControl] = DEFAULT_REFERRAL_UNIT


class ApproveFalseAccusation(Command):
    """A city head's approval of the proposed 诬告陷害 (市级以上审批)."""

    approved_on: BusinessDate


class RefuseFalseAccusation(Command):
    """A city head refuses the proposed 诬告陷害, with the reason."""

    refused_on: BusinessDate
    reason: Reason


class ReopenVerification(Command):
    """补充核查: reopen a concluded verification. Not a request body: the reaction to the event that
    reopens it (a re-review finding it incomplete, an upheld objection) builds it; `trigger` is
    that event's id, so a redelivery reopens nothing."""

    reopened_on: date
    origin: Literal["re_review", "objection"]
    reason: Reason
    trigger: str | None = None


# No docstring on ConcludeVerification and ReportResults: it would become their OpenAPI
# description, which they never had.


class ConcludeVerification(Command):
    concluded_on: BusinessDate


class RunSweep(Command):
    """大起底 of one jurisdiction as of a day, with optional 优先澄清件 flags per matter."""

    jurisdiction: JurisdictionCode
    as_of: BusinessDate
    priority_flags: dict[CaseId, list[PriorityFlag]] = Field(default_factory=dict)


class ReportResults(Command):
    jurisdiction: JurisdictionCode
    quarter: QuarterLabel
    reported_on: BusinessDate


class ExamineObjection(Command):
    """复查 of a real-name reporter's objection (异议): upheld or not, and why."""

    examined_on: BusinessDate
    upheld: StrictBool
    reason: Annotated[str, Field(min_length=1, max_length=4000), NoControl]
