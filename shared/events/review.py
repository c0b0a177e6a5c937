"""Events of the review context (核查): handling decision, findings, conclusion, the sweep."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field

from shared.events import registry
from shared.events.common import Allegation, Finding, Frozen, HandlingMethod, PriorityFlag, Subject

CONTEXT = "review"


@registry.event("VerificationOpened", 1)
class VerificationOpened(Frozen):
    """The handling department received the matter."""

    department: str
    opened_on: date
    received_on: date
    real_name: bool
    subjects: list[Subject] = Field(min_length=1)
    allegations: list[Allegation] = Field(min_length=1)


@registry.event("HandlingProposed", 1)
class HandlingProposed(Frozen):
    """The handling department's collective decision (集体研究), put to the head for approval."""

    method: HandlingMethod
    decided_on: date  # the day of the collective decision
    note: str = ""


@registry.event("HandlingSentBack", 1)
class HandlingSentBack(Frozen):
    """The head sent the proposed handling back to the department (退回), which proposes again."""

    sent_back_on: date
    reason: str = Field(min_length=1, max_length=4000)


@registry.event("HandlingDecided", 1)
class HandlingDecided(Frozen):
    """Collective decision on how to handle the matter, with its approval: the head's approval of
    the proposal (`approved_by` the head's user id). Decisions recorded before proposals existed
    stand alone: they read as proposed and approved at once."""

    # First of the dates: the approval is when the decision took effect (business time); None in
    # decisions recorded before the head approved them, which took effect on decided_on.
    approved_on: date | None = None
    method: HandlingMethod
    decided_on: date
    approved_by: str
    note: str = ""
    approver_name: str | None = None


@registry.event("FindingRecorded", 1)
class FindingRecorded(Frozen):
    """The finding on one allegation."""

    # A false accusation approved by the city head: when the approval made it a finding (first
    # of the dates, so the finding's business time is the approval's).
    approved_on: date | None = None
    # When the finding was reached (v1 events recorded before this field have none: they take
    # the date of the step before them).
    found_on: date | None = None
    allegation_id: str
    finding: Finding
    basis: str = Field(min_length=1, max_length=4000)
    approved_by: str | None = None
    approval_jurisdiction: str | None = None


@registry.event("FalseAccusationProposed", 1)
class FalseAccusationProposed(Frozen):
    """The department proposes 诬告陷害 on one allegation (before or after the conclusion); the
    allegation has no new finding until a city head approves or refuses it."""

    allegation_id: str
    basis: str = Field(min_length=1, max_length=4000)
    found_on: date | None = None
    referred_on: date
    referred_to: str


@registry.event("FalseAccusationRefused", 1)
class FalseAccusationRefused(Frozen):
    """The city head refused the proposed 诬告陷害: the department records another finding."""

    allegation_id: str
    refused_on: date
    reason: str = Field(min_length=1, max_length=4000)


@registry.event("FalseAccusationReferred", 1)
class FalseAccusationReferred(Frozen):
    """诬告陷害: the suspected false accusation goes on to punishment and referral."""

    allegation_id: str
    referred_on: date
    referred_to: str


@registry.event("VerificationConcluded", 1)
class VerificationConcluded(Frozen):
    """办结: every allegation has its finding; eligible when at least one point is untrue and
    none is true or partly true."""

    concluded_on: date
    received_on: date
    findings: dict[str, Finding]
    untrue_points: list[Allegation]
    subjects: list[Subject] = Field(min_length=1)
    eligible_for_pool: bool
    # 0 for the first conclusion; each later conclusion of the same matter (a 诬告陷害 approved
    # after it, a supplementary verification) counts one more. The fields mean what they mean in
    # the first: the matter's findings as they now stand.
    revision: int = Field(default=0, ge=0)


@registry.event("VerificationReopened", 1)
class VerificationReopened(Frozen):
    """补充核查: a concluded verification reopened (the re-review found it incomplete, or an
    objection was upheld); the department records further findings and concludes again."""

    reopened_on: date
    origin: Literal["re_review", "objection"]
    reason: str = Field(min_length=1, max_length=4000)
    trigger: str | None = None  # the id of the event that reopened it (one reopening per trigger)


@registry.event("CandidateScreened", 1)
class CandidateScreened(Frozen):
    """大起底: a closed untrue matter of the last three years screened into the pool."""

    sweep_id: str
    screened_on: date
    priority_flags: list[PriorityFlag] = []


@registry.event("ResultsReportedBack", 1)
class ResultsReportedBack(Frozen):
    """Quarterly report of verification results back to the letters-and-visits office."""

    quarter: str
    reported_on: date
    matters: dict[str, str]  # matter id -> overall outcome


@registry.event("ObjectionReceived", 1)
class ObjectionReceived(Frozen):
    """异议: a real-name reporter's objection with new facts or evidence (intake's ObjectionLodged)
    reached the verification, to be re-examined; never the reporter's identity."""

    objection_id: str
    lodged_on: date
    grounds: str = Field(min_length=1, max_length=4000)
    new_evidence: str = Field(min_length=1, max_length=4000)


@registry.event("ObjectionExamined", 1)
class ObjectionExamined(Frozen):
    """The handling department re-examined the objection: upheld (成立) or not, with its reason."""

    objection_id: str
    examined_on: date
    upheld: bool
    reason: str = Field(min_length=1, max_length=4000)
