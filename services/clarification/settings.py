"""Settings of the clarification service (env prefix ZM_CLARIFICATION_)."""

from __future__ import annotations

from datetime import date

from pydantic_settings import BaseSettings, SettingsConfigDict


class ClarificationSettings(BaseSettings):
    """When the candidate pool (备选库) was opened in this deployment.

    Lishui made clarification routine in 2023: a matter concluded untrue before that date did not
    enter the pool by itself; the backlog sweep (大起底) of the last three years screened it in.
    Empty (the default) means every eligible conclusion enters the pool at once.
    """

    model_config = SettingsConfigDict(env_prefix="ZM_CLARIFICATION_")

    pool_since: date | None = None
