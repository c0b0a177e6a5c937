"""The console's settings (ZM_CONSOLE_*): where it listens, how long a session lives, its cookies."""

from __future__ import annotations

from functools import cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.settings import ServiceSettings


class ConsoleSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ZM_CONSOLE_")

    # Where it listens: ZM_SERVICE_HOST and ZM_SERVICE_CONSOLE_PORT, beside the four services.
    # A session ends after this long without a request, and at the latest when its token expires.
    idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    # Cookies only over HTTPS: on behind a TLS-terminating proxy (docker-compose sets it); off for
    # the plain-HTTP loopback of `make up`, where a browser would not send them back.
    secure_cookies: bool = False
    # The service that checks passwords and issues tokens (every service can; intake by default).
    login_service: str = "intake"
    # Timeout of one call to a service.
    backend_timeout_s: float = Field(default=30.0, gt=0)
    # Where each service answers, when not at ZM_SERVICE_HOST and its port (compose: its name).
    intake_url: str | None = None
    review_url: str | None = None
    clarification_url: str | None = None
    archive_url: str | None = None

    def service_urls(self, services: ServiceSettings) -> dict[str, str]:
        return {
            name: (getattr(self, f"{name}_url") or services.url(name)).rstrip("/")
            for name in ("intake", "review", "clarification", "archive")
        }


@cache
def console_settings() -> ConsoleSettings:
    return ConsoleSettings()
