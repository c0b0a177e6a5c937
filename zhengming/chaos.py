"""`zhengming chaos`: a failure rehearsal anyone can repeat.

N cases of a seeded plan are carried through the four services twice, each time on a fresh stack
of its own (.local/chaos/stack): once undisturbed, once while a random service is SIGKILLed and
restarted every K seconds, the broker restarted once and PostgreSQL once. When the chaos run has
quiesced (every outbox drained, every consumer caught up, the stores still), what the two runs
left is compared: events per service and type, the quarterly statistics, the documents, the
public personnel notices (each exactly once on its topic), the dead-letter topics (empty); the
chaos run's trail is verified and its read models replayed from Kafka. The table says what
differs; the exit code is 1 when anything does."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import re
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import asyncpg
from rich.console import Console
from rich.table import Table

from shared import settings
from shared.envelope import CITY, JURISDICTIONS
from shared.settings import PROJECT_ROOT, SERVICES
from shared.topics import personnel_notices_topic
from zhengming.client import Client, Users
from zhengming.driver import CaseDriver
from zhengming.local import LocalKafka, LocalPostgres, _pid_alive
from zhengming.services import LocalService, all_services
from zhengming.stack import Stack, start, stop, use_environment

STACK = Stack(
    PROJECT_ROOT / ".local" / "chaos" / "stack",
    {
        "ZM_KAFKA_PORT": "25092",
        "ZM_KAFKA_CONTROLLER_PORT": "25093",
        "ZM_PG_PORT": "18632",
        "ZM_SERVICE_INTAKE_PORT": "9501",
        "ZM_SERVICE_REVIEW_PORT": "9502",
        "ZM_SERVICE_CLARIFICATION_PORT": "9503",
        "ZM_SERVICE_ARCHIVE_PORT": "9504",
        "ZM_SERVICE_CONSOLE_PORT": "9500",
    },
    # Lag and dead letters counted often: quiescence is read from them.
    {"ZM_SERVICE_OPS_WATCH_INTERVAL_S": "5"},
)

YEAR = 2024
QUARTERS = (f"{YEAR}Q1", f"{YEAR}Q2")
NOTICE_DAYS = {f"{YEAR}Q1": date(YEAR, 4, 15), f"{YEAR}Q2": date(YEAR, 7, 15)}
ENDINGS = ("cleared", "substantiated", "declined")
"""How a case ends: untrue and cleared to the archive; true, so nothing to clear; untrue, but the
person declines the clarification."""
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ("建国", "志强", "海燕", "丽华", "晓明", "国平", "红梅", "伟东", "秀英", "文军")
TOWNS = ("壶镇镇", "新建镇", "五云街道", "东渡镇", "舒洪镇", "大洋镇", "七里乡", "胡源乡")
WAIT_S = 600.0
"""How long one case may wait for an event to cross a service (restarts included)."""


@dataclass(frozen=True)
class ChaosParams:
    cases: int = 300
    kill_every_s: float = 10.0
    kills: int | None = None  # None: until the cases are carried
    seed: int = 20230331
    concurrency: int = 8


@dataclass(frozen=True)
class Plan:
    k: int
    jurisdiction: str
    ending: str
    received_on: date
    subject: dict[str, Any]
    allegations: tuple[str, ...]


def plan(seed: int, k: int) -> Plan:
    rng = random.Random(f"{seed}/{k}")
    j = rng.choice(sorted(JURISDICTIONS))
    town = rng.choice(TOWNS)
    name = f"{rng.choice(SURNAMES)}{rng.choice(GIVEN)}{k:04d}"
    return Plan(
        k=k,
        jurisdiction=j,
        ending=rng.choices(ENDINGS, weights=(6, 3, 1))[0],
        received_on=date(YEAR, 1, 8) + timedelta(days=rng.randrange(0, 40)),
        subject={
            "kind": "person",
            "name": name,
            "post": f"{town}党委副书记",
            "unit": f"{JURISDICTIONS[j]}{town}",
            "cadre_level": "county",
        },
        allegations=tuple(
            f"反映{name}在{town}{topic}（第{k}号）"
            for topic in rng.sample(
                ["征地拆迁补偿中优亲厚友", "违规收受礼金", "工程项目中插手招投标"], rng.randint(1, 2)
            )
        ),
    )


async def carry(case: CaseDriver, client: Client, p: Plan) -> str:
    """One case from its report to its end; returns the case id."""
    j, d = p.jurisdiction, p.received_on
    case_id: str = await case.register(
        j,
        channel="letter",
        received_on=d,
        real_name=True,
        reporter={"name": f"检举人{p.k:05d}", "contact": f"1390578{p.k % 10000:04d}"},
        subject=p.subject,
        allegations=p.allegations,
    )
    await case.log(j, case_id, d)
    await case.accept(j, case_id, d + timedelta(days=1))
    await case.hand_over(j, case_id, "第一监督检查室", d + timedelta(days=2))
    verification = await client.eventually(
        f"{case_id} verification", lambda: case.verification(j, case_id), WAIT_S
    )
    await case.decide(j, case_id, method="preliminary_verification", on=d + timedelta(days=5))
    finding = "true" if p.ending == "substantiated" else "untrue"
    basis = "经初步核实，反映问题属实" if finding == "true" else "经初步核实，反映问题失实"
    for item in verification["allegations"]:
        await case.find(j, case_id, allegation_id=item["allegation_id"], finding=finding, basis=basis)
    await case.conclude(j, case_id, d + timedelta(days=25))
    if p.ending == "substantiated":
        return case_id
    matter = await client.eventually(f"{case_id} candidate", lambda: case.candidate(j, case_id), WAIT_S)
    subject_id = str(matter["outcome"]["subjects"][0]["subject_id"])
    if p.ending == "declined":
        await case.decline(j, case_id, subject_id, d + timedelta(days=26), "本人不同意澄清")
        return case_id
    await case.start(j, case_id, CaseDriver.start_body(subject_id, d + timedelta(days=26)))
    await case.word_content(j, case_id, d + timedelta(days=26))
    await case.assess(j, case_id, on=d + timedelta(days=27), bad_effects=["repeated_reports"])
    await case.re_review(j, case_id, on=d + timedelta(days=28))
    await case.approve(j, case_id, d + timedelta(days=29))
    await case.perform(j, case_id, d + timedelta(days=30), ["written_notice"])
    await case.feedback(j, case_id, d + timedelta(days=31), f"中共{p.subject['unit']}委员会")
    await case.acknowledge(j, case_id, d + timedelta(days=31))
    await case.file(j, case_id, d + timedelta(days=32))

    async def filed() -> bool:
        record = await client.get_if(
            "archive", f"/files/{subject_id}", role="case_management", jurisdiction=j
        )
        return bool(record and any(f["case_id"] == case_id for f in record["filings"]))

    await client.eventually(f"{case_id} in the archive", filed, WAIT_S)
    return case_id


@dataclass
class Disturbance:
    """What the chaos did: kills by service, restarts, and when."""

    kills: Counter[str] = field(default_factory=Counter)
    ticks: int = 0
    ticked: asyncio.Condition = field(default_factory=asyncio.Condition)
    broker_restarts: int = 0
    database_restarts: int = 0
    log: list[str] = field(default_factory=list)


def _gone(pid: int, timeout_s: float = 30) -> None:
    """Until the process is gone; a killed child of ours is a zombie until reaped: gone too."""
    deadline = time.monotonic() + timeout_s
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def _kill_and_restart(service: LocalService) -> None:
    pid = service.pid()
    if pid is not None:
        os.kill(pid, signal.SIGKILL)
        _gone(pid)
    service.start()
    service.wait_ready(timeout_s=180)


def _restart_broker() -> None:
    kafka = LocalKafka(settings.local(), settings.kafka())
    kafka.stop()
    kafka.start()


def _restart_database() -> None:
    pg = LocalPostgres(settings.local(), settings.postgres())
    pg.stop()
    pg.start()


async def disturb(params: ChaosParams, done: asyncio.Event, seen: Disturbance) -> None:
    """Every kill_every_s: SIGKILL a random service and restart it; the second tick restarts the
    broker instead, the fourth PostgreSQL. Stops when `done` is set or `kills` are done."""
    try:
        await _disturb(params, done, seen)
    finally:  # however it ended, no case waits for a tick that will not come
        async with seen.ticked:
            seen.ticks = sys.maxsize
            seen.ticked.notify_all()


async def _disturb(params: ChaosParams, done: asyncio.Event, seen: Disturbance) -> None:
    rng = random.Random(params.seed)
    services = {s.name: s for s in all_services(settings.local(), settings.services()) if s.name in SERVICES}
    tick = 0
    started = time.monotonic()
    while not done.is_set() and (params.kills is None or sum(seen.kills.values()) < params.kills):
        try:
            await asyncio.wait_for(done.wait(), params.kill_every_s)
            break
        except TimeoutError:
            pass
        tick += 1
        async with seen.ticked:
            seen.ticks = tick
            seen.ticked.notify_all()
        at = f"{time.monotonic() - started:6.1f}s"
        if tick == 2:
            await asyncio.to_thread(_restart_broker)
            seen.broker_restarts += 1
            seen.log.append(f"{at} broker restarted")
        elif tick == 4:
            await asyncio.to_thread(_restart_database)
            seen.database_restarts += 1
            seen.log.append(f"{at} PostgreSQL restarted")
        else:
            name = rng.choice(sorted(services))
            await asyncio.to_thread(_kill_and_restart, services[name])
            seen.kills[name] += 1
            seen.log.append(f"{at} {name} SIGKILLed and restarted")


@dataclass
class RunResult:
    case_ids: dict[int, str]
    failures: list[str]
    drive_s: float
    quiesce_s: float
    events: dict[str, int]
    statistics: dict[str, Any]
    documents: Counter[str]
    numbering_gaps: list[str]
    notices: dict[str, Any]
    notice_copies: Counter[str]
    dead_letters: dict[str, int]
    verify_ok: bool = True
    verify_lines: list[str] = field(default_factory=list)
    replay_equal: bool = True
    replay_lines: list[str] = field(default_factory=list)
    disturbance: Disturbance = field(default_factory=Disturbance)


async def drive(params: ChaosParams, disturbed: bool) -> RunResult:
    client = Client(settings.services(), Users(), retry_deadline_s=300, retry_max_s=3)
    case = CaseDriver(client)
    plans = [plan(params.seed, k) for k in range(params.cases)]
    gate = asyncio.Semaphore(params.concurrency)
    ids: dict[int, str] = {}
    failures: list[str] = []
    done = asyncio.Event()
    seen = Disturbance()

    # With a number of disturbances asked for, case k waits for disturbance k*T/N to begin (T =
    # the kills, the two restarts and one more), so every disturbance finds cases under way.
    total = (params.kills + 3) if params.kills and disturbed else 0

    async def one(p: Plan) -> None:
        if total:
            async with seen.ticked:
                await seen.ticked.wait_for(lambda: seen.ticks >= p.k * total // params.cases)
        async with gate:
            try:
                ids[p.k] = await carry(case, client, p)
            except Exception as exc:
                failures.append(f"case {p.k}: {type(exc).__name__}: {exc}"[:600])

    chaos = asyncio.create_task(disturb(params, done, seen)) if disturbed else None
    began = time.monotonic()
    try:
        await asyncio.gather(*(one(p) for p in plans))
        for quarter in QUARTERS:
            for j in sorted(JURISDICTIONS):
                try:
                    await client.ok(
                        "POST",
                        "archive",
                        "/notices",
                        role="case_management",
                        jurisdiction=j,
                        body={
                            "jurisdiction": j,
                            "period": quarter,
                            "issued_on": NOTICE_DAYS[quarter].isoformat(),
                        },
                    )
                except Exception as exc:
                    failures.append(f"notice {j} {quarter}: {type(exc).__name__}: {exc}"[:600])
    finally:
        done.set()
        if chaos is not None:
            await chaos
    drive_s = time.monotonic() - began
    began = time.monotonic()
    try:
        await quiesce(client)
    except TimeoutError as exc:
        failures.append(str(exc))
    quiesce_s = time.monotonic() - began
    result = RunResult(
        case_ids=ids,
        failures=failures,
        drive_s=drive_s,
        quiesce_s=quiesce_s,
        disturbance=seen,
        **await collect(client, ids),
    )
    await client.close()
    return result


async def _unpublished() -> int:
    conn = await asyncpg.connect(settings.postgres().dsn())
    try:
        total = 0
        for s in SERVICES:
            total += int(await conn.fetchval(f"SELECT count(*) FROM {s}.outbox WHERE published_at IS NULL"))
        return total
    finally:
        await conn.close()


async def _event_counts() -> dict[str, int]:
    conn = await asyncpg.connect(settings.postgres().dsn())
    try:
        out: dict[str, int] = {}
        for s in SERVICES:
            for r in await conn.fetch(
                f"SELECT event_type, count(*) AS n FROM {s}.events GROUP BY event_type"
            ):
                out[f"{s}/{r['event_type']}"] = int(r["n"])
        return dict(sorted(out.items()))
    finally:
        await conn.close()


async def _consumers(client: Client) -> list[dict[str, Any]]:
    states: list[dict[str, Any]] = []
    for s in SERVICES:
        states += await client.ok("GET", s, "/ops/consumers", role="operator", jurisdiction=CITY)
    return states


QUIET_LOOKS = 3
QUIET_SPAN_S = 20.0
"""Quiet means this many looks in a row over at least this long: longer than the consumers'
metadata refresh (15 s), after which a pattern subscriber has seen every topic."""


async def quiesce(client: Client, timeout_s: float = 900) -> None:
    """Until every consumer has read everything, every outbox is drained and the stores hold
    still, look after look (read in that order: what a consumer applies after its lag was read
    shows in the outbox or the stores of the same look)."""
    deadline = time.monotonic() + timeout_s
    last: dict[str, int] | None = None
    quiet_since: float | None = None
    looks = 0
    behind: list[str] = []
    unpublished: int | None = None
    moving = True
    while time.monotonic() < deadline:
        states = await _consumers(client)
        behind = [_behind(s) for s in states if s["lag"] != 0 or s["stopped"] is not None]
        unpublished = None if behind else await _unpublished()
        drained = not behind and unpublished == 0
        counts = await _event_counts()
        moving = counts != last
        if drained and not moving:
            looks += 1
            quiet_since = quiet_since or time.monotonic()
            if looks >= QUIET_LOOKS and time.monotonic() - quiet_since >= QUIET_SPAN_S:
                return
        else:
            looks, quiet_since = 0, None
        last = counts
        await asyncio.sleep(2)
    # What the last look saw, so that a run that never quiesces says where it stuck.
    raise TimeoutError(
        f"the stack did not quiesce within {timeout_s:.0f}s; last look: consumers behind"
        f" {behind or 'none'}, unpublished outbox rows {unpublished}, stores still moving"
        f" {moving}"
    )


def _behind(state: dict[str, Any]) -> str:
    """One consumer's state as a quiescence failure names it."""
    return f"{state['consumer']} ({state['group_id']}): lag {state['lag']}, stopped {state['stopped']}"


DOC_NUMBER_PARTS = re.compile(r"(.+)〔(\d{4})〕(\d+)号")


def numbering_gaps(numbers: Iterable[str]) -> list[str]:
    """Each series' document numbers (发文字号, e.g. 缙纪澄〔2024〕7号) of a year must run 1..n with
    none twice and none skipped: what a crash between allocating a number and issuing its
    document could break (the comparison of texts replaces the numbers, so it cannot see it)."""
    issued: dict[tuple[str, str], Counter[int]] = {}
    for number in numbers:
        found = DOC_NUMBER_PARTS.fullmatch(number)
        if found is None:
            continue  # a form's 编号 of another format, or none
        series, year, seq = found.groups()
        issued.setdefault((series, year), Counter())[int(seq)] += 1
    gaps = []
    for (series, year), seqs in sorted(issued.items()):
        twice = sorted(n for n, c in seqs.items() if c > 1)
        missing = sorted(set(range(1, max(seqs) + 1)) - set(seqs))
        if twice or missing:
            gaps.append(f"{series}〔{year}〕: twice {twice[:5]}, missing {missing[:5]}")
    return gaps


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


DOC_NUMBER = re.compile(r"〔(\d{4})〕\d+号")


def _normal(text: str, names: dict[str, str]) -> str:
    """A text with the run's own identifiers (case ids, document numbers) replaced by the plan's."""
    for case_id, k in names.items():
        text = text.replace(case_id, k)
    return DOC_NUMBER.sub(r"〔\1〕#号", text)


async def collect(client: Client, ids: dict[int, str]) -> dict[str, Any]:
    names = {case_id: f"<case {k}>" for k, case_id in ids.items()}
    statistics = {}
    for quarter in QUARTERS:
        report = await client.ok(
            "GET",
            "archive",
            "/statistics",
            role="auditor",
            jurisdiction=CITY,
            params={"quarter": quarter},
        )
        statistics[quarter] = {
            "total": report["total"]["figures"],
            **{row["jurisdiction"]: row["figures"] for row in report["rows"]},
        }
    conn = await asyncpg.connect(settings.postgres().dsn())
    try:
        rows = await conn.fetch("SELECT kind, title, body, number FROM clarification.documents")
    finally:
        await conn.close()
    documents = Counter(
        f"{r['kind']}:{_digest(_normal(r['title'] + chr(10) + r['body'], names))}" for r in rows
    )
    numbering = numbering_gaps(r["number"] for r in rows)
    from zhengming.audit import read_topics

    records = await read_topics(personnel_notices_topic(j) for j in sorted(JURISDICTIONS))
    copies: Counter[str] = Counter()
    notices: dict[str, Any] = {}
    for r in records:
        notice = json.loads(r.value)
        copies[notice["notice_id"]] += 1
        key = f"{notice['jurisdiction']} {notice['period']}"
        notices[key] = json.loads(
            _normal(
                json.dumps(
                    {k: v for k, v in notice.items() if k != "notice_id"}, ensure_ascii=False, sort_keys=True
                ),
                names,
            )
        )
    states = await _consumers(client)
    dead = {s["consumer"]: int(s["dead_letters"]) for s in states}
    return {
        "events": await _event_counts(),
        "statistics": statistics,
        "documents": documents,
        "numbering_gaps": numbering,
        "notices": dict(sorted(notices.items())),
        "notice_copies": copies,
        "dead_letters": dead,
    }


async def audit_chaos_run(result: RunResult) -> None:
    from zhengming import audit

    report = await audit.verify_trail(None)
    result.verify_ok, result.verify_lines = report.ok, report.lines()
    for name in SERVICES:
        replayed = await audit.replay(name)
        result.replay_equal = result.replay_equal and replayed.equal
        result.replay_lines += replayed.lines()


@dataclass
class Row:
    figure: str
    clean: str
    chaos: str
    differs: bool


def compare(clean: RunResult, chaos: RunResult) -> list[Row]:
    rows: list[Row] = []

    def row(figure: str, a: Any, b: Any, differs: bool | None = None) -> None:
        rows.append(Row(figure, str(a), str(b), a != b if differs is None else differs))

    row("cases carried", len(clean.case_ids), len(chaos.case_ids))
    row("failures", len(clean.failures), len(chaos.failures), bool(clean.failures or chaos.failures))
    row("events (all services)", sum(clean.events.values()), sum(chaos.events.values()))
    for key in sorted(set(clean.events) | set(chaos.events)):
        row(f"  {key}", clean.events.get(key, 0), chaos.events.get(key, 0))
    for quarter in QUARTERS:
        a, b = clean.statistics[quarter], chaos.statistics[quarter]
        differing = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        row(f"statistics {quarter} (jurisdictions differing)", 0, len(differing), bool(differing))
        for k, v in sorted(a["total"].items()):
            if isinstance(v, int) and not isinstance(v, bool):
                row(f"  {quarter} {k}", v, b["total"].get(k))
    row("documents", sum(clean.documents.values()), sum(chaos.documents.values()))
    row(
        "documents differing",
        0,
        sum(((clean.documents - chaos.documents) + (chaos.documents - clean.documents)).values()),
    )
    for name, run in (("clean", clean), ("chaos", chaos)):
        rows.append(
            Row(
                f"document numbers twice or skipped ({name})",
                "0",
                str(len(run.numbering_gaps)),
                bool(run.numbering_gaps),
            )
        )
    row("public notices", len(clean.notices), len(chaos.notices))
    row(
        "notices differing",
        0,
        sum(
            1 for k in set(clean.notices) | set(chaos.notices) if clean.notices.get(k) != chaos.notices.get(k)
        ),
    )
    for name, run in (("clean", clean), ("chaos", chaos)):
        twice = sum(1 for c in run.notice_copies.values() if c != 1)
        rows.append(Row(f"notices not exactly once ({name})", "0", str(twice), twice != 0))
    row(
        "dead letters",
        sum(clean.dead_letters.values()),
        sum(chaos.dead_letters.values()),
        bool(sum(clean.dead_letters.values()) or sum(chaos.dead_letters.values())),
    )
    rows.append(
        Row("audit verify (chaos run)", "-", "ok" if chaos.verify_ok else "BROKEN", not chaos.verify_ok)
    )
    rows.append(
        Row(
            "replay = live read models (chaos run)",
            "-",
            "equal" if chaos.replay_equal else "DIFFERS",
            not chaos.replay_equal,
        )
    )
    return rows


def run_chaos(params: ChaosParams, out: Console | None = None) -> int:
    """Both runs, the comparison and the table; 0 when nothing differs."""
    out = out or Console(width=None if sys.stdout.isatty() else 160)
    use_environment(STACK.environment())
    results: dict[str, RunResult] = {}
    try:
        for name, disturbed in (("clean", False), ("chaos", True)):
            out.print(
                f"[bold]{name} run[/]: {params.cases} cases, seed {params.seed}"
                + (f", a kill every {params.kill_every_s:g}s" if disturbed else "")
            )
            STACK.prepare()
            start(with_services=True)
            try:
                results[name] = asyncio.run(drive(params, disturbed))
                if disturbed:
                    asyncio.run(audit_chaos_run(results[name]))
            finally:
                stop()
            r = results[name]
            out.print(
                f"  carried in {r.drive_s:.0f}s, quiet {r.quiesce_s:.1f}s later; {len(r.failures)} failures"
            )
    except KeyboardInterrupt:
        out.print("interrupted")
        return 130
    clean, chaos = results["clean"], results["chaos"]
    for line in chaos.disturbance.log:
        out.print(f"  {line}", markup=False)
    rows = compare(clean, chaos)
    table = Table("figure", "clean run", "chaos run", "differs", title="zhengming chaos")
    for row in rows:
        table.add_row(row.figure, row.clean, row.chaos, "[bold red]yes[/]" if row.differs else "")
    out.print(table)
    d = chaos.disturbance
    differences = sum(r.differs for r in rows)
    summary = Table("chaos run", "", title="disturbances")
    summary.add_row("cases", str(params.cases))
    summary.add_row("kills (SIGKILL, restarted)", str(sum(d.kills.values())))
    summary.add_row("  by service", ", ".join(f"{k} {v}" for k, v in sorted(d.kills.items())) or "-")
    summary.add_row("broker restarts", str(d.broker_restarts))
    summary.add_row("database restarts", str(d.database_restarts))
    summary.add_row("time carrying the cases", f"{chaos.drive_s:.1f}s (clean run {clean.drive_s:.1f}s)")
    summary.add_row("time to quiesce afterwards", f"{chaos.quiesce_s:.1f}s")
    summary.add_row("differences", str(differences))
    out.print(summary)
    # Last, where a log's tail shows them: what failed, run by run.
    for name, run in (("clean", clean), ("chaos", chaos)):
        for failure in run.failures[:10]:
            out.print(f"  failure ({name} run): {failure}", markup=False)
    if not chaos.verify_ok:
        for line in chaos.verify_lines[:10]:
            out.print(f"  verify: {line}", markup=False)
    if not chaos.replay_equal:
        for line in chaos.replay_lines[:10]:
            out.print(f"  replay: {line}", markup=False)
    return 1 if differences else 0
