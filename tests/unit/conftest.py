"""Fixtures of the unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from shared.errors import DomainError
from tests.unit.bilingual import bilingual_problems


@pytest.fixture(autouse=True)
def every_refusal_speaks_chinese(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[DomainError]]:
    """Every domain error a unit test makes (each rule has its test, so each raise site is met)
    carries a Chinese sentence of its own: a raise site that forgot its Chinese fails the test that
    meets it."""
    made: list[DomainError] = []
    original = DomainError.__init__

    def recording(self: DomainError, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(DomainError, "__init__", recording)
    yield made
    problems = [p for error in made for p in bilingual_problems(error)]
    if problems:
        pytest.fail("refusals without their own Chinese:\n" + "\n".join(problems), pytrace=False)
