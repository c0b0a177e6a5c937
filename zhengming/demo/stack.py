"""The demo's own stack: .local/demo/stack on ports 20092, 16432 and 9101-9104, and the
commands to reach it from a shell."""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path

from shared.settings import PROJECT_ROOT
from zhengming.stack import Stack

DEMO_ROOT = PROJECT_ROOT / ".local" / "demo"
DOCUMENTS = DEMO_ROOT / "documents"
# Lishui opened its candidate pool in 2023: older untrue matters enter it through the sweep.
STACK = Stack(
    DEMO_ROOT / "stack",
    {
        "ZM_KAFKA_PORT": "20092",
        "ZM_KAFKA_CONTROLLER_PORT": "20093",
        "ZM_PG_PORT": "16432",
        "ZM_SERVICE_INTAKE_PORT": "9101",
        "ZM_SERVICE_REVIEW_PORT": "9102",
        "ZM_SERVICE_CLARIFICATION_PORT": "9103",
        "ZM_SERVICE_ARCHIVE_PORT": "9104",
        "ZM_SERVICE_CONSOLE_PORT": "9100",
    },
    {"ZM_CLARIFICATION_POOL_SINCE": "2023-01-01"},
)
ENV_FILE = STACK.root / "demo.env"


def with_env(env: dict[str, str], command: str) -> str:
    """`command` prefixed with the demo's environment, to paste into a shell."""
    return " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " " + command


def zhengming_command() -> str:
    script = Path(sys.executable).with_name("zhengming")
    return str(script) if script.exists() else f"{sys.executable} -m zhengming.cli"


def prepare_stack(env: dict[str, str]) -> None:
    """A wiped stack (Stack.prepare), no documents of an earlier run, and the environment in a
    file to source (make demo-down)."""
    STACK.prepare()
    shutil.rmtree(DOCUMENTS, ignore_errors=True)
    ENV_FILE.write_text("".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items()), encoding="utf-8")
