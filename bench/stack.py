"""The bench's own fresh stack: Kafka, PostgreSQL and the four services on ports of its own under
.local/bench/stack, so `make bench` never disturbs `make up`, `make test` or `make demo`.

ZM_BENCH_PORT_SHIFT=N moves every port by N (two benches side by side on one machine)."""

from __future__ import annotations

import os

from shared.settings import PROJECT_ROOT
from zhengming.stack import Stack, start, stop, use_environment

PORTS = {
    "ZM_KAFKA_PORT": 21092,
    "ZM_KAFKA_CONTROLLER_PORT": 21093,
    "ZM_PG_PORT": 17432,
    "ZM_SERVICE_INTAKE_PORT": 9201,
    "ZM_SERVICE_REVIEW_PORT": 9202,
    "ZM_SERVICE_CLARIFICATION_PORT": 9203,
    "ZM_SERVICE_ARCHIVE_PORT": 9204,
    "ZM_SERVICE_CONSOLE_PORT": 9200,
}
SHIFT = int(os.environ.get("ZM_BENCH_PORT_SHIFT", "0"))

STACK = Stack(
    PROJECT_ROOT / ".local" / "bench" / "stack",
    {name: str(port + SHIFT) for name, port in PORTS.items()},
)

__all__ = ["STACK", "start", "stop", "use_environment"]
