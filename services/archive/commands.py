"""The archive's commands: the request bodies, validated at the edge and decided on as they are."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from shared.aggregate import Command
from shared.bounded import BusinessDate, NoControl, QuarterLabel

QUARTER_HELP = "Quarter as 2023Q1 (year, Q, 1-4)"
FreeText = Annotated[str, Field(min_length=1, max_length=4000), NoControl]


class RecordVisit(Command):
    """What the 回访 found."""

    visited_on: BusinessDate = Field(description="Not before the clarification")
    state_of_mind: FreeText
    work: FreeText
    leader_views: FreeText
    colleague_views: FreeText


class IssueNotice(Command):
    """The period's notice to the organisation department of a jurisdiction."""

    jurisdiction: str = Field(pattern=r"^\d{6}$", examples=["331122"])
    period: QuarterLabel = Field(description=QUARTER_HELP, examples=["2023Q1"])
    issued_on: BusinessDate = Field(description="After the end of the period")


FileKey = Annotated[str, Field(min_length=1, max_length=100), NoControl]


class MergeFiles(Command):
    """合档: the other file is the same person's; both keys read as one file afterwards."""

    other: FileKey = Field(description="The person key (or subject id) of the other file")
    merged_on: BusinessDate
    reason: FreeText = Field(description="Why the two files are one person's (e.g. 组织部干部编号 confirmed)")
