"""A refusal's reason travels in a dead-letter header and reaches operators, who see no case data:
it names the place and the kind of the fault, never the values of the message."""

from __future__ import annotations

import asyncpg
import pytest
from pydantic import BaseModel, Field, ValidationError

from shared.consumer import _short
from shared.errors import without_values


class Reporter(BaseModel):
    name: str = Field(max_length=4)
    contact: str = Field(pattern=r"^\d{11}$")


def refusal() -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        Reporter(name="钱实名的很长的名字", contact="1390578-1234")
    return caught.value


def test_a_validation_error_is_named_by_place_and_kind_only() -> None:
    reason = without_values(refusal())
    assert "name:" in reason and "contact:" in reason
    assert "钱实名" not in reason and "1390578" not in reason
    assert _short(refusal()) == reason


def test_a_database_error_by_class_and_sqlstate() -> None:
    error = asyncpg.DataError("invalid input for query argument $1: '1390578-1234' (expected int)")
    reason = _short(error)
    assert "1390578" not in reason and reason.startswith("DataError (SQLSTATE")
