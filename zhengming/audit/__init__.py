"""The audit trail for auditors and operators: a case's timeline across the four services, the
verification of every hash chain against Kafka and the signed checkpoints, replay of read models
from offset 0, and time travel to any instant.

One module a job; this package names what the CLI, the bench and the tests use."""

from zhengming.audit.asof import CASE_COLUMNS, as_of, noon_before, rows_about, time_travel
from zhengming.audit.checkpoints import publish_checkpoint
from zhengming.audit.replays import (
    CORE_TABLES,
    Replayer,
    ReplayReport,
    TableDiff,
    compare_read_models,
    drop_schema,
    read_model_tables,
    replay,
)
from zhengming.audit.sources import read_topics, service_pool
from zhengming.audit.timeline import TimelineEntry, case_timeline, causal_order, render_timeline
from zhengming.audit.verification import Break, VerifyReport, verify_trail

__all__ = [
    "CASE_COLUMNS",
    "CORE_TABLES",
    "Break",
    "ReplayReport",
    "Replayer",
    "TableDiff",
    "TimelineEntry",
    "VerifyReport",
    "as_of",
    "case_timeline",
    "causal_order",
    "compare_read_models",
    "drop_schema",
    "noon_before",
    "publish_checkpoint",
    "read_model_tables",
    "read_topics",
    "render_timeline",
    "replay",
    "rows_about",
    "service_pool",
    "time_travel",
    "verify_trail",
]
