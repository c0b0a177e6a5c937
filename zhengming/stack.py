"""A fresh local stack of its own: Kafka, PostgreSQL and the four services under a root and on
ports of their own, so the demo and the bench never disturb `make up`, `make test` or each other."""

from __future__ import annotations

import os
import shutil
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from shared import settings
from shared.settings import PROJECT_ROOT


@dataclass(frozen=True)
class Stack:
    root: Path
    ports: Mapping[str, str]
    settings: Mapping[str, str] = field(default_factory=dict)  # more ZM_ settings of its own

    def environment(self) -> dict[str, str]:
        """Everything that makes the stack its own: data, keys, logs (under its root) and ports."""
        return {"ZM_LOCAL_ROOT": str(self.root), **self.ports, **self.settings}

    def prepare(self) -> None:
        """Stop whatever an earlier run left running (by its pid files) and wipe its data; the
        Kafka jars are kept (a download, not state), or copied from the main stack's."""
        stop()
        libs = self.root / "kafka" / "libs"
        if self.root.exists():
            for child in self.root.iterdir():
                if child.name == "kafka":
                    for part in child.iterdir():
                        if part != libs:
                            _remove(part)
                else:
                    _remove(child)
        main_libs = PROJECT_ROOT / ".local" / "kafka" / "libs"
        if not libs.exists() and (main_libs / ".complete").exists():
            shutil.copytree(main_libs, libs)
        self.root.mkdir(parents=True, exist_ok=True)


def use_environment(env: Mapping[str, str], *, only: bool = False) -> list[str]:
    """Point this process, and the processes it starts, at a stack's environment; with `only`,
    every other ZM_ setting of the caller's environment is dropped first. Returns the names
    dropped."""
    dropped = sorted(k for k in os.environ if k.startswith("ZM_") and k not in env) if only else []
    for name in dropped:
        del os.environ[name]
    os.environ.update(env)
    for cached in (settings.local, settings.kafka, settings.postgres, settings.services):
        cached.cache_clear()
    return dropped


def start(
    with_services: bool, processes: Collection[str] | None = None, ready_timeout_s: float = 60
) -> list[str]:
    """Start the stack the environment points at (zhengming.cli.start_infra)."""
    from zhengming.cli import start_infra

    return start_infra(with_services, processes, ready_timeout_s)


def stop() -> None:
    """Stop every part of the stack the environment points at (services first, Kafka last)."""
    from zhengming.cli import stop_infra

    stop_infra()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
