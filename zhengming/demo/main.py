"""`zhengming demo`: the whole run, its set-up, interruption and teardown."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from types import FrameType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from shared import settings
from zhengming.client import Client, Users
from zhengming.demo.facts import PhaseFailed, Result
from zhengming.demo.report import keep_message, render, timings_table
from zhengming.demo.runner import PHASES, Runner
from zhengming.demo.stack import STACK, prepare_stack
from zhengming.scenario import QUARTER, Scenario, generate
from zhengming.stack import start, stop, use_environment

DEFAULT_SEED = 20230331


class Interrupted(Exception):
    """SIGTERM: stop like on Ctrl-C."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(f"signal {signum}")


def run_demo(scale: int = 1, seed: int = DEFAULT_SEED, keep: bool = False) -> int:
    """The whole demo; returns the exit code (0 when the targets hold and the trail verifies)."""
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    env = STACK.environment()
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
            prepare_stack(env)
            start(with_services=True)
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
                stop()
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
    client = Client(settings.services(), Users())
    runner = Runner(scenario, client, progress, tasks)
    try:
        return await runner.run()
    finally:
        timings.update(runner.timings)
        await client.close()
