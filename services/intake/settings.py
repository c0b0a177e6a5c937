"""Settings of the intake service (environment prefix ZM_INBOUND_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.settings import local

INBOUND_KEY_FILE = "inbound-x25519.pem"


class InboundSettings(BaseSettings):
    """Intake's X25519 key for inbound reports (其他机关移送): other agencies encrypt the reporter's
    identity to its public key; only intake holds the private key."""

    model_config = SettingsConfigDict(env_prefix="ZM_INBOUND_")

    key_file: Path | None = Field(
        default=None, description=f"default: <local root>/secrets/{INBOUND_KEY_FILE}"
    )

    def key(self) -> Path:
        return self.key_file or local().secrets / INBOUND_KEY_FILE
