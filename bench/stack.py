"""The bench's own fresh stack: Kafka, PostgreSQL and the four services on ports of its own under
.local/bench/stack, so `make bench` never disturbs `make up`, `make test` or `make demo`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from shared import settings
from shared.settings import PROJECT_ROOT

STACK = PROJECT_ROOT / ".local" / "bench" / "stack"

PORTS = {
    "ZM_KAFKA_PORT": "21092",
    "ZM_KAFKA_CONTROLLER_PORT": "21093",
    "ZM_PG_PORT": "17432",
    "ZM_SERVICE_INTAKE_PORT": "9201",
    "ZM_SERVICE_REVIEW_PORT": "9202",
    "ZM_SERVICE_CLARIFICATION_PORT": "9203",
    "ZM_SERVICE_ARCHIVE_PORT": "9204",
}


def bench_environment() -> dict[str, str]:
    """Everything that makes the bench's stack its own: data, keys, logs (under its root) and ports."""
    return {"ZM_LOCAL_ROOT": str(STACK), **PORTS}


def use_environment(env: dict[str, str]) -> list[str]:
    """Point this process, and the processes it starts, at the bench's stack and at nothing else:
    every other ZM_ setting of the caller's environment is dropped, so a run measures the default
    configuration. Returns the names dropped."""
    dropped = sorted(k for k in os.environ if k.startswith("ZM_") and k not in env)
    for name in dropped:
        del os.environ[name]
    os.environ.update(env)
    for cached in (settings.local, settings.kafka, settings.postgres, settings.services):
        cached.cache_clear()
    return dropped


def prepare_stack() -> None:
    """Stop whatever an earlier bench left running (by its pid files) and wipe its data; the Kafka
    jars are kept (a download, not state), or copied from the main stack's."""
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
    main_libs = PROJECT_ROOT / ".local" / "kafka" / "libs"
    if not libs.exists() and (main_libs / ".complete").exists():
        shutil.copytree(main_libs, libs)
    STACK.mkdir(parents=True, exist_ok=True)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def start(with_services: bool) -> list[str]:
    from zhengming.cli import start_infra

    return start_infra(with_services=with_services)


def stop() -> None:
    """Stop every part of the bench's stack (services first, Kafka last), by pid file."""
    from zhengming.cli import stop_infra

    stop_infra()
