"""Settings of every concern, read from the environment with the prefix ZM_ (one class per concern)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from ssl import SSLContext

    from shared.auth import AuthSettings

PROJECT_ROOT = Path(__file__).resolve().parent.parent

SERVICES: tuple[str, ...] = ("intake", "review", "clarification", "archive")
PROCESSES: tuple[str, ...] = (*SERVICES, "console")
"""The local processes of a stack: the four services and the officers' console."""

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


KafkaSecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class KafkaSettings(BaseSettings):
    """The Kafka broker: where it listens and how the local KRaft broker (one node, or a
    replicated cluster of `nodes` on loopback) is sized."""

    model_config = SettingsConfigDict(env_prefix="ZM_KAFKA_")

    host: str = "127.0.0.1"
    port: int = 19092
    controller_port: int = 19093
    # Local KRaft nodes, each broker and controller: node i listens on port + 2(i-1) and
    # controller_port + 2(i-1). 3 is the replicated cluster (RF 3, min.insync.replicas 2).
    nodes: int = Field(default=1, ge=1, le=9)
    bootstrap_servers: str | None = None
    heap: str = "512m"
    partitions: int = 3
    cluster_id: str = "zhengmingLocalKRaft001"
    # Client security towards a shared (city) cluster; the local broker is PLAINTEXT.
    security_protocol: KafkaSecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = Field(default=None, description="CA bundle (PEM) of the brokers' certificates")

    @property
    def bootstrap(self) -> str:
        """bootstrap_servers, else every local node's broker listener."""
        if self.bootstrap_servers:
            return self.bootstrap_servers
        return ",".join(f"{self.host}:{self.node_ports(i)[0]}" for i in range(1, self.nodes + 1))

    @property
    def bootstrap_list(self) -> list[str]:
        """`bootstrap` as one host:port per item: FastStream takes a string for a single server."""
        return [server.strip() for server in self.bootstrap.split(",") if server.strip()]

    def node_ports(self, node_id: int) -> tuple[int, int]:
        """(broker port, controller port) of local node `node_id` (1..nodes)."""
        step = 2 * (node_id - 1)
        return self.port + step, self.controller_port + step

    @property
    def replication_factor(self) -> int:
        """Replicas of every topic the local cluster holds, internal topics included."""
        return min(3, self.nodes)

    @property
    def min_insync_replicas(self) -> int:
        """With three replicas a write is acknowledged by two: one node may be lost at any time."""
        return 2 if self.replication_factor >= 3 else 1

    @property
    def uses_ssl(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @model_validator(mode="after")
    def _security_complete(self) -> Self:
        if self.uses_sasl and (not self.sasl_username or self.sasl_password is None):
            raise ValueError(
                f"security_protocol {self.security_protocol} needs sasl_username and sasl_password"
            )
        if self.ssl_cafile is not None and not self.uses_ssl:
            raise ValueError(f"ssl_cafile is set but security_protocol {self.security_protocol} uses no TLS")
        return self

    def ssl_context(self) -> SSLContext | None:
        """TLS context trusting ssl_cafile (or the system's CAs); None without TLS."""
        if not self.uses_ssl:
            return None
        from aiokafka.helpers import create_ssl_context

        context: SSLContext = create_ssl_context(cafile=self.ssl_cafile)
        return context

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments of every aiokafka client (producer, consumer, admin): empty for
        PLAINTEXT, else the security protocol, TLS context and SASL credentials."""
        if self.security_protocol == "PLAINTEXT":
            return {}
        options: dict[str, Any] = {"security_protocol": self.security_protocol}
        if self.uses_ssl:
            options["ssl_context"] = self.ssl_context()
        if self.uses_sasl:
            assert self.sasl_password is not None
            options.update(
                sasl_mechanism=self.sasl_mechanism,
                sasl_plain_username=self.sasl_username,
                sasl_plain_password=self.sasl_password.get_secret_value(),
            )
        return options


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
    console_port: int = 8100  # the officers' console (`zhengming serve console`)
    # A county deployment serves its own jurisdiction only (e.g. ["331122"]); empty = all ten.
    jurisdictions: list[str] = []
    # Consumer groups are <group_prefix>.<consumer>: deployments sharing one cluster need their
    # own prefix (a county: "zm.331122", inside its topic-prefix ACL), or they split one group.
    group_prefix: str = Field(default="zm", pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
    # How long an idle keep-alive connection stays open. Longer than any client's keep-alive expiry
    # (the project's client: 15 s), so a client never reuses a connection the server is closing.
    keep_alive_s: int = Field(default=75, ge=1)
    # How often each consumer's lag and dead letters are counted for /readyz and `zhengming status`.
    ops_watch_interval_s: float = Field(default=15.0, gt=0)

    @field_validator("jurisdictions")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        # A mistyped code would leave a deployment silently serving nothing.
        from shared.envelope import JURISDICTIONS

        unknown = [j for j in value if j not in JURISDICTIONS]
        if unknown:
            raise ValueError(f"unknown jurisdiction codes {unknown}; known: {sorted(JURISDICTIONS)}")
        return value

    def group_id(self, consumer: str) -> str:
        return f"{self.group_prefix}.{consumer}"

    def port(self, service: str) -> int:
        port: int = getattr(self, f"{service}_port")
        return port

    def url(self, service: str) -> str:
        return f"http://{self.host}:{self.port(service)}"


class RelaySettings(BaseSettings):
    """The outbox relay: batch size and how often it polls when no notification wakes it."""

    model_config = SettingsConfigDict(env_prefix="ZM_RELAY_")

    # One Kafka transaction per batch, whose acknowledgements and commit the relay waits for before
    # the next: a backlog is relayed in fewer, larger transactions (bench: 500 rows a batch gave
    # 0.30-0.36x a bare producer, 2000 gave 0.65-0.70x). Live batches stay as small as the backlog.
    batch_size: int = 2000
    poll_interval_s: float = 0.5
    # No linger: a batch's records are all handed over before the relay yields to the producer's
    # sender, so they fill produce requests anyway, and nothing waits out a linger before the
    # acknowledgements (a live event goes out at once; bench: 0.72 s to 0.60 s for 20,000 rows).
    linger_ms: int = 0
    # Reconciling reads each topic from the oldest unmarked row's time less this margin, which
    # covers clock skew between the database and the relay's host.
    reconcile_margin_s: float = 30.0


class ConsumerSettings(BaseSettings):
    """Consumers: retry of transient failures with exponential backoff."""

    model_config = SettingsConfigDict(env_prefix="ZM_CONSUMER_")

    retry_initial_s: float = 0.2
    retry_max_s: float = 10.0
    # A message that fails for any reason but its own content (database or broker away, a bug)
    # is retried for this long; then the consumer stops on it and /readyz answers 503: skipping
    # would lose the event, retrying silently for ever would hide it.
    retry_deadline_s: float = 600.0
    # Offsets are committed lazily (a commit per message capped a consumer near 120 messages/s):
    # the settled offset of each partition is committed once this many messages have settled,
    # this long after the first uncommitted one, and when a partition is revoked or the consumer
    # stops. A redelivery after a crash is a duplicate the inbox drops; the longest redelivery is
    # this many messages (or this long) per partition.
    commit_every_messages: int = Field(default=200, ge=1)
    commit_interval_s: float = Field(default=0.5, gt=0)


class CryptoSettings(BaseSettings):
    """Field encryption: the key-encryption key that wraps every data subject's key."""

    model_config = SettingsConfigDict(env_prefix="ZM_CRYPTO_")

    master_key: str | None = Field(default=None, description="base64 of 32 bytes")
    master_key_file: Path | None = Field(default=None, description="default: <local root>/secrets/master.key")

    def key_file(self) -> Path:
        return self.master_key_file or local().secrets / "master.key"


class AuditSettings(BaseSettings):
    """Signed checkpoints: how often each service vouches for its stream heads."""

    model_config = SettingsConfigDict(env_prefix="ZM_AUDIT_")

    checkpoint_interval_s: float = 30.0


class SigningSettings(BaseSettings):
    """Ed25519 keys of the services (shared/signing.py): this deployment's private keys, and the
    keyring of every public key its consumers and auditors trust (old keys stay for old events)."""

    model_config = SettingsConfigDict(env_prefix="ZM_SIGNING_")

    key_dir: Path | None = Field(default=None, description="default: <local root>/secrets/signing")
    keyring_dir: Path | None = Field(default=None, description="default: <local root>/secrets/keyring")

    def keys(self) -> Path:
        return self.key_dir or local().secrets / "signing"

    def keyring(self) -> Path:
        return self.keyring_dir or local().secrets / "keyring"


class IdempotencySettings(BaseSettings):
    """Idempotency keys of POST commands: how long a key is remembered, how often old ones go."""

    model_config = SettingsConfigDict(env_prefix="ZM_IDEMPOTENCY_")

    # A retry with the same key within this time gets the first answer; after it, the key is new.
    retention_hours: float = Field(default=48.0, gt=0)
    purge_interval_s: float = Field(default=3600.0, gt=0)
    # A duplicate waits this long for the first request with its key to finish, then answers 409.
    wait_s: float = Field(default=30.0, gt=0)
    # Fault injection for tests only: the process exits right after a keyed command committed,
    # before its response is sent (a crash between commit and answer).
    fault_exit_after_commit: bool = False


class LogSettings(BaseSettings):
    """Logging: level and whether to force JSON (default: JSON unless on a terminal)."""

    model_config = SettingsConfigDict(env_prefix="ZM_LOG_")

    level: str = "INFO"
    json_output: bool | None = None
    # aiokafka's warnings of one broker outage are one line until this long without any; 0 keeps
    # every line (a test counting the client's produce retries and reconnections).
    broker_quiet_s: float = Field(default=30.0, ge=0)


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


@lru_cache
def auth() -> AuthSettings:
    """The token settings, read once per process: the request path asks for them on every request
    (a settings object costs hundreds of microseconds to build). A test that changes ZM_AUTH_*
    clears this cache."""
    from shared.auth import AuthSettings  # shared.auth imports this module

    return AuthSettings()
