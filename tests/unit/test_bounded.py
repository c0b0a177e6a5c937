"""The bounded input types and the typed errors the domain raises at the calendar's edges."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from pydantic import BaseModel, ValidationError

from services.archive.domain import parse_quarter
from services.review.domain import quarter_bounds, sweep_window, years_before
from shared.bounded import (
    EARLIEST_DATE,
    MAX_OFFSET,
    BusinessDate,
    Identifier,
    Offset,
    QuarterLabel,
    Text,
    latest_date,
    today,
)
from shared.errors import OutOfRange, RuleViolation
from shared.workdays import add_working_days, covered, package_years


class Form(BaseModel):
    on: BusinessDate | None = None
    text: Text = ""
    quarter: QuarterLabel | None = None
    offset: Offset = 0
    ident: Identifier = "x"


def error_type(**values: object) -> str:
    with pytest.raises(ValidationError) as caught:
        Form.model_validate(values)
    return str(caught.value.errors()[0]["type"])


def test_business_dates_run_from_2000_to_one_year_ahead_in_the_years_the_calendar_knows() -> None:
    first = date(min(package_years()), 1, 1)
    assert Form(on=first).on == first
    assert latest_date() - today() == timedelta(days=366)
    latest = latest_date()
    if covered(latest.year):
        assert Form(on=latest).on == latest
    else:  # a year the working-day calendar does not know: refused, never counted as Mon-Fri
        assert error_type(on=latest) == "calendar_year_unknown"
    assert EARLIEST_DATE.year < first.year and error_type(on=EARLIEST_DATE) == "calendar_year_unknown"
    for bad in (date(1, 1, 1), date(1999, 12, 31), latest_date() + timedelta(days=1), date(9999, 12, 31)):
        assert error_type(on=bad) == "date_out_of_range"


@pytest.mark.parametrize(
    "char", ["\x00", "\x01", "\x08", "\x0b", "\x0c", "\r", "\x1f", "\x7f", "\x85", "\x9f", "\ud800"]
)
def test_text_refuses_control_characters(char: str) -> None:
    # pydantic refuses some lone surrogates itself (string_unicode); the others are ours.
    assert error_type(text=f"前{char}后") in ("text_control_character", "string_unicode")
    assert error_type(ident=f"a{char}") in ("text_control_character", "string_unicode")


def test_text_keeps_newline_tab_and_every_script() -> None:
    kept = "第一行\n\t第二行 𠮷 ñ \u2028 é"
    assert Form(text=kept).text == kept


def test_quarters_lie_in_the_business_range() -> None:
    assert Form(quarter="2023Q1").quarter == "2023Q1"
    assert error_type(quarter="0000Q1") == "quarter_out_of_range"
    assert error_type(quarter="9999Q4") == "quarter_out_of_range"
    assert error_type(quarter="2023Q5") == "quarter_format"


def test_offsets_fit_an_integer_column() -> None:
    assert Form(offset=MAX_OFFSET).offset == MAX_OFFSET
    assert error_type(offset=2**63) == "less_than_equal"
    assert error_type(offset=-1) == "greater_than_equal"


def test_working_days_past_the_calendar_are_a_typed_error() -> None:
    with pytest.raises(OutOfRange):
        add_working_days(date(9999, 12, 31), 5)
    assert add_working_days(date(2023, 1, 16), 5) == date(2023, 1, 28)  # an adjusted working Saturday


def test_quarters_and_sweeps_beyond_the_calendar_are_typed_errors() -> None:
    for quarter in ("0000Q1", "9999Q4"):
        with pytest.raises(OutOfRange) as caught:
            quarter_bounds(quarter)
        assert caught.value.field == "quarter"
    assert quarter_bounds("2023Q4") == (date(2023, 10, 1), date(2023, 12, 31))
    with pytest.raises(OutOfRange) as swept:
        sweep_window(date(1, 1, 1))
    assert swept.value.field == "as_of"
    assert years_before(date(2024, 2, 29), 3) == date(2021, 2, 28)


def test_archive_quarters_use_the_same_range() -> None:
    assert parse_quarter("2023Q2").year == 2023
    for bad in ("1999Q4", f"{latest_date().year + 1}Q1"):
        with pytest.raises(RuleViolation):
            parse_quarter(bad)
