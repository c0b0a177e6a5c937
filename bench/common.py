"""What every benchmark figure shares: a rate with its baseline from the same run, latency summaries."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Figure:
    """One measured rate and its baseline, both measured in the same run on the same machine."""

    name: str
    label: str
    unit: str  # "events/s" or "reports/s"
    count: int
    ours_s: float
    baseline_name: str
    baseline_label: str
    baseline_s: float
    baseline_count: int | None = None  # when the baseline counted something else than `count`
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def counted(self) -> str:
        return self.unit.split("/")[0]

    @property
    def ours_rate(self) -> float:
        return self.count / self.ours_s if self.ours_s > 0 else 0.0

    @property
    def baseline_rate(self) -> float:
        count = self.count if self.baseline_count is None else self.baseline_count
        return count / self.baseline_s if self.baseline_s > 0 else 0.0

    @property
    def ratio(self) -> float:
        return self.ours_rate / self.baseline_rate if self.baseline_rate > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "unit": self.unit,
            self.counted: self.count,
            "ours": {"seconds": round(self.ours_s, 4), "per_s": round(self.ours_rate, 2)},
            "baseline": {
                "name": self.baseline_name,
                self.counted: self.count if self.baseline_count is None else self.baseline_count,
                "seconds": round(self.baseline_s, 4),
                "per_s": round(self.baseline_rate, 2),
            },
            "ratio_ours_over_baseline": round(self.ratio, 3),
            "notes": self.notes,
            **self.extra,
        }


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (q in 0..1)."""
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


def latency_summary(samples: list[float]) -> dict[str, float | int]:
    """n, p50, p99, mean and max in milliseconds (empty: just n = 0)."""
    if not samples:
        return {"n": 0}
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "p50_ms": ms(statistics.median(ordered)),
        "p99_ms": ms(percentile(ordered, 0.99)),
        "mean_ms": ms(statistics.fmean(ordered)),
        "max_ms": ms(ordered[-1]),
    }
