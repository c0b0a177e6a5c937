"""Events of the archive context (备案, 回访, 档案) and the public personnel-notice contract."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field

from shared.events import registry
from shared.events.common import Allegation, ClarificationForm, Frozen, Subject

CONTEXT = "archive"


@registry.event("FilingRecorded", 1)
class FilingRecorded(Frozen):
    """备案: the filing record of one clarification, in the person's file (一人一档)."""

    filed_on: date
    person: Subject
    points: list[Allegation]
    forms: list[ClarificationForm]
    concluded_on: date
    clarified_on: date


@registry.event("IntegrityFileEntered", 1)
class IntegrityFileEntered(Frozen):
    """Entered into the person's integrity file (廉政档案)."""

    entered_on: date
    subject_id: str
    summary: str


@registry.event("ReturnVisitScheduled", 1)
class ReturnVisitScheduled(Frozen):
    """回访 planned after the clarification."""

    visit_id: str
    due_on: date
    visit_with: Literal["person", "unit"]


@registry.event("ReturnVisitRecorded", 1)
class ReturnVisitRecorded(Frozen):
    """回访 done: state of mind, work, views of leaders and colleagues."""

    visit_id: str
    visited_on: date
    state_of_mind: str
    work: str
    leader_views: str
    colleague_views: str


class NoticeEntry(Frozen):
    subject_id: str
    name: str
    kind: Literal["person", "unit"]
    post: str | None
    unit: str | None
    clarified_on: date
    points: int


class CorrectionEntry(Frozen):
    """纠正错误处理 as the notice tells the organisation department: whose treatment, which, corrected
    by whom and how."""

    subject_id: str
    name: str
    kind: Literal["person", "unit"]
    post: str | None
    unit: str | None
    treatment: str
    organ: str
    correction: str
    corrected_on: date


@registry.event("PersonnelNoticeIssued", 1)
class PersonnelNoticeIssued(Frozen):
    """Periodic notice to the organisation/personnel department at the same level."""

    notice_id: str
    period: str
    issued_on: date
    entries: list[NoticeEntry]
    corrections: list[CorrectionEntry] = []  # wrong treatments corrected in the period


class PersonnelNoticeV1(Frozen):
    """Public integration contract on zm.<jurisdiction>.public.personnel-notices (version 1).

    Stable: fields are only ever added with defaults; a breaking change is a new topic version.
    Delivery: exactly once per notice to a reader with isolation.level=read_committed (the relay
    publishes in Kafka transactions and never sends a notice again once it is on the topic).
    `notice_id` (also the record key) identifies a notice: a reader that replays the topic or
    reads uncommitted deduplicates by it.
    """

    schema_version: Literal[1] = 1
    notice_id: str = Field(description="identifies the notice: deduplicate by it")
    jurisdiction: str
    period: str
    issued_on: date
    entries: list[NoticeEntry]
    corrections: list[CorrectionEntry] = Field(
        default_factory=list,
        description="纠正错误处理: wrong treatments corrected in the period (added in 1.1)",
    )


@registry.event("FilesMerged", 1)
class FilesMerged(Frozen):
    """合档: two files (一人一档) found to be one person's, joined by case management; from now on
    either key reads the one file. Who merged them is the event's actor."""

    person_key: str
    other_key: str
    merged_on: date
    reason: str
