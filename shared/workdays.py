"""Working days of the official Chinese calendar, adjusted working days included (chinesecalendar),
for the years the package knows, and for the years an override table adds (ZM_CALENDAR_OVERRIDES_FILE:
the State Council's announcement of a year the installed package does not cover yet). A day of a
year neither knows is a typed error (CalendarYearUnknown), never a guess: a command naming such a
date is refused with the field named, a service whose today is in such a year is not ready."""

from __future__ import annotations

import json
from datetime import date, timedelta
from functools import cache, lru_cache
from pathlib import Path

import chinese_calendar
from chinese_calendar import constants
from pydantic import BaseModel, ConfigDict
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.errors import OutOfRange


class CalendarSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ZM_CALENDAR_")

    # A JSON table of years the package does not cover: {"2027": {"holidays": ["2027-01-01", …],
    # "workdays": ["2027-02-07", …]}}, the announced holidays and the adjusted working weekends.
    overrides_file: Path | None = None


class YearOverride(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()
    """Weekend days that are working days (调休上班)."""


class CalendarYearUnknown(OutOfRange):
    code = "calendar_year_unknown"

    def __init__(self, year: int, field: str | None = None) -> None:
        super().__init__(
            f"the working-day calendar has no holidays for {year}: upgrade the chinesecalendar"
            " package or load an override table (ZM_CALENDAR_OVERRIDES_FILE)",
            detail_zh=f"工作日日历尚无 {year} 年的节假日安排：请升级 chinesecalendar 或加载覆盖表",
            field=field,
        )
        self.year = year


@cache
def overrides() -> dict[int, YearOverride]:
    """The override table's years (empty without one); each date must lie in its year."""
    path = CalendarSettings().overrides_file
    if path is None:
        return {}
    table = json.loads(Path(path).read_text(encoding="utf-8"))
    out: dict[int, YearOverride] = {}
    for year, days in table.items():
        entry = YearOverride.model_validate(days)
        if any(d.year != int(year) for d in entry.holidays | entry.workdays):
            raise ValueError(f"{path}: a date of {year} lies in another year")
        out[int(year)] = entry
    return out


@cache
def package_years() -> frozenset[int]:
    """The years the installed chinesecalendar announces."""
    return frozenset(d.year for d in (*constants.holidays, *constants.workdays))


def covered(year: int) -> bool:
    return year in overrides() or year in package_years()


@lru_cache(maxsize=4096)
def is_working_day(day: date) -> bool:
    """True on a working day: weekdays that are not holidays, plus adjusted working weekends
    (remembered: the demo's scenario asks about the same days many times)."""
    override = overrides().get(day.year)
    if override is not None:
        if day in override.workdays:
            return True
        return day.weekday() < 5 and day not in override.holidays
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError as exc:
        raise CalendarYearUnknown(day.year) from exc


# The deadlines walk day by day (60 working days: about 90 look-ups, ~150 us) and every command
# and projection of a case counts the same few: remembered, as the days are. An error (a year the
# calendar lacks, the end of the calendar) is not remembered: it is raised again each time.
@lru_cache(maxsize=4096)
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


@lru_cache(maxsize=4096)
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


def forget() -> None:
    """Forget the override table and every remembered answer (a test changing the table)."""
    for remembered in (overrides, is_working_day, add_working_days, working_days_between, working_days):
        remembered.cache_clear()
