"""Events of the clarification context (澄清正名): the pool and the chain from 申请 to 备案."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field

from shared.events import registry
from shared.events.common import (
    Allegation,
    BadEffect,
    ClarificationForm,
    Finding,
    Frozen,
    PriorityFlag,
    Subject,
)

CONTEXT = "clarification"


@registry.event("ApplicationNoted", 1)
class ApplicationNoted(Frozen):
    """A green-channel application reached the clarification office."""

    application_id: str
    applicant: Subject
    untrue_points: list[str]
    request: str
    filed_on: date


@registry.event("OutcomeNoted", 1)
class OutcomeNoted(Frozen):
    """The verification's conclusion reached the clarification office."""

    concluded_on: date
    findings: dict[str, Finding]
    untrue_points: list[Allegation]
    subjects: list[Subject]
    eligible_for_pool: bool
    revision: int = 0  # the conclusion's revision (VerificationConcluded.revision)
    # The reported person (or unit) this clarification is about: each one a matter names has a
    # clarification of its own. None in events before several persons: any of the subjects.
    person_subject_id: str | None = None


@registry.event("PriorityNoted", 1)
class PriorityNoted(Frozen):
    """The backlog sweep screened the matter, with priority flags."""

    sweep_id: str
    priority_flags: list[PriorityFlag]


@registry.event("CandidateAdded", 1)
class CandidateAdded(Frozen):
    """备选库: the matter entered the candidate pool."""

    # revised_conclusion: a revised conclusion made an ineligible matter eligible (e.g. a 诬告陷害
    # found after the conclusion on a point that was not proven).
    via: Literal["conclusion", "sweep", "green_channel", "revised_conclusion"]
    added_on: date


@registry.event("ApplicationDeclined", 1)
class ApplicationDeclined(Frozen):
    """A green-channel application whose matter cannot enter the pool (e.g. partly true)."""

    application_id: str
    reason: str


@registry.event("ConsentRequested", 1)
class ConsentRequested(Frozen):
    """拟澄清告知书: the person is told of the intended clarification and asked to consent."""

    person: Subject
    requested_on: date
    documents: list[str] = []


@registry.event("ClarificationStarted", 1)
class ClarificationStarted(Frozen):
    """申请: proposed by the department after consulting the person, or applied for by the person.
    The person's consent is required."""

    initiated_by: Literal["department", "person"]
    person: Subject
    consent: Literal[True]
    consent_note: str = ""
    started_on: date


@registry.event("AssessmentRecorded", 1)
class AssessmentRecorded(Frozen):
    """评估 against the positive and negative lists; a refusal records its reasons."""

    assessed_on: date
    eligible: bool
    bad_effects: list[BadEffect]
    effect_only_from_interviews: bool
    refusals: list[str] = []  # codes of the negative-list rules that applied
    reason: str = ""
    other_reason: str = ""  # why clarification is otherwise necessary (其他确有必要澄清的)
    # The department's proposal for the 审批表 (拟澄清方式和范围); the written notice is always in it.
    proposed_forms: list[ClarificationForm] = []
    proposed_scope: str = ""


@registry.event("ReReviewSigned", 1)
class ReReviewSigned(Frozen):
    """复核: one member of the quality-evaluation group signed for their office, in their own session
    (the member is the token's user; one signature per office and re-review)."""

    office: Literal["letters_office", "case_trial", "case_management"]
    member: str
    member_name: str = ""
    signed_on: date
    verification_complete: bool
    conclusion_clear: bool
    disposal_adequate: bool
    expected_effect: str
    note: str = ""
    reasons: list[str] = []  # the failed checks' reasons (any one sends the matter back)


@registry.event("ReReviewRecorded", 1)
class ReReviewRecorded(Frozen):
    """复核 by the quality-evaluation group: three checks plus the expected effect. Recorded when the
    last of the three offices signed (passed) or when one member's signature failed a check (sent
    back); in events recorded before the signatures, one caller named the three members."""

    reviewed_on: date
    verification_complete: bool
    conclusion_clear: bool
    disposal_adequate: bool
    expected_effect: str
    members: dict[str, str]  # office role -> user id
    member_names: dict[str, str] = {}  # office role -> the member's name, where the token names them
    passed: bool
    reasons: list[str] = []
    documents: list[str] = []  # the 审批表 put before the head when the re-review passed


@registry.event("ClarificationApproved", 1)
class ClarificationApproved(Frozen):
    """Approval by the head of the organ at the level of cadre-management authority."""

    approved_on: date
    approver: str
    level: str
    clarify_by: date
    # The forms and scope the head approved (written notice always); None in approvals recorded
    # before the head named them, whose clarification picks its own.
    forms: list[ClarificationForm] | None = None
    scope: str | None = None


@registry.event("ApprovalRefused", 1)
class ApprovalRefused(Frozen):
    """The head refused the clarification (主要负责人不予批准): the matter ends here."""

    refused_on: date
    approver: str
    level: str
    reason: str


@registry.event("ApprovalSentBack", 1)
class ApprovalSentBack(Frozen):
    """The head sent the matter back to the department (主要负责人退回) for a new re-review."""

    sent_back_on: date
    approver: str
    level: str
    reason: str


@registry.event("ClarificationDeclined", 1)
class ClarificationDeclined(Frozen):
    """The person declined the clarification before the start (本人不同意澄清): out of the pool."""

    person: Subject
    declined_on: date
    reason: str


@registry.event("ClarificationDiscontinued", 1)
class ClarificationDiscontinued(Frozen):
    """终止澄清: the verification's revised conclusion no longer allows a clarification (a point found
    true in a supplementary verification, say): the matter leaves the pool or the chain."""

    discontinued_on: date
    revision: int
    reason: str


@registry.event("ClarificationWithdrawn", 1)
class ClarificationWithdrawn(Frozen):
    """The person withdrew after the start, before the clarification was performed (本人撤回)."""

    person: Subject
    withdrawn_on: date
    reason: str


@registry.event("ClarificationPerformed", 1)
class ClarificationPerformed(Frozen):
    """澄清: only the listed untrue points, in the chosen forms (written notice always)."""

    performed_on: date
    forms: list[ClarificationForm] = Field(min_length=1)
    scope: str = ""
    points: list[Allegation] = Field(min_length=1)
    person: Subject
    concluded_on: date
    on_time: bool
    round_id: str | None = None
    documents: list[str] = []
    # The approved 澄清内容, allegation id -> wording, as the documents print it; {} in
    # clarifications recorded before the content was drafted and approved (their documents
    # printed the allegations' summaries).
    wording: dict[str, str] = {}


@registry.event("FeedbackGiven", 1)
class FeedbackGiven(Frozen):
    """反馈 to the unit's party committee and its head (一把手)."""

    given_on: date
    party_committee: str
    unit_head: str
    documents: list[str] = []  # the 关于失实检举控告澄清的函 addressed to that committee


@registry.event("AcknowledgementRecorded", 1)
class AcknowledgementRecorded(Frozen):
    """The person acknowledged the clarification."""

    acknowledged_on: date
    note: str = ""


@registry.event("ClarificationFiled", 1)
class ClarificationFiled(Frozen):
    """备案: the case goes to the archive."""

    filed_on: date
    person: Subject
    points: list[Allegation]
    forms: list[ClarificationForm]
    concluded_on: date
    clarified_on: date


@registry.event("TreatmentCorrected", 1)
class TreatmentCorrected(Frozen):
    """纠正错误处理 (规则 art. 51): a treatment the person received on the strength of the report
    verified untrue, corrected by the organ that made it; notified to the organisation department."""

    person: Subject
    corrected_on: date
    treatment: str  # the wrong treatment, e.g. 诫勉、暂缓提拔
    organ: str  # the organ that corrects it (作出处理的机关)
    correction: str  # what was done, e.g. 撤销诫勉决定


@registry.event("ContentDrafted", 1)
class ContentDrafted(Frozen):
    """澄清内容 drafted by the handling department: one wording for each point verified untrue
    (allegation id -> wording). A new draft replaces the previous one and needs approval again."""

    drafted_on: date
    points: dict[str, str]


@registry.event("ContentApproved", 1)
class ContentApproved(Frozen):
    """The case-trial office (审理室) approved the drafted 澄清内容: the documents print it."""

    approved_on: date
    approver: str
    approver_name: str | None = None


@registry.event("ContentReturned", 1)
class ContentReturned(Frozen):
    """The case-trial office (审理室) returned the drafted 澄清内容 to the department, with the
    reason: the department drafts again."""

    returned_on: date
    reason: str
    returned_by: str
    returned_by_name: str | None = None


@registry.event("QuarterlyRoundHeld", 1)
class QuarterlyRoundHeld(Frozen):
    """集中澄清: a quarter's ready candidates of a jurisdiction clarified in one batch."""

    round_id: str
    quarter: str
    held_on: date
    matters: list[str]
