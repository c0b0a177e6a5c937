"""Working days of the official Chinese calendar, adjusted working days included (chinesecalendar)."""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

import chinese_calendar

from shared.errors import OutOfRange
from shared.logging import get_logger

log = get_logger(__name__)
_warned: set[int] = set()


@lru_cache(maxsize=4096)
def is_working_day(day: date) -> bool:
    """True on a working day: weekdays that are not holidays, plus adjusted working weekends
    (remembered: the demo's scenario asks about the same days many times)."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        # The package covers the years the State Council has announced; beyond them, fall back
        # to Monday-Friday and say so once per year.
        if day.year not in _warned:
            _warned.add(day.year)
            log.warning("workdays.calendar_unknown", year=day.year)
        return day.weekday() < 5


def add_working_days(start: date, days: int) -> date:
    """The date `days` working days after `start` (start itself does not count)."""
    current = start
    remaining = days
    try:
        while remaining > 0:
            current += timedelta(days=1)
            if is_working_day(current):
                remaining -= 1
    except OverflowError as exc:
        raise OutOfRange(
            f"{days} working days after {start.isoformat()} lie past the calendar",
            detail_zh=f"{start.isoformat()} 之后 {days} 个工作日超出了日历范围",
        ) from exc
    return current


def working_days_between(start: date, end: date) -> int:
    """Working days after `start` up to and including `end` (0 when end <= start)."""
    count = 0
    current = start
    while current < end:
        current += timedelta(days=1)
        if is_working_day(current):
            count += 1
    return count


def next_working_day(day: date) -> date:
    """`day` itself when it is a working day, else the first working day after it."""
    while not is_working_day(day):
        day += timedelta(days=1)
    return day


def working_days_before(day: date, days: int) -> date:
    """The date `days` working days before `day` (the inverse of add_working_days)."""
    current, remaining = day, days
    while remaining > 0:
        current -= timedelta(days=1)
        if is_working_day(current):
            remaining -= 1
    return current


@lru_cache(maxsize=64)
def working_days(first: date, last: date) -> tuple[date, ...]:
    """Every working day from `first` to `last`, both included."""
    out, day = [], first
    while day <= last:
        if is_working_day(day):
            out.append(day)
        day += timedelta(days=1)
    return tuple(out)
