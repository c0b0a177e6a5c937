"""Review (核查) domain: the verification of one matter and the quarterly results report, with
their rules as data and pure functions. No I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Final

from pydantic import BaseModel

from services.review.commands import (
    ApproveFalseAccusation,
    ApproveHandling,
    ConcludeVerification,
    ExamineObjection,
    ProposeHandling,
    RecordFinding,
    RefuseFalseAccusation,
    ReopenVerification,
    ReportResults,
    RunSweep,
    SendBackHandling,
)
from shared.aggregate import Aggregate
from shared.auth import Principal
from shared.dates import Quarter, not_before
from shared.envelope import CITY
from shared.errors import Conflict, Forbidden, NotFound, OutOfRange, RuleViolation, Term, require_reason
from shared.events.common import (
    FINDING_NAMES,
    HANDLING_METHOD_NAMES,
    TRUE_FINDINGS,
    UNTRUE_FINDINGS,
    Allegation,
    Finding,
    PriorityFlag,
)
from shared.events.intake import ObjectionLodged, ReportHandedOver
from shared.events.review import (
    CandidateScreened,
    FalseAccusationProposed,
    FalseAccusationReferred,
    FalseAccusationRefused,
    FindingRecorded,
    HandlingDecided,
    HandlingProposed,
    HandlingSentBack,
    ObjectionExamined,
    ObjectionReceived,
    ResultsReportedBack,
    VerificationConcluded,
    VerificationOpened,
    VerificationReopened,
)

# ---------------------------------------------------------------------------------------------
# Rules as data
# ---------------------------------------------------------------------------------------------


FALSE_ACCUSATION_APPROVAL_LEVEL: Final[str] = CITY
"""诬告陷害 must be approved at city level or above; the highest level zhengming knows is the city."""

RELABELLED_AFTER_CONCLUSION: Final[frozenset[Finding]] = frozenset({"untrue", "not_proven"})
"""The findings a 诬告陷害 may replace once the verification is concluded (the reporter is usually
investigated after the allegation was verified): untrue or not proven, never an honest mistake
(错告) nor anything found true or not a violation."""

SWEEP_WINDOW_YEARS: Final[int] = 3
"""大起底 looks back over the verifications concluded in the last three years."""

STREAM_PREFIX: Final[str] = "verification-"


def verification_stream(case_id: str) -> str:
    return f"{STREAM_PREFIX}{case_id}"


def results_stream(jurisdiction: str, quarter: str) -> str:
    return f"results-{jurisdiction}-{quarter}"


def sweep_id_for(jurisdiction: str, as_of: date) -> str:
    """One sweep per jurisdiction and day: re-running it is recognised by this id."""
    return f"{jurisdiction}-sweep-{as_of.isoformat()}"


# The steps a later date must not precede (shared.dates.not_before).
OPENING = Term("the opening", "核查启动")
DECISION = Term("the decision", "处置决定")
PROPOSAL = Term("the proposed handling", "处置建议")
SEND_BACK = Term("the send-back", "退回")
REFERRAL = Term("a referral", "移送")
FINDING = Term("a finding", "认定")
OBJECTION = Term("the objection", "异议提出")
FALSE_ACCUSATION_PROPOSAL = Term("the proposed false accusation", "诬告陷害认定建议")
APPROVAL = Term("an approval", "审批")
CONCLUSION = Term("the conclusion", "办结")
REOPENING = Term("the reopening", "补充核查启动")

# ---------------------------------------------------------------------------------------------
# Rules as pure functions
# ---------------------------------------------------------------------------------------------


def eligible_for_pool(findings: Iterable[Finding]) -> bool:
    """备选库 eligibility of a concluded matter: at least one point untrue and no point true or
    partly true.

    Reading of DESIGN ("at least one untrue point and nothing true"): "nothing true" covers 属实
    and 部分属实 (partly true is also true, and the negative list excludes it). 错告 (honest
    mistake) and 诬告陷害 (false accusation) are untrue points too: they differ from 失实 only in
    the reporter's intent, and the person deserves the clarification all the same. 查无实据 (not
    proven) neither qualifies nor disqualifies: unresolved is not untrue, but it does not taint the
    points verified untrue. So {untrue, not_proven} and {false_accusation} are eligible;
    {not_proven} alone is not.
    """
    found = set(findings)
    return bool(found & UNTRUE_FINDINGS) and not found & TRUE_FINDINGS


def overall_outcome(findings: Iterable[Finding]) -> str:
    """One word per matter for the quarterly report to the letters-and-visits office.

    In order: "true" if any point is true, "partly_true" if any is partly true, then
    "false_accusation" and "honest_mistake" (eligible too, but the reporter's part is what the
    office must follow up), "eligible" for the other matters of the pool, and "not_proven".
    """
    found = set(findings)
    for outcome in ("true", "partly_true", "false_accusation", "honest_mistake"):
        if outcome in found:
            return outcome
    if eligible_for_pool(found):
        return "eligible"
    return "not_proven"


def reaches(principal: Principal, jurisdiction: str, *, false_accusation: bool) -> bool:
    """Whether a caller may see and act on a verification: in their jurisdictions, or — the head
    of the city, who approves every 诬告陷害 (市级以上审批) — one with a 诬告陷害 proposed or found."""
    if principal.sees(jurisdiction):
        return True
    return (
        false_accusation
        and principal.role == "head"
        and FALSE_ACCUSATION_APPROVAL_LEVEL in principal.jurisdictions
    )


def check_collective(collective: bool) -> None:
    """The handling decision is taken collectively (集体研究), never by one person."""
    if collective is not True:
        raise RuleViolation(
            "the handling decision must be taken collectively (集体研究)",
            detail_zh="处置决定须经集体研究作出",
            field="collective",
            code="collective_decision_required",
        )


def check_approver(approver: Principal) -> str:
    """The approving head's user id (their own token's: nobody approves in another's name)."""
    approved_by = approver.user_id.strip()
    if not approved_by:
        raise RuleViolation(
            "the approving head must be named",
            detail_zh="须写明审批的负责人",
            field="approved_by",
            code="approval_required",
        )
    return approved_by


def check_false_accusation_approver(approver: Principal) -> str:
    """诬告陷害 is approved at city level or above: by a head whose token holds the city. Returns
    the level approving it."""
    if FALSE_ACCUSATION_APPROVAL_LEVEL not in approver.jurisdictions:
        raise Forbidden(
            "a suspected false accusation (诬告陷害) is approved at city level or above: a head of "
            f"{FALSE_ACCUSATION_APPROVAL_LEVEL} must approve it",
            detail_zh=f"认定诬告陷害须经市级以上审批：须由 {FALSE_ACCUSATION_APPROVAL_LEVEL} 的负责人审批",
            code="false_accusation_needs_city_approval",
        )
    return FALSE_ACCUSATION_APPROVAL_LEVEL


def check_false_accusation_after_conclusion(previous: Finding | None) -> None:
    """Once the verification is concluded, only a point found untrue or not proven may turn out a
    false accusation (the honest mistake has its own rule, check_not_relabelling_honest_mistake)."""
    if previous not in RELABELLED_AFTER_CONCLUSION:
        was = f"{FINDING_NAMES[previous]}（{previous}）" if previous is not None else "无认定"
        raise Conflict(
            "after the conclusion, a false accusation (诬告陷害) is found only on a point found untrue"
            f" or not proven; this one was found {previous}",
            detail_zh=f"核查办结后，只有认定为失实或查无实据的反映问题才能认定为诬告陷害；该问题已认定为{was}",
            field="finding",
            code="false_accusation_only_on_untrue_point",
        )


def check_referral(finding: Finding, referred_on: date | None) -> None:
    """Only a false accusation is referred, and its referral carries a date; an honest mistake
    (错告) is never treated as a false accusation, so it is never referred."""
    if finding == "false_accusation" and referred_on is None:
        raise RuleViolation(
            "a false accusation is referred on a given date: referred_on is required",
            detail_zh="诬告陷害须写明移送日期（referred_on）",
            field="referred_on",
            code="referral_date_required",
        )
    if finding != "false_accusation" and referred_on is not None:
        raise RuleViolation(
            f"only a false accusation is referred; a finding of {finding} is not",
            detail_zh=f"只有诬告陷害才移送处理；认定为{FINDING_NAMES[finding]}（{finding}）的不移送",
            field="referred_on",
            code="referral_only_for_false_accusation",
        )


def check_not_relabelling_honest_mistake(previous: Finding | None, finding: Finding) -> None:
    """An honest mistake (错告) is never labelled false accusation (诬告陷害): not while the
    verification runs, not after its conclusion, not in a supplementary verification."""
    if previous == "honest_mistake" and finding == "false_accusation":
        raise Conflict(
            "the allegation was found an honest mistake (错告); it is never labelled false accusation",
            detail_zh="该反映问题已认定为错告，不得再认定为诬告陷害",
            field="finding",
            code="honest_mistake_not_false_accusation",
        )


def missing_findings(allegations: Sequence[Allegation], findings: Mapping[str, object]) -> list[str]:
    """The allegations (in report order) that have no finding yet."""
    return [a.allegation_id for a in allegations if a.allegation_id not in findings]


def years_before(day: date, years: int) -> date:
    """The same calendar day `years` earlier; 29 February falls back to 28 February."""
    if day.year - years < 1:
        raise OutOfRange(
            f"{years} years before {day.isoformat()} lie before the calendar",
            detail_zh=f"{day.isoformat()} 之前 {years} 年超出了日历范围",
            field="as_of",
        )
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def sweep_window(as_of: date) -> tuple[date, date]:
    """大起底 window: the three years before `as_of`, both ends included (a matter concluded
    exactly three years before, or on `as_of` itself, is in; one day older is out)."""
    return years_before(as_of, SWEEP_WINDOW_YEARS), as_of


def in_sweep_window(concluded_on: date, as_of: date) -> bool:
    start, end = sweep_window(as_of)
    return start <= concluded_on <= end


def quarter_bounds(quarter: str) -> tuple[date, date]:
    """First and last day of a '2023Q1' style quarter."""
    parsed = Quarter.parse(quarter)
    if parsed is None:
        raise OutOfRange(
            f"quarter {quarter!r} is not a quarter", detail_zh=f"{quarter!r} 不是有效的季度", field="quarter"
        )
    return parsed.bounds()


def check_quarter_over(quarter: str, reported_on: date) -> None:
    """A quarter's results are reported back once, so only when the quarter has ended (its last
    day counts): a report made earlier would miss what concludes later in the quarter."""
    _, last = quarter_bounds(quarter)
    if reported_on < last:
        raise RuleViolation(
            f"the results of {quarter} can be reported from {last.isoformat()} on",
            detail_zh=f"{quarter} 的核查结果须在 {last.isoformat()} 及以后报送",
            field="reported_on",
            code="quarter_not_over",
        )


def dedupe_flags(flags: Iterable[PriorityFlag]) -> list[PriorityFlag]:
    """Each priority flag once, in the order given."""
    return list(dict.fromkeys(flags))


def check_flags_for_candidates(flagged: Iterable[str], candidates: Iterable[str]) -> None:
    """A sweep's priority flags name only the matters it screens."""
    stray = sorted(set(flagged) - set(candidates))
    if stray:
        raise RuleViolation(
            f"priority flags given for matters this sweep does not screen: {', '.join(stray)}",
            detail_zh=f"以下事项不在本次大起底筛查范围内，不能标记优先澄清：{'、'.join(stray)}",
            field=f"priority_flags.{stray[0]}",
            code="flags_for_unscreened_case",
        )


# ---------------------------------------------------------------------------------------------
# Aggregates
# ---------------------------------------------------------------------------------------------


class Verification(Aggregate):
    """核查: the handling department's verification of one matter, from its opening to 办结
    (conclusion), any 诬告陷害 found and 补充核查 (supplementary verification) after it, and the
    大起底 screenings.

    The approvals are the approver's own commands: the head of the jurisdiction approves the
    proposed handling (or sends it back), a city head approves a proposed 诬告陷害 (or refuses it);
    the approver is the user whose token carries the command."""

    noun = "verification"
    noun_zh = "核查"

    def __init__(self, case_id: str, jurisdiction: str = "") -> None:
        self._case_id = case_id
        self.jurisdiction = jurisdiction
        self.opened: VerificationOpened | None = None
        self.proposal: HandlingProposed | None = None  # pending the head's approval
        self.sent_back: HandlingSentBack | None = None  # the last send-back
        self.decision: HandlingDecided | None = None
        self.findings: dict[str, FindingRecorded] = {}
        self.proposed_false_accusations: dict[str, FalseAccusationProposed] = {}  # pending
        self.referrals: dict[str, FalseAccusationReferred] = {}
        self.conclusion: VerificationConcluded | None = None  # the latest
        self.conclusions = 0
        self.reopened: VerificationReopened | None = None  # while the supplementary verification runs
        self.reopen_triggers: set[str] = set()
        self.sweeps: set[str] = set()
        # 异议 (objections) of the real-name reporter and their re-examination, by objection id.
        self.objections: dict[str, ObjectionReceived] = {}
        self.objection_results: dict[str, ObjectionExamined] = {}

    @property
    def case_id(self) -> str:
        return self._case_id

    @property
    def stream_id(self) -> str:
        return verification_stream(self._case_id)

    def visible_to(self, principal: Principal) -> bool:
        found = bool(self.proposed_false_accusations or self.referrals)
        return reaches(principal, self.jurisdiction, false_accusation=found)

    def evolve(self, payload: BaseModel) -> None:
        """State changes only here, one event at a time."""
        match payload:
            case VerificationOpened():
                self.opened = payload
            case HandlingProposed():
                self.proposal = payload
            case HandlingSentBack():
                self.proposal = None
                self.sent_back = payload
            case HandlingDecided():
                self.decision = payload
                self.proposal = None
            case FalseAccusationProposed():
                self.proposed_false_accusations[payload.allegation_id] = payload
            case FalseAccusationRefused():
                self.proposed_false_accusations.pop(payload.allegation_id, None)
            case FindingRecorded():
                self.findings[payload.allegation_id] = payload
                self.proposed_false_accusations.pop(payload.allegation_id, None)
            case FalseAccusationReferred():
                self.referrals[payload.allegation_id] = payload
            case VerificationConcluded():
                self.conclusion = payload
                self.conclusions += 1
                self.reopened = None
            case VerificationReopened():
                self.reopened = payload
                if payload.trigger is not None:
                    self.reopen_triggers.add(payload.trigger)
            case CandidateScreened():
                self.sweeps.add(payload.sweep_id)
            case ObjectionReceived():
                self.objections[payload.objection_id] = payload
            case ObjectionExamined():
                self.objection_results[payload.objection_id] = payload
            case _:
                raise TypeError(f"not a review verification event: {type(payload).__name__}")

    @property
    def concluded(self) -> bool:
        """Concluded and not reopened since."""
        return self.conclusion is not None and self.reopened is None

    @property
    def state(self) -> str:
        if self.reopened is not None:
            return "reopened"
        if self.conclusion is not None:
            return "concluded"
        if self.decision is not None:
            return "decided"
        if self.proposal is not None:
            return "proposed"
        return "open" if self.opened is not None else "new"

    # -- commands --------------------------------------------------------------------------

    def open(self, handed: ReportHandedOver) -> list[BaseModel]:
        """The matter reaches the handling department; a second handover opens nothing."""
        if self.opened is not None:
            return []
        return [
            VerificationOpened(
                department=handed.department,
                opened_on=handed.handed_on,
                received_on=handed.received_on,
                real_name=handed.real_name,
                subjects=list(handed.subjects),
                allegations=list(handed.allegations),
            )
        ]

    def _require_undecided(self) -> VerificationOpened:
        opened = self._require_opened()
        if self.decision is not None:
            method = self.decision.method
            raise Conflict(
                f"the matter was already decided ({method})",
                detail_zh=f"该件已作出处置决定（{HANDLING_METHOD_NAMES[method]}）",
                code="already_decided",
            )
        return opened

    def propose(self, command: ProposeHandling) -> list[BaseModel]:
        """The department's collective decision, proposed to the head; again after a send-back."""
        opened = self._require_undecided()
        if self.proposal is not None:
            raise Conflict(
                "the proposed handling awaits the head's approval",
                detail_zh="处置建议正待负责人审批",
                code="proposal_pending",
            )
        check_collective(command.collective)
        not_before(command.decided_on, opened.opened_on, field="decided_on", step=OPENING)
        if self.sent_back is not None:
            not_before(command.decided_on, self.sent_back.sent_back_on, field="decided_on", step=SEND_BACK)
        return [HandlingProposed(method=command.method, decided_on=command.decided_on, note=command.note)]

    def _pending_proposal(self) -> HandlingProposed:
        self._require_undecided()
        if self.proposal is None:
            raise Conflict(
                "no proposed handling awaits the head's approval: the department proposes first",
                detail_zh="该件没有待负责人审批的处置建议，须由承办部门先提出",
                code="no_pending_proposal",
            )
        return self.proposal

    def approve_handling(self, command: ApproveHandling, approver: Principal) -> list[BaseModel]:
        """The head approves the proposal: the decision, approved by the head's own user."""
        proposal = self._pending_proposal()
        approved_by = check_approver(approver)
        not_before(command.approved_on, proposal.decided_on, field="approved_on", step=PROPOSAL)
        return [
            HandlingDecided(
                method=proposal.method,
                decided_on=proposal.decided_on,
                approved_by=approved_by,
                note=proposal.note,
                approved_on=command.approved_on,
                approver_name=approver.name,
            )
        ]

    def send_back_handling(self, command: SendBackHandling) -> list[BaseModel]:
        """The head sends the proposal back; the department proposes again."""
        proposal = self._pending_proposal()
        reason = require_reason(command.reason, Term("sending the proposal back", "退回处置建议"))
        not_before(command.sent_back_on, proposal.decided_on, field="sent_back_on", step=PROPOSAL)
        return [HandlingSentBack(sent_back_on=command.sent_back_on, reason=reason)]

    def record_finding(self, command: RecordFinding) -> list[BaseModel]:
        """A finding on one allegation. A false accusation is proposed to a city head (also once
        the verification is concluded, on a point found untrue or not proven); a supplementary
        verification may find an allegation again."""
        opened = self._require_opened()
        if self.decision is None:
            raise Conflict(
                "a finding needs the handling decision first",
                detail_zh="须先作出处置决定，才能认定反映问题",
                code="wrong_state",
            )
        allegation_id, finding = command.allegation_id, command.finding
        if self.concluded and finding != "false_accusation":
            raise Conflict("the verification is concluded", detail_zh="核查已办结", code="wrong_state")
        if allegation_id not in {a.allegation_id for a in opened.allegations}:
            raise RuleViolation(
                f"{allegation_id} is not one of the matter's allegations",
                detail_zh=f"{allegation_id} 不是该件的反映问题",
                field="allegation_id",
                code="unknown_allegation",
            )
        if allegation_id in self.proposed_false_accusations:
            raise Conflict(
                f"a false accusation proposed on {allegation_id} awaits the city's approval",
                detail_zh=f"反映问题 {allegation_id} 的诬告陷害认定建议正待市级审批",
                field="allegation_id",
                code="false_accusation_pending",
            )
        recorded = self.findings.get(allegation_id)
        previous = recorded.finding if recorded else None
        check_not_relabelling_honest_mistake(previous, finding)
        if recorded is not None and (self.concluded or self.reopened is not None):
            if previous == "false_accusation":
                raise Conflict(
                    f"allegation {allegation_id} was found a false accusation and referred; that stands",
                    detail_zh=f"反映问题 {allegation_id} 已认定为诬告陷害并移送，不再改变",
                    field="allegation_id",
                    code="already_recorded",
                )
            if self.concluded:
                check_false_accusation_after_conclusion(previous)
        elif recorded is not None:
            raise Conflict(
                f"allegation {allegation_id} already has its finding ({previous})",
                detail_zh=f"反映问题 {allegation_id} 已有认定（{FINDING_NAMES[recorded.finding]}）",
                field="allegation_id",
                code="already_recorded",
            )
        elif self.concluded:
            check_false_accusation_after_conclusion(None)
        check_referral(finding, command.referred_on)
        decided_on = self.decision.decided_on
        if command.found_on is not None:
            not_before(command.found_on, decided_on, field="found_on", step=DECISION)
            if self.concluded:
                assert self.conclusion is not None
                not_before(command.found_on, self.conclusion.concluded_on, field="found_on", step=CONCLUSION)
            if self.reopened is not None:
                not_before(command.found_on, self.reopened.reopened_on, field="found_on", step=REOPENING)
        if finding == "false_accusation":
            referred_on = command.referred_on
            assert referred_on is not None  # check_referral
            not_before(referred_on, decided_on, field="referred_on", step=DECISION)
            return [
                FalseAccusationProposed(
                    allegation_id=allegation_id,
                    basis=command.basis,
                    found_on=command.found_on,
                    referred_on=referred_on,
                    referred_to=command.referred_to,
                )
            ]
        return [
            FindingRecorded(
                found_on=command.found_on, allegation_id=allegation_id, finding=finding, basis=command.basis
            )
        ]

    def _proposed_false_accusation(self, allegation_id: str) -> FalseAccusationProposed:
        self._require_opened()
        proposed = self.proposed_false_accusations.get(allegation_id)
        if proposed is None:
            raise NotFound(
                f"no false accusation proposed on {allegation_id} awaits approval",
                detail_zh=f"反映问题 {allegation_id} 没有待审批的诬告陷害认定建议",
            )
        return proposed

    def approve_false_accusation(
        self, allegation_id: str, command: ApproveFalseAccusation, approver: Principal
    ) -> list[BaseModel]:
        """A city head approves the proposed 诬告陷害: the finding, its referral and, on a concluded
        verification, the conclusion revised with it."""
        proposed = self._proposed_false_accusation(allegation_id)
        level = check_false_accusation_approver(approver)
        approved_by = check_approver(approver)
        approved_on = command.approved_on
        assert self.decision is not None  # a proposal needs the decision
        proposal_day = proposed.found_on or self.decision.decided_on
        not_before(approved_on, proposal_day, field="approved_on", step=FALSE_ACCUSATION_PROPOSAL)
        if self.concluded:
            assert self.conclusion is not None
            not_before(approved_on, self.conclusion.concluded_on, field="approved_on", step=CONCLUSION)
        recorded = FindingRecorded(
            approved_on=approved_on,
            found_on=proposed.found_on,
            allegation_id=allegation_id,
            finding="false_accusation",
            basis=proposed.basis,
            approved_by=approved_by,
            approval_jurisdiction=level,
        )
        events: list[BaseModel] = [
            recorded,
            FalseAccusationReferred(
                allegation_id=allegation_id,
                referred_on=proposed.referred_on,
                referred_to=proposed.referred_to,
            ),
        ]
        if self.concluded:
            events.append(self._concluded(approved_on, {**self.findings, allegation_id: recorded}))
        return events

    def refuse_false_accusation(
        self, allegation_id: str, command: RefuseFalseAccusation, approver: Principal
    ) -> list[BaseModel]:
        """A city head refuses the proposed 诬告陷害; the allegation keeps what it had (or has no
        finding yet) and the department records another."""
        proposed = self._proposed_false_accusation(allegation_id)
        check_false_accusation_approver(approver)
        reason = require_reason(command.reason, Term("refusing a false accusation", "不予认定诬告陷害"))
        assert self.decision is not None
        proposal_day = proposed.found_on or self.decision.decided_on
        not_before(command.refused_on, proposal_day, field="refused_on", step=FALSE_ACCUSATION_PROPOSAL)
        return [
            FalseAccusationRefused(allegation_id=allegation_id, refused_on=command.refused_on, reason=reason)
        ]

    def conclude(self, command: ConcludeVerification) -> list[BaseModel]:
        opened = self._require_opened()
        if self.decision is None:
            raise Conflict(
                "the verification cannot conclude before its handling decision",
                detail_zh="作出处置决定之前，核查不能办结",
                code="wrong_state",
            )
        if self.concluded:
            raise Conflict(
                "the verification is already concluded", detail_zh="核查已经办结", code="already_concluded"
            )
        if self.proposed_false_accusations:
            pending = sorted(self.proposed_false_accusations)
            raise Conflict(
                f"false accusations proposed on {', '.join(pending)} await the city's approval",
                detail_zh=f"以下反映问题的诬告陷害认定建议正待市级审批，核查不能办结：{'、'.join(pending)}",
                field="findings",
                code="false_accusation_pending",
            )
        missing = missing_findings(opened.allegations, self.findings)
        if missing:
            raise RuleViolation(
                f"allegations without a finding: {', '.join(missing)}",
                detail_zh=f"以下反映问题尚未认定：{'、'.join(missing)}",
                field="findings",
                code="findings_missing",
            )
        concluded_on = command.concluded_on
        not_before(concluded_on, self.decision.decided_on, field="concluded_on", step=DECISION)
        for referral in self.referrals.values():
            not_before(concluded_on, referral.referred_on, field="concluded_on", step=REFERRAL)
        for recorded in self.findings.values():
            if recorded.found_on is not None:
                not_before(concluded_on, recorded.found_on, field="concluded_on", step=FINDING)
            if recorded.approved_on is not None:
                not_before(concluded_on, recorded.approved_on, field="concluded_on", step=APPROVAL)
        if self.reopened is not None:
            not_before(concluded_on, self.reopened.reopened_on, field="concluded_on", step=REOPENING)
        return [self._concluded(concluded_on, self.findings)]

    def _concluded(
        self, concluded_on: date, recorded: Mapping[str, FindingRecorded]
    ) -> VerificationConcluded:
        """The conclusion with the findings as they stand; revision 0 the first time, +1 each later."""
        opened = self._require_opened()
        findings = {a.allegation_id: recorded[a.allegation_id].finding for a in opened.allegations}
        return VerificationConcluded(
            concluded_on=concluded_on,
            received_on=opened.received_on,
            findings=findings,
            untrue_points=[a for a in opened.allegations if findings[a.allegation_id] in UNTRUE_FINDINGS],
            subjects=list(opened.subjects),
            eligible_for_pool=eligible_for_pool(findings.values()),
            revision=self.conclusions,
        )

    def reopen(self, command: ReopenVerification) -> list[BaseModel]:
        """补充核查: a concluded verification reopens, once per triggering event. One that is not
        concluded (not opened here, still running, or already reopened) reopens nothing."""
        if not self.concluded or (command.trigger is not None and command.trigger in self.reopen_triggers):
            return []
        return [
            VerificationReopened(
                reopened_on=command.reopened_on,
                origin=command.origin,
                reason=require_reason(command.reason, Term("a reopening", "补充核查")),
                trigger=command.trigger,
            )
        ]

    def is_sweep_candidate(self, as_of: date) -> bool:
        """Concluded eligible within the sweep window."""
        return (
            self.conclusion is not None
            and self.concluded
            and self.conclusion.eligible_for_pool
            and in_sweep_window(self.conclusion.concluded_on, as_of)
        )

    def screen(self, sweep: RunSweep) -> list[BaseModel]:
        """大起底: screened into the pool once per sweep, with the flags the sweep gives the matter."""
        sweep_id = sweep_id_for(sweep.jurisdiction, sweep.as_of)
        if sweep_id in self.sweeps:
            return []
        if not self.is_sweep_candidate(sweep.as_of):
            raise Conflict(
                f"{self.case_id} is not a candidate of sweep {sweep_id}",
                detail_zh=f"{self.case_id} 不在大起底 {sweep_id} 的筛查范围内",
                code="wrong_state",
            )
        flags = sweep.priority_flags.get(self.case_id, [])
        return [
            CandidateScreened(sweep_id=sweep_id, screened_on=sweep.as_of, priority_flags=dedupe_flags(flags))
        ]

    # -- 异议: the real-name reporter's objection (kept apart from the chain above) ------------

    def receive_objection(self, lodged: ObjectionLodged) -> list[BaseModel]:
        """An objection intake recorded reaches the verification, whatever its state (one lodged
        before the conclusion is recorded as well); a redelivered one records nothing."""
        if lodged.objection_id in self.objections:
            return []
        return [
            ObjectionReceived(
                objection_id=lodged.objection_id,
                lodged_on=lodged.lodged_on,
                grounds=lodged.grounds,
                new_evidence=lodged.new_evidence,
            )
        ]

    def examine_objection(self, objection_id: str, command: ExamineObjection) -> list[BaseModel]:
        """复查: the handling department re-examines the objection once, not before it was lodged,
        and says why it is upheld or not; an objection upheld after the conclusion reopens the
        verification."""
        self._require_opened()
        received = self.objections.get(objection_id)
        if received is None:
            raise NotFound(
                f"verification {self.case_id} has no objection {objection_id}",
                detail_zh=f"核查 {self.case_id} 没有异议 {objection_id}",
                field="objection_id",
                code="objection_not_found",
            )
        examined = self.objection_results.get(objection_id)
        if examined is not None:
            raise Conflict(
                f"objection {objection_id} was re-examined on {examined.examined_on.isoformat()}",
                detail_zh=f"异议 {objection_id} 已于 {examined.examined_on.isoformat()} 复查",
                field="objection_id",
                code="already_recorded",
            )
        require_reason(command.reason, Term("the re-examination of the objection", "复查异议"))
        not_before(command.examined_on, received.lodged_on, field="examined_on", step=OBJECTION)
        examined_now = ObjectionExamined(
            objection_id=objection_id,
            examined_on=command.examined_on,
            upheld=command.upheld,
            reason=command.reason,
        )
        if not command.upheld:
            return [examined_now]
        # Upheld after the conclusion: the verification reopens on the new facts (补充核查), and its
        # revised conclusion reaches the clarification office. Before it, the running verification
        # takes them in.
        reopening = ReopenVerification(
            reopened_on=command.examined_on,
            origin="objection",
            reason=f"异议成立：{command.reason.strip()}",
            trigger=objection_id,
        )
        return [examined_now, *self.reopen(reopening)]

    def _require_opened(self) -> VerificationOpened:
        if self.opened is None:
            raise self.missing()
        return self.opened


class ResultsReport(Aggregate):
    """季度结果反馈: the handling department's quarterly report of verification results back to the
    letters-and-visits office (信访室) of one jurisdiction."""

    noun = "results report"
    noun_zh = "季度结果报告"

    def __init__(self, jurisdiction: str, quarter: str) -> None:
        self.jurisdiction = jurisdiction
        self.quarter = quarter
        self.reported: ResultsReportedBack | None = None

    @property
    def stream_id(self) -> str:
        return results_stream(self.jurisdiction, self.quarter)

    def evolve(self, payload: BaseModel) -> None:
        if not isinstance(payload, ResultsReportedBack):
            raise TypeError(f"not a results report event: {type(payload).__name__}")
        self.reported = payload

    def report(self, command: ReportResults, concluded: Mapping[str, Iterable[Finding]]) -> list[BaseModel]:
        """`concluded`: the findings of every matter of the jurisdiction concluded in the quarter."""
        if self.reported is not None:
            raise Conflict(
                f"the results of {self.quarter} were reported on {self.reported.reported_on.isoformat()}",
                detail_zh=f"{self.quarter} 的核查结果已于 {self.reported.reported_on.isoformat()} 报送",
                code="already_reported",
            )
        check_quarter_over(self.quarter, command.reported_on)
        matters = {case_id: overall_outcome(findings) for case_id, findings in sorted(concluded.items())}
        return [ResultsReportedBack(quarter=self.quarter, reported_on=command.reported_on, matters=matters)]
