"""The bench's own fresh stack: Kafka, PostgreSQL and the four services on ports of its own under
.local/bench/stack, so `make bench` never disturbs `make up`, `make test` or `make demo`."""

from __future__ import annotations

from shared.settings import PROJECT_ROOT
from zhengming.stack import Stack, start, stop, use_environment

STACK = Stack(
    PROJECT_ROOT / ".local" / "bench" / "stack",
    {
        "ZM_KAFKA_PORT": "21092",
        "ZM_KAFKA_CONTROLLER_PORT": "21093",
        "ZM_PG_PORT": "17432",
        "ZM_SERVICE_INTAKE_PORT": "9201",
        "ZM_SERVICE_REVIEW_PORT": "9202",
        "ZM_SERVICE_CLARIFICATION_PORT": "9203",
        "ZM_SERVICE_ARCHIVE_PORT": "9204",
        "ZM_SERVICE_CONSOLE_PORT": "9200",
    },
)

__all__ = ["STACK", "start", "stop", "use_environment"]
