"""The demo's output: the quarterly report, the workflow's figures, the phases' times."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from shared import settings
from shared.envelope import CITY, JURISDICTIONS
from shared.events.common import OFFICER_ROLES, role_name
from shared.settings import PROJECT_ROOT, SERVICES
from zhengming.demo.calls import CONCURRENCY
from zhengming.demo.exits import CASES, EXIT_QUARTER, ExitsOutcome
from zhengming.demo.facts import Result
from zhengming.demo.runner import PHASES
from zhengming.demo.stack import DOCUMENTS, with_env, zhengming_command
from zhengming.scenario import JINYUN, QUARTER, Scenario
from zhengming.users_cli import seed_officers

FORM_SHORT = {
    "written_notice": "书面",
    "face_to_face": "当面",
    "unit_meeting": "会议",
    "scoped_notice": "通报",
}


def _forms(counts: dict[str, int]) -> str:
    return " ".join(f"{FORM_SHORT[k]}{v}" for k, v in counts.items() if v)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


COLUMNS = (
    ("jurisdiction", "辖区"),
    ("reports", "受理检举控告"),
    ("matters", "事项"),
    ("untrue", "失实办结"),
    ("candidates", "入库"),
    ("waiting", "待澄清"),
    ("refused", "不予澄清"),
    ("declined", "本人不同意或撤回"),
    ("head", "主要负责人退回"),
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
            str(f["matters"]),
            str(f["untrue_conclusions"]),
            str(f["candidates"]),
            str(f["waiting_in_pool"]),
            str(f["refused"]),
            str(f["declined"]),
            str(f["returned_by_head"]),
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


EXIT_COLUMNS = (
    ("candidates", "入库"),
    ("waiting_in_pool", "待澄清"),
    ("refused", "不予澄清"),
    ("declined", "本人不同意或撤回"),
    ("returned_by_head", "主要负责人退回"),
    ("discontinued", "终止澄清"),
    ("supplementary_verifications", "补充核查"),
    ("objections", "异议"),
    ("objections_upheld", "异议成立"),
    ("treatments_corrected", "纠正错误处理"),
    ("clarifications", "澄清"),
)


def exits_tables(outcome: ExitsOutcome) -> tuple[Table, Table]:
    """The exits' quarter (GET /statistics) and each exit matter's end, with who acted."""
    figures = outcome.statistics["rows"][0]["figures"]
    quarter = Table(
        title=f"缙云县 {EXIT_QUARTER}: the chain's exits and loops, taken by named users (GET /statistics)"
    )
    for english, chinese in EXIT_COLUMNS:
        quarter.add_column(f"{english}\n{chinese}", justify="right")
    quarter.add_row(*(str(figures[k]) for k, _ in EXIT_COLUMNS))
    matters = Table(
        title="the exit matters (each command by the logged-in officer whose name the events carry)"
    )
    for column in ("exit", "matter", "state"):
        matters.add_column(column)
    for c in CASES:
        matters.add_row(c.title, outcome.case_ids.get(c.key, "-"), outcome.states.get(c.key, "-"))
    names = "、".join(f"{name}（{user_id}）" for user_id, name in sorted(outcome.officers.items()))
    matters.caption = f"logged in: {names}"
    return quarter, matters


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
    if result.exits is not None:
        for table in exits_tables(result.exits):
            out.print(table)
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
        f"documents: {f.documents} written under {DOCUMENTS.relative_to(PROJECT_ROOT)}/<case_id>/"
        "<doc_id>.txt, .docx and .pdf"
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
    # Every demo user (one per role and jurisdiction) gets this run's password, printed once here.
    password = secrets.token_urlsafe(12)
    names = asyncio.run(seed_officers(password))
    out.print(f"\nthe officers' console (工作台): {settings.services().url('console')}", markup=False)
    out.print(f"  password of every demo user: {password}", markup=False)
    users = Table("user id", "姓名", "role", box=None)
    for role in OFFICER_ROLES:
        for code in ("331122", CITY):
            user_id = f"{role}-{code}"
            users.add_row(user_id, names.get(user_id, ""), role_name(role))
    out.print(users)
    out.print("  (any role of any jurisdiction: <role>-<code>, e.g. case_trial-331124)", markup=False)
    out.print(f"  kafka: {settings.kafka().bootstrap}   postgresql: {settings.postgres().dsn()}")
    out.print("tokens (one per role of a jurisdiction):", markup=False)
    out.print(f"  {with_env(env, zm + ' tokens --jurisdiction 331122')}", markup=False, soft_wrap=True)
    out.print("stop it:", markup=False)
    out.print(f"  {with_env(env, zm + ' down')}", markup=False, soft_wrap=True)
    out.print("  (or: make demo-down)")
