"""A day of a year the working-day calendar does not know is a typed error, not a Monday-Friday
guess; an override table (ZM_CALENDAR_OVERRIDES_FILE) adds a year the package does not cover yet."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from shared import workdays
from shared.workdays import CalendarYearUnknown, add_working_days, covered, is_working_day

UNKNOWN = 2099  # announced by nobody yet


@pytest.fixture
def fresh_calendar() -> Iterator[None]:
    workdays.overrides.cache_clear()
    is_working_day.cache_clear()
    yield
    workdays.overrides.cache_clear()
    is_working_day.cache_clear()


def test_a_day_of_an_unknown_year_is_an_error_naming_the_year(
    fresh_calendar: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ZM_CALENDAR_OVERRIDES_FILE", raising=False)
    assert not covered(UNKNOWN)
    with pytest.raises(CalendarYearUnknown) as caught:
        is_working_day(date(UNKNOWN, 3, 2))
    assert caught.value.year == UNKNOWN and caught.value.code == "calendar_year_unknown"
    assert str(UNKNOWN) in caught.value.detail_zh and "覆盖表" in caught.value.detail_zh
    # A deadline running past the calendar's last year is the same error, not a Mon-Fri count.
    last = max(workdays.package_years())
    with pytest.raises(CalendarYearUnknown) as late:
        add_working_days(date(last, 12, 28), 10)
    assert late.value.year == last + 1


def test_an_override_table_adds_a_year_with_its_holidays_and_adjusted_working_days(
    fresh_calendar: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    table = tmp_path / "calendar.json"
    # 2099-01-01 is a Thursday, 2099-01-02 a Friday; 2099-01-03 a Saturday made a working day.
    table.write_text(
        json.dumps({str(UNKNOWN): {"holidays": ["2099-01-01", "2099-01-02"], "workdays": ["2099-01-03"]}}),
        encoding="utf-8",
    )
    monkeypatch.setenv("ZM_CALENDAR_OVERRIDES_FILE", str(table))
    assert covered(UNKNOWN)
    assert not is_working_day(date(UNKNOWN, 1, 1))
    assert not is_working_day(date(UNKNOWN, 1, 2))
    assert is_working_day(date(UNKNOWN, 1, 3))
    assert not is_working_day(date(UNKNOWN, 1, 4))  # an ordinary Sunday
    assert is_working_day(date(UNKNOWN, 1, 5))
    assert add_working_days(date(UNKNOWN, 1, 1), 2) == date(UNKNOWN, 1, 5)


def test_an_override_of_a_year_with_a_date_of_another_year_is_refused(
    fresh_calendar: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    table = tmp_path / "calendar.json"
    table.write_text(json.dumps({str(UNKNOWN): {"holidays": ["2098-12-31"]}}), encoding="utf-8")
    monkeypatch.setenv("ZM_CALENDAR_OVERRIDES_FILE", str(table))
    with pytest.raises(ValueError, match="another year"):
        workdays.overrides()
