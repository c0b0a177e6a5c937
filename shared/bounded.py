"""Bounded input types of the HTTP edges: business dates in the documented range, text without
control characters, quarters, ids and offsets that the domain and PostgreSQL can hold.

The range of business dates lives here and nowhere else: from 2000-01-01 (before any matter the
commissions keep in this system) to one year after today (China time), so a mistyped year is
refused at the edge instead of overflowing a working-day computation or breaking a case id.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from shared.dates import Quarter

EARLIEST_DATE = date(2000, 1, 1)
"""The first business date the services accept."""

DAYS_AHEAD = 366
"""How far after today a business date may lie (one year, a leap day included)."""

MAX_OFFSET = 2**31 - 1
"""The largest paging offset (fits PostgreSQL's integer; 2^63 made asyncpg overflow)."""


def today() -> date:
    """Today in China (the events' value objects import this module, hence the late import)."""
    from shared.events.common import BUSINESS_TZ

    return datetime.now(BUSINESS_TZ).date()


def latest_date(on: date | None = None) -> date:
    """The last business date accepted on `on` (default today): one year ahead."""
    return (on or today()) + timedelta(days=DAYS_AHEAD)


def check_business_date(value: date) -> date:
    from shared.workdays import covered

    latest = latest_date()
    if not EARLIEST_DATE <= value <= latest:
        raise PydanticCustomError(
            "date_out_of_range",
            "date must lie between {earliest} and {latest}",
            {"earliest": EARLIEST_DATE.isoformat(), "latest": latest.isoformat()},
        )
    if not covered(value.year):
        # Its working days, hence every deadline counted from it, would be a guess.
        raise PydanticCustomError(
            "calendar_year_unknown",
            "the working-day calendar has no holidays for {year}: upgrade the chinesecalendar"
            " package or load an override table (ZM_CALENDAR_OVERRIDES_FILE)",
            {"year": value.year},
        )
    return value


BusinessDate = Annotated[date, AfterValidator(check_business_date)]
"""A date of the procedure (received, logged, decided, clarified, as-of ...), within the range."""

# C0 controls except tab and newline, DEL, C1 controls. PostgreSQL refuses NUL in text and jsonb;
# the others would end up in documents and log lines where nobody can see them.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def check_text(value: str) -> str:
    found = _CONTROL.search(value)
    if found is not None:
        char, position = found.group(), found.start()
    else:
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError as exc:  # a lone surrogate: the store could not encode it
            char, position = value[exc.start], exc.start
    raise PydanticCustomError(
        "text_control_character",
        "text must not contain control characters other than newline and tab; "
        "found U+{codepoint} at position {position}",
        {"codepoint": f"{ord(char):04X}", "position": position},
    )


NoControl = AfterValidator(check_text)
"""Refuses control characters; put it after a Field's length bounds: Annotated[str, Field(...), NoControl]."""

Text = Annotated[str, NoControl]
"""Free text: any character but the control characters (newline and tab are allowed)."""


def check_quarter(value: str) -> str:
    quarter = Quarter.parse(value) if value == value.strip() else None
    if quarter is None:
        raise PydanticCustomError("quarter_format", "quarter must look like 2023Q1 (year, Q, 1-4)")
    year = quarter.year
    if not EARLIEST_DATE.year <= year <= latest_date().year:
        raise PydanticCustomError(
            "quarter_out_of_range",
            "quarter's year must lie between {earliest} and {latest}",
            {"earliest": EARLIEST_DATE.year, "latest": latest_date().year},
        )
    return value


QuarterLabel = Annotated[str, AfterValidator(check_quarter)]
"""'2023Q1': a quarter whose year lies in the business-date range."""

Offset = Annotated[int, Field(ge=0, le=MAX_OFFSET)]
Identifier = Annotated[str, Field(min_length=1, max_length=250), NoControl]
"""An id in a path (case, report, visit, document, subject): printable, bounded."""
