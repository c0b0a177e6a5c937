"""What the demo's workflow did and found, and how a phase fails."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.table import Table


@dataclass
class Facts:
    """What the services answered along the way: what the statistics must come to."""

    reports_in_quarter: int = 0
    referred_in_quarter: int = 0
    newly_screened: list[str] = field(default_factory=list)
    screened_seen: int = 0
    priority_flagged: int = 0
    performed: dict[str, list[str]] = field(default_factory=dict)
    filed: int = 0
    visits_in_quarter: int = 0
    visits_later: int = 0
    notices: dict[str, int] = field(default_factory=dict)
    documents: int = 0
    results_reports: int = 0
    reporter_notices: int = 0
    inbound: int = 0
    sent_down: int = 0
    repeats: int = 0
    applications: int = 0
    refusals: int = 0
    consent_refused: int = 0
    sent_back: int = 0
    latencies: list[float] = field(default_factory=list)


@dataclass
class Result:
    statistics: dict[str, Any]
    mismatches: list[str]
    timeline: Table | None
    timeline_case: str
    trail_lines: list[str]
    trail_ok: bool
    facts: Facts
    notice: str = ""
    exits: Any = None  # zhengming.demo.exits.ExitsOutcome, once the exits phase ran


class PhaseFailed(Exception):
    def __init__(self, phase: str, failures: list[tuple[str, BaseException]]) -> None:
        first = "; ".join(f"{label}: {exc}" for label, exc in failures[:5])
        super().__init__(f"{phase}: {len(failures)} step(s) failed — {first}")
        self.phase = phase
        self.failures = failures
