"""Clarification domain (澄清正名): the candidate pool, the chain from 申请 to 备案, the 正反清单 and the
quarterly rounds, as rules (data + pure functions) and an event-sourced aggregate; no I/O."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal, get_args

from pydantic import BaseModel

from services.clarification.commands import (
    Acknowledge,
    Approve,
    ApproveContent,
    Assess,
    CorrectTreatment,
    Decline,
    DraftContent,
    File,
    GiveFeedback,
    HoldRound,
    Perform,
    RefuseApproval,
    RequestConsent,
    ReReview,
    ReturnContent,
    SendBackApproval,
    Start,
    Withdraw,
)
from shared.aggregate import Aggregate
from shared.auth import Principal
from shared.dates import not_before, quarter_of
from shared.envelope import CITY, matter_of, person_matter_id
from shared.errors import Conflict, Forbidden, RuleViolation, Term, require_reason
from shared.events.clarification import (
    AcknowledgementRecorded,
    ApplicationDeclined,
    ApplicationNoted,
    ApprovalRefused,
    ApprovalSentBack,
    AssessmentRecorded,
    CandidateAdded,
    ClarificationApproved,
    ClarificationDeclined,
    ClarificationDiscontinued,
    ClarificationFiled,
    ClarificationPerformed,
    ClarificationStarted,
    ClarificationWithdrawn,
    ConsentRequested,
    ContentApproved,
    ContentDrafted,
    ContentReturned,
    FeedbackGiven,
    OutcomeNoted,
    PriorityNoted,
    QuarterlyRoundHeld,
    ReReviewRecorded,
    ReReviewSigned,
    TreatmentCorrected,
)
from shared.events.common import (
    TRUE_FINDINGS,
    UNTRUE_FINDINGS,
    Allegation,
    BadEffect,
    CadreLevel,
    ClarificationForm,
    Subject,
    role_name,
)
from shared.events.intake import ClarificationApplicationFiled
from shared.events.review import CandidateScreened, VerificationConcluded
from shared.workdays import add_working_days

State = Literal[
    "awaiting_outcome",
    "not_eligible",
    "candidate",
    "declined",
    "started",
    "assessed",
    "refused",
    "sent_back",
    "re_reviewed",
    "returned_by_head",
    "refused_by_head",
    "approved",
    "withdrawn",
    "discontinued",
    "performed",
    "filed",
]
"""Where a matter stands: before the pool (awaiting_outcome, not_eligible), in the pool (candidate),
along the chain, or at one of its ends (declined, refused, refused_by_head, withdrawn, filed)."""
STATES: tuple[State, ...] = get_args(State)

STATE_NAMES: dict[State, str] = {
    "awaiting_outcome": "等待核查结论",
    "not_eligible": "不符合入库条件",
    "candidate": "在备选库中",
    "declined": "本人不同意澄清",
    "started": "已启动澄清",
    "assessed": "已评估",
    "refused": "评估不予澄清",
    "sent_back": "复核退回",
    "re_reviewed": "复核通过",
    "returned_by_head": "主要负责人退回",
    "refused_by_head": "主要负责人不予批准",
    "approved": "已审批",
    "withdrawn": "本人撤回",
    "discontinued": "核查结论变更，终止澄清",
    "performed": "已澄清",
    "filed": "已备案",
}
"""Each state as a message names it."""

# The steps a later date must not precede (shared.dates.not_before).
POOL_ENTRY = Term("entry into the pool", "入库")
START = Term("the start", "启动澄清")
ASSESSMENT = Term("the assessment", "评估")
LAST_RE_REVIEW = Term("the last re-review", "上次复核")
RE_REVIEW = Term("the re-review", "复核")
APPROVAL = Term("the approval", "审批")
CLARIFICATION = Term("the clarification", "澄清")
FEEDBACK = Term("the feedback", "反馈")
ACKNOWLEDGEMENT = Term("the acknowledgement", "本人确认")
CONSENT_REQUEST = Term("the request for consent", "征求本人意见")
CONCLUSION = Term("the conclusion", "核查办结")
HEAD_RETURN = Term("the head's sending back", "主要负责人退回")
CONTENT_DRAFT = Term("the drafting of the content", "拟定澄清内容")
CONTENT_RETURN = Term("the return of the content", "审理室退回澄清内容")
CONTENT_APPROVAL = Term("the approval of the content", "审理室审核通过澄清内容")

ENDS: frozenset[State] = frozenset(
    {"declined", "refused", "refused_by_head", "withdrawn", "discontinued", "filed"}
)
"""The states a matter never leaves."""
WITHDRAWABLE: frozenset[State] = frozenset(
    {"started", "assessed", "sent_back", "re_reviewed", "returned_by_head", "approved"}
)
"""After the start and before the clarification is performed: the person may still withdraw."""

DocumentKind = Literal["consent_request", "approval_form", "notice", "unit_letter"]
"""拟澄清告知书 (to the person, before the start), 失实检举控告澄清审批表 (before the approval),
澄清通知书 (at the clarification), 关于失实检举控告澄清的函 (to the unit's 党委（党组）, at feedback)."""

CLARIFY_WITHIN_WORKING_DAYS = 5
QUALITY_GROUP_OFFICES: tuple[str, ...] = ("letters_office", "case_trial", "case_management")
"""澄清质效评估小组: one member from each of 信访室, 审理室, 案管室."""
BAD_EFFECT_ORDER: tuple[BadEffect, ...] = get_args(BadEffect)
FORM_ORDER: tuple[ClarificationForm, ...] = get_args(ClarificationForm)


def stream_id(case_id: str) -> str:
    return f"clarification-{case_id}"


def round_stream_id(jurisdiction: str, quarter: str) -> str:
    return f"round-{jurisdiction}-{quarter}"


def document_id(case_id: str, kind: DocumentKind, subject_id: str | None = None) -> str:
    """Deterministic, so a document is issued once per matter (a 拟澄清告知书 once per person asked)
    and events can name it."""
    return f"{case_id}-{kind}" if subject_id is None else f"{case_id}-{kind}-{subject_id}"


# --- Dates ---------------------------------------------------------------------------------------


# --- Points: only the untrue allegations are clarified -------------------------------------------


def clarifiable_points(outcome: OutcomeNoted) -> list[Allegation]:
    """The allegations verified untrue: the only ones a clarification speaks of (no overall
    evaluation of the person, nothing about points that were true or not proven)."""
    return [p for p in outcome.untrue_points if outcome.findings.get(p.allegation_id) in UNTRUE_FINDINGS]


# --- 正反清单: positive and negative lists -------------------------------------------------------


@dataclass(frozen=True)
class AssessmentFacts:
    """What the lists are judged on: the verification's outcome and the bad effects found."""

    outcome: OutcomeNoted | None
    bad_effects: tuple[BadEffect, ...] = ()
    effect_only_from_interviews: bool = False


@dataclass(frozen=True)
class ListRule:
    """One entry of the 正反清单: a code, its wording in Chinese and when it holds."""

    code: str
    description: str
    holds: Callable[[AssessmentFacts], bool]


def is_unresolved(facts: AssessmentFacts) -> bool:
    return facts.outcome is None


def is_partly_true(facts: AssessmentFacts) -> bool:
    return facts.outcome is not None and any(f in TRUE_FINDINGS for f in facts.outcome.findings.values())


def is_not_proven(facts: AssessmentFacts) -> bool:
    # 查无实据 is not 失实: without at least one point verified untrue there is nothing to clear.
    return facts.outcome is not None and not clarifiable_points(facts.outcome)


def has_no_bad_effect(facts: AssessmentFacts) -> bool:
    return not facts.bad_effects


def effect_only_from_interviews(facts: AssessmentFacts) -> bool:
    return facts.effect_only_from_interviews


def is_verified_untrue(facts: AssessmentFacts) -> bool:
    return facts.outcome is not None and bool(clarifiable_points(facts.outcome))


def has_bad_effect(facts: AssessmentFacts) -> bool:
    return bool(facts.bad_effects)


POSITIVE_LIST: tuple[ListRule, ...] = (
    ListRule("verified_untrue", "经核查，检举控告反映的问题失实", is_verified_untrue),
    ListRule(
        "bad_effect",
        "对被反映人的工作、生活或声誉造成不良影响（多次被检举控告、影响选拔任用或评先评优、合法权益受损、"
        "传播范围较广），或有其他确有必要澄清的情形",
        has_bad_effect,
    ),
)
"""正面清单: every entry must hold for a clarification."""

NEGATIVE_LIST: tuple[ListRule, ...] = (
    ListRule("not_concluded", "核查尚未办结、问题尚未查清，不予澄清", is_unresolved),
    ListRule("partly_true", "反映问题属实或部分属实，不予澄清", is_partly_true),
    ListRule("not_proven", "反映问题查无实据、未查实失实，不予澄清", is_not_proven),
    ListRule("no_bad_effect", "尚未对被反映人造成不良影响，不予澄清", has_no_bad_effect),
    ListRule(
        "effect_only_from_interviews",
        "不良影响仅因核查中的谈话函询产生，不予澄清",
        effect_only_from_interviews,
    ),
)
"""负面清单: any entry that holds refuses the clarification."""

OUTCOME_RULES: frozenset[str] = frozenset({"not_concluded", "partly_true", "not_proven"})
"""The negative-list entries judged on the outcome alone: they also keep a matter out of the pool."""


@dataclass(frozen=True)
class Assessment:
    """评估 result: eligible, or the negative-list rules that refuse it."""

    eligible: bool
    refusals: tuple[ListRule, ...]

    @property
    def codes(self) -> list[str]:
        return [r.code for r in self.refusals]

    @property
    def reason(self) -> str:
        return "；".join(r.description for r in self.refusals)


def assess_against_lists(facts: AssessmentFacts) -> Assessment:
    refusals = tuple(rule for rule in NEGATIVE_LIST if rule.holds(facts))
    eligible = not refusals and all(rule.holds(facts) for rule in POSITIVE_LIST)
    return Assessment(eligible=eligible, refusals=refusals)


def outcome_refusals(outcome: OutcomeNoted) -> list[ListRule]:
    facts = AssessmentFacts(outcome=outcome, bad_effects=(), effect_only_from_interviews=False)
    return [r for r in NEGATIVE_LIST if r.code in OUTCOME_RULES and r.holds(facts)]


def outcome_of(concluded: VerificationConcluded, person: str | None = None) -> OutcomeNoted:
    """The conclusion as the clarification office notes it for one of the matter's persons (or
    units): eligible for the pool on the review's verdict and none of the outcome's negative-list
    rules."""
    draft = OutcomeNoted(
        concluded_on=concluded.concluded_on,
        findings=concluded.findings,
        untrue_points=concluded.untrue_points,
        subjects=concluded.subjects,
        eligible_for_pool=concluded.eligible_for_pool,
        revision=concluded.revision,
        person_subject_id=person,
    )
    return draft.model_copy(update={"eligible_for_pool": enters_pool(concluded.eligible_for_pool, draft)})


def enters_pool(concluded_eligible: bool, outcome: OutcomeNoted) -> bool:
    """备选库 entry: the review's verdict, and none of the outcome's negative-list rules (a true or
    partly true matter never enters the pool, whatever anyone else says)."""
    return concluded_eligible and not outcome_refusals(outcome)


def pool_refusal_reason(outcome: OutcomeNoted) -> str:
    reasons = [r.description for r in outcome_refusals(outcome)]
    return "；".join(reasons) or "核查结论不符合澄清条件，不予澄清"


# --- 复核: the quality-evaluation group ----------------------------------------------------------


@dataclass(frozen=True)
class ReReviewCheck:
    """One of the three checks of the 澄清质效评估小组 and the reason given when it fails."""

    name: str
    label: str
    failure: str


RE_REVIEW_CHECKS: tuple[ReReviewCheck, ...] = (
    ReReviewCheck("verification_complete", "核查全面", "核查不全面，退回补充核查后重新复核"),
    ReReviewCheck("conclusion_clear", "结论清楚", "核查结论不清楚，退回进一步查明后重新复核"),
    ReReviewCheck("disposal_adequate", "处置到位", "处置不到位，退回完善处置后重新复核"),
)


def failed_check_reasons(results: Mapping[str, bool]) -> list[str]:
    return [check.failure for check in RE_REVIEW_CHECKS if not results[check.name]]


def check_signer(signer: Principal, signatures: Mapping[str, ReReviewSigned]) -> str:
    """A member signs for the office of their own token, once per re-review; three offices, three
    different people. Returns the office."""
    office = signer.role
    if office not in QUALITY_GROUP_OFFICES:
        raise Forbidden(
            "the re-review is signed by members of the letters office, the case-trial office and the"
            " case-management office",
            detail_zh="复核须由信访室、审理室、案管室的成员签署",
            code="not_a_group_member",
        )
    if office in signatures:
        raise Conflict(
            f"the {office} already signed this re-review ({signatures[office].member})",
            detail_zh=f"{role_name(office)}已签署本次复核（{signatures[office].member}）",
            code="already_signed",
        )
    if any(s.member == signer.user_id for s in signatures.values()):
        raise Conflict(
            "one member cannot sign for two offices",
            detail_zh="同一成员不能代表两个部门签署复核",
            code="already_signed",
        )
    return office


# --- Approval at the level of cadre-management authority ---------------------------------------


def required_level(cadre_level: CadreLevel, matter_jurisdiction: str) -> str:
    """The jurisdiction whose head must approve: the city for city-managed cadres (市管干部),
    the matter's own jurisdiction for county-managed ones."""
    return CITY if cadre_level == "city" else matter_jurisdiction


def reaches(principal: Principal, jurisdiction: str, cadre_level: CadreLevel | None) -> bool:
    """Whether a caller may see and act on a matter: in their jurisdictions, or — the head of the
    city, who approves the clarification of a city-managed cadre (市管干部) of any county — a matter
    whose person is a city-managed cadre."""
    if principal.sees(jurisdiction):
        return True
    return principal.role == "head" and CITY in principal.jurisdictions and cadre_level == "city"


def approval_level(
    cadre_level: CadreLevel, matter_jurisdiction: str, approver_jurisdictions: Sequence[str]
) -> str:
    """The level that must approve, which the approver must be head of."""
    needed = required_level(cadre_level, matter_jurisdiction)
    if needed not in approver_jurisdictions:
        raise Forbidden(
            f"a {cadre_level}-level cadre's clarification is approved by the head of {needed}",
            detail_zh=f"{'市管' if cadre_level == 'city' else '县管'}干部的澄清"
            f"须由 {needed} 的主要负责人审批",
            code="approval_level",
        )
    return needed


def clarify_by(approved_on: date) -> date:
    return add_working_days(approved_on, CLARIFY_WITHIN_WORKING_DAYS)


# --- 澄清: forms and scope ----------------------------------------------------------------------


def clarification_forms(
    forms: Iterable[ClarificationForm], scope: str, *, field: str = "scope"
) -> list[ClarificationForm]:
    """The written notice (澄清通知书) is always given; a notice within a scope needs that scope."""
    chosen = {"written_notice", *forms}
    ordered = [f for f in FORM_ORDER if f in chosen]
    if "scoped_notice" in ordered and not scope.strip():
        raise RuleViolation(
            "a notice within a set scope (scoped_notice) needs the scope",
            detail_zh="在一定范围内通报澄清（scoped_notice）须写明通报范围",
            field=field,
            code="scope_required",
        )
    return ordered


# --- 集中澄清: quarterly rounds -----------------------------------------------------------------


def check_round_date(quarter: str, held_on: date) -> None:
    if quarter_of(held_on) != quarter:
        raise RuleViolation(
            f"held_on {held_on.isoformat()} is not in {quarter}",
            detail_zh=f"held_on {held_on.isoformat()} 不在 {quarter} 内",
            field="held_on",
            code="outside_quarter",
        )


# --- 澄清内容: the wording of each clarified point -----------------------------------------------

ContentState = Literal["none", "drafted", "approved", "returned"]
"""Where the 澄清内容 stands, beside the matter's state: not drafted yet, drafted and before the
case-trial office (审理室), approved by it (the documents print it), or returned to the department."""
CONTENT_STATE_NAMES: dict[ContentState, str] = {
    "none": "尚未拟定",
    "drafted": "已拟定，待审理室审核",
    "approved": "审理室已审核通过",
    "returned": "审理室已退回",
}


def next_content_state(state: ContentState, event: BaseModel) -> ContentState:
    """The content's state after an event (the matter's own state is next_state's)."""
    match event:
        case ContentDrafted():
            return "drafted"
        case ContentApproved():
            return "approved"
        case ContentReturned():
            return "returned"
    return state


def check_wording(outcome: OutcomeNoted, command: DraftContent) -> dict[str, str]:
    """One wording for each point verified untrue, and for no other point: the clarification
    speaks of the untrue points only. Returns allegation id -> wording (stripped), in the points'
    order."""
    clarifiable = [p.allegation_id for p in clarifiable_points(outcome)]
    known = set(outcome.findings) | {p.allegation_id for p in outcome.untrue_points}
    worded: dict[str, str] = {}
    for n, point in enumerate(command.points):
        allegation_id, field = point.allegation_id, f"points.{n}.allegation_id"
        if allegation_id not in known:
            raise RuleViolation(
                f"{allegation_id} is not a reported point of this matter",
                detail_zh=f"{allegation_id} 不是本件的反映问题",
                field=field,
                code="unknown_allegation",
            )
        if allegation_id not in clarifiable:
            raise RuleViolation(
                f"{allegation_id} was not verified untrue: only untrue points are clarified",
                detail_zh=f"{allegation_id} 未经核查认定失实，不予澄清：只澄清失实的问题",
                field=field,
                code="point_not_untrue",
            )
        if allegation_id in worded:
            raise RuleViolation(
                f"{allegation_id} is worded twice",
                detail_zh=f"{allegation_id} 重复拟定",
                field=field,
                code="duplicate_allegation",
            )
        wording = point.wording.strip()
        if not wording:
            raise RuleViolation(
                f"the wording of {allegation_id} is blank",
                detail_zh=f"{allegation_id} 的澄清内容为空",
                field=f"points.{n}.wording",
                code="wording_required",
            )
        worded[allegation_id] = wording
    missing = [a for a in clarifiable if a not in worded]
    if missing:
        raise RuleViolation(
            f"every point verified untrue needs its wording; missing: {', '.join(missing)}",
            detail_zh=f"每个经核查失实的问题都须拟定澄清内容；缺少：{'、'.join(missing)}",
            field="points",
            code="wording_missing",
        )
    return {a: worded[a] for a in clarifiable}


# --- The aggregate -------------------------------------------------------------------------------


def next_state(state: State, event: BaseModel) -> State:
    """The state an event leads to: one place for the state machine (aggregate and read model)."""
    match event:
        case OutcomeNoted(eligible_for_pool=False) if state == "awaiting_outcome":
            return "not_eligible"
        case CandidateAdded():
            return "candidate"
        case ClarificationStarted():
            return "started"
        case AssessmentRecorded(eligible=eligible):
            return "assessed" if eligible else "refused"
        case ReReviewRecorded(passed=passed):
            return "re_reviewed" if passed else "sent_back"
        case ClarificationDeclined():
            return "declined"
        case ClarificationWithdrawn():
            return "withdrawn"
        case ClarificationDiscontinued():
            return "discontinued"
        case ApprovalRefused():
            return "refused_by_head"
        case ApprovalSentBack():
            return "returned_by_head"
        case ClarificationApproved():
            return "approved"
        case ClarificationPerformed():
            return "performed"
        case ClarificationFiled():
            return "filed"
    return state


def wrong_state(action: Term, state: State) -> Conflict:
    return Conflict(
        f"cannot {action.en}: the matter is {state}",
        detail_zh=f"不能{action.zh}：该事项当前为“{STATE_NAMES[state]}”",
        code="wrong_state",
    )


Exit = ClarificationDeclined | ClarificationWithdrawn | ApprovalRefused | ClarificationDiscontinued
"""How a matter left the chain before its clarification."""


class Clarification(Aggregate):
    """澄清正名 of one matter: its place in the 备选库 and its way along the chain."""

    noun = "clarification matter"
    noun_zh = "澄清事项"

    def __init__(self, case_id: str, jurisdiction: str = "") -> None:
        self._case_id = case_id
        self.jurisdiction = jurisdiction
        self.state: State = "awaiting_outcome"
        self.outcome: OutcomeNoted | None = None
        self.applications: dict[str, ApplicationNoted] = {}
        self.declined: dict[str, str] = {}
        self.priorities: list[PriorityNoted] = []
        self.candidate: CandidateAdded | None = None
        self.consent_requests: dict[str, ConsentRequested] = {}
        self.started: ClarificationStarted | None = None
        self.assessment: AssessmentRecorded | None = None
        self.re_reviews: list[ReReviewRecorded] = []
        self.signatures: dict[str, ReReviewSigned] = {}  # the re-review being signed, by office
        self.approval: ClarificationApproved | None = None
        self.head_returns: list[ApprovalSentBack] = []
        self.exit: Exit | None = None
        self.awaiting_supplement = False  # a re-review sent the verification back for 补充核查
        self.corrections: list[TreatmentCorrected] = []
        self.performance: ClarificationPerformed | None = None
        self.feedback: FeedbackGiven | None = None
        self.acknowledgement: AcknowledgementRecorded | None = None
        self.filing: ClarificationFiled | None = None
        self.content_state: ContentState = "none"
        self.content: ContentDrafted | None = None
        self.content_approval: ContentApproved | None = None
        self.content_return: ContentReturned | None = None

    @property
    def case_id(self) -> str:
        return self._case_id

    @property
    def stream_id(self) -> str:
        return stream_id(self._case_id)

    def evolve(self, event: BaseModel) -> None:
        match event:
            case OutcomeNoted():
                if self.outcome is not None:
                    self.revise(event)
                self.outcome = event
                self.awaiting_supplement = False
            case ApplicationNoted():
                self.applications[event.application_id] = event
            case ApplicationDeclined():
                self.declined[event.application_id] = event.reason
            case PriorityNoted():
                self.priorities.append(event)
            case CandidateAdded():
                self.candidate = event
            case ConsentRequested():
                self.consent_requests[event.person.subject_id] = event
            case ClarificationStarted():
                self.started = event
            case AssessmentRecorded():
                self.assessment = event
            case ReReviewSigned():
                self.signatures[event.office] = event
            case ReReviewRecorded():
                self.re_reviews.append(event)
                self.signatures = {}
                self.awaiting_supplement = not event.passed and not event.verification_complete
            case ClarificationApproved():
                self.approval = event
            case ApprovalSentBack():
                self.head_returns.append(event)
                self.signatures = {}
            case ClarificationDeclined() | ClarificationWithdrawn() | ApprovalRefused():
                self.exit = event
            case ClarificationDiscontinued():
                self.exit = event
            case ClarificationPerformed():
                self.performance = event
            case FeedbackGiven():
                self.feedback = event
            case AcknowledgementRecorded():
                self.acknowledgement = event
            case ClarificationFiled():
                self.filing = event
            case TreatmentCorrected():
                self.corrections.append(event)
        self.evolve_content(event)
        self.state = next_state(self.state, event)

    def visible_to(self, principal: Principal) -> bool:
        level = self.started.person.cadre_level if self.started is not None else None
        return reaches(principal, self.jurisdiction, level)

    def revise(self, revised: OutcomeNoted) -> None:
        """A revised conclusion: the re-review being signed starts again, and a 澄清内容 that does
        not word exactly the revised untrue points is no longer the matter's (it is drafted and
        approved again before the clarification)."""
        self.signatures = {}
        points = {p.allegation_id for p in clarifiable_points(revised)}
        if self.content is not None and set(self.content.points) != points:
            self.content, self.content_approval, self.content_return = None, None, None
            self.content_state = "none"

    def evolve_content(self, event: BaseModel) -> None:
        """The 澄清内容 beside the chain: the latest draft and what the case-trial office did with it."""
        match event:
            case ContentDrafted():
                self.content, self.content_approval, self.content_return = event, None, None
            case ContentApproved():
                self.content_approval = event
            case ContentReturned():
                self.content_return = event
        self.content_state = next_content_state(self.content_state, event)

    def pending_applications(self, others: frozenset[str] = frozenset()) -> list[str]:
        """The applications waiting for the pool, less those of the matter's other persons
        (`others`: their subject ids), whose own clarifications take them."""
        if self.candidate is not None:
            return []
        return [
            a
            for a, noted in self.applications.items()
            if a not in self.declined and noted.applicant.subject_id not in others
        ]

    @property
    def person_subject_id(self) -> str | None:
        """The person (or unit) this clarification is about; None for a clarification noted before
        several persons (any subject of its matter) or not noted yet."""
        return self.outcome.person_subject_id if self.outcome is not None else None

    @property
    def last_re_review(self) -> ReReviewRecorded | None:
        return self.re_reviews[-1] if self.re_reviews else None

    @property
    def last_head_return(self) -> ApprovalSentBack | None:
        return self.head_returns[-1] if self.head_returns else None

    def last_step(self) -> tuple[date, Term] | None:
        """The latest step of the chain so far, which a later step must not precede."""
        steps: list[tuple[date, Term]] = []
        if self.started is not None:
            steps.append((self.started.started_on, START))
        if self.assessment is not None:
            steps.append((self.assessment.assessed_on, ASSESSMENT))
        if (last := self.last_re_review) is not None:
            steps.append((last.reviewed_on, RE_REVIEW))
        if (returned := self.last_head_return) is not None:
            steps.append((returned.sent_back_on, HEAD_RETURN))
        if self.approval is not None:
            steps.append((self.approval.approved_on, APPROVAL))
        return max(steps, key=lambda s: s[0]) if steps else None

    # Reactions to other contexts' facts: each idempotent, and the pool comes out the same
    # whatever the order in which the conclusion, the sweep and an application arrive.

    def note_outcome(
        self, concluded: VerificationConcluded, pool_since: date | None = None, person: str | None = None
    ) -> list[BaseModel]:
        """The conclusion reached the office, for the matter's person (or unit) `person` (a
        subject id). An eligible matter enters the pool at once, unless it concluded before the
        pool was opened (`pool_since`): such old matters wait for the backlog sweep (大起底) or for
        the person's own application (绿色通道)."""
        if self.outcome is not None:
            if concluded.revision <= self.outcome.revision:
                return []  # a redelivered (or an older) conclusion changes nothing
            return self.note_revised_outcome(concluded)
        noted = outcome_of(concluded, person)
        others = frozenset(s.subject_id for s in concluded.subjects if person and s.subject_id != person)
        events: list[BaseModel] = [noted]
        if noted.eligible_for_pool:
            if self.candidate is None:
                if pool_since is None or concluded.concluded_on >= pool_since:
                    events.append(CandidateAdded(via="conclusion", added_on=concluded.concluded_on))
                elif pending := self.pending_applications(others):
                    # In the pool from when both were there: the outcome and the application.
                    applied = min(self.applications[a].filed_on for a in pending)
                    added_on = max(concluded.concluded_on, applied)
                    events.append(CandidateAdded(via="green_channel", added_on=added_on))
        else:
            reason = pool_refusal_reason(noted)
            events.extend(
                ApplicationDeclined(application_id=a, reason=reason)
                for a in self.pending_applications(others)
            )
        return events

    def note_revised_outcome(self, concluded: VerificationConcluded) -> list[BaseModel]:
        """A revised conclusion (after a supplementary verification, or a 诬告陷害 found after the
        conclusion) replaces the outcome: the chain resumes where it was on the revised points; a
        matter that became eligible enters the pool; one that no longer is leaves the pool or the
        chain (终止澄清). A matter already clarified or ended keeps its course."""
        noted = outcome_of(concluded, self.person_subject_id)
        events: list[BaseModel] = [noted]
        on = concluded.concluded_on
        if self.state == "not_eligible" and noted.eligible_for_pool:
            events.append(CandidateAdded(via="revised_conclusion", added_on=on))
        elif not noted.eligible_for_pool and self.state not in ENDS | {"not_eligible", "performed"}:
            last = self.last_step()
            events.append(
                ClarificationDiscontinued(
                    discontinued_on=on if last is None else max(on, last[0]),
                    revision=concluded.revision,
                    reason=pool_refusal_reason(noted),
                )
            )
        return events

    def note_sweep(self, screened: CandidateScreened) -> list[BaseModel]:
        if any(p.sweep_id == screened.sweep_id for p in self.priorities):
            return []
        events: list[BaseModel] = [
            PriorityNoted(sweep_id=screened.sweep_id, priority_flags=screened.priority_flags)
        ]
        if self.outcome is not None and self.outcome.eligible_for_pool and self.candidate is None:
            events.append(CandidateAdded(via="sweep", added_on=screened.screened_on))
        return events

    def note_application(self, filed: ClarificationApplicationFiled) -> list[BaseModel]:
        if filed.application_id in self.applications:
            return []
        events: list[BaseModel] = [
            ApplicationNoted(
                application_id=filed.application_id,
                applicant=filed.applicant,
                untrue_points=filed.untrue_points,
                request=filed.request,
                filed_on=filed.filed_on,
            )
        ]
        if self.outcome is None:
            return events  # 绿色通道 before the conclusion is normal: it waits for the outcome
        if self.outcome.eligible_for_pool:
            if self.candidate is None:
                added_on = max(filed.filed_on, self.outcome.concluded_on)
                events.append(CandidateAdded(via="green_channel", added_on=added_on))
        else:
            events.append(
                ApplicationDeclined(
                    application_id=filed.application_id, reason=pool_refusal_reason(self.outcome)
                )
            )
        return events

    # The chain: each command checks the state and its rules, and returns the events it decides.

    def request_consent(self, command: RequestConsent) -> list[BaseModel]:
        """拟澄清告知书: before the start, the person is asked to consent (once per person)."""
        if self.state in ("awaiting_outcome", "not_eligible"):
            raise Conflict(
                "the matter is not in the candidate pool",
                detail_zh="该事项不在澄清备选库中",
                code="not_a_candidate",
            )
        if self.state != "candidate" or self.candidate is None:
            raise wrong_state(Term("ask for consent", "征求本人意见"), self.state)
        person = self._subject(command.person_subject_id)
        if person.subject_id in self.consent_requests:
            raise Conflict(
                "this person was already asked for consent",
                detail_zh="已经就此向本人征求过意见",
                code="already_recorded",
            )
        requested_on = command.requested_on
        not_before(requested_on, self.candidate.added_on, field="requested_on", step=POOL_ENTRY)
        doc = document_id(self.case_id, "consent_request", person.subject_id)
        return [ConsentRequested(person=person, requested_on=requested_on, documents=[doc])]

    def start(self, command: Start) -> list[BaseModel]:
        """申请."""
        if self.state in ("awaiting_outcome", "not_eligible"):
            raise Conflict(
                "the matter is not in the candidate pool",
                detail_zh="该事项不在澄清备选库中",
                code="not_a_candidate",
            )
        if self.state != "candidate" or self.candidate is None or self.outcome is None:
            raise wrong_state(Term("start", "启动澄清"), self.state)
        if not command.consent:
            raise RuleViolation(
                "no consent, no clarification: the person must agree",
                detail_zh="未经本人同意，不予澄清：须本人同意",
                field="consent",
                code="consent_required",
            )
        person = self._subject(command.person_subject_id)
        started_on = command.started_on
        not_before(started_on, self.candidate.added_on, field="started_on", step=POOL_ENTRY)
        return [
            ClarificationStarted(
                initiated_by=command.initiated_by,
                person=person,
                consent=True,
                consent_note=command.consent_note,
                started_on=started_on,
            )
        ]

    def decline(self, command: Decline) -> list[BaseModel]:
        """本人不同意澄清: the person's refusal, before the start; the matter leaves the pool."""
        if self.state in ("awaiting_outcome", "not_eligible"):
            raise Conflict(
                "the matter is not in the candidate pool",
                detail_zh="该事项不在澄清备选库中",
                code="not_a_candidate",
            )
        if self.state != "candidate" or self.candidate is None:
            raise wrong_state(Term("record the person's refusal", "登记本人不同意澄清"), self.state)
        person = self._subject(command.person_subject_id)
        reason = require_reason(command.reason, Term("the person's refusal", "本人不同意澄清"))
        declined_on = command.declined_on
        not_before(declined_on, self.candidate.added_on, field="declined_on", step=POOL_ENTRY)
        if (asked := self.consent_requests.get(person.subject_id)) is not None:
            not_before(declined_on, asked.requested_on, field="declined_on", step=CONSENT_REQUEST)
        return [ClarificationDeclined(person=person, declined_on=declined_on, reason=reason)]

    def withdraw(self, command: Withdraw) -> list[BaseModel]:
        """本人撤回: after the start, before the clarification is performed; the matter ends."""
        if self.state not in WITHDRAWABLE or self.started is None:
            raise wrong_state(Term("record the withdrawal", "登记本人撤回"), self.state)
        reason = require_reason(command.reason, Term("the withdrawal", "本人撤回"))
        withdrawn_on = command.withdrawn_on
        last = self.last_step()
        if last is not None:
            not_before(withdrawn_on, last[0], field="withdrawn_on", step=last[1])
        return [ClarificationWithdrawn(person=self.started.person, withdrawn_on=withdrawn_on, reason=reason)]

    def correct_treatment(self, command: CorrectTreatment) -> list[BaseModel]:
        """纠正错误处理 (art. 51): whatever becomes of the clarification (the person may even decline
        it), a treatment given on the strength of a report verified untrue is corrected; once per
        person and treatment."""
        if self.outcome is None or not clarifiable_points(self.outcome):
            raise Conflict(
                "only a treatment based on a report verified untrue is corrected here",
                detail_zh="只有经核查认定失实的检举控告所致的错误处理，才在此登记纠正",
                code="not_verified_untrue",
            )
        person = self._subject(command.person_subject_id)
        treatment = command.treatment.strip()
        if any(
            c.person.subject_id == person.subject_id and c.treatment == treatment for c in self.corrections
        ):
            raise Conflict(
                f"the correction of {treatment} was already recorded",
                detail_zh=f"对“{treatment}”的纠正已经登记过",
                field="treatment",
                code="already_recorded",
            )
        not_before(command.corrected_on, self.outcome.concluded_on, field="corrected_on", step=CONCLUSION)
        return [
            TreatmentCorrected(
                person=person,
                corrected_on=command.corrected_on,
                treatment=treatment,
                organ=command.organ.strip(),
                correction=command.correction.strip(),
            )
        ]

    def _subject(self, subject_id: str) -> Subject:
        """The reported subject a command names: this clarification's own person (each person a
        matter names has a clarification of their own), or any subject of a clarification noted
        before several persons."""
        assert self.outcome is not None
        own = self.person_subject_id
        for index, subject in enumerate(self.outcome.subjects):
            if subject.subject_id != subject_id:
                continue
            if own is None or own == subject_id:
                return subject
            theirs = person_matter_id(matter_of(self.case_id), index)
            raise RuleViolation(
                f"{self.case_id} is the clarification of another person: {subject.name}'s is {theirs}",
                detail_zh=f"{self.case_id} 是另一被反映人的澄清事项：{subject.name}的澄清事项为 {theirs}",
                field="person_subject_id",
                code="another_persons_clarification",
            )
        raise RuleViolation(
            f"{subject_id} is not a reported subject of {self.case_id}",
            detail_zh=f"{subject_id} 不是 {self.case_id} 的被反映人",
            field="person_subject_id",
            code="unknown_subject",
        )

    def assess(self, command: Assess) -> list[BaseModel]:
        """评估 against the 正反清单; a refusal is recorded too (it is a decision)."""
        if self.state != "started" or self.started is None:
            raise wrong_state(Term("assess", "评估"), self.state)
        not_before(command.assessed_on, self.started.started_on, field="assessed_on", step=START)
        effects = tuple(e for e in BAD_EFFECT_ORDER if e in set(command.bad_effects))
        if "other_necessary" in effects and not command.other_reason.strip():
            raise RuleViolation(
                "the catch-all 其他确有必要澄清的 needs its reason",
                detail_zh="选择“其他确有必要澄清的情形”须写明理由",
                field="other_reason",
                code="other_reason_required",
            )
        only_interviews = command.effect_only_from_interviews
        result = assess_against_lists(AssessmentFacts(self.outcome, effects, only_interviews))
        proposed = command.proposed_forms
        scope = command.proposed_scope.strip()
        forms = clarification_forms(proposed, scope, field="proposed_scope") if result.eligible else []
        return [
            AssessmentRecorded(
                assessed_on=command.assessed_on,
                eligible=result.eligible,
                bad_effects=list(effects),
                effect_only_from_interviews=only_interviews,
                refusals=result.codes,
                reason=result.reason,
                other_reason=command.other_reason.strip(),
                proposed_forms=forms,
                proposed_scope=scope if result.eligible else "",
            )
        ]

    def re_review(self, command: ReReview, signer: Principal) -> list[BaseModel]:
        """复核: the signature of one member of the quality-evaluation group, for the office of their
        token. A failed check sends the matter back at once; the third office's passing signature
        passes the re-review and puts the 审批表 before the head."""
        if self.state not in ("assessed", "sent_back", "returned_by_head") or self.assessment is None:
            raise wrong_state(Term("re-review", "复核"), self.state)
        if self.awaiting_supplement:
            raise Conflict(
                "the re-review sent the verification back: it waits for the supplementary verification's"
                " conclusion",
                detail_zh="复核已退回补充核查：须待补充核查办结后再复核",
                code="supplementary_pending",
            )
        office = check_signer(signer, self.signatures)
        reviewed_on = command.reviewed_on
        last = self.last_re_review
        if last is not None:
            not_before(reviewed_on, last.reviewed_on, field="reviewed_on", step=LAST_RE_REVIEW)
        not_before(reviewed_on, self.assessment.assessed_on, field="reviewed_on", step=ASSESSMENT)
        if (returned := self.last_head_return) is not None:
            not_before(reviewed_on, returned.sent_back_on, field="reviewed_on", step=HEAD_RETURN)
        checks = {
            "verification_complete": command.verification_complete,
            "conclusion_clear": command.conclusion_clear,
            "disposal_adequate": command.disposal_adequate,
        }
        reasons = failed_check_reasons(checks)
        signed = ReReviewSigned(
            office=office,
            member=signer.user_id,
            member_name=signer.name or "",
            signed_on=reviewed_on,
            **checks,
            expected_effect=command.expected_effect,
            note=command.note.strip(),
            reasons=reasons,
        )
        signatures = {**self.signatures, office: signed}
        if not reasons and len(signatures) < len(QUALITY_GROUP_OFFICES):
            return [signed]  # the group has not all signed yet
        return [signed, self._group_result(signatures, reviewed_on)]

    def _group_result(self, signatures: Mapping[str, ReReviewSigned], reviewed_on: date) -> ReReviewRecorded:
        """The group's re-review from its members' signatures: a check holds when every member who
        signed holds it; the reasons are the failed checks' and the members' own words."""
        ordered = [signatures[o] for o in QUALITY_GROUP_OFFICES if o in signatures]
        checks = {c.name: all(bool(getattr(s, c.name)) for s in ordered) for c in RE_REVIEW_CHECKS}
        reasons = failed_check_reasons(checks)
        reasons += [f"{role_name(s.office)}：{s.note}" for s in ordered if s.note and s.reasons]
        effects = list(dict.fromkeys(s.expected_effect for s in ordered))
        # After the head sent the matter back, a passing re-review puts a new 审批表 before the head.
        earlier_forms = sum(1 for r in self.re_reviews if r.passed)
        form_id = document_id(self.case_id, "approval_form")
        if earlier_forms:
            form_id = f"{form_id}-{earlier_forms + 1}"
        return ReReviewRecorded(
            reviewed_on=reviewed_on,
            expected_effect="；".join(effects),
            members={s.office: s.member for s in ordered},
            member_names={s.office: s.member_name for s in ordered if s.member_name},
            **checks,
            passed=not reasons,
            reasons=reasons,
            documents=[] if reasons else [form_id],
        )

    def _head_decision(self, action: Term, on: date, field: str, approver: Principal) -> str:
        """What every decision of the head checks: a passed re-review before it, its date not before
        that re-review, and the head of the level of cadre-management authority. Returns the level."""
        last = self.last_re_review
        if self.state != "re_reviewed" or last is None or self.started is None:
            raise wrong_state(action, self.state)
        not_before(on, last.reviewed_on, field=field, step=RE_REVIEW)
        return approval_level(self.started.person.cadre_level, self.jurisdiction, approver.jurisdictions)

    def approve(self, command: Approve, approver: Principal) -> list[BaseModel]:
        """Approval by the head (主要负责人) at the level of cadre-management authority, naming the
        forms and scope (by default the ones proposed at the assessment)."""
        approved_on = command.approved_on
        action = Term("approve (a passed re-review is needed)", "审批（须先通过复核）")
        level = self._head_decision(action, approved_on, "approved_on", approver)
        assert self.assessment is not None
        scope = (self.assessment.proposed_scope if command.scope is None else command.scope).strip()
        forms = self.assessment.proposed_forms if command.forms is None else command.forms
        return [
            ClarificationApproved(
                approved_on=approved_on,
                approver=approver.user_id,
                level=level,
                clarify_by=clarify_by(approved_on),
                forms=clarification_forms(forms, scope),
                scope=scope,
            )
        ]

    def refuse_approval(self, command: RefuseApproval, approver: Principal) -> list[BaseModel]:
        """主要负责人不予批准: the head refuses, with the reason; the matter ends."""
        action = Term("refuse the approval (a passed re-review is needed)", "不予批准（须先通过复核）")
        level = self._head_decision(action, command.refused_on, "refused_on", approver)
        reason = require_reason(command.reason, Term("the head's refusal", "主要负责人不予批准"))
        return [
            ApprovalRefused(
                refused_on=command.refused_on, approver=approver.user_id, level=level, reason=reason
            )
        ]

    def send_back_approval(self, command: SendBackApproval, approver: Principal) -> list[BaseModel]:
        """主要负责人退回: back to the department, for a new re-review, with the reason."""
        action = Term("send back (a passed re-review is needed)", "退回（须先通过复核）")
        level = self._head_decision(action, command.sent_back_on, "sent_back_on", approver)
        reason = require_reason(command.reason, Term("sending back", "主要负责人退回"))
        return [
            ApprovalSentBack(
                sent_back_on=command.sent_back_on, approver=approver.user_id, level=level, reason=reason
            )
        ]

    def approved_forms(self, command: Perform) -> tuple[list[ClarificationForm], str]:
        """The forms and scope of the clarification: the approved ones; a command naming others is
        refused (an approval recorded before the head named them leaves the choice to the command)."""
        assert self.approval is not None
        approved, approved_scope = self.approval.forms, self.approval.scope
        if approved is None or approved_scope is None:
            scope = (command.scope or "").strip()
            return clarification_forms(command.forms or [], scope), scope
        scope = approved_scope if command.scope is None else command.scope.strip()
        if scope != approved_scope:
            raise RuleViolation(
                f"the head approved the scope {approved_scope or '-'} for {self.case_id}, not {scope or '-'}",
                detail_zh=f"{self.case_id} 经批准的通报范围为“{approved_scope or '无'}”，"
                f"不是“{scope or '无'}”",
                field="scope",
                code="not_approved",
            )
        if command.forms is not None:
            forms = clarification_forms(command.forms, scope, field="forms")
            if forms != approved:
                raise RuleViolation(
                    f"the head approved the forms {', '.join(approved)} for {self.case_id},"
                    f" not {', '.join(forms)}",
                    detail_zh=f"{self.case_id} 经批准的澄清方式为 {'、'.join(approved)}，"
                    f"不是 {'、'.join(forms)}",
                    field="forms",
                    code="not_approved",
                )
        return list(approved), scope

    def perform(self, command: Perform, round_id: str | None = None) -> list[BaseModel]:
        """澄清: only the untrue points, the written notice always, within 5 working days."""
        if self.state != "approved" or self.approval is None or self.started is None or self.outcome is None:
            raise wrong_state(Term("clarify", "澄清"), self.state)
        wording = self.approved_wording()
        chosen, scope = self.approved_forms(command)
        performed_on = command.performed_on
        not_before(performed_on, self.approval.approved_on, field="performed_on", step=APPROVAL)
        assert self.content_approval is not None
        not_before(
            performed_on, self.content_approval.approved_on, field="performed_on", step=CONTENT_APPROVAL
        )
        return [
            ClarificationPerformed(
                performed_on=performed_on,
                forms=chosen,
                scope=scope,
                points=clarifiable_points(self.outcome),
                person=self.started.person,
                concluded_on=self.outcome.concluded_on,
                on_time=performed_on <= self.approval.clarify_by,
                round_id=round_id,
                documents=[document_id(self.case_id, "notice")],
                wording=wording,
            )
        ]

    # 澄清内容: drafted by the department, approved or returned by the case-trial office; beside
    # the chain (the matter's state does not move), from the start until the clarification.

    def _content_step(self, action: Term) -> None:
        if self.started is None or self.outcome is None or self.state not in WITHDRAWABLE:
            raise wrong_state(action, self.state)

    def draft_content(self, command: DraftContent) -> list[BaseModel]:
        """拟定澄清内容: one wording for each point verified untrue. Whether a wording reveals the
        reporter is checked before (intake holds the identity; handlers.draft_content)."""
        self._content_step(
            Term(
                "draft the content (after the start, before the clarification)",
                "拟定澄清内容（须在启动后、澄清前）",
            )
        )
        assert self.started is not None and self.outcome is not None
        drafted_on = command.drafted_on
        not_before(drafted_on, self.started.started_on, field="drafted_on", step=START)
        if self.content_return is not None:
            not_before(drafted_on, self.content_return.returned_on, field="drafted_on", step=CONTENT_RETURN)
        return [ContentDrafted(drafted_on=drafted_on, points=check_wording(self.outcome, command))]

    def _drafted(self, action: Term) -> ContentDrafted:
        self._content_step(action)
        if self.content_state != "drafted" or self.content is None:
            raise Conflict(
                f"cannot {action.en}: the content is {self.content_state}",
                detail_zh=f"不能{action.zh}：澄清内容{CONTENT_STATE_NAMES[self.content_state]}",
                code="content_not_drafted",
            )
        return self.content

    def approve_content(self, command: ApproveContent, reviewer: Principal) -> list[BaseModel]:
        """审理室 approves the drafted wording: the documents print it."""
        draft = self._drafted(Term("approve the content", "审核通过澄清内容"))
        not_before(command.approved_on, draft.drafted_on, field="approved_on", step=CONTENT_DRAFT)
        return [
            ContentApproved(
                approved_on=command.approved_on, approver=reviewer.user_id, approver_name=reviewer.name
            )
        ]

    def return_content(self, command: ReturnContent, reviewer: Principal) -> list[BaseModel]:
        """审理室 returns the drafted wording, with the reason: the department drafts again."""
        draft = self._drafted(Term("return the content", "退回澄清内容"))
        reason = require_reason(command.reason, Term("the return of the content", "退回澄清内容"))
        not_before(command.returned_on, draft.drafted_on, field="returned_on", step=CONTENT_DRAFT)
        return [
            ContentReturned(
                returned_on=command.returned_on,
                reason=reason,
                returned_by=reviewer.user_id,
                returned_by_name=reviewer.name,
            )
        ]

    def approved_wording(self) -> dict[str, str]:
        """The approved 澄清内容 the documents print; a clarification without it is refused."""
        if self.content_state != "approved" or self.content is None or self.content_approval is None:
            raise Conflict(
                f"cannot clarify {self.case_id}: its content is {self.content_state}, not approved"
                " by the case-trial office",
                detail_zh=f"不能澄清 {self.case_id}：澄清内容{CONTENT_STATE_NAMES[self.content_state]}，"
                "须经审理室审核通过",
                code="content_not_approved",
            )
        return dict(self.content.points)

    def content_ready_on(self, day: date) -> bool:
        """Whether the approved 澄清内容 is there on `day` (a round clarifies only such matters)."""
        approval = self.content_approval
        return self.content_state == "approved" and approval is not None and approval.approved_on <= day

    def give_feedback(self, command: GiveFeedback) -> list[BaseModel]:
        """反馈 to the unit's party committee and its head."""
        performed = self._performed(Term("give feedback", "反馈"))
        if self.feedback is not None:
            raise Conflict("feedback was already given", detail_zh="已经反馈过", code="already_recorded")
        not_before(command.given_on, performed.performed_on, field="given_on", step=CLARIFICATION)
        return [FeedbackGiven(**command.model_dump(), documents=[document_id(self.case_id, "unit_letter")])]

    def acknowledge(self, command: Acknowledge) -> list[BaseModel]:
        performed = self._performed(Term("record the acknowledgement", "登记本人确认"))
        if self.acknowledgement is not None:
            raise Conflict(
                "the acknowledgement was already recorded",
                detail_zh="本人确认已经登记过",
                code="already_recorded",
            )
        acknowledged_on = command.acknowledged_on
        not_before(acknowledged_on, performed.performed_on, field="acknowledged_on", step=CLARIFICATION)
        return [AcknowledgementRecorded(**command.model_dump())]

    def file(self, command: File) -> list[BaseModel]:
        """备案: after feedback to the unit and the person's acknowledgement."""
        performed = self._performed(Term("file", "备案"))
        missing = [
            name
            for name, step in (
                (Term("feedback", "反馈"), self.feedback),
                (Term("acknowledgement", "本人确认"), self.acknowledgement),
            )
            if step is None
        ]
        if missing or self.feedback is None or self.acknowledgement is None:
            raise Conflict(
                f"cannot file before the {' and the '.join(m.en for m in missing)}",
                detail_zh=f"须先完成{'和'.join(m.zh for m in missing)}，才能备案",
                code="wrong_state",
            )
        filed_on = command.filed_on
        not_before(filed_on, self.feedback.given_on, field="filed_on", step=FEEDBACK)
        not_before(
            filed_on,
            self.acknowledgement.acknowledged_on,
            field="filed_on",
            step=ACKNOWLEDGEMENT,
        )
        return [
            ClarificationFiled(
                filed_on=filed_on,
                person=performed.person,
                points=performed.points,
                forms=performed.forms,
                concluded_on=performed.concluded_on,
                clarified_on=performed.performed_on,
            )
        ]

    def _performed(self, action: Term) -> ClarificationPerformed:
        if self.state != "performed" or self.performance is None:
            raise wrong_state(action, self.state)
        return self.performance


# --- 集中澄清: the round's stream and the decision over many matters ------------------------------


class Round(Aggregate):
    """集中澄清 of one jurisdiction in one quarter: a stream of its own (its own case too), held once."""

    noun = "round"
    noun_zh = "集中澄清"

    def __init__(self, jurisdiction: str, quarter: str) -> None:
        self.jurisdiction = jurisdiction
        self.quarter = quarter
        self.held: QuarterlyRoundHeld | None = None

    @property
    def stream_id(self) -> str:
        return round_stream_id(self.jurisdiction, self.quarter)

    def evolve(self, event: BaseModel) -> None:
        if isinstance(event, QuarterlyRoundHeld):
            self.held = event


@dataclass(frozen=True)
class RoundPlan:
    """What a quarterly round decides: each ready matter's clarification and the round itself."""

    performed: dict[str, list[BaseModel]]
    held: QuarterlyRoundHeld
    skipped: tuple[str, ...] = ()
    """Approved matters left for a later clarification: their content is not approved yet."""


def plan_round(matters: Sequence[Clarification], command: HoldRound, *, round_exists: bool) -> RoundPlan:
    """Every approved matter (approved on or before the day of the round) is clarified in one batch;
    a quarter's round is held once."""
    jurisdiction, quarter, held_on = command.jurisdiction, command.quarter, command.held_on
    round_id = round_stream_id(jurisdiction, quarter)
    if round_exists:
        raise Conflict(
            f"the round {round_id} was already held",
            detail_zh=f"集中澄清 {round_id} 已经开展过",
            code="round_held",
        )
    check_round_date(quarter, held_on)
    chosen = None if command.forms is None else clarification_forms(command.forms, command.scope or "")
    approved = sorted(
        (m for m in matters if m.state == "approved" and m.approval and m.approval.approved_on <= held_on),
        key=lambda m: m.case_id,
    )
    # A matter whose wording the case-trial office has not approved is not ready: it waits for a
    # clarification of its own rather than holding up the jurisdiction's round.
    ready = [m for m in approved if m.content_ready_on(held_on)]
    skipped = tuple(m.case_id for m in approved if not m.content_ready_on(held_on))
    if not ready:
        waiting = f" ({len(skipped)} wait for the approval of their content)" if skipped else ""
        waiting_zh = f"（{len(skipped)} 件的澄清内容尚未经审理室审核通过）" if skipped else ""
        raise RuleViolation(
            f"no approved matter of {jurisdiction} is ready for a round on {held_on.isoformat()}{waiting}",
            detail_zh=f"{jurisdiction} 没有可在 {held_on.isoformat()} 集中澄清的已审批事项{waiting_zh}",
            field="jurisdiction",
            code="nothing_ready",
        )
    clarification = Perform(performed_on=held_on, forms=chosen, scope=command.scope)
    performed = {m.case_id: m.perform(clarification, round_id=round_id) for m in ready}
    held = QuarterlyRoundHeld(round_id=round_id, quarter=quarter, held_on=held_on, matters=list(performed))
    return RoundPlan(performed=performed, held=held, skipped=skipped)
