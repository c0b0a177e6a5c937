"""Settings of the archive service (environment prefix ZM_ARCHIVE_)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ArchiveSettings(BaseSettings):
    """回访 timing: how many working days after the clarification the return visits are due."""

    model_config = SettingsConfigDict(env_prefix="ZM_ARCHIVE_")

    return_visit_working_days: int = Field(default=60, ge=1, le=750)


@lru_cache
def archive_settings() -> ArchiveSettings:
    """The archive's settings, read once per process (a filing is a reaction per event)."""
    return ArchiveSettings()
