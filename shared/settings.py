"""Settings of every concern, read from the environment with the prefix ZM_ (one class per concern)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent

SERVICES: tuple[str, ...] = ("intake", "review", "clarification", "archive")

ServiceName = Literal["intake", "review", "clarification", "archive"]


class LocalSettings(BaseSettings):
    """Where local runs keep their data, logs and pid files (git-ignored)."""

    model_config = SettingsConfigDict(env_prefix="ZM_LOCAL_")

    root: Path = PROJECT_ROOT / ".local"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def kafka_libs(self) -> Path:
        return self.root / "kafka" / "libs"

    @property
    def kafka_data(self) -> Path:
        return self.root / "kafka" / "data"

    @property
    def pg_data(self) -> Path:
        return self.root / "pgdata"

    @property
    def secrets(self) -> Path:
        return self.root / "secrets"


class KafkaSettings(BaseSettings):
    """The Kafka broker: where it listens and how the local single-node KRaft broker is sized."""

    model_config = SettingsConfigDict(env_prefix="ZM_KAFKA_")

    host: str = "127.0.0.1"
    port: int = 19092
    controller_port: int = 19093
    bootstrap_servers: str | None = None
    heap: str = "512m"
    partitions: int = 3
    cluster_id: str = "zhengmingLocalKRaft001"

    @property
    def bootstrap(self) -> str:
        return self.bootstrap_servers or f"{self.host}:{self.port}"


class PostgresSettings(BaseSettings):
    """PostgreSQL: where it listens and the database the services share (one schema each)."""

    model_config = SettingsConfigDict(env_prefix="ZM_PG_")

    host: str = "127.0.0.1"
    port: int = 15432
    user: str = "zhengming"
    password: str = "zhengming"
    database: str = "zhengming"
    pool_min: int = 1
    pool_max: int = 10

    def dsn(self, database: str | None = None) -> str:
        db = database or self.database
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{db}"


class ServiceSettings(BaseSettings):
    """HTTP ports of the four services."""

    model_config = SettingsConfigDict(env_prefix="ZM_SERVICE_")

    host: str = "127.0.0.1"
    intake_port: int = 8101
    review_port: int = 8102
    clarification_port: int = 8103
    archive_port: int = 8104
    # A county deployment serves its own jurisdiction only (e.g. ["331122"]); empty = all ten.
    jurisdictions: list[str] = []

    def port(self, service: str) -> int:
        port: int = getattr(self, f"{service}_port")
        return port

    def url(self, service: str) -> str:
        return f"http://{self.host}:{self.port(service)}"


class RelaySettings(BaseSettings):
    """The outbox relay: batch size and how often it polls when no notification wakes it."""

    model_config = SettingsConfigDict(env_prefix="ZM_RELAY_")

    batch_size: int = 500
    poll_interval_s: float = 0.5
    linger_ms: int = 5


class ConsumerSettings(BaseSettings):
    """Consumers: retry of transient failures with exponential backoff."""

    model_config = SettingsConfigDict(env_prefix="ZM_CONSUMER_")

    retry_initial_s: float = 0.2
    retry_max_s: float = 10.0
    # Transient errors (database or broker away) are retried for this long before the runner
    # gives up and stops the process: skipping would lose the event, stalling forever hides it.
    retry_deadline_s: float = 600.0


class CryptoSettings(BaseSettings):
    """Field encryption: the key-encryption key that wraps every data subject's key."""

    model_config = SettingsConfigDict(env_prefix="ZM_CRYPTO_")

    master_key: str | None = Field(default=None, description="base64 of 32 bytes")
    master_key_file: Path = PROJECT_ROOT / ".local" / "secrets" / "master.key"


class LogSettings(BaseSettings):
    """Logging: level and whether to force JSON (default: JSON unless on a terminal)."""

    model_config = SettingsConfigDict(env_prefix="ZM_LOG_")

    level: str = "INFO"
    json_output: bool | None = None


@lru_cache
def local() -> LocalSettings:
    return LocalSettings()


@lru_cache
def kafka() -> KafkaSettings:
    return KafkaSettings()


@lru_cache
def postgres() -> PostgresSettings:
    return PostgresSettings()


@lru_cache
def services() -> ServiceSettings:
    return ServiceSettings()
