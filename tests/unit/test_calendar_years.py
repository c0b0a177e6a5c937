"""A day of a year the working-day calendar does not know is a typed error, not a Monday-Friday
guess; an override table (ZM_CALENDAR_OVERRIDES_FILE) adds a year the package does not cover yet."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from shared import workdays
from shared.workdays import CalendarYearUnknown, add_working_days, covered, is_working_day

UNKNOWN = 2099  # announced by nobody yet


@pytest.fixture
def fresh_calendar() -> Iterator[None]:
    workdays.forget()
    yield
    workdays.forget()


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


def test_remembered_deadlines_answer_as_the_day_by_day_count(fresh_calendar: None) -> None:
    start = date(2023, 9, 25)  # the National Day week follows: holidays and adjusted weekends
    first = [
        (add_working_days(start, n), workdays.working_days_between(start, start + timedelta(n)))
        for n in range(90)
    ]
    again = [
        (add_working_days(start, n), workdays.working_days_between(start, start + timedelta(n)))
        for n in range(90)
    ]
    assert first == again
    for n, (deadline, between) in enumerate(first):
        assert workdays.working_days_between(start, deadline) == n
        assert between == sum(is_working_day(start + timedelta(d)) for d in range(1, n + 1))
    assert add_working_days(start, 5) == date(2023, 10, 8)  # 26-28 Sep, then 7-8 Oct (adjusted)
    assert add_working_days.cache_info().hits >= 90


def test_a_year_the_calendar_lacks_is_refused_every_time(
    fresh_calendar: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ZM_CALENDAR_OVERRIDES_FILE", raising=False)
    for _ in range(2):
        with pytest.raises(CalendarYearUnknown):
            add_working_days(date(UNKNOWN, 3, 2), 5)
        with pytest.raises(CalendarYearUnknown):
            workdays.working_days_between(date(UNKNOWN, 3, 2), date(UNKNOWN, 4, 2))
