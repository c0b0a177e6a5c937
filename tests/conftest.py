"""Fixtures shared by every test layer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared import settings


@pytest.fixture(autouse=True)
def fresh_auth_settings() -> Iterator[None]:
    """The token settings are read once per process (`settings.auth`): each test reads them anew,
    from the environment its own fixtures set (a test changing ZM_AUTH_* mid-way clears them)."""
    settings.auth.cache_clear()
    yield
    settings.auth.cache_clear()
