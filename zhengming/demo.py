"""`zhengming demo`: the Lishui Q1 2023 scenario on a fresh local stack of its own, driven through
the services' public HTTP APIs and the inbound topic only, with a progress display, the quarterly
report checked against Lishui's published figures, the documents, one case's audit timeline and
the verification of the whole trail."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shlex
import shutil
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import httpx
from rich.console import Console
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from shared import settings
from shared.auth import Principal, mint
from shared.envelope import CITY, JURISDICTIONS
from shared.settings import PROJECT_ROOT, SERVICES
from zhengming.client import ApiError, Client, Users, new_idempotency_key
from zhengming.scenario import JINYUN, QUARTER, QUARTER_FIRST, QUARTER_LAST, DemoCase, Scenario, generate

DEMO_ROOT = PROJECT_ROOT / ".local" / "demo"
STACK = DEMO_ROOT / "stack"
DOCUMENTS = DEMO_ROOT / "documents"
ENV_FILE = STACK / "demo.env"
DEFAULT_SEED = 20230331
CONCURRENCY = 16

PORTS = {
    "ZM_KAFKA_PORT": "20092",
    "ZM_KAFKA_CONTROLLER_PORT": "20093",
    "ZM_PG_PORT": "16432",
    "ZM_SERVICE_INTAKE_PORT": "9101",
    "ZM_SERVICE_REVIEW_PORT": "9102",
    "ZM_SERVICE_CLARIFICATION_PORT": "9103",
    "ZM_SERVICE_ARCHIVE_PORT": "9104",
}
PHASES = (
    "setup",
    "reports",
    "verification",
    "sweep",
    "clarification chain",
    "rounds",
    "archive",
    "report",
)
ALL_JURISDICTIONS = "+".join(JURISDICTIONS)
DEPARTMENTS = ("第一监督检查室", "第二监督检查室", "第三监督检查室", "第四监督检查室")
FORM_SHORT = {
    "written_notice": "书面",
    "face_to_face": "当面",
    "unit_meeting": "会议",
    "scoped_notice": "通报",
}

T = TypeVar("T")


# --- the stack -------------------------------------------------------------------------------------


def demo_environment() -> dict[str, str]:
    """Everything that makes the demo's stack its own: data, ports and (under its root) keys.

    Lishui opened its candidate pool in 2023: older untrue matters enter it through the sweep.
    """
    return {"ZM_LOCAL_ROOT": str(STACK), **PORTS, "ZM_CLARIFICATION_POOL_SINCE": "2023-01-01"}


def use_environment(env: dict[str, str]) -> None:
    """Point this process (and the processes it starts) at the demo's stack."""
    os.environ.update(env)
    for cached in (settings.local, settings.kafka, settings.postgres, settings.services):
        cached.cache_clear()


def with_env(env: dict[str, str], command: str) -> str:
    """`command` prefixed with the demo's environment, to paste into a shell."""
    return " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " " + command


def zhengming_command() -> str:
    script = Path(sys.executable).with_name("zhengming")
    return str(script) if script.exists() else f"{sys.executable} -m zhengming.cli"


def prepare_stack(env: dict[str, str]) -> None:
    """Stop whatever an earlier demo left running (by its pid files) and wipe its data; the Kafka
    jars are kept (they are a download, not state), or copied from the main stack's."""
    from zhengming.cli import stop_infra

    stop_infra()
    libs = STACK / "kafka" / "libs"
    if STACK.exists():
        for child in STACK.iterdir():
            if child.name == "kafka":
                for part in child.iterdir():
                    if part != libs:
                        _remove(part)
            else:
                _remove(child)
    shutil.rmtree(DOCUMENTS, ignore_errors=True)
    main_libs = PROJECT_ROOT / ".local" / "kafka" / "libs"
    if not libs.exists() and (main_libs / ".complete").exists():
        shutil.copytree(main_libs, libs)
    STACK.mkdir(parents=True, exist_ok=True)
    ENV_FILE.write_text("".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items()), encoding="utf-8")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


class Interrupted(Exception):
    """SIGTERM: stop like on Ctrl-C."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(f"signal {signum}")


# --- tokens of several jurisdictions ---------------------------------------------------------------


class DemoUsers(Users):
    """Users.token, and also for several jurisdictions joined with '+': the city's head approving
    a city-managed cadre of a county, the city's auditor reading the city and its counties."""

    def __init__(self) -> None:
        super().__init__()
        self._several: dict[tuple[str, str], str] = {}

    def token(self, role: str, jurisdiction: str) -> str:
        if "+" not in jurisdiction:
            return super().token(role, jurisdiction)
        key = (role, jurisdiction)
        if key not in self._several:
            codes = jurisdiction.split("+")
            principal = Principal(
                user_id=f"{role}-{codes[0]}",
                role=role,
                unit=f"{JURISDICTIONS[codes[0]]}纪委监委",
                jurisdictions=codes,
            )
            self._several[key] = mint(principal)
        return self._several[key]


# --- what the workflow did --------------------------------------------------------------------------


@dataclass
class Facts:
    """What the services answered along the way: what the statistics must come to."""

    reports_in_quarter: int = 0
    referred_in_quarter: int = 0
    newly_screened: list[str] = field(default_factory=list)
    screened_seen: int = 0
    priority_flagged: int = 0
    performed: dict[str, list[str]] = field(default_factory=dict)
    filed: int = 0
    visits_in_quarter: int = 0
    visits_later: int = 0
    notices: dict[str, int] = field(default_factory=dict)
    documents: int = 0
    results_reports: int = 0
    reporter_notices: int = 0
    inbound: int = 0
    sent_down: int = 0
    repeats: int = 0
    applications: int = 0
    refusals: int = 0
    consent_refused: int = 0
    sent_back: int = 0
    latencies: list[float] = field(default_factory=list)


@dataclass
class Result:
    statistics: dict[str, Any]
    mismatches: list[str]
    timeline: Table | None
    timeline_case: str
    trail_lines: list[str]
    trail_ok: bool
    facts: Facts
    notice: str = ""


class PhaseFailed(Exception):
    def __init__(self, phase: str, failures: list[tuple[str, BaseException]]) -> None:
        first = "; ".join(f"{label}: {exc}" for label, exc in failures[:5])
        super().__init__(f"{phase}: {len(failures)} step(s) failed — {first}")
        self.phase = phase
        self.failures = failures


async def until(what: str, check: Callable[[], Awaitable[T | None]], timeout_s: float = 120) -> T:
    """Poll `check` (with a growing pause) until it answers something: events cross Kafka."""
    deadline = time.monotonic() + timeout_s
    pause = 0.05
    while True:
        found = await check()
        if found is not None and found is not False:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout_s:.0f}s for {what}")
        await asyncio.sleep(pause)
        pause = min(pause * 1.5, 1.0)


def _iso(day: date | None) -> str:
    assert day is not None
    return day.isoformat()


@dataclass(frozen=True)
class As:
    """Who calls: a role of a jurisdiction (or of several joined with '+')."""

    role: str
    jurisdiction: str


class Runner:
    """Carries the scenario's plans through the four services, phase by phase, many at a time."""

    def __init__(self, scenario: Scenario, client: Client, progress: Progress, tasks: dict[str, TaskID]):
        self.s = scenario
        self.c = client
        self.progress = progress
        self.tasks = tasks
        self.gate = asyncio.Semaphore(CONCURRENCY)
        self.ids: dict[str, str] = {}  # plan key -> matter id
        self.subject_ids: dict[str, str] = {}
        self.inbound_ids: dict[str, str] = {}  # source reference -> report id
        self.inbound_locks = {j: asyncio.Lock() for j in JURISDICTIONS}
        self.timings: dict[str, float] = {}
        self.facts = Facts()

    # -- plumbing

    async def raw(
        self,
        method: str,
        service: str,
        path: str,
        who: As,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> httpx.Response:
        started = time.monotonic()
        response = await self.c.request(
            method,
            service,
            path,
            role=who.role,
            jurisdiction=who.jurisdiction,
            body=body,
            params=params,
            idempotency_key=idempotency_key,
        )
        self.facts.latencies.append(time.monotonic() - started)
        return response

    async def call(
        self,
        method: str,
        service: str,
        path: str,
        who: As,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        """One command or query; the client retries connection errors and 5xx with the command's
        idempotency key, and a concurrent writer on the same stream (409 concurrency_conflict) is
        retried here, with the same key (a refused command did not spend it)."""
        key = new_idempotency_key() if method == "POST" else None
        for attempt in range(8):
            response = await self.raw(
                method, service, path, who, body=body, params=params, idempotency_key=key
            )
            if response.status_code == 409 and _code(response.text) == "concurrency_conflict":
                await asyncio.sleep(0.05 * (attempt + 1))
                continue
            if response.status_code >= 300:
                raise ApiError(method, f"{service}{path}", response.status_code, response.text)
            return response.json() if response.content else None
        raise ApiError(method, f"{service}{path}", 409, "concurrency conflict persisted")

    async def get_if(self, service: str, path: str, who: As) -> Any:
        """GET that answers None on 404 (not there yet)."""
        response = await self.raw("GET", service, path, who)
        if response.status_code == 404:
            return None
        if response.status_code >= 300:
            raise ApiError("GET", f"{service}{path}", response.status_code, response.text)
        return response.json()

    async def each(
        self, phase: str, items: Sequence[T], work: Callable[[T], Awaitable[None]], label: Callable[[T], str]
    ) -> None:
        """Run `work` on every item, CONCURRENCY at a time; fail the phase naming what failed."""
        failures: list[tuple[str, BaseException]] = []
        task = self.tasks[phase]

        async def one(item: T) -> None:
            async with self.gate:
                try:
                    await work(item)
                except Exception as exc:
                    failures.append((label(item), exc))
            self.progress.advance(task)

        await asyncio.gather(*(one(i) for i in items))
        if failures:
            raise PhaseFailed(phase, failures)

    def begin(self, phase: str, total: int) -> None:
        task = self.tasks[phase]
        self.progress.update(task, total=total)
        self.progress.start_task(task)

    async def run(self) -> Result:
        for phase, step in (
            ("reports", self.reports),
            ("verification", self.verification),
            ("sweep", self.sweep),
            ("clarification chain", self.chain),
            ("rounds", self.rounds),
            ("archive", self.archive),
        ):
            await self.timed(phase, step())
        return await self.timed("report", self.report())

    async def timed(self, phase: str, step: Awaitable[T]) -> T:
        """Run a phase; its time is kept also when it fails or is interrupted."""
        started = time.monotonic()
        try:
            done = await step
        finally:
            self.timings[phase] = time.monotonic() - started
        task = self.tasks[phase]
        self.progress.update(task, completed=self.progress.tasks[task].total or 0)
        self.progress.stop_task(task)
        return done

    # -- reports (接收, 登记, 受理, 移送承办; 重复件; 上级转办; 其他机关移送)

    async def reports(self) -> None:
        cases = self.s.cases
        self.begin("reports", len(cases))
        inbound = [c for c in cases if c.via == "inbound"]
        if inbound:
            await self.publish_inbound(inbound)
        matters = [c for c in cases if c.outcome != "repeat"]
        await self.each("reports", matters, self.open_report, _key)
        await self.each("reports", [c for c in cases if c.outcome == "repeat"], self.merge_repeat, _key)

    def reference(self, case: DemoCase) -> str:
        return f"移送-{self.s.seed}-{case.key}"

    async def publish_inbound(self, cases: list[DemoCase]) -> None:
        """Other agencies publish InboundReportV1 with the identity sealed to intake's key."""
        from aiokafka import AIOKafkaProducer
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        from services.intake.inbound import seal_for_intake
        from shared.topics import inbound_reports_topic

        pem = await self.call("GET", "intake", "/inbound/public-key", As("letters_office", CITY))
        key = load_pem_public_key(pem["public_key_pem"].encode())
        assert isinstance(key, X25519PublicKey)
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka().bootstrap, acks="all")
        await producer.start()
        try:
            for c in cases:
                message = {
                    "message_id": str(uuid.uuid4()),
                    "schema_version": 1,
                    "source_agency": c.source_agency,
                    "source_reference": self.reference(c),
                    "jurisdiction": c.jurisdiction,
                    "received_on": _iso(c.received_on),
                    "real_name": c.real_name,
                    "reporter_sealed": seal_for_intake(c.reporter.body(), key) if c.reporter else None,
                    "subjects": [c.subject.body()],
                    "allegations": [{"summary": a} for a in c.allegations],
                    "summary": "；".join(c.allegations),
                }
                await producer.send_and_wait(
                    inbound_reports_topic(c.jurisdiction),
                    json.dumps(message, ensure_ascii=False).encode(),
                    key=self.reference(c).encode(),
                )
        finally:
            await producer.stop()

    async def registered_inbound(self, case: DemoCase) -> str:
        j, reference = case.jurisdiction, self.reference(case)

        async def check() -> str | None:
            if reference not in self.inbound_ids:
                async with self.inbound_locks[j]:  # one listing per jurisdiction at a time
                    if reference not in self.inbound_ids:
                        rows = await self.call(
                            "GET",
                            "intake",
                            "/reports",
                            As("letters_office", j),
                            params={"jurisdiction": j, "limit": 5000},
                        )
                        for row in rows:
                            if row.get("source_reference"):
                                self.inbound_ids[row["source_reference"]] = row["report_id"]
            return self.inbound_ids.get(reference)

        return await until(f"the inbound report {case.key} registered", check)

    async def register(self, case: DemoCase, jurisdiction: str, received_on: date, channel: str) -> str:
        body = {
            "jurisdiction": jurisdiction,
            "channel": channel,
            "received_on": _iso(received_on),
            "real_name": case.real_name,
            "reporter": case.reporter.body() if case.reporter else None,
            "subjects": [case.subject.body()],
            "allegations": [{"summary": a} for a in case.allegations],
            "summary": "；".join(case.allegations),
        }
        report = await self.call("POST", "intake", "/reports", As("letters_office", jurisdiction), body=body)
        if QUARTER_FIRST <= received_on <= QUARTER_LAST:
            self.facts.reports_in_quarter += 1
        return str(report["report_id"])

    async def open_report(self, c: DemoCase) -> None:
        j = c.jurisdiction
        office = As("letters_office", j)
        if c.via == "inbound":
            report_id = await self.registered_inbound(c)
            self.facts.inbound += 1
            self.facts.reports_in_quarter += 1
        elif c.via == "send_down":
            assert c.city_received_on is not None
            upper = await self.register(c, CITY, c.city_received_on, "online")
            city = As("letters_office", CITY)
            await self.call(
                "POST", "intake", f"/reports/{upper}/log", city, body={"logged_on": _iso(c.city_received_on)}
            )
            sent = await self.call(
                "POST",
                "intake",
                f"/reports/{upper}/send-down",
                city,
                body={"sent_on": _iso(c.received_on), "to_jurisdiction": j},
            )
            report_id = str(sent["lower_report_id"])
            self.facts.sent_down += 1
            self.facts.reports_in_quarter += 1
        else:
            report_id = await self.register(c, j, c.received_on, c.channel)
        self.ids[c.key] = report_id
        base = f"/reports/{report_id}"
        await self.call("POST", "intake", f"{base}/log", office, body={"logged_on": _iso(c.received_on)})
        await self.call("POST", "intake", f"{base}/accept", office, body={"accepted_on": _iso(c.accepted_on)})
        department = DEPARTMENTS[sum(map(ord, c.key)) % len(DEPARTMENTS)]
        await self.call(
            "POST",
            "intake",
            f"{base}/hand-over",
            office,
            body={"department": department, "handed_on": _iso(c.handed_on)},
        )
        if c.acceptance_notice_on:
            await self.call(
                "POST",
                "intake",
                f"{base}/notify",
                office,
                body={"kind": "acceptance", "notified_on": _iso(c.acceptance_notice_on)},
            )
            self.facts.reporter_notices += 1

    async def merge_repeat(self, c: DemoCase) -> None:
        j = c.jurisdiction
        assert c.repeat_of is not None
        report_id = await self.register(c, j, c.received_on, c.channel)
        self.ids[c.key] = report_id
        office = As("letters_office", j)
        await self.call(
            "POST", "intake", f"/reports/{report_id}/log", office, body={"logged_on": _iso(c.received_on)}
        )
        await self.call(
            "POST",
            "intake",
            f"/reports/{report_id}/merge",
            office,
            body={"merged_on": _iso(c.merged_on), "repeats_matter_id": self.ids[c.repeat_of]},
        )
        self.facts.repeats += 1

    # -- verification (核查: decision, findings, 办结; 绿色通道)

    async def verification(self) -> None:
        matters = [c for c in self.s.cases if c.outcome != "repeat"]
        self.begin("verification", len(matters))
        await self.each("verification", matters, self.verify, _key)

    async def verify(self, c: DemoCase) -> None:
        j, case_id = c.jurisdiction, self.ids[c.key]
        dept = As("handling_department", j)
        base = f"/verifications/{case_id}"
        opened = await until(
            f"the verification of {c.key} opened",
            lambda: self.get_if("review", base, As("handling_department", j)),
        )
        await self.call(
            "POST",
            "review",
            f"{base}/decision",
            dept,
            body={
                "method": c.method,
                "decided_on": _iso(c.decided_on),
                "approved_by": f"head-{j}",
                "collective": True,
                "note": "经集体研究决定",
            },
        )
        if c.green_channel == "before":
            await self.apply(c, opened)
            # the application is weeks ahead of the conclusion: let clarification note it first
            await until(f"the application of {c.key} noted", lambda: self.application_noted(c))
        if c.concluded_on is None:
            return  # still being verified when the quarter ends
        for allegation, finding in zip(opened["allegations"], c.findings, strict=True):
            body: dict[str, Any] = {
                "allegation_id": allegation["allegation_id"],
                "finding": finding,
                "basis": BASIS[finding],
                # reached the working day before the conclusion (never before the decision)
                "found_on": _iso(max(c.decided_on or c.concluded_on, c.concluded_on - timedelta(days=1))),
            }
            if finding == "false_accusation":
                body.update(
                    approved_by=f"head-{CITY}", approval_jurisdiction=CITY, referred_on=_iso(c.referred_on)
                )
            found = await self.call("POST", "review", f"{base}/findings", dept, body=body)
            if (
                "FalseAccusationReferred" in found["recorded"]
                and c.referred_on
                and c.referred_on >= QUARTER_FIRST
            ):
                self.facts.referred_in_quarter += 1
        await self.call(
            "POST", "review", f"{base}/conclude", dept, body={"concluded_on": _iso(c.concluded_on)}
        )
        if c.green_channel == "after":
            await self.apply(c, opened)

    async def application_noted(self, c: DemoCase) -> bool:
        matter = await self.get_if(
            "clarification", f"/clarifications/{self.ids[c.key]}", As("handling_department", c.jurisdiction)
        )
        return bool(matter and matter["applications"])

    async def apply(self, c: DemoCase, verification: dict[str, Any]) -> None:
        """绿色通道: the reported person's written application."""
        untrue = [
            a["allegation_id"]
            for a, f in zip(verification["allegations"], c.findings, strict=True)
            if f in ("untrue", "false_accusation")
        ]
        await self.call(
            "POST",
            "intake",
            "/applications",
            As("letters_office", c.jurisdiction),
            body={
                "jurisdiction": c.jurisdiction,
                "matter_id": self.ids[c.key],
                "applicant": verification["subjects"][0],
                "untrue_points": untrue or [verification["allegations"][0]["allegation_id"]],
                "request": "本人所涉问题经核查失实，申请在一定范围内予以澄清正名",
                "filed_on": _iso(c.green_filed_on),
            },
        )
        self.facts.applications += 1

    # -- the backlog sweep (大起底)

    async def sweep(self) -> None:
        self.begin("sweep", 2)
        j = self.s.sweep_jurisdiction
        flags = {
            self.ids[c.key]: list(c.priority_flags) for c in self.s.cases if c.swept and c.priority_flags
        }
        done = await self.call(
            "POST",
            "review",
            "/sweeps",
            As("case_management", j),
            body={"jurisdiction": j, "as_of": _iso(self.s.sweep_as_of), "priority_flags": flags},
        )
        self.facts.newly_screened = list(done["newly_screened"])
        self.facts.priority_flagged = len(flags)
        self.progress.advance(self.tasks["sweep"])
        rows = await self.call(
            "GET", "review", "/verifications", As("auditor", j), params={"jurisdiction": j}
        )
        self.facts.screened_seen = sum(1 for r in rows if r["screenings"])
        self.progress.advance(self.tasks["sweep"])

    # -- the chain (申请—评估—复核—审批)

    async def chain(self) -> None:
        cases = [c for c in self.s.cases if c.chain is not None or c.outcome == "in_pool"]
        self.begin("clarification chain", len(cases))
        await self.each("clarification chain", cases, self.clarify, _key)

    async def clarify(self, c: DemoCase) -> None:
        j, case_id = c.jurisdiction, self.ids[c.key]
        dept = As("handling_department", j)
        base = f"/clarifications/{case_id}"

        async def candidate() -> dict[str, Any] | None:
            found = await self.get_if("clarification", base, As("handling_department", j))
            return found if found and found["state"] == "candidate" else None

        matter = await until(f"{c.key} in the candidate pool", candidate)
        subject_id = str(matter["outcome"]["subjects"][0]["subject_id"])
        self.subject_ids[c.key] = subject_id
        plan = c.chain
        if plan is None:
            return  # waits in the pool for a later quarter
        start = {
            "initiated_by": plan.initiated_by,
            "person_subject_id": subject_id,
            "consent": plan.consent,
            "consent_note": "经征求本人意见，本人同意澄清" if plan.consent else "本人不同意澄清",
            "started_on": _iso(plan.start_on),
        }
        if not plan.consent:
            refused = await self.raw("POST", "clarification", f"{base}/start", dept, body=start)
            if refused.status_code != 422 or _code(refused.text) != "consent_required":
                raise ApiError("POST", f"{base}/start", refused.status_code, refused.text)
            self.facts.consent_refused += 1
            return
        await self.call("POST", "clarification", f"{base}/start", dept, body=start)
        if plan.assess_on is None:
            return
        assessed = await self.call(
            "POST",
            "clarification",
            f"{base}/assess",
            dept,
            body={
                "assessed_on": _iso(plan.assess_on),
                "bad_effects": list(plan.bad_effects),
                "effect_only_from_interviews": plan.effect_only_from_interviews,
            },
        )
        if assessed["eligible"] != (c.outcome != "refused"):
            raise RuntimeError(f"{c.key}: assessment answered eligible={assessed['eligible']}")
        if not assessed["eligible"]:
            self.facts.refusals += 1
            return
        members = {"letters_office": f"letters-{j}", "case_trial": f"trial-{j}", "case_management": f"cm-{j}"}
        for review in plan.reviews:
            checked = await self.call(
                "POST",
                "clarification",
                f"{base}/re-review",
                As("case_trial", j),
                body={
                    "reviewed_on": _iso(review.on),
                    "verification_complete": review.passed,
                    "conclusion_clear": True,
                    "disposal_adequate": True,
                    "expected_effect": "澄清后可消除不良影响，激励干部担当作为",
                    "members": members,
                },
            )
            if checked["passed"] != review.passed:
                raise RuntimeError(f"{c.key}: re-review answered passed={checked['passed']}")
            if not review.passed:
                self.facts.sent_back += 1
        if plan.approve_on is None:
            return
        approver = j if c.subject.cadre_level == "county" or j == CITY else f"{CITY}+{j}"
        await self.call(
            "POST",
            "clarification",
            f"{base}/approve",
            As("head", approver),
            body={"approved_on": _iso(plan.approve_on)},
        )

    # -- quarterly rounds (集中澄清), feedback, acknowledgement, filing

    async def rounds(self) -> None:
        cleared = self.s.cleared()
        self.begin("rounds", len(self.s.rounds) + len(cleared))

        async def hold(jurisdiction: str) -> None:
            plan = next(r for r in self.s.rounds if r.jurisdiction == jurisdiction)
            done = await self.call(
                "POST",
                "clarification",
                "/rounds",
                As("handling_department", jurisdiction),
                body={
                    "jurisdiction": jurisdiction,
                    "quarter": QUARTER,
                    "held_on": _iso(plan.held_on),
                    "forms": list(plan.forms),
                    "scope": plan.scope,
                },
            )
            self.facts.performed[jurisdiction] = list(done["matters"])
            expected = {self.ids[c.key] for c in self.s.cleared(jurisdiction)}
            if set(done["matters"]) != expected:
                raise RuntimeError(
                    f"the round of {jurisdiction} clarified {len(done['matters'])} matters,"
                    f" expected {len(expected)}"
                )

        await self.each("rounds", [r.jurisdiction for r in self.s.rounds], hold, lambda j: f"round {j}")
        await self.each("rounds", cleared, self.close, _key)

    async def close(self, c: DemoCase) -> None:
        after = c.after_round
        assert after is not None
        j, base = c.jurisdiction, f"/clarifications/{self.ids[c.key]}"
        dept = As("handling_department", j)
        committee = (
            f"中共{c.subject.organisation}委员会"
            if c.subject.kind == "unit"
            else f"{c.subject.organisation}党组织"
        )
        await self.call(
            "POST",
            "clarification",
            f"{base}/feedback",
            dept,
            body={
                "given_on": _iso(after.feedback_on),
                "party_committee": committee,
                "unit_head": after.unit_head,
            },
        )
        await self.call(
            "POST",
            "clarification",
            f"{base}/acknowledge",
            dept,
            body={"acknowledged_on": _iso(after.acknowledged_on), "note": "本人已知悉澄清结果，表示认可"},
        )
        await self.call(
            "POST",
            "clarification",
            f"{base}/file",
            As("case_management", j),
            body={"filed_on": _iso(after.filed_on)},
        )
        self.facts.filed += 1

    # -- archive (备案, 回访, notices, documents) and the quarter's paperwork

    async def archive(self) -> None:
        cleared = self.s.cleared()
        notified = [c for c in self.s.cases if c.result_notice_on]
        jurisdictions = list(JURISDICTIONS)
        total = 3 * len(jurisdictions) + 2 * len(cleared) + len(notified)
        self.begin("archive", total)
        await self.each("archive", jurisdictions, self.filings_arrived, lambda j: f"filings of {j}")
        await self.each("archive", cleared, self.visit, _key)
        await self.each("archive", notified, self.notify_result, _key)
        await self.each("archive", jurisdictions, self.results_report, lambda j: f"results of {j}")
        await self.each("archive", jurisdictions, self.notice, lambda j: f"notice of {j}")
        await self.each("archive", cleared, self.documents, _key)

    async def filings_arrived(self, j: str) -> None:
        expected = len(self.facts.performed.get(j, []))

        async def arrived() -> bool:
            rows = await self.call(
                "GET",
                "archive",
                "/filings",
                As("case_management", j),
                params={"jurisdiction": j, "quarter": QUARTER},
            )
            return len(rows) >= expected

        await until(f"the filings of {j} in the archive", arrived)

    async def visit(self, c: DemoCase) -> None:
        after = c.after_round
        if after is None or not after.visits:
            return
        j, case_id = c.jurisdiction, self.ids[c.key]
        record = await self.call(
            "GET", "archive", f"/files/{self.subject_ids[c.key]}", As("case_management", j)
        )
        scheduled = {v["visit_with"]: v["visit_id"] for v in record["visits"] if v["case_id"] == case_id}
        for planned in after.visits:
            await self.call(
                "POST",
                "archive",
                f"/visits/{scheduled[planned.party]}/record",
                As("case_management", j),
                body={
                    "visited_on": _iso(planned.on),
                    "state_of_mind": "心态积极，放下了思想包袱"
                    if planned.party == "person"
                    else "单位氛围良好",
                    "work": "工作积极主动，敢于担当" if planned.party == "person" else "干部干事创业劲头足",
                    "leader_views": "领导认可其工作表现",
                    "colleague_views": "同事评价良好",
                },
            )
            if planned.on <= QUARTER_LAST:
                self.facts.visits_in_quarter += 1
            else:
                self.facts.visits_later += 1

    async def notify_result(self, c: DemoCase) -> None:
        """A real-name reporter is told the result once intake has learnt of the conclusion."""
        j, report_id = c.jurisdiction, self.ids[c.key]

        async def told() -> bool | None:
            response = await self.raw(
                "POST",
                "intake",
                f"/reports/{report_id}/notify",
                As("letters_office", j),
                body={"kind": "result", "notified_on": _iso(c.result_notice_on)},
            )
            if response.status_code == 409 and _code(response.text) in (
                "wrong_state",
                "concurrency_conflict",
            ):
                return None  # the conclusion has not reached intake yet
            if response.status_code >= 300:
                raise ApiError("POST", f"/reports/{report_id}/notify", response.status_code, response.text)
            return True

        await until(f"the result notice of {c.key}", told)
        self.facts.reporter_notices += 1

    async def results_report(self, j: str) -> None:
        await self.call(
            "POST",
            "review",
            "/results-reports",
            As("handling_department", j),
            body={"jurisdiction": j, "quarter": QUARTER, "reported_on": _iso(self.s.results_reported_on)},
        )
        self.facts.results_reports += 1

    async def notice(self, j: str) -> None:
        issued_on = dict(self.s.notices)[j]
        notice = await self.call(
            "POST",
            "archive",
            "/notices",
            As("case_management", j),
            body={"jurisdiction": j, "period": QUARTER, "issued_on": _iso(issued_on)},
        )
        self.facts.notices[j] = len(notice["entries"])

    async def documents(self, c: DemoCase) -> None:
        j, case_id = c.jurisdiction, self.ids[c.key]
        matter = await self.call("GET", "clarification", f"/clarifications/{case_id}", As("auditor", j))
        folder = DOCUMENTS / case_id
        folder.mkdir(parents=True, exist_ok=True)
        for doc in matter["documents"]:
            response = await self.raw(
                "GET",
                "clarification",
                f"/clarifications/{case_id}/documents/{doc['doc_id']}",
                As("auditor", j),
            )
            if response.status_code != 200:
                raise ApiError("GET", f"document {doc['doc_id']}", response.status_code, response.text)
            (folder / f"{doc['doc_id']}.txt").write_text(response.text, encoding="utf-8")
            self.facts.documents += 1

    # -- the quarterly report, the targets, the audit trail

    async def report(self) -> Result:
        self.begin("report", 3)
        performed = sum(len(v) for v in self.facts.performed.values())
        expected = {
            "reports_received": self.facts.reports_in_quarter,
            "clarifications": performed,
            "filings": self.facts.filed,
            "false_accusations_referred": self.facts.referred_in_quarter,
            "return_visits_done": self.facts.visits_in_quarter,
        }
        last: dict[str, Any] = {}

        async def settled() -> dict[str, Any] | None:
            nonlocal last
            last = await self.call(
                "GET",
                "archive",
                "/statistics",
                As("auditor", ALL_JURISDICTIONS),
                params={"quarter": QUARTER},
            )
            figures = last["total"]["figures"]
            return last if all(figures[k] == v for k, v in expected.items()) else None

        try:
            statistics = await until("the archive's statistics to take in every event", settled, 90)
        except TimeoutError:
            statistics = last
        self.progress.advance(self.tasks["report"])
        mismatches = self.check(statistics, expected)
        self.progress.advance(self.tasks["report"])
        timeline, trail_lines, trail_ok = await self.audit()
        self.progress.advance(self.tasks["report"])
        return Result(
            statistics=statistics,
            mismatches=mismatches,
            timeline=timeline,
            timeline_case=self.ids.get(self.s.showcase.key, "-"),
            trail_lines=trail_lines,
            trail_ok=trail_ok,
            facts=self.facts,
            notice=self.showcase_notice(),
        )

    def check(self, statistics: dict[str, Any], expected: dict[str, int]) -> list[str]:
        """The published figures against what the workflow produced."""
        t = self.s.targets
        out: list[str] = []
        total = statistics["total"]
        figures = total["figures"]
        for name, value in expected.items():
            if figures[name] != value:
                out.append(f"city-wide {name}: statistics {figures[name]}, the workflow did {value}")
        if figures["persons_clarified"] != t.total_persons:
            out.append(f"persons cleared city-wide: {figures['persons_clarified']}, target {t.total_persons}")
        if figures["units_clarified"] != t.total_units:
            out.append(f"units cleared city-wide: {figures['units_clarified']}, target {t.total_units}")
        if total["coverage"]["covered"] != len(JURISDICTIONS):
            out.append(f"coverage: {total['coverage']['text']}, target all {len(JURISDICTIONS)}")
        for row in statistics["rows"]:
            j, f = row["jurisdiction"], row["figures"]
            if (f["persons_clarified"], f["units_clarified"]) != (t.persons[j], t.units[j]):
                out.append(
                    f"{row['name']} {j}: {f['persons_clarified']} persons and {f['units_clarified']} units"
                    f" cleared, planned {t.persons[j]} and {t.units[j]}"
                )
        jinyun = next(r for r in statistics["rows"] if r["jurisdiction"] == JINYUN)["figures"]
        cleared = jinyun["persons_clarified"] + jinyun["units_clarified"]
        if cleared != t.jinyun_cleared:
            out.append(f"缙云县 cleared {cleared}, target {t.jinyun_cleared}")
        if len(self.facts.newly_screened) != t.jinyun_swept:
            out.append(f"缙云县 sweep screened {len(self.facts.newly_screened)}, target {t.jinyun_swept}")
        if self.facts.screened_seen != t.jinyun_swept:
            out.append(
                f"缙云县 verifications screened by the sweep: {self.facts.screened_seen},"
                f" target {t.jinyun_swept}"
            )
        swept_cleared = {self.ids[c.key] for c in self.s.cleared(JINYUN) if c.swept}
        if not swept_cleared <= set(self.facts.newly_screened):
            out.append("缙云县 cleared matters the sweep did not screen")
        return out

    def showcase_notice(self) -> str:
        case_id = self.ids.get(self.s.showcase.key)
        path = DOCUMENTS / f"{case_id}" / f"{case_id}-notice.txt"
        return path.read_text(encoding="utf-8") if case_id and path.exists() else ""

    async def audit(self) -> tuple[Table | None, list[str], bool]:
        from zhengming.audit import case_timeline, render_timeline, verify_trail

        showcase = self.s.showcase
        entries = await case_timeline(
            self.ids[showcase.key], role="auditor", jurisdiction=showcase.jurisdiction
        )
        trail = await verify_trail()
        return render_timeline(entries), trail.lines(), trail.ok


BASIS = {
    "untrue": "经初步核实，反映问题失实",
    "true": "经审查调查，反映问题属实",
    "partly_true": "经初步核实，反映问题部分属实",
    "not_proven": "经初步核实，反映问题查无实据",
    "honest_mistake": "经核实，系检举人对情况不了解造成的错告",
    "false_accusation": "经核实，检举人捏造事实、故意诬告，涉嫌诬告陷害",
}


def _key(case: DemoCase) -> str:
    return case.key


def _code(text: str) -> str | None:
    try:
        body = json.loads(text)
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None


# --- output -------------------------------------------------------------------------------------------


def _forms(counts: dict[str, int]) -> str:
    return " ".join(f"{FORM_SHORT[k]}{v}" for k, v in counts.items() if v)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


COLUMNS = (
    ("jurisdiction", "辖区"),
    ("reports", "受理检举控告"),
    ("untrue", "失实办结"),
    ("candidates", "入库"),
    ("persons", "澄清党员干部"),
    ("units", "澄清单位"),
    ("forms", "澄清方式"),
    ("visits", "回访"),
    ("false acc.", "诬告陷害移送"),
    ("days", "办结至澄清(工作日)"),
    ("index", "担当干事激情指数"),
)


def quarterly_table(statistics: dict[str, Any]) -> Table:
    table = Table(
        title=f"丽水市 {QUARTER} 澄清正名 quarterly report (GET /statistics as the city's auditor)",
        caption="days: mean working days from the verification's conclusion to the clarification;"
        " index: 保护党员干部担当干事激情 (docs/indicator.md)",
    )
    for english, chinese in COLUMNS:
        table.add_column(
            f"{english}\n{chinese}", justify="left" if english in ("jurisdiction", "forms") else "right"
        )

    def add(row: dict[str, Any], style: str | None = None) -> None:
        f = row["figures"]
        table.add_row(
            f"{row['name']} {row['jurisdiction']}" if row["jurisdiction"] else f"{JURISDICTIONS[CITY]} 合计",
            str(f["reports_received"]),
            str(f["untrue_conclusions"]),
            str(f["candidates"]),
            str(f["persons_clarified"]),
            str(f["units_clarified"]),
            _forms(f["forms_used"]),
            str(f["return_visits_done"]),
            str(f["false_accusations_referred"]),
            _number(f["working_days_to_clarify_mean"]),
            _number(row["indicator"]["score"]),
            style=style,
        )

    for row in statistics["rows"]:
        add(row)
    table.add_section()
    add(statistics["total"], style="bold")
    return table


def timings_table(timings: dict[str, float]) -> Table:
    table = Table(title="phases")
    table.add_column("phase")
    table.add_column("seconds", justify="right")
    for phase in (*PHASES, "teardown"):
        if phase in timings:
            table.add_row(phase, f"{timings[phase]:.1f}")
    table.add_section()
    table.add_row("total", f"{sum(timings.values()):.1f}", style="bold")
    return table


def render(out: Console, scenario: Scenario, result: Result) -> None:
    out.print(quarterly_table(result.statistics))
    f, t = result.facts, scenario.targets
    total = result.statistics["total"]
    figures = total["figures"]
    jinyun = next(r for r in result.statistics["rows"] if r["jurisdiction"] == JINYUN)["figures"]
    out.print(
        f"city-wide: {figures['persons_clarified']} persons and {figures['units_clarified']} units cleared"
        f" (target {t.total_persons} and {t.total_units}), {total['coverage']['text']};"
        f" 缙云县: {len(f.newly_screened)} screened by the sweep as of {scenario.sweep_as_of}"
        f" ({f.priority_flagged} with priority flags; target {t.jinyun_swept}),"
        f" {jinyun['persons_clarified'] + jinyun['units_clarified']} cleared (target {t.jinyun_cleared})"
    )
    performed = sum(len(v) for v in f.performed.values())
    out.print(
        f"workflow: {f.reports_in_quarter} reports received in {QUARTER} ({f.inbound} from other"
        f" agencies on the inbound topic, {f.sent_down} sent down by the city, {f.repeats} repeats"
        f" merged), {f.applications} green-channel applications, {f.refusals} refused at assessment,"
        f" {f.consent_refused} without consent, {f.sent_back} sent back by the re-review,"
        f" {performed} clarified in {len(f.performed)} rounds, {f.filed} filed,"
        f" {f.visits_in_quarter} return visits in {QUARTER} and {f.visits_later} later,"
        f" {sum(f.notices.values())} persons and units in {len(f.notices)} notices to the"
        f" organisation departments, {f.results_reports} results reports,"
        f" {f.reporter_notices} notices to real-name reporters"
    )
    spent = f.latencies
    if spent:
        out.print(
            f"HTTP: {len(spent)} requests to the four services, mean {1000 * sum(spent) / len(spent):.0f} ms"
            f" at up to {CONCURRENCY} cases at a time"
        )
    out.print(
        f"documents: {f.documents} written under {DOCUMENTS.relative_to(PROJECT_ROOT)}/<case_id>/<doc_id>.txt"
    )
    if result.notice:
        out.print(Panel(result.notice.strip(), title=f"澄清通知书 of {result.timeline_case}", expand=False))
    if result.timeline is not None:
        out.print(f"\naudit timeline of {result.timeline_case}:")
        out.print(result.timeline)
    out.print("\ntrail verification:")
    for line in result.trail_lines:
        out.print(line, markup=False)


def keep_message(out: Console, env: dict[str, str]) -> None:
    zm = zhengming_command()
    out.print("\nthe demo's stack keeps running:")
    for service in SERVICES:
        out.print(f"  {service}: {settings.services().url(service)}  (OpenAPI: /docs)")
    out.print(f"  kafka: {settings.kafka().bootstrap}   postgresql: {settings.postgres().dsn()}")
    out.print("tokens (one per role of a jurisdiction):", markup=False)
    out.print(f"  {with_env(env, zm + ' tokens --jurisdiction 331122')}", markup=False, soft_wrap=True)
    out.print("stop it:", markup=False)
    out.print(f"  {with_env(env, zm + ' down')}", markup=False, soft_wrap=True)
    out.print("  (or: make demo-down)")


# --- the command -------------------------------------------------------------------------------------


def run_demo(scale: int = 1, seed: int = DEFAULT_SEED, keep: bool = False) -> int:
    """The whole demo; returns the exit code (0 when the targets hold and the trail verifies)."""
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    env = demo_environment()
    use_environment(env)
    # Wide when not on a terminal (a log file), so the tables keep their columns.
    out = Console(width=None if sys.stdout.isatty() else 220)
    err = Console(stderr=True, width=None if sys.stderr.isatty() else 120)
    scenario = generate(seed, scale)
    timings: dict[str, float] = {}
    code = 1
    result: Result | None = None
    previous = signal.signal(signal.SIGTERM, _terminate)
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description:<20}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
    )
    tasks = {phase: progress.add_task(phase, total=None, start=False) for phase in PHASES}
    try:
        with progress:
            started = time.monotonic()
            progress.start_task(tasks["setup"])
            from zhengming.cli import start_infra

            prepare_stack(env)
            start_infra(with_services=True)
            timings["setup"] = time.monotonic() - started
            progress.update(tasks["setup"], total=1, completed=1)
            progress.stop_task(tasks["setup"])
            result = asyncio.run(_drive(scenario, progress, tasks, timings))
        render(out, scenario, result)
        t = scenario.targets
        problems = list(result.mismatches)
        if not result.trail_ok:
            problems.append("the trail does not verify")
        if problems:
            out.print("\n[bold red]FAILED[/]: " + "; ".join(problems), soft_wrap=True)
        else:
            out.print(
                f"\n[bold green]OK[/]: {t.total_persons} party members and {t.total_units} units cleared"
                f" in {QUARTER}, the city level and all 9 counties covered, 缙云县 {t.jinyun_swept}"
                f" screened and {t.jinyun_cleared} cleared;"
                " the trail verifies"
            )
        code = 1 if problems else 0
    except (KeyboardInterrupt, Interrupted):
        err.print("\ninterrupted")
        code = 130
    except PhaseFailed as exc:
        err.print(f"\n[bold red]demo failed[/] in {exc.phase}:", highlight=False)
        for label, failure in exc.failures[:10]:
            err.print(f"  {label}: {failure}", markup=False)
        code = 1
    except Exception as exc:
        err.print(f"\n[bold red]demo failed[/]: {type(exc).__name__}: {exc}", highlight=False)
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave processes behind
        try:
            if keep:
                keep_message(out, env)
            else:
                started = time.monotonic()
                from zhengming.cli import stop_infra

                stop_infra()
                timings["teardown"] = time.monotonic() - started
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, previous)
    if timings:
        out.print(timings_table(timings))
    return code


async def _drive(
    scenario: Scenario, progress: Progress, tasks: dict[str, TaskID], timings: dict[str, float]
) -> Result:
    client = Client(settings.services(), DemoUsers())
    runner = Runner(scenario, client, progress, tasks)
    try:
        return await runner.run()
    finally:
        timings.update(runner.timings)
        await client.close()
