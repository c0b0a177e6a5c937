"""The chain's exits and loops, each taken once by the named users who take it: the directory's demo
users of 缙云县 and the city's head, logged in with their password (POST /auth/login), so that every
event of these matters names the officer who acted. They run in the quarter after the scenario's
(2023Q2): the scenario's figures for 2023Q1 stay as planned, and 2023Q2's table shows the exits."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import asyncpg
import httpx

from shared import settings
from shared.directory import Directory
from shared.envelope import CITY
from shared.errors import Conflict
from zhengming.client import Client, Users
from zhengming.demo.calls import As, Calls, until
from zhengming.demo.stack import DOCUMENTS
from zhengming.driver import CaseDriver
from zhengming.scenario import JINYUN
from zhengming.users_cli import demo_officers

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
)


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
    wanted = {f"{role}-{J}" for role in ROLES} | {f"head-{CITY}"}
    officers = [o for o in demo_officers() if o.user_id in wanted]
    directory = Directory.configured()
    conn = await asyncpg.connect(settings.postgres().dsn())
    try:
        await directory.migrate(conn)
        for officer in officers:
            try:
                await directory.add(conn, officer, password)
            except Conflict:
                await directory.set_password(conn, officer.user_id, password)
    finally:
        await conn.close()
    return {o.user_id: o.name for o in officers}


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

    async def matter(self, c: ExitCase) -> tuple[str, str]:
        """Reported, verified untrue and in the pool: (case id, subject id)."""
        report_id = await self.case.register(
            J,
            channel="letter",
            received_on=d(4, 3),
            real_name=False,
            reporter=None,
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
                basis="经初步核实，反映问题失实",
                found_on=d(4, 20),
            )
        await self.case.conclude(J, report_id, d(4, 21))
        matter = await until(f"{c.key} in the pool", lambda: self.case.candidate(J, report_id))
        return report_id, str(matter["outcome"]["subjects"][0]["subject_id"])

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
        await self.case.perform(J, case_id, d(5, 8), FORMS)
        await self.case.feedback(J, case_id, d(5, 9), f"中共{c.unit}党组")
        await self.case.acknowledge(J, case_id, d(5, 9))
        await self.case.file(J, case_id, d(5, 10))
        return case_id

    async def run(self) -> ExitsOutcome:
        flows: dict[str, Callable[[ExitCase], Awaitable[str]]] = {
            "declined": self.declined,
            "withdrawn": self.withdrawn,
            "refused_by_head": self.refused_by_head,
            "returned_by_head": self.returned_by_head,
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
        expected = {"declined": 2, "returned_by_head": 2, "treatments_corrected": 1, "clarifications": 1}

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
