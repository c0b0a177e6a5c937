"""The clarification's commands: the request bodies, validated at the edge and decided on as they are."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from shared.aggregate import Command
from shared.bounded import BusinessDate, NoControl, QuarterLabel
from shared.events.common import BadEffect, ClarificationForm

Text = Annotated[str, Field(max_length=2000), NoControl]
Name = Annotated[str, Field(min_length=1, max_length=200), NoControl]
Scope = Annotated[str, Field(max_length=500), NoControl]
Reason = Annotated[str, Field(max_length=2000, description="the reason, in words (required)"), NoControl]


class RequestConsent(Command):
    """拟澄清告知书: ask a reported person (or unit) for consent before the start."""

    person_subject_id: Annotated[str, Field(min_length=1, max_length=100), NoControl]
    requested_on: BusinessDate


class Start(Command):
    """申请: proposed by the department after consulting the person, or applied for by the person."""

    initiated_by: Literal["department", "person"]
    person_subject_id: Annotated[str, Field(min_length=1, max_length=100), NoControl]
    consent: bool
    consent_note: Text = ""
    started_on: BusinessDate


class Decline(Command):
    """The person declines the clarification before the start (本人不同意澄清): the matter leaves the pool."""

    person_subject_id: Annotated[str, Field(min_length=1, max_length=100), NoControl]
    declined_on: BusinessDate
    reason: Reason


class Withdraw(Command):
    """The person withdraws after the start, before the clarification is performed (本人撤回)."""

    withdrawn_on: BusinessDate
    reason: Reason


class Assess(Command):
    """评估 against the 正反清单."""

    assessed_on: BusinessDate
    bad_effects: list[BadEffect] = Field(max_length=8)
    effect_only_from_interviews: bool
    other_reason: Text = Field(
        default="", description="其他确有必要澄清的: why (required with bad effect other_necessary)"
    )
    proposed_forms: list[ClarificationForm] = Field(
        default_factory=list, max_length=4, description="拟澄清方式, for the 审批表 (written notice always)"
    )
    proposed_scope: Scope = Field(default="", description="拟通报范围")


class ReReview(Command):
    """复核: one member of the 澄清质效评估小组 (信访室, 审理室 or 案管室) signs for their office in their
    own session; the checks pass when all three offices signed, any one member's failed check sends
    the matter back."""

    reviewed_on: BusinessDate = Field(description="the day the member signs")
    verification_complete: bool = Field(description="核查全面")
    conclusion_clear: bool = Field(description="结论清楚")
    disposal_adequate: bool = Field(description="处置到位")
    expected_effect: Annotated[str, Field(min_length=1, max_length=2000), NoControl] = Field(
        description="预期效果"
    )
    note: Text = Field(default="", description="the member's opinion in words (意见), e.g. what is missing")


class Approve(Command):
    """The head's approval of how and to whom (经本机关主要负责人批准后，可以采取以下方式): the forms and
    scope approved, by default the ones proposed at the assessment (the written notice always)."""

    approved_on: BusinessDate
    forms: list[ClarificationForm] | None = Field(
        default=None, max_length=4, description="批准的澄清方式 (default: the proposed forms)"
    )
    scope: Scope | None = Field(default=None, description="批准的通报范围 (default: the proposed scope)")


class RefuseApproval(Command):
    """The head refuses the clarification (主要负责人不予批准): the matter ends, with the reason."""

    refused_on: BusinessDate
    reason: Reason


class SendBackApproval(Command):
    """The head sends the matter back to the department (主要负责人退回) for a new re-review."""

    sent_back_on: BusinessDate
    reason: Reason


class Perform(Command):
    """澄清 in the approved forms and scope (omitted: the approved ones; others are refused)."""

    performed_on: BusinessDate
    forms: list[ClarificationForm] | None = Field(default=None, max_length=4)
    scope: Scope | None = None


class GiveFeedback(Command):
    """反馈 to the unit's party committee and its head (一把手)."""

    given_on: BusinessDate
    party_committee: Name
    unit_head: Name


class Acknowledge(Command):
    acknowledged_on: BusinessDate
    note: Text = ""


class File(Command):
    filed_on: BusinessDate


class CorrectTreatment(Command):
    """纠正错误处理: a treatment based on the untrue report, corrected by the organ that made it."""

    person_subject_id: Annotated[str, Field(min_length=1, max_length=100), NoControl]
    corrected_on: BusinessDate
    treatment: Annotated[
        str, Field(min_length=1, max_length=500, description="被错误处理的情况，如：诫勉"), NoControl
    ]
    organ: Annotated[
        str, Field(min_length=1, max_length=200, description="纠正机关（作出处理的机关）"), NoControl
    ]
    correction: Annotated[
        str, Field(min_length=1, max_length=2000, description="纠正情况，如：撤销诫勉决定"), NoControl
    ]


class HoldRound(Command):
    """集中澄清 of one jurisdiction in one quarter."""

    jurisdiction: str = Field(pattern=r"^\d{6}$")
    quarter: QuarterLabel = Field(description="e.g. 2023Q1")
    held_on: BusinessDate
    forms: list[ClarificationForm] | None = Field(
        default=None, max_length=4, description="omitted: each matter's approved forms"
    )
    scope: Scope | None = Field(default=None, description="omitted: each matter's approved scope")


# --- 澄清内容: drafted by the department, approved by the case-trial office --------------------

WORDING_MAX = 1000
"""The longest wording of one clarified point (a sentence or two of the notice)."""

Wording = Annotated[
    str, Field(min_length=1, max_length=WORDING_MAX, description="拟澄清内容 of the point"), NoControl
]


class DraftedPoint(Command):
    """The wording of one clarified point (a point verified untrue)."""

    allegation_id: Annotated[str, Field(min_length=1, max_length=50), NoControl]
    wording: Wording


class DraftContent(Command):
    """澄清内容: the department's wording of each point verified untrue, checked against the
    reporter's identity and put before the case-trial office (审理室)."""

    drafted_on: BusinessDate
    points: list[DraftedPoint] = Field(min_length=1, max_length=100)


class ApproveContent(Command):
    """The case-trial office approves the drafted 澄清内容."""

    approved_on: BusinessDate


class ReturnContent(Command):
    """The case-trial office returns the drafted 澄清内容 to the department, with the reason."""

    returned_on: BusinessDate
    reason: Reason
