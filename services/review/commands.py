"""Review's commands: the request bodies, validated at the edge and decided on as they are."""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import Field, StrictBool, StringConstraints

from shared.aggregate import Command
from shared.bounded import BusinessDate, NoControl, QuarterLabel
from shared.events.common import Finding, HandlingMethod, PriorityFlag

DEFAULT_REFERRAL_UNIT: Final[str] = "案件监督管理室"
"""Where a suspected false accusation is referred when the department names no one else."""

JurisdictionCode = Annotated[str, StringConstraints(pattern=r"^\d{6}$")]
UserId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NoControl]
CaseId = Annotated[str, StringConstraints(min_length=1, max_length=200), NoControl]


class DecideHandling(Command):
    """The collective handling decision (集体研究) and its approver."""

    method: HandlingMethod
    decided_on: BusinessDate
    approved_by: UserId
    collective: StrictBool
    note: Annotated[str, Field(max_length=4000), NoControl] = ""


class RecordFinding(Command):
    """The finding on one allegation; a false accusation needs city approval and a referral date."""

    allegation_id: Annotated[str, Field(min_length=1, max_length=50), NoControl]
    finding: Finding
    basis: Annotated[str, Field(min_length=1, max_length=4000), NoControl]
    found_on: BusinessDate | None = Field(default=None, description="when the finding was reached")
    approved_by: UserId | None = None
    approval_jurisdiction: JurisdictionCode | None = None
    referred_on: BusinessDate | None = None
    referred_to: Annotated[str, Field(min_length=1, max_length=200), NoControl] = DEFAULT_REFERRAL_UNIT


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
