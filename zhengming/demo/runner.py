"""The scenario's plans carried through the four services, phase by phase, many at a time."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import date, timedelta
from typing import Any

from rich.progress import (
    Progress,
    TaskID,
)
from rich.table import Table

from shared import settings
from shared.envelope import CITY, JURISDICTIONS
from zhengming.client import ApiError, Client, Users
from zhengming.demo.calls import As, Calls, iso_day, problem_code, until
from zhengming.demo.exits import ExitsOutcome, run_exits
from zhengming.demo.facts import Result
from zhengming.demo.stack import DOCUMENTS
from zhengming.driver import CaseDriver
from zhengming.scenario import JINYUN, QUARTER, QUARTER_FIRST, QUARTER_LAST, DemoCase, Scenario

PHASES = (
    "setup",
    "reports",
    "verification",
    "sweep",
    "clarification chain",
    "rounds",
    "archive",
    "exits",
    "report",
)
ALL_JURISDICTIONS = "+".join(JURISDICTIONS)
DEPARTMENTS = ("第一监督检查室", "第二监督检查室", "第三监督检查室", "第四监督检查室")


class Runner(Calls):
    """Carries the scenario's plans through the four services, phase by phase, many at a time."""

    def __init__(self, scenario: Scenario, client: Client, progress: Progress, tasks: dict[str, TaskID]):
        super().__init__(client, progress, tasks)
        self.s = scenario
        self.ids: dict[str, str] = {}  # plan key -> matter id
        self.subject_ids: dict[str, str] = {}
        self.inbound_ids: dict[str, str] = {}  # source reference -> report id
        self.inbound_locks = {j: asyncio.Lock() for j in JURISDICTIONS}
        self.case = CaseDriver(self)

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
        exits = await self.timed("exits", self.exits())
        result = await self.timed("report", self.report())
        result.exits = exits
        return result

    async def exits(self) -> ExitsOutcome:
        """Every exit and loop of the chain, once, by the named users who take it (2023Q2)."""
        self.begin("exits", 1)

        def client(users: Users) -> Client:
            return Client(self.c.services, users)

        def calls(client: Client) -> Calls:
            return Calls(client, self.progress, self.tasks)

        outcome = await run_exits(client, calls)
        self.progress.advance(self.tasks["exits"])
        return outcome

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
                    "received_on": iso_day(c.received_on),
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
        report_id = await self.case.register(
            jurisdiction,
            channel=channel,
            received_on=received_on,
            real_name=case.real_name,
            reporter=case.reporter.body() if case.reporter else None,
            subject=case.subject.body(),
            allegations=case.allegations,
        )
        if QUARTER_FIRST <= received_on <= QUARTER_LAST:
            self.facts.reports_in_quarter += 1
        return report_id

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
            await self.case.log(CITY, upper, c.city_received_on)
            sent = await self.call(
                "POST",
                "intake",
                f"/reports/{upper}/send-down",
                As("letters_office", CITY),
                body={"sent_on": iso_day(c.received_on), "to_jurisdiction": j},
            )
            report_id = str(sent["lower_report_id"])
            self.facts.sent_down += 1
            self.facts.reports_in_quarter += 1
        else:
            report_id = await self.register(c, j, c.received_on, c.channel)
        self.ids[c.key] = report_id
        assert c.accepted_on is not None and c.handed_on is not None
        await self.case.log(j, report_id, c.received_on)
        await self.case.accept(j, report_id, c.accepted_on)
        department = DEPARTMENTS[sum(map(ord, c.key)) % len(DEPARTMENTS)]
        await self.case.hand_over(j, report_id, department, c.handed_on)
        if c.acceptance_notice_on:
            await self.call(
                "POST",
                "intake",
                f"/reports/{report_id}/notify",
                office,
                body={"kind": "acceptance", "notified_on": iso_day(c.acceptance_notice_on)},
            )
            self.facts.reporter_notices += 1

    async def merge_repeat(self, c: DemoCase) -> None:
        j = c.jurisdiction
        assert c.repeat_of is not None
        report_id = await self.register(c, j, c.received_on, c.channel)
        self.ids[c.key] = report_id
        await self.case.log(j, report_id, c.received_on)
        await self.call(
            "POST",
            "intake",
            f"/reports/{report_id}/merge",
            As("letters_office", j),
            body={"merged_on": iso_day(c.merged_on), "repeats_matter_id": self.ids[c.repeat_of]},
        )
        self.facts.repeats += 1

    # -- verification (核查: decision, findings, 办结; 绿色通道)

    async def verification(self) -> None:
        matters = [c for c in self.s.cases if c.outcome != "repeat"]
        self.begin("verification", len(matters))
        await self.each("verification", matters, self.verify, _key)

    async def verify(self, c: DemoCase) -> None:
        j, case_id = c.jurisdiction, self.ids[c.key]
        opened = await until(
            f"the verification of {c.key} opened", lambda: self.case.verification(j, case_id)
        )
        assert c.method is not None and c.decided_on is not None
        await self.case.decide(j, case_id, method=c.method, on=c.decided_on, note="经集体研究决定")
        if c.green_channel == "before":
            await self.apply(c, opened)
            # the application is weeks ahead of the conclusion: let clarification note it first
            await until(f"the application of {c.key} noted", lambda: self.application_noted(c))
        if c.concluded_on is None:
            return  # still being verified when the quarter ends
        for allegation, finding in zip(opened["allegations"], c.findings, strict=True):
            referred = finding == "false_accusation"
            assert c.referred_on is not None or not referred
            found = await self.case.find(
                j,
                case_id,
                allegation_id=allegation["allegation_id"],
                finding=finding,
                basis=BASIS[finding],
                # reached the working day before the conclusion (never before the decision)
                found_on=max(c.decided_on, c.concluded_on - timedelta(days=1)),
                referred_on=c.referred_on if referred else None,
            )
            if (
                "FalseAccusationReferred" in found["recorded"]
                and c.referred_on
                and c.referred_on >= QUARTER_FIRST
            ):
                self.facts.referred_in_quarter += 1
        await self.case.conclude(j, case_id, c.concluded_on)
        if c.green_channel == "after":
            await self.apply(c, opened)

    async def application_noted(self, c: DemoCase) -> bool:
        matter = await self.case.clarification(c.jurisdiction, self.ids[c.key])
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
                "filed_on": iso_day(c.green_filed_on),
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
            body={"jurisdiction": j, "as_of": iso_day(self.s.sweep_as_of), "priority_flags": flags},
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
        matter = await until(f"{c.key} in the candidate pool", lambda: self.case.candidate(j, case_id))
        subject_id = str(matter["outcome"]["subjects"][0]["subject_id"])
        self.subject_ids[c.key] = subject_id
        plan = c.chain
        if plan is None:
            return  # waits in the pool for a later quarter
        start = CaseDriver.start_body(
            subject_id,
            plan.start_on,
            consent=plan.consent,
            consent_note="经征求本人意见，本人同意澄清" if plan.consent else "本人不同意澄清",
            initiated_by=plan.initiated_by,
        )
        if not plan.consent:
            path = f"/clarifications/{case_id}/start"
            refused = await self.raw("POST", "clarification", path, As("handling_department", j), body=start)
            if refused.status_code != 422 or problem_code(refused.text) != "consent_required":
                raise ApiError("POST", path, refused.status_code, refused.text)
            self.facts.consent_refused += 1
            return
        await self.case.start(j, case_id, start)
        if plan.approve_on is not None and c.outcome != "refused":
            # 澄清内容: drafted by the department and approved by 审理室 on the start day, so the
            # 审批表 and the notice print the approved wording (no figure of the quarter moves).
            await self.case.word_content(j, case_id, plan.start_on)
        if plan.assess_on is None:
            return
        # The head approves the forms and scope proposed here: those of the jurisdiction's round.
        round_plan = next((r for r in self.s.rounds if r.jurisdiction == j), None)
        assessed = await self.case.assess(
            j,
            case_id,
            on=plan.assess_on,
            bad_effects=plan.bad_effects,
            effect_only_from_interviews=plan.effect_only_from_interviews,
            proposed_forms=round_plan.forms if round_plan else (),
            proposed_scope=round_plan.scope if round_plan else "",
        )
        if assessed["eligible"] != (c.outcome != "refused"):
            raise RuntimeError(f"{c.key}: assessment answered eligible={assessed['eligible']}")
        if not assessed["eligible"]:
            self.facts.refusals += 1
            return
        for review in plan.reviews:
            # A failed re-review here finds the conclusion unclear: it passes when re-reviewed (one
            # that finds the verification incomplete waits for a supplementary one: the exits phase).
            checked = await self.case.re_review(j, case_id, on=review.on, conclusion_clear=review.passed)
            if checked["passed"] != review.passed:
                raise RuntimeError(f"{c.key}: re-review answered passed={checked['passed']}")
            if not review.passed:
                self.facts.sent_back += 1
        if plan.approve_on is None:
            return
        approver = j if c.subject.cadre_level == "county" or j == CITY else f"{CITY}+{j}"
        await self.case.approve(approver, case_id, plan.approve_on)

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
                    "held_on": iso_day(plan.held_on),
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
        j, case_id = c.jurisdiction, self.ids[c.key]
        committee = (
            f"中共{c.subject.organisation}委员会"
            if c.subject.kind == "unit"
            else f"{c.subject.organisation}党组织"
        )
        await self.case.feedback(j, case_id, after.feedback_on, committee, after.unit_head)
        await self.case.acknowledge(j, case_id, after.acknowledged_on, "本人已知悉澄清结果，表示认可")
        await self.case.file(j, case_id, after.filed_on)
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
                    "visited_on": iso_day(planned.on),
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
                body={"kind": "result", "notified_on": iso_day(c.result_notice_on)},
            )
            if response.status_code == 409 and problem_code(response.text) in (
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
            body={"jurisdiction": j, "quarter": QUARTER, "reported_on": iso_day(self.s.results_reported_on)},
        )
        self.facts.results_reports += 1

    async def notice(self, j: str) -> None:
        issued_on = dict(self.s.notices)[j]
        notice = await self.call(
            "POST",
            "archive",
            "/notices",
            As("case_management", j),
            body={"jurisdiction": j, "period": QUARTER, "issued_on": iso_day(issued_on)},
        )
        self.facts.notices[j] = len(notice["entries"])

    async def documents(self, c: DemoCase) -> None:
        j, case_id = c.jurisdiction, self.ids[c.key]
        matter = await self.call("GET", "clarification", f"/clarifications/{case_id}", As("auditor", j))
        folder = DOCUMENTS / case_id
        folder.mkdir(parents=True, exist_ok=True)
        for doc in matter["documents"]:
            # The text preview, the Word document and the PDF, as an officer downloads them.
            for suffix in ("", ".docx", ".pdf"):
                path = f"/clarifications/{case_id}/documents/{doc['doc_id']}{suffix}"
                response = await self.raw("GET", "clarification", path, As("auditor", j))
                if response.status_code != 200:
                    raise ApiError(
                        "GET", f"document {doc['doc_id']}{suffix}", response.status_code, response.text
                    )
                (folder / f"{doc['doc_id']}{suffix or '.txt'}").write_bytes(response.content)
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
    "no_violation": "经核实，反映的事实存在，但不违反纪律和法律规定",
}


def _key(case: DemoCase) -> str:
    return case.key
