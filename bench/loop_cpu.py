"""CPU per case of the workflow's closed loop alone, for A/B comparisons of one change on one
machine (`make bench` measures it too, among everything else, in about 14 minutes).

    python -m bench.loop_cpu [--cases N] [--profile DIR]

Starts the bench's own stack (bench/stack.py, ports moved by ZM_BENCH_PORT_SHIFT, default 1000
here so a `make bench` may run beside it), carries 4 warm-up cases, then N cases 8 at a time and
prints the CPU milliseconds per case of every component. `--profile DIR` also records each service
with py-spy (when it is on the PATH or in the virtual environment) into DIR/<service>.raw.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

SERVICES = ("intake", "review", "clarification", "archive")


def _py_spy() -> str | None:
    local = Path(sys.executable).with_name("py-spy")
    return str(local) if local.exists() else shutil.which("py-spy")


def _start_spies(profile: Path, pids: dict[str, list[int]]) -> list[subprocess.Popen[bytes]]:
    spy = _py_spy()
    if spy is None:
        raise SystemExit("--profile needs py-spy (pip install py-spy)")
    profile.mkdir(parents=True, exist_ok=True)
    spies = []
    for name in SERVICES:
        out = str(profile / f"{name}.raw")
        command = [spy, "record", "-r", "100", "-f", "raw", "-o", out, "--pid", str(pids[name][0])]
        spies.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return spies


def _stop_spies(spies: list[subprocess.Popen[bytes]]) -> None:
    for process in spies:
        process.send_signal(signal.SIGINT)
    for process in spies:
        process.wait()


async def closed_loop(cases: int, profile: Path | None) -> dict[str, float]:
    from bench import workflow as wf

    api, ping = wf.Api(0.02), wf.KafkaPing()
    await ping.start()
    spies: list[subprocess.Popen[bytes]] = []
    try:
        numbers = iter(range(1_000_000))
        warm = wf.Recorder()
        await asyncio.gather(*(wf._carry_logged(api, warm, next(numbers)) for _ in range(4)))
        if warm.failures:
            raise RuntimeError(f"warm-up case failed: {warm.failures[0]}")
        await asyncio.sleep(1)
        if profile is not None:
            spies = _start_spies(profile, wf._component_pids())
            await asyncio.sleep(1)
        loop = await wf.closed_loop(api, ping, wf.WorkflowParams(cases=cases, concurrency=8), numbers)
    finally:
        _stop_spies(spies)
        await ping.stop()
        await api.close()
    done = len(loop.rec.end_to_end)
    if loop.rec.failures:
        raise RuntimeError(f"{len(loop.rec.failures)} cases failed: {loop.rec.failures[0]}")
    print(f"{done} cases, {done / loop.wall_s:.2f} cases/s")
    per_case = {name: 1000 * seconds / done for name, seconds in loop.cpu_s.items()}
    for name, ms in per_case.items():
        print(f"  {name:14} {ms:7.1f} ms CPU a case")
    print(f"  {'services':14} {sum(per_case.get(s, 0.0) for s in SERVICES):7.1f} ms CPU a case")
    return per_case


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.loop_cpu", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--cases", type=int, default=150, help="closed-loop cases (default %(default)s)")
    parser.add_argument("--profile", type=Path, help="record each service with py-spy into this directory")
    args = parser.parse_args(argv)
    os.environ.setdefault("ZM_BENCH_PORT_SHIFT", "1000")
    from bench import stack  # reads the shift

    stack.use_environment(stack.STACK.environment(), only=True)
    stack.STACK.prepare()
    stack.start(with_services=True)
    try:
        asyncio.run(closed_loop(args.cases, args.profile))
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
