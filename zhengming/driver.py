"""One case through the four services' public HTTP APIs: the one place that knows each command's
path, role and body, from the report's registration to the clarification's filing.

The end-to-end tests, the demo and the bench all carry their cases with `CaseDriver`; how a
command is sent (retries, timing) is the sender's: `zhengming.client.Client` or one of the
demo's or the bench's own. `Driver` is the tests' driver of whole `CasePlan`s on top of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Protocol

from shared.envelope import CITY
from shared.events.common import UNTRUE_FINDINGS
from zhengming.client import Client, iso

EXPECTED_EFFECT = "澄清后可消除不良影响，激励干部担当作为"
UNIT_HEAD = "单位主要负责人"
ACKNOWLEDGED = "本人已知悉澄清结果"


class Sender(Protocol):
    """How a command is sent and a resource read (Client.command and Client.get_if)."""

    async def command(
        self, step: str, service: str, path: str, *, role: str, jurisdiction: str, body: dict[str, Any]
    ) -> Any: ...

    async def get_if(self, service: str, path: str, *, role: str, jurisdiction: str) -> Any: ...


def content_points(matter: dict[str, Any]) -> list[dict[str, str]]:
    """澄清内容 worded from a started matter (its GET view): for each point verified untrue, "经核查，
    反映<the person>……的问题失实" (the point in the department's words, not the summary alone)."""
    outcome = matter["outcome"]
    person = matter.get("person") or outcome["subjects"][0]
    named = f"{person['name']}同志" if person.get("kind", "person") == "person" else person["name"]
    points = []
    for point in outcome["untrue_points"]:
        if outcome["findings"].get(point["allegation_id"]) not in UNTRUE_FINDINGS:
            continue
        summary = point["summary"].strip().rstrip("。；;，,")[:1800]
        points.append(
            {"allegation_id": point["allegation_id"], "wording": f"经核查，反映{named}{summary}的问题失实。"}
        )
    return points


QUALITY_GROUP = ("letters_office", "case_trial", "case_management")
"""The re-review's offices (复核): each member signs in their own session."""


class CaseDriver:
    """The commands of one case, each as the role that gives it, in the order of the chain:
    intake (接收, 登记, 受理, 移送承办), review (核查: decision proposed and approved by the head,
    findings, a 诬告陷害 approved by the city's head, 办结) and clarification
    (启动, 评估, 复核, 审批, 实施, 反馈, 告知, 归档); and a real-name reporter's 异议 (lodged and fed
    back by the letters office, re-examined by the handling department)."""

    def __init__(self, sender: Sender) -> None:
        self.send = sender

    # -- intake

    async def register(
        self,
        jurisdiction: str,
        *,
        channel: str,
        received_on: date,
        real_name: bool,
        reporter: dict[str, Any] | None,
        subject: dict[str, Any],
        allegations: Sequence[str],
        summary: str | None = None,
        also: Sequence[dict[str, Any]] = (),
    ) -> str:
        """登记; `also`: the other persons (or units) the report names, after `subject`."""
        body = {
            "jurisdiction": jurisdiction,
            "channel": channel,
            "received_on": iso(received_on),
            "real_name": real_name,
            "reporter": reporter,
            "subjects": [subject, *also],
            "allegations": [{"summary": a} for a in allegations],
            "summary": "；".join(allegations) if summary is None else summary,
        }
        report = await self._intake("register", jurisdiction, "/reports", body)
        return str(report["report_id"])

    async def log(self, jurisdiction: str, report_id: str, on: date) -> Any:
        return await self._intake("log", jurisdiction, f"/reports/{report_id}/log", {"logged_on": iso(on)})

    async def accept(self, jurisdiction: str, report_id: str, on: date) -> Any:
        path = f"/reports/{report_id}/accept"
        return await self._intake("accept", jurisdiction, path, {"accepted_on": iso(on)})

    async def hand_over(self, jurisdiction: str, report_id: str, department: str, on: date) -> Any:
        body = {"department": department, "handed_on": iso(on)}
        return await self._intake("hand-over", jurisdiction, f"/reports/{report_id}/hand-over", body)

    async def object_to(
        self, jurisdiction: str, report_id: str, *, on: date, grounds: str, new_evidence: str
    ) -> Any:
        """异议: the letters office records the real-name reporter's objection with what is new;
        answers the report, whose last objection is this one."""
        body = {"lodged_on": iso(on), "grounds": grounds, "new_evidence": new_evidence}
        return await self._intake("object", jurisdiction, f"/reports/{report_id}/objections", body)

    async def feed_back_objection(
        self, jurisdiction: str, report_id: str, objection_id: str, *, on: date, note: str = ""
    ) -> Any:
        """反馈: the letters office told the reporter the result of the re-examination."""
        path = f"/reports/{report_id}/objections/{objection_id}/feedback"
        return await self._intake(
            "objection-feedback", jurisdiction, path, {"fed_back_on": iso(on), "note": note}
        )

    async def _intake(self, step: str, jurisdiction: str, path: str, body: dict[str, Any]) -> Any:
        return await self.send.command(
            step, "intake", path, role="letters_office", jurisdiction=jurisdiction, body=body
        )

    # -- review

    async def verification(self, jurisdiction: str, case_id: str) -> Any:
        """The verification review opened for the case, or None while it is not there yet."""
        return await self.send.get_if(
            "review", f"/verifications/{case_id}", role="handling_department", jurisdiction=jurisdiction
        )

    async def decide(
        self, jurisdiction: str, case_id: str, *, method: str, on: date, note: str | None = None
    ) -> Any:
        """The handling decision: proposed by the department, approved the same day by the head of
        the jurisdiction in a session of their own. Returns the approval's answer."""
        await self.propose_handling(jurisdiction, case_id, method=method, on=on, note=note)
        return await self.approve_handling(jurisdiction, case_id, on)

    async def propose_handling(
        self, jurisdiction: str, case_id: str, *, method: str, on: date, note: str | None = None
    ) -> Any:
        body: dict[str, Any] = {"method": method, "decided_on": iso(on), "collective": True}
        if note is not None:
            body["note"] = note
        return await self._review("decision", jurisdiction, case_id, "decision", body)

    async def approve_handling(
        self, jurisdiction: str, case_id: str, on: date, approver: str | None = None
    ) -> Any:
        """Approved by the head of `approver` (by default the matter's jurisdiction)."""
        return await self._review(
            "decision-approve",
            jurisdiction if approver is None else approver,
            case_id,
            "decision/approve",
            {"approved_on": iso(on)},
            role="head",
        )

    async def send_back_handling(self, jurisdiction: str, case_id: str, on: date, reason: str) -> Any:
        body = {"sent_back_on": iso(on), "reason": reason}
        return await self._review(
            "decision-send-back", jurisdiction, case_id, "decision/send-back", body, role="head"
        )

    async def find(
        self,
        jurisdiction: str,
        case_id: str,
        *,
        allegation_id: str,
        finding: str,
        basis: str,
        found_on: date | None = None,
        referred_on: date | None = None,
    ) -> Any:
        """A finding on one allegation; with `referred_on`, the false accusation is proposed and
        approved by the city's head (on the day of the finding, or of the referral if later), which
        refers it. Returns the answer of the step that recorded the finding."""
        body: dict[str, Any] = {"allegation_id": allegation_id, "finding": finding, "basis": basis}
        if found_on is not None:
            body["found_on"] = iso(found_on)
        if referred_on is not None:
            body["referred_on"] = iso(referred_on)
        found = await self._review("finding", jurisdiction, case_id, "findings", body)
        if referred_on is None:
            return found
        approved_on = max(d for d in (found_on, referred_on) if d is not None)
        return await self.approve_false_accusation(jurisdiction, case_id, allegation_id, approved_on)

    async def approve_false_accusation(
        self, jurisdiction: str, case_id: str, allegation_id: str, on: date, approver: str = CITY
    ) -> Any:
        """诬告陷害 approved by the head of `approver` (the city: 市级以上审批)."""
        return await self._review(
            "false-accusation-approve",
            approver,
            case_id,
            f"false-accusations/{allegation_id}/approve",
            {"approved_on": iso(on)},
            role="head",
        )

    async def refuse_false_accusation(
        self, jurisdiction: str, case_id: str, allegation_id: str, on: date, reason: str, approver: str = CITY
    ) -> Any:
        return await self._review(
            "false-accusation-refuse",
            approver,
            case_id,
            f"false-accusations/{allegation_id}/refuse",
            {"refused_on": iso(on), "reason": reason},
            role="head",
        )

    async def conclude(self, jurisdiction: str, case_id: str, on: date) -> Any:
        return await self._review("conclude", jurisdiction, case_id, "conclude", {"concluded_on": iso(on)})

    async def examine_objection(
        self, jurisdiction: str, case_id: str, objection_id: str, *, on: date, upheld: bool, reason: str
    ) -> Any:
        """复查: the handling department re-examines the objection, upheld or not."""
        body = {"examined_on": iso(on), "upheld": upheld, "reason": reason}
        verb = f"objections/{objection_id}/examine"
        return await self._review("examine-objection", jurisdiction, case_id, verb, body)

    async def _review(
        self,
        step: str,
        jurisdiction: str,
        case_id: str,
        verb: str,
        body: dict[str, Any],
        role: str = "handling_department",
    ) -> Any:
        return await self.send.command(
            step,
            "review",
            f"/verifications/{case_id}/{verb}",
            role=role,
            jurisdiction=jurisdiction,
            body=body,
        )

    # -- clarification

    async def clarification(self, jurisdiction: str, case_id: str) -> Any:
        """The clarification matter of the case, or None while it is not there yet."""
        return await self.send.get_if(
            "clarification",
            f"/clarifications/{case_id}",
            role="handling_department",
            jurisdiction=jurisdiction,
        )

    async def candidate(self, jurisdiction: str, case_id: str) -> Any:
        """The matter once it waits in the candidate pool (备选库), else None."""
        found = await self.clarification(jurisdiction, case_id)
        return found if found and found["state"] == "candidate" else None

    @staticmethod
    def start_body(
        subject_id: str,
        on: date,
        *,
        consent: bool = True,
        consent_note: str = "本人同意澄清",
        initiated_by: str = "department",
    ) -> dict[str, Any]:
        return {
            "initiated_by": initiated_by,
            "person_subject_id": subject_id,
            "consent": consent,
            "consent_note": consent_note,
            "started_on": iso(on),
        }

    async def start(self, jurisdiction: str, case_id: str, body: dict[str, Any]) -> Any:
        """Start the clarification with a `start_body`."""
        return await self._clarify("start", jurisdiction, case_id, "start", body)

    async def assess(
        self,
        jurisdiction: str,
        case_id: str,
        *,
        on: date,
        bad_effects: Sequence[str],
        effect_only_from_interviews: bool = False,
        proposed_forms: Sequence[str] = (),
        proposed_scope: str = "",
    ) -> Any:
        """评估, with the forms and scope proposed to the head (approved as proposed by default)."""
        body = {
            "assessed_on": iso(on),
            "bad_effects": list(bad_effects),
            "effect_only_from_interviews": effect_only_from_interviews,
            "proposed_forms": list(proposed_forms),
            "proposed_scope": proposed_scope,
        }
        return await self._clarify("assess", jurisdiction, case_id, "assess", body)

    async def draft_content(
        self, jurisdiction: str, case_id: str, on: date, points: Sequence[dict[str, str]]
    ) -> Any:
        """澄清内容 by the department: [{allegation_id, wording}] for each point verified untrue
        (`content_points` words them from the matter)."""
        body = {"drafted_on": iso(on), "points": [dict(p) for p in points]}
        return await self._clarify("draft-content", jurisdiction, case_id, "content", body)

    async def approve_content(self, jurisdiction: str, case_id: str, on: date) -> Any:
        """审理室 approves the drafted 澄清内容."""
        body = {"approved_on": iso(on)}
        return await self._clarify(
            "approve-content", jurisdiction, case_id, "content/approve", body, role="case_trial"
        )

    async def return_content(self, jurisdiction: str, case_id: str, on: date, reason: str) -> Any:
        """审理室 returns the drafted 澄清内容 to the department."""
        body = {"returned_on": iso(on), "reason": reason}
        return await self._clarify(
            "return-content", jurisdiction, case_id, "content/return", body, role="case_trial"
        )

    async def word_content(self, jurisdiction: str, case_id: str, on: date) -> Any:
        """Draft the 澄清内容 from the started matter (`content_points`) and approve it, both `on`."""
        matter = await self.clarification(jurisdiction, case_id)
        await self.draft_content(jurisdiction, case_id, on, content_points(matter))
        return await self.approve_content(jurisdiction, case_id, on)

    async def re_review(
        self,
        jurisdiction: str,
        case_id: str,
        *,
        on: date,
        verification_complete: bool = True,
        conclusion_clear: bool = True,
        expected_effect: str = EXPECTED_EFFECT,
        offices: Sequence[str] = QUALITY_GROUP,
    ) -> Any:
        """复核: each office's member signs in turn (a failed check sends the matter back at the first
        signature; an incomplete verification sends it back for a supplementary verification, which
        review must conclude before the next re-review). Returns the last answer."""
        answer: Any = None
        for office in offices:
            answer = await self.sign_re_review(
                jurisdiction,
                case_id,
                office=office,
                on=on,
                verification_complete=verification_complete,
                conclusion_clear=conclusion_clear,
                expected_effect=expected_effect,
            )
            if answer.get("event") == "ReReviewRecorded":
                break
        return answer

    async def sign_re_review(
        self,
        jurisdiction: str,
        case_id: str,
        *,
        office: str,
        on: date,
        verification_complete: bool = True,
        conclusion_clear: bool = True,
        disposal_adequate: bool = True,
        expected_effect: str = EXPECTED_EFFECT,
        note: str = "",
    ) -> Any:
        """One member of `office` signs the re-review."""
        body = {
            "reviewed_on": iso(on),
            "verification_complete": verification_complete,
            "conclusion_clear": conclusion_clear,
            "disposal_adequate": disposal_adequate,
            "expected_effect": expected_effect,
            "note": note,
        }
        return await self._clarify("re-review", jurisdiction, case_id, "re-review", body, role=office)

    async def request_consent(self, jurisdiction: str, case_id: str, subject_id: str, on: date) -> Any:
        """拟澄清告知书: the person is asked for consent before the start."""
        body = {"person_subject_id": subject_id, "requested_on": iso(on)}
        return await self._clarify("consent-request", jurisdiction, case_id, "consent-request", body)

    async def decline(self, jurisdiction: str, case_id: str, subject_id: str, on: date, reason: str) -> Any:
        """本人不同意澄清 (before the start): the matter leaves the pool."""
        body = {"person_subject_id": subject_id, "declined_on": iso(on), "reason": reason}
        return await self._clarify("decline", jurisdiction, case_id, "decline", body)

    async def withdraw(self, jurisdiction: str, case_id: str, on: date, reason: str) -> Any:
        """本人撤回 (after the start, before the clarification)."""
        body = {"withdrawn_on": iso(on), "reason": reason}
        return await self._clarify("withdraw", jurisdiction, case_id, "withdraw", body)

    async def refuse_approval(self, approver: str, case_id: str, on: date, reason: str) -> Any:
        """主要负责人不予批准, by the head of `approver`."""
        body = {"refused_on": iso(on), "reason": reason}
        return await self._clarify("refuse-approval", approver, case_id, "refuse-approval", body, role="head")

    async def send_back_approval(self, approver: str, case_id: str, on: date, reason: str) -> Any:
        """主要负责人退回 for a new re-review, by the head of `approver`."""
        body = {"sent_back_on": iso(on), "reason": reason}
        return await self._clarify("send-back", approver, case_id, "send-back", body, role="head")

    async def correct_treatment(
        self,
        jurisdiction: str,
        case_id: str,
        subject_id: str,
        *,
        on: date,
        treatment: str,
        organ: str,
        correction: str,
    ) -> Any:
        """纠正错误处理 (art. 51), with the organ that corrected it."""
        body = {
            "person_subject_id": subject_id,
            "corrected_on": iso(on),
            "treatment": treatment,
            "organ": organ,
            "correction": correction,
        }
        return await self._clarify("corrections", jurisdiction, case_id, "corrections", body)

    async def approve(self, approver: str, case_id: str, on: date) -> Any:
        """Approved by the head of `approver` (the city's for a city-managed cadre)."""
        body = {"approved_on": iso(on)}
        return await self._clarify("approve", approver, case_id, "approve", body, role="head")

    async def perform(self, jurisdiction: str, case_id: str, on: date, forms: Sequence[str]) -> Any:
        body = {"performed_on": iso(on), "forms": list(forms)}
        return await self._clarify("perform", jurisdiction, case_id, "perform", body)

    async def feedback(
        self, jurisdiction: str, case_id: str, on: date, party_committee: str, unit_head: str = UNIT_HEAD
    ) -> Any:
        body = {"given_on": iso(on), "party_committee": party_committee, "unit_head": unit_head}
        return await self._clarify("feedback", jurisdiction, case_id, "feedback", body)

    async def acknowledge(self, jurisdiction: str, case_id: str, on: date, note: str = ACKNOWLEDGED) -> Any:
        body = {"acknowledged_on": iso(on), "note": note}
        return await self._clarify("acknowledge", jurisdiction, case_id, "acknowledge", body)

    async def file(self, jurisdiction: str, case_id: str, on: date) -> Any:
        body = {"filed_on": iso(on)}
        return await self._clarify("file", jurisdiction, case_id, "file", body, role="case_management")

    async def _clarify(
        self,
        step: str,
        jurisdiction: str,
        case_id: str,
        verb: str,
        body: dict[str, Any],
        role: str = "handling_department",
    ) -> Any:
        return await self.send.command(
            step,
            "clarification",
            f"/clarifications/{case_id}/{verb}",
            role=role,
            jurisdiction=jurisdiction,
            body=body,
        )


# --- the end-to-end tests' plans ----------------------------------------------------------------------


@dataclass
class Reporter:
    name: str
    contact: str
    id_number: str | None = None


@dataclass
class CasePlan:
    """One report and how far and which way it goes through the chain."""

    jurisdiction: str
    subject: dict[str, Any]
    allegations: list[str]
    findings: list[str]  # one per allegation
    received_on: date
    channel: str = "letter"
    reporter: Reporter | None = None
    handled_on: date | None = None
    concluded_on: date | None = None
    # clarification path
    clarify: bool = False
    consent: bool = True
    bad_effects: list[str] = field(default_factory=lambda: ["repeated_reports"])
    effect_only_from_interviews: bool = False
    fail_re_review_once: bool = False
    approve_on: date | None = None
    forms: list[str] = field(default_factory=lambda: ["written_notice", "face_to_face"])
    false_accusation_point: int | None = None
    also: list[dict[str, Any]] = field(default_factory=list)  # the other persons the report names
    green_channel_before_conclusion: bool = False
    via_inbound: bool = False
    word_content: bool = True  # the 澄清内容 drafted and approved on the start day


@dataclass
class CaseResult:
    case_id: str
    state: str
    steps: list[str] = field(default_factory=list)


PRELIMINARY_BASIS = {
    "untrue": "反映问题失实",
    "true": "反映问题属实",
    "partly_true": "反映问题部分属实",
    "not_proven": "查无实据",
    "honest_mistake": "系错告",
    "false_accusation": "涉嫌诬告陷害",
    "no_violation": "事实存在但不违规违纪",
}


class Driver:
    """Carries case plans through intake, review and clarification over HTTP."""

    def __init__(self, client: Client) -> None:
        self.c = client
        self.case = CaseDriver(client)

    async def register(self, plan: CasePlan) -> str:
        reporter = plan.reporter
        return await self.case.register(
            plan.jurisdiction,
            channel=plan.channel,
            received_on=plan.received_on,
            real_name=reporter is not None,
            reporter=None
            if reporter is None
            else {
                "name": reporter.name,
                "contact": reporter.contact,
                **({"id_number": reporter.id_number} if reporter.id_number else {}),
            },
            subject=plan.subject,
            allegations=plan.allegations,
            summary="；".join(plan.allegations)[:500],
            also=plan.also,
        )

    async def intake(self, plan: CasePlan, case_id: str) -> None:
        j, day = plan.jurisdiction, plan.received_on
        await self.case.log(j, case_id, day)
        await self.case.accept(j, case_id, day + timedelta(days=1))
        await self.case.hand_over(j, case_id, "第一监督检查室", day + timedelta(days=2))

    async def wait_verification(self, plan: CasePlan, case_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.c.eventually(
            f"verification {case_id} opened", lambda: self.case.verification(plan.jurisdiction, case_id)
        )
        return result

    async def verify(self, plan: CasePlan, case_id: str) -> None:
        j = plan.jurisdiction
        verification = await self.wait_verification(plan, case_id)
        decided = plan.handled_on or plan.received_on + timedelta(days=5)
        await self.case.decide(j, case_id, method="preliminary_verification", on=decided)
        concluded = plan.concluded_on or decided + timedelta(days=20)
        for index, (allegation, finding) in enumerate(
            zip(verification["allegations"], plan.findings, strict=True)
        ):
            referred = finding == "false_accusation" or index == plan.false_accusation_point
            await self.case.find(
                j,
                case_id,
                allegation_id=allegation["allegation_id"],
                finding=finding,
                basis="经初步核实，" + PRELIMINARY_BASIS[finding],
                found_on=max(decided, concluded - timedelta(days=1)),
                referred_on=concluded - timedelta(days=1) if referred else None,
            )
        await self.case.conclude(j, case_id, concluded)

    async def clarification(self, plan: CasePlan, case_id: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = await self.case.clarification(plan.jurisdiction, case_id)
        return found

    async def wait_state(self, plan: CasePlan, case_id: str, states: set[str], timeout_s: float = 60) -> str:
        async def check() -> str | None:
            current = await self.clarification(plan, case_id)
            return current["state"] if current and current["state"] in states else None

        state: str = await self.c.eventually(f"{case_id} in {sorted(states)}", check, timeout_s)
        return state

    async def clarify_until_approved(self, plan: CasePlan, case_id: str, start: date) -> str:
        """Start, word the 澄清内容 (drafted and approved), assess, re-review, approve. Returns the
        state reached ("approved" or "refused")."""
        j = plan.jurisdiction
        await self.wait_state(plan, case_id, {"candidate"})
        # The clarification's own person (each person a matter names has one), else the first.
        outcome = (await self.clarification(plan, case_id) or {}).get("outcome") or {}
        subject_id = (
            plan.subject.get("subject_id")
            or outcome.get("person_subject_id")
            or outcome.get("subjects", [{}])[0].get("subject_id")
        )
        await self.case.start(j, case_id, CaseDriver.start_body(subject_id, start, consent=plan.consent))
        if plan.word_content:
            await self.case.word_content(j, case_id, start)
        assessed = await self.case.assess(
            j,
            case_id,
            on=start + timedelta(days=1),
            bad_effects=plan.bad_effects,
            effect_only_from_interviews=plan.effect_only_from_interviews,
            proposed_forms=plan.forms,
        )
        if not assessed["eligible"]:
            return "refused"
        review_day = start + timedelta(days=2)
        if plan.fail_re_review_once:
            await self.case.re_review(
                j,
                case_id,
                on=review_day,
                conclusion_clear=False,
                expected_effect="澄清后可消除不良影响",
            )
            review_day += timedelta(days=1)
        await self.case.re_review(j, case_id, on=review_day)
        approver_j = CITY if plan.subject.get("cadre_level") == "city" else j
        await self.case.approve(approver_j, case_id, plan.approve_on or review_day + timedelta(days=1))
        return "approved"

    async def finish(self, plan: CasePlan, case_id: str, performed_on: date) -> None:
        """Feedback, acknowledgement and filing after the clarification was performed."""
        j = plan.jurisdiction
        committee = f"{plan.subject.get('unit') or plan.subject['name']}党委"
        await self.case.feedback(j, case_id, performed_on + timedelta(days=1), committee)
        await self.case.acknowledge(j, case_id, performed_on + timedelta(days=1))
        await self.case.file(j, case_id, performed_on + timedelta(days=2))
