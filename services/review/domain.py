"""Review (核查) domain: the verification of one matter and the quarterly results report, with
their rules as data and pure functions. No I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Final

from pydantic import BaseModel

from services.review.commands import (
    ConcludeVerification,
    DecideHandling,
    ExamineObjection,
    RecordFinding,
    ReportResults,
    RunSweep,
)
from shared.aggregate import Aggregate
from shared.dates import Quarter, not_before
from shared.envelope import CITY
from shared.errors import Conflict, NotFound, OutOfRange, RuleViolation, Term
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
    FalseAccusationReferred,
    FindingRecorded,
    HandlingDecided,
    ObjectionExamined,
    ObjectionReceived,
    ResultsReportedBack,
    VerificationConcluded,
    VerificationOpened,
)

# ---------------------------------------------------------------------------------------------
# Rules as data
# ---------------------------------------------------------------------------------------------


FALSE_ACCUSATION_APPROVAL_LEVEL: Final[str] = CITY
"""诬告陷害 must be approved at city level or above; the highest level zhengming knows is the city."""

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
REFERRAL = Term("a referral", "移送")
FINDING = Term("a finding", "认定")
OBJECTION = Term("the objection", "异议提出")

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


def check_collective(collective: bool) -> None:
    """The handling decision is taken collectively (集体研究), never by one person."""
    if collective is not True:
        raise RuleViolation(
            "the handling decision must be taken collectively (集体研究)",
            detail_zh="处置决定须经集体研究作出",
            field="collective",
            code="collective_decision_required",
        )


def check_approved(approved_by: str | None, *, field_name: str = "approved_by") -> str:
    """A handling decision needs the approving head's user id."""
    approver = (approved_by or "").strip()
    if not approver:
        raise RuleViolation(
            "the approving head must be named",
            detail_zh="须写明审批的负责人",
            field=field_name,
            code="approval_required",
        )
    return approver


def check_false_accusation_approval(
    finding: Finding, approved_by: str | None, approval_jurisdiction: str | None
) -> None:
    """诬告陷害 needs approval at city level or above: an approver and the city's code."""
    if finding != "false_accusation":
        return
    if not (approved_by or "").strip() or approval_jurisdiction != FALSE_ACCUSATION_APPROVAL_LEVEL:
        raise RuleViolation(
            "a suspected false accusation (诬告陷害) needs approval at city level or above: give "
            f"approved_by and approval_jurisdiction {FALSE_ACCUSATION_APPROVAL_LEVEL}",
            detail_zh="认定诬告陷害须经市级以上审批：请填写 approved_by，approval_jurisdiction 须为"
            f" {FALSE_ACCUSATION_APPROVAL_LEVEL}",
            field="approval_jurisdiction" if (approved_by or "").strip() else "approved_by",
            code="false_accusation_needs_city_approval",
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
    """An honest mistake (错告) is never labelled false accusation (诬告陷害). One finding per
    allegation already forbids any relabelling; this names the case that matters most."""
    if previous == "honest_mistake" and finding == "false_accusation":
        raise Conflict(
            "the allegation was found an honest mistake (错告); it is never labelled false accusation",
            detail_zh="该反映问题已认定为错告，不得再认定为诬告陷害",
            field="finding",
            code="honest_mistake_not_false_accusation",
        )


def check_reason_given(reason: str) -> None:
    """The re-examination of an objection says why it is upheld or not (not only spaces)."""
    if not reason.strip():
        raise RuleViolation(
            "the re-examination states its reason",
            detail_zh="复查异议须写明理由",
            field="reason",
            code="reason_required",
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
    (conclusion) and any 大起底 screening afterwards."""

    noun = "verification"
    noun_zh = "核查"

    def __init__(self, case_id: str, jurisdiction: str = "") -> None:
        self._case_id = case_id
        self.jurisdiction = jurisdiction
        self.opened: VerificationOpened | None = None
        self.decision: HandlingDecided | None = None
        self.findings: dict[str, FindingRecorded] = {}
        self.referrals: dict[str, FalseAccusationReferred] = {}
        self.conclusion: VerificationConcluded | None = None
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

    def evolve(self, payload: BaseModel) -> None:
        """State changes only here, one event at a time."""
        match payload:
            case VerificationOpened():
                self.opened = payload
            case HandlingDecided():
                self.decision = payload
            case FindingRecorded():
                self.findings[payload.allegation_id] = payload
            case FalseAccusationReferred():
                self.referrals[payload.allegation_id] = payload
            case VerificationConcluded():
                self.conclusion = payload
            case CandidateScreened():
                self.sweeps.add(payload.sweep_id)
            case ObjectionReceived():
                self.objections[payload.objection_id] = payload
            case ObjectionExamined():
                self.objection_results[payload.objection_id] = payload
            case _:
                raise TypeError(f"not a review verification event: {type(payload).__name__}")

    @property
    def state(self) -> str:
        if self.conclusion is not None:
            return "concluded"
        if self.decision is not None:
            return "decided"
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

    def decide(self, command: DecideHandling) -> list[BaseModel]:
        opened = self._require_opened()
        if self.decision is not None:
            method = self.decision.method
            raise Conflict(
                f"the matter was already decided ({method})",
                detail_zh=f"该件已作出处置决定（{HANDLING_METHOD_NAMES[method]}）",
                code="already_decided",
            )
        check_collective(command.collective)
        approver = check_approved(command.approved_by)
        not_before(command.decided_on, opened.opened_on, field="decided_on", step=OPENING)
        return [
            HandlingDecided(
                method=command.method, decided_on=command.decided_on, approved_by=approver, note=command.note
            )
        ]

    def record_finding(self, command: RecordFinding) -> list[BaseModel]:
        opened = self._require_opened()
        if self.decision is None:
            raise Conflict(
                "a finding needs the handling decision first",
                detail_zh="须先作出处置决定，才能认定反映问题",
                code="wrong_state",
            )
        if self.conclusion is not None:
            raise Conflict("the verification is concluded", detail_zh="核查已办结", code="wrong_state")
        allegation_id, finding = command.allegation_id, command.finding
        if allegation_id not in {a.allegation_id for a in opened.allegations}:
            raise RuleViolation(
                f"{allegation_id} is not one of the matter's allegations",
                detail_zh=f"{allegation_id} 不是该件的反映问题",
                field="allegation_id",
                code="unknown_allegation",
            )
        previous = self.findings.get(allegation_id)
        check_not_relabelling_honest_mistake(previous.finding if previous else None, finding)
        if previous is not None:
            raise Conflict(
                f"allegation {allegation_id} already has its finding ({previous.finding})",
                detail_zh=f"反映问题 {allegation_id} 已有认定（{FINDING_NAMES[previous.finding]}）",
                field="allegation_id",
                code="already_recorded",
            )
        check_false_accusation_approval(finding, command.approved_by, command.approval_jurisdiction)
        check_referral(finding, command.referred_on)
        if command.found_on is not None:
            not_before(command.found_on, self.decision.decided_on, field="found_on", step=DECISION)
        recorded: list[BaseModel] = [
            FindingRecorded(
                found_on=command.found_on,
                allegation_id=allegation_id,
                finding=finding,
                basis=command.basis,
                approved_by=(command.approved_by or "").strip() or None,
                approval_jurisdiction=command.approval_jurisdiction,
            )
        ]
        if finding == "false_accusation":
            referred_on = command.referred_on
            assert referred_on is not None  # check_referral
            not_before(referred_on, self.decision.decided_on, field="referred_on", step=DECISION)
            recorded.append(
                FalseAccusationReferred(
                    allegation_id=allegation_id, referred_on=referred_on, referred_to=command.referred_to
                )
            )
        return recorded

    def conclude(self, command: ConcludeVerification) -> list[BaseModel]:
        opened = self._require_opened()
        if self.decision is None:
            raise Conflict(
                "the verification cannot conclude before its handling decision",
                detail_zh="作出处置决定之前，核查不能办结",
                code="wrong_state",
            )
        if self.conclusion is not None:
            raise Conflict(
                "the verification is already concluded", detail_zh="核查已经办结", code="already_concluded"
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
        findings = {a.allegation_id: self.findings[a.allegation_id].finding for a in opened.allegations}
        return [
            VerificationConcluded(
                concluded_on=concluded_on,
                received_on=opened.received_on,
                findings=findings,
                untrue_points=[a for a in opened.allegations if findings[a.allegation_id] in UNTRUE_FINDINGS],
                subjects=list(opened.subjects),
                eligible_for_pool=eligible_for_pool(findings.values()),
            )
        ]

    def is_sweep_candidate(self, as_of: date) -> bool:
        """Concluded eligible within the sweep window."""
        return (
            self.conclusion is not None
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
        and says why it is upheld or not. (An upheld objection is only recorded here.)"""
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
        check_reason_given(command.reason)
        not_before(command.examined_on, received.lodged_on, field="examined_on", step=OBJECTION)
        return [
            ObjectionExamined(
                objection_id=objection_id,
                examined_on=command.examined_on,
                upheld=command.upheld,
                reason=command.reason,
            )
        ]

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
