"""Dates of the procedure: steps in order, and 季度 (the quarter of the statistics, the results
report-back, the rounds and the notices)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from shared.errors import OutOfRange, RuleViolation, Term

_LABEL = re.compile(r"^(\d{4})Q([1-4])$")


@dataclass(frozen=True, order=True)
class Quarter:
    """A calendar quarter, labelled like 2023Q1."""

    year: int
    number: int

    @classmethod
    def of(cls, day: date) -> Quarter:
        return cls(day.year, (day.month - 1) // 3 + 1)

    @classmethod
    def parse(cls, label: str) -> Quarter | None:
        """The quarter a '2023Q1' label names; None when it does not look like one."""
        match = _LABEL.match(label.strip())
        return None if match is None else cls(int(match.group(1)), int(match.group(2)))

    @property
    def label(self) -> str:
        return f"{self.year}Q{self.number}"

    def bounds(self) -> tuple[date, date]:
        """First and last day; a quarter the calendar cannot hold (year 0, the quarter after
        9999Q4) is a typed error naming the quarter."""
        try:
            first = date(self.year, 3 * self.number - 2, 1)
            after = date(self.year + 1, 1, 1) if self.number == 4 else date(self.year, 3 * self.number + 1, 1)
        except ValueError as exc:
            raise OutOfRange(
                f"quarter {self.label} lies outside the calendar",
                detail_zh=f"季度 {self.label} 超出了日历范围",
                field="quarter",
            ) from exc
        return first, after - timedelta(days=1)

    @property
    def first_day(self) -> date:
        return self.bounds()[0]

    @property
    def last_day(self) -> date:
        return self.bounds()[1]

    def contains(self, day: date) -> bool:
        first, last = self.bounds()
        return first <= day <= last


def quarter_of(day: date) -> str:
    """The label of the quarter a day lies in."""
    return Quarter.of(day).label


def not_before(day: date, earlier: date | None, *, field: str, step: Term) -> None:
    """Steps follow each other in time: a step is not dated before the one it follows (`step`
    names that one; nothing to check when it has no date)."""
    if earlier is not None and day < earlier:
        raise RuleViolation(
            f"{field} {day.isoformat()} is before {step.en} ({earlier.isoformat()})",
            detail_zh=f"{field} {day.isoformat()} 早于{step.zh}日期（{earlier.isoformat()}）",
            field=field,
            code="date_before_previous_step",
        )
