"""The chain's exits and loops, each taken once by the named users who take it: the directory's demo
users of 缙云县 and the city's head, logged in with their password (POST /auth/login), so that every
event of these matters names the officer who acted. They run in the quarter after the scenario's
(2023Q2): the scenario's figures for 2023Q1 stay as planned, and 2023Q2's table shows the exits."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import partial
from typing import Any

import httpx

from shared import settings
from shared.envelope import CITY
from zhengming.client import Client, Users
from zhengming.demo.calls import As, Calls, until
from zhengming.demo.stack import DOCUMENTS
from zhengming.driver import CaseDriver
from zhengming.scenario import JINYUN
from zhengming.users_cli import seed_officers

EXIT_QUARTER = "2023Q2"
J = JINYUN
ROLES = ("letters_office", "handling_department", "case_trial", "case_management", "head", "auditor")
"""The users of 缙云县 who take the exits (and the auditor who reads them); the city's head too."""

DEPARTMENT = "第二监督检查室"
FORMS = ["written_notice", "face_to_face"]  # proposed at the assessment, approved by the head
TREATMENT_ORGAN = "中共缙云县委组织部"


def d(month: int, day: int) -> date:
    return date(2023, month, day)


@dataclass(frozen=True)
class ExitCase:
    """One matter of the exits phase: who it is about and which way the chain ends or loops."""

    key: str
    title: str  # the exit, as the table names it
    name: str
    post: str
    unit: str
    findings: tuple[str, ...] = ("untrue",)

    @property
    def subject(self) -> dict[str, Any]:
        return {"kind": "person", "name": self.name, "post": self.post, "unit": self.unit}


CASES: tuple[ExitCase, ...] = (
    ExitCase("declined", "本人不同意澄清；纠正错误处理", "郑明远", "镇党委副书记", "缙云县东方镇"),
    ExitCase("withdrawn", "本人撤回", "冯晓岚", "局长", "缙云县水利局"),
    ExitCase("refused_by_head", "主要负责人不予批准", "蒋国栋", "乡长", "缙云县方溪乡"),
    ExitCase("returned_by_head", "主要负责人退回后再审批、澄清、备案", "沈慧芳", "副局长", "缙云县教育局"),
    ExitCase("supplementary", "复核退回补充核查，再办结后澄清、备案", "韩立新", "镇长", "缙云县大源镇"),
    ExitCase(
        "objection_upheld",
        "实名检举人异议成立，补充核查后部分属实，终止澄清",
        "杨志刚",
        "所长",
        "缙云县自然资源所",
    ),
    ExitCase("objection_dismissed", "实名检举人异议不成立，反馈检举人", "朱丽萍", "主任", "缙云县农业农村局"),
    ExitCase(
        "false_accusation_later",
        "查无实据办结后认定诬告陷害（市纪委监委主要负责人批准），入库",
        "秦海波",
        "副镇长",
        "缙云县壶镇镇",
        findings=("not_proven",),
    ),
)
REAL_NAME = {"objection_upheld", "objection_dismissed"}
"""The matters a real-name reporter reported (and objects to)."""
REPORTERS = {
    "objection_upheld": {"name": "孔令华", "contact": "13705781234"},
    "objection_dismissed": {"name": "曹德明", "contact": "13905785678"},
}
BASIS = {"untrue": "经初步核实，反映问题失实", "not_proven": "经初步核实，反映问题查无实据"}


class LoggedIn(Users):
    """The tokens of named users who logged in (POST /auth/login), by role and jurisdiction."""

    def __init__(self, tokens: dict[tuple[str, str], str]) -> None:
        super().__init__()
        self._tokens = dict(tokens)

    def token(self, role: str, jurisdiction: str) -> str:
        try:
            return self._tokens[(role, jurisdiction)]
        except KeyError:
            raise KeyError(f"no user of {role} in {jurisdiction} logged in") from None


@dataclass
class ExitsOutcome:
    """What the phase did: each matter's end state and the officers who acted, by name."""

    states: dict[str, str] = field(default_factory=dict)  # case key -> state
    case_ids: dict[str, str] = field(default_factory=dict)
    officers: dict[str, str] = field(default_factory=dict)  # user id -> name
    documents: int = 0
    statistics: dict[str, Any] = field(default_factory=dict)


async def seed_users(password: str) -> dict[str, str]:
    """The demo users of 缙云县 and the city's head, with this run's password (set anew on users a
    kept stack already has). Returns user id -> name."""
    return await seed_officers(password, {f"{role}-{J}" for role in ROLES} | {f"head-{CITY}"})


async def log_in(user_ids: Sequence[str], password: str) -> dict[tuple[str, str], str]:
    """Each user logs in at intake; the token answered is theirs: (role, jurisdiction) -> token."""
    url = settings.services().url("intake") + "/auth/login"
    tokens: dict[tuple[str, str], str] = {}
    async with httpx.AsyncClient(timeout=30) as http:
        for user_id in user_ids:
            response = await http.post(url, json={"user_id": user_id, "password": password})
            response.raise_for_status()
            issued = response.json()
            role, code = user_id.rsplit("-", 1)
            tokens[(role, code)] = issued["access_token"]
    return tokens


class Exits:
    """Drives the exit matters through the services as the logged-in users."""

    def __init__(self, calls: Calls) -> None:
        self.calls = calls
        self.case = CaseDriver(calls)
        self.outcome = ExitsOutcome()

    async def matter(self, c: ExitCase, until_state: str = "candidate") -> tuple[str, str]:
        """Reported, verified and concluded (by default untrue, in the pool): (case id, subject id)."""
        real_name = c.key in REAL_NAME
        report_id = await self.case.register(
            J,
            channel="letter",
            received_on=d(4, 3),
            real_name=real_name,
            reporter=REPORTERS[c.key] if real_name else None,
            subject=c.subject,
            allegations=[f"反映{c.name}违规收受他人财物"],
        )
        self.outcome.case_ids[c.key] = report_id
        await self.case.log(J, report_id, d(4, 3))
        await self.case.accept(J, report_id, d(4, 4))
        await self.case.hand_over(J, report_id, DEPARTMENT, d(4, 6))
        verification = await until(
            f"the verification of {c.key}", lambda: self.case.verification(J, report_id)
        )
        await self.case.decide(J, report_id, method="preliminary_verification", on=d(4, 10))
        for allegation, finding in zip(verification["allegations"], c.findings, strict=True):
            await self.case.find(
                J,
                report_id,
                allegation_id=allegation["allegation_id"],
                finding=finding,
                basis=BASIS[finding],
                found_on=d(4, 20),
            )
        await self.case.conclude(J, report_id, d(4, 21))
        matter = await self.state(c, report_id, {until_state})
        return report_id, str(matter["outcome"]["subjects"][0]["subject_id"])

    async def state(self, c: ExitCase, case_id: str, states: set[str]) -> dict[str, Any]:
        """The clarification matter once it is in one of `states` (events cross Kafka)."""

        async def reached() -> dict[str, Any] | None:
            found: dict[str, Any] | None = await self.case.clarification(J, case_id)
            return found if found and found["state"] in states else None

        return await until(f"{c.key} {sorted(states)}", reached)

    async def verification_in(self, c: ExitCase, case_id: str, state: str) -> dict[str, Any]:
        async def reached() -> dict[str, Any] | None:
            found: dict[str, Any] | None = await self.case.verification(J, case_id)
            return found if found and found["state"] == state else None

        return await until(f"the verification of {c.key} {state}", reached)

    async def revised(self, c: ExitCase, case_id: str, finding: str, basis: str, on: date) -> None:
        """补充核查: the reopened verification's further finding and its second conclusion."""
        verification = await self.verification_in(c, case_id, "reopened")
        [allegation] = verification["allegations"]
        await self.case.find(
            J, case_id, allegation_id=allegation["allegation_id"], finding=finding, basis=basis, found_on=on
        )
        await self.case.conclude(J, case_id, on + timedelta(days=1))

    async def finish(self, c: ExitCase, case_id: str, approved_on: date) -> None:
        """The 澄清内容 worded and approved, the clarification, feedback, acknowledgement, filing."""
        await self.case.word_content(J, case_id, approved_on)
        performed_on = approved_on + timedelta(days=1)
        await self.case.perform(J, case_id, performed_on, FORMS)
        await self.case.feedback(J, case_id, performed_on + timedelta(days=1), f"中共{c.unit}党组")
        await self.case.acknowledge(J, case_id, performed_on + timedelta(days=1))
        await self.case.file(J, case_id, performed_on + timedelta(days=2))

    async def assessed(self, case_id: str, subject_id: str) -> None:
        await self.case.start(J, case_id, CaseDriver.start_body(subject_id, d(4, 25)))
        await self.case.assess(
            J, case_id, on=d(4, 26), bad_effects=["repeated_reports"], proposed_forms=FORMS
        )

    async def declined(self, c: ExitCase) -> str:
        case_id, subject_id = await self.matter(c)
        await self.case.request_consent(J, case_id, subject_id, d(4, 24))
        await self.case.decline(J, case_id, subject_id, d(4, 25), "本人表示不需要澄清")
        # The person had been passed over for promotion on the strength of the report: corrected.
        await self.case.correct_treatment(
            J,
            case_id,
            subject_id,
            on=d(4, 28),
            treatment="因被举报暂缓提拔",
            organ=TREATMENT_ORGAN,
            correction="恢复提拔考察程序",
        )
        return case_id

    async def withdrawn(self, c: ExitCase) -> str:
        case_id, subject_id = await self.matter(c)
        await self.assessed(case_id, subject_id)
        await self.case.withdraw(J, case_id, d(4, 27), "本人申请撤回澄清")
        return case_id

    async def refused_by_head(self, c: ExitCase) -> str:
        case_id, subject_id = await self.matter(c)
        await self.assessed(case_id, subject_id)
        await self.case.re_review(J, case_id, on=d(4, 27))
        await self.case.refuse_approval(J, case_id, d(4, 28), "反映问题社会关注度低，暂不宜公开澄清")
        return case_id

    async def returned_by_head(self, c: ExitCase) -> str:
        case_id, subject_id = await self.matter(c)
        await self.assessed(case_id, subject_id)
        await self.case.re_review(J, case_id, on=d(4, 27))
        await self.case.send_back_approval(J, case_id, d(4, 28), "预期效果表述不具体，请重新复核")
        await self.case.re_review(J, case_id, on=d(5, 4))
        await self.case.approve(J, case_id, d(5, 5))
        await self.finish(c, case_id, d(5, 5))
        return case_id

    async def supplementary(self, c: ExitCase) -> str:
        """The letters office's member finds the verification incomplete: review reopens it, the
        department verifies further and concludes again; the re-review resumes on the revision."""
        case_id, subject_id = await self.matter(c)
        await self.assessed(case_id, subject_id)
        await self.case.sign_re_review(
            J,
            case_id,
            office="letters_office",
            on=d(4, 27),
            verification_complete=False,
            note="未调取相关银行流水，核查不全面",
        )
        await self.revised(c, case_id, "untrue", "经补充核查银行流水，反映问题失实", d(5, 4))
        await until(f"{c.key}'s revised outcome", lambda: self._revised(case_id))
        await self.case.re_review(J, case_id, on=d(5, 8))
        await self.case.approve(J, case_id, d(5, 9))
        await self.finish(c, case_id, d(5, 9))
        return case_id

    async def _revised(self, case_id: str) -> bool | None:
        matter = await self.case.clarification(J, case_id)
        return True if matter and (matter["outcome"] or {}).get("revision", 0) >= 1 else None

    async def objection(self, c: ExitCase, *, upheld: bool) -> str:
        """The real-name reporter objects with new evidence; the department re-examines it; the
        letters office feeds the result back. Upheld: the verification reopens (补充核查)."""
        case_id, _ = await self.matter(c)
        report = await self.case.object_to(
            J,
            case_id,
            on=d(4, 24),
            grounds="不认同核查结论",
            new_evidence="补充提供了相关转账凭证" if upheld else "再次陈述原反映内容",
        )
        objection_id = report["objections"][-1]["objection_id"]
        await self.verification_with_objection(c, case_id, objection_id)
        reason = "新提供的转账凭证足以重新核查" if upheld else "未提供新的事实或证据"
        await self.case.examine_objection(J, case_id, objection_id, on=d(4, 26), upheld=upheld, reason=reason)
        if upheld:
            await self.revised(c, case_id, "partly_true", "经补充核查，反映问题部分属实", d(5, 4))
            await self.state(c, case_id, {"discontinued"})
        await until(f"{c.key}'s answer in intake", lambda: self._examined(case_id, objection_id))
        await self.case.feed_back_objection(J, case_id, objection_id, on=d(5, 8), note="已告知复查结果")
        return case_id

    async def verification_with_objection(self, c: ExitCase, case_id: str, objection_id: str) -> None:
        async def received() -> bool | None:
            found = await self.case.verification(J, case_id)
            ids = {o["objection_id"] for o in (found or {}).get("objections", [])}
            return True if objection_id in ids else None

        await until(f"{c.key}'s objection in review", received)

    async def _examined(self, case_id: str, objection_id: str) -> bool | None:
        report = await self.calls.get_if(
            "intake", f"/reports/{case_id}", role="letters_office", jurisdiction=J
        )
        stages = {o["objection_id"]: o["stage"] for o in (report or {}).get("objections", [])}
        return True if stages.get(objection_id) == "examined" else None

    async def false_accusation_later(self, c: ExitCase) -> str:
        """Not proven at the conclusion; the reporter investigated afterwards: a 诬告陷害 proposed by
        the department and approved by the city's head revises the conclusion, and the person's
        clarification becomes possible (入库)."""
        case_id, _ = await self.matter(c, until_state="not_eligible")
        verification = await self.case.verification(J, case_id)
        [allegation] = verification["allegations"]
        await self.case.find(
            J,
            case_id,
            allegation_id=allegation["allegation_id"],
            finding="false_accusation",
            basis="经核实，检举人捏造事实、故意诬告，涉嫌诬告陷害",
            found_on=d(5, 4),
            referred_on=d(5, 4),
        )
        await self.state(c, case_id, {"candidate"})
        return case_id

    async def run(self) -> ExitsOutcome:
        flows: dict[str, Callable[[ExitCase], Awaitable[str]]] = {
            "declined": self.declined,
            "withdrawn": self.withdrawn,
            "refused_by_head": self.refused_by_head,
            "returned_by_head": self.returned_by_head,
            "supplementary": self.supplementary,
            "objection_upheld": partial(self.objection, upheld=True),
            "objection_dismissed": partial(self.objection, upheld=False),
            "false_accusation_later": self.false_accusation_later,
        }
        for c in CASES:
            case_id = await flows[c.key](c)
            matter = await self.case.clarification(J, case_id)
            self.outcome.states[c.key] = matter["state"]
            self.outcome.documents += await self.write_documents(case_id, matter)
        self.outcome.statistics = await self.settled_statistics()
        return self.outcome

    async def write_documents(self, case_id: str, matter: dict[str, Any]) -> int:
        """Every document of the matter as text, DOCX and PDF, beside the scenario's."""
        folder = DOCUMENTS / case_id
        folder.mkdir(parents=True, exist_ok=True)
        for doc in matter["documents"]:
            for suffix in ("", ".docx", ".pdf"):
                path = f"/clarifications/{case_id}/documents/{doc['doc_id']}{suffix}"
                response = await self.calls.raw("GET", "clarification", path, _auditor())
                response.raise_for_status()
                (folder / f"{doc['doc_id']}{suffix or '.txt'}").write_bytes(response.content)
        return len(matter["documents"])

    async def settled_statistics(self) -> dict[str, Any]:
        """2023Q2 of 缙云县 once the archive took in every exit."""
        expected = {
            "declined": 2,
            "returned_by_head": 2,
            "treatments_corrected": 1,
            "clarifications": 2,
            "supplementary_verifications": 2,
            "objections": 2,
            "objections_upheld": 1,
            "discontinued": 1,
        }

        async def settled() -> dict[str, Any] | None:
            report: dict[str, Any] = await self.calls.call(
                "GET",
                "archive",
                "/statistics",
                _auditor(),
                params={"quarter": EXIT_QUARTER, "jurisdiction": J},
            )
            figures = report["rows"][0]["figures"]
            return report if all(figures[k] == v for k, v in expected.items()) else None

        return await until("the archive's figures of the exits", settled, 90)


def _auditor() -> As:
    return As("auditor", J)


async def run_exits(
    client_factory: Callable[[Users], Client], calls_factory: Callable[[Client], Calls]
) -> ExitsOutcome:
    """Seed and log in the users, then take every exit as them."""
    password = secrets.token_urlsafe(18)
    names = await seed_users(password)
    tokens = await log_in(sorted(names), password)
    client = client_factory(LoggedIn(tokens))
    try:
        exits = Exits(calls_factory(client))
        outcome = await exits.run()
    finally:
        await client.close()
    outcome.officers = names
    return outcome
