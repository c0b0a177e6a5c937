"""docker-compose.yml and docker-compose.county.yml agree with the code (no Docker engine needed: the
files are parsed, interpolated as compose would, and read through the settings classes).

A missing service, a port that differs from the settings, a misspelt ZM_ variable, database
credentials that do not match the PostgreSQL defaults, a key a process needs but does not get (or
gets but must not hold, per zhengming/keys_cli.py NEEDS), or a Kafka cluster profile that is not
three replicating nodes fail here, not at `docker compose up`.
"""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

import console.settings as console_settings
import services.clarification.settings as clarification_settings
import services.intake.settings as intake_settings
import shared.auth as auth_module
import shared.settings as settings_module
from console.settings import ConsoleSettings
from services.intake.settings import InboundSettings
from shared.auth import AuthSettings
from shared.settings import (
    PROCESSES,
    SERVICES,
    CryptoSettings,
    KafkaSettings,
    PostgresSettings,
    ServiceSettings,
    SigningSettings,
)
from zhengming.keys_cli import CONTAINER_UID, NEEDS, SECRETS_DIRS, TOKEN_PRIVATE_KEY, Deployment, KeyFile

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
COMPOSE_FILES: dict[Deployment, Path] = {"city": COMPOSE_FILE, "county": ROOT / "docker-compose.county.yml"}
CLUSTER_ENV = ROOT / "deploy" / "kafka-cluster.env"
# ${NAME}, ${NAME:-default}, ${NAME:?error} and $NAME; `$$` is an escaped dollar, not a variable.
INTERPOLATION = re.compile(r"(?<!\$)\$\{?([A-Za-z_][A-Za-z0-9_]*)")
SUBSTITUTION = re.compile(r"\$\$|\$\{([A-Za-z_]\w*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_]\w*)")
KAFKA_IMAGE = re.compile(r"^(?:docker\.io/)?apache/kafka(?:-native)?:4\.\d+(?:\.\d+)?$")
RUN_SECRETS = PurePosixPath("/run/secrets")
KEY_PATH_SETTINGS = {"ZM_KAFKA_SSL_CAFILE"}  # a path setting whose name does not say so
CASES = [(deployment, process) for deployment, table in NEEDS.items() for process in table]


@pytest.fixture(autouse=True)
def _no_zm_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings are compared at their defaults, whatever the developer's shell exports."""
    for name in list(os.environ):
        if name.upper().startswith("ZM_"):
            monkeypatch.delenv(name)


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """What compose makes of a value: ${VAR:-default}, ${VAR-default}, ${VAR}, $VAR, `$$` -> `$`;
    a required ${VAR:?...} not in `env` becomes "stand-in" (the shell provides it)."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1) or match.group(4)
        operator, argument = match.group(2), match.group(3) or ""
        given = env.get(name)
        if operator in (":-", "-") and (given is None or (operator == ":-" and not given)):
            return argument
        if operator in (":?", "?") and not given:
            return "stand-in"
        return given or ""

    return SUBSTITUTION.sub(substitute, value)


def env_file(path: Path) -> dict[str, str]:
    pairs = (line.partition("=") for line in path.read_text(encoding="utf-8").splitlines())
    return {k.strip(): v.strip() for k, _, v in pairs if k.strip() and not k.startswith("#")}


def load(path: Path, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path.name} is not a mapping"
    resolved = interpolate(data, env or {})
    assert isinstance(resolved, dict)
    return resolved


def active(compose: dict[str, Any], profiles: set[str] | frozenset[str] = frozenset()) -> dict[str, Any]:
    """The services `docker compose up` starts with these profiles enabled."""
    services: dict[str, Any] = compose["services"]
    return {n: s for n, s in services.items() if not s.get("profiles") or set(s["profiles"]) & profiles}


@pytest.fixture(scope="module")
def compose_text() -> str:
    return COMPOSE_FILE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load(COMPOSE_FILE)


@pytest.fixture(scope="module")
def composes() -> dict[Deployment, dict[str, Any]]:
    return {deployment: load(path) for deployment, path in COMPOSE_FILES.items()}


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = active(compose)
    assert found, "docker-compose.yml has no services"
    return found


def _environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment, whether written as a mapping or as a list of NAME=value."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        pairs = (str(item).partition("=") for item in raw)
        return {name: value for name, _, value in pairs}
    assert isinstance(raw, dict), f"environment is neither a mapping nor a list: {raw!r}"
    return {str(name): "" if value is None else str(value) for name, value in raw.items()}


def _command(service: dict[str, Any]) -> list[str]:
    raw = service.get("command")
    if isinstance(raw, str):
        return raw.split()
    assert isinstance(raw, list), f"command missing or malformed: {raw!r}"
    return [str(part) for part in raw]


def _published_ports(service: dict[str, Any]) -> list[tuple[int, int]]:
    """(published, target) pairs from the short ("[ip:]published:target") or the long syntax."""
    pairs: list[tuple[int, int]] = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            pairs.append((int(entry["published"]), int(entry["target"])))
            continue
        parts = str(entry).split("/")[0].split(":")
        assert len(parts) >= 2, f"port {entry!r} is not published on the host"
        pairs.append((int(parts[-2]), int(parts[-1])))
    return pairs


def _healthcheck_words(service: dict[str, Any]) -> str:
    check = service.get("healthcheck")
    assert isinstance(check, dict), "no healthcheck"
    assert not check.get("disable"), "healthcheck disabled"
    test = check.get("test")
    assert test, "healthcheck has no test"
    return " ".join(test) if isinstance(test, list) else str(test)


def _accepted_env_names() -> set[str]:
    """ZM_ names the settings read: env_prefix + field name of every BaseSettings in the modules."""
    names: set[str] = set()
    modules = (settings_module, auth_module, intake_settings, clarification_settings, console_settings)
    for module in modules:
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if not issubclass(cls, BaseSettings) or cls is BaseSettings:
                continue
            prefix = str(dict(cls.model_config).get("env_prefix", ""))
            names.update(f"{prefix}{field}".upper() for field in cls.model_fields)
    return names


# -- the keys: who mounts what ---------------------------------------------------------------------


def _secret_target(entry: str | dict[str, Any]) -> tuple[str, PurePosixPath]:
    """(secret name, where the container sees it) of a service's `secrets:` entry."""
    if isinstance(entry, str):
        return entry, RUN_SECRETS / entry
    source = str(entry["source"])
    target = str(entry.get("target") or source)
    return source, PurePosixPath(target) if target.startswith("/") else RUN_SECRETS / target


def mounts(compose: dict[str, Any], deployment: Deployment, process: str) -> dict[str, PurePosixPath]:
    """Host file or directory (relative to the repository) -> where the process sees it, for every
    secret and every bind mount from the deployment's secrets directory."""
    service = compose["services"][process]
    declared = compose.get("secrets") or {}
    found: dict[str, PurePosixPath] = {}
    for entry in service.get("secrets") or []:
        name, target = _secret_target(entry)
        assert name in declared, f"{deployment} {process}: secret {name} is not declared"
        found[os.path.normpath(declared[name]["file"])] = target
    for volume in service.get("volumes") or []:
        source = os.path.normpath(str(volume.split(":")[0] if isinstance(volume, str) else volume["source"]))
        if not source.startswith(SECRETS_DIRS[deployment]):
            continue
        where = f"{deployment} {process}: {source}"
        assert isinstance(volume, dict), f"{where}: the long syntax (read_only, no created host path)"
        assert volume.get("read_only") is True, f"{where} must be mounted read-only"
        assert volume["bind"]["create_host_path"] is False, f"{where}: a missing keyring must stop compose"
        found[source] = PurePosixPath(str(volume["target"]))
    return found


def host_path(deployment: Deployment, key: KeyFile) -> str:
    return os.path.normpath(f"{SECRETS_DIRS[deployment]}/{key.path}")


@pytest.mark.parametrize(("deployment", "process"), CASES)
def test_each_process_mounts_exactly_the_keys_it_needs(
    composes: dict[Deployment, dict[str, Any]], deployment: Deployment, process: str
) -> None:
    compose = composes[deployment]
    found = mounts(compose, deployment, process)
    wanted = {host_path(deployment, key): PurePosixPath(key.target) for key in NEEDS[deployment][process]}
    assert found == wanted, f"{deployment} {process}"
    service = compose["services"][process]
    names = [_secret_target(entry)[0] for entry in service.get("secrets") or []]
    files = {key.name for key in NEEDS[deployment][process] if not key.directory}
    assert sorted(names) == sorted(files), "the secrets carry the table's names"
    env = _environment(service)
    for key in NEEDS[deployment][process]:
        setting, value = key.env
        assert env.get(setting) == value, f"{deployment} {process}: {setting}"


def test_no_process_holds_a_private_key_it_must_not(composes: dict[Deployment, dict[str, Any]]) -> None:
    for deployment, table in NEEDS.items():
        compose = composes[deployment]
        private = {host_path(deployment, k) for keys in table.values() for k in keys if k.private}
        for process in compose["services"]:
            allowed = {host_path(deployment, k) for k in table.get(process, ()) if k.private}
            held = private & set(mounts(compose, deployment, process))
            assert held == allowed, f"{deployment} {process} holds {held ^ allowed}"
    city = NEEDS["city"]
    assert [p for p, keys in city.items() if TOKEN_PRIVATE_KEY in keys] == ["intake"]
    assert not any(k.name == TOKEN_PRIVATE_KEY.name for keys in NEEDS["county"].values() for k in keys)
    for table in NEEDS.values():
        for process, keys in table.items():
            signing = {k.name for k in keys if k.name.endswith("_signing_key")}
            assert signing == ({f"{process}_signing_key"} if process in SERVICES else set()), process
    assert NEEDS["city"]["console"] == () and NEEDS["city"]["migrate"] == () == NEEDS["county"]["migrate"]


@pytest.mark.parametrize(("deployment", "process"), CASES)
def test_the_settings_find_every_key_where_compose_mounts_it(
    composes: dict[Deployment, dict[str, Any]],
    deployment: Deployment,
    process: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The process's own settings, read from its compose environment, name mounted files only."""
    compose = composes[deployment]
    service = compose["services"][process]
    env = _environment(service)
    targets = set(mounts(compose, deployment, process).values())
    for name, value in env.items():
        if value.startswith("/") and (name.endswith(("_FILE", "_DIR")) or name in KEY_PATH_SETTINGS):
            path = PurePosixPath(value)
            assert path in targets or any(path in t.parents for t in targets), f"{process}: {name}={value}"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    needed = {key.name for key in NEEDS[deployment][process]}
    if process not in SERVICES:
        assert not [v for v in env.values() if v.startswith(str(RUN_SECRETS))], f"{process} reads no key"
        return
    auth = AuthSettings()
    assert PurePosixPath(CryptoSettings().key_file()) in targets
    assert PurePosixPath(auth.public_key) in targets
    assert PurePosixPath(SigningSettings().keys() / f"{process}.pem") in targets
    assert PurePosixPath(SigningSettings().keyring()) in targets
    assert auth.issue_tokens == (TOKEN_PRIVATE_KEY.name in needed), (
        f"{process}: issues tokens iff it holds the key"
    )
    if auth.issue_tokens:
        assert PurePosixPath(auth.private_key) in targets
    if process == "intake":
        assert PurePosixPath(InboundSettings().key()) in targets
    if deployment == "county":
        assert PurePosixPath(str(KafkaSettings().ssl_cafile)) in targets
    assert "ZM_CRYPTO_MASTER_KEY" not in env, "the master key is a mounted file, never an environment value"


def test_the_console_logs_in_where_the_token_key_is() -> None:
    assert TOKEN_PRIVATE_KEY in NEEDS["city"][ConsoleSettings().login_service]


@pytest.mark.parametrize("deployment", list(NEEDS))
def test_every_secret_is_declared_from_the_secrets_directory_and_used(
    composes: dict[Deployment, dict[str, Any]], deployment: Deployment
) -> None:
    compose = composes[deployment]
    declared: dict[str, Any] = compose.get("secrets") or {}
    used = {_secret_target(e)[0] for s in compose["services"].values() for e in s.get("secrets") or []}
    assert set(declared) == used, "a declared secret nobody mounts, or a mounted one not declared"
    table = {k.name: k for keys in NEEDS[deployment].values() for k in keys if not k.directory}
    assert set(declared) == set(table)
    for name, secret in declared.items():
        assert set(secret) == {"file"}, f"{name}: from a file of {SECRETS_DIRS[deployment]}"
        assert os.path.normpath(secret["file"]) == host_path(deployment, table[name]), name


def test_the_secrets_directories_hold_no_committed_key() -> None:
    for directory in SECRETS_DIRS.values():
        ignore = (ROOT / directory / ".gitignore").read_text(encoding="utf-8").splitlines()
        assert "*" in ignore, f"{directory}: everything ignored"
    assert (ROOT / SECRETS_DIRS["city"] / "README.md").is_file()
    dockerignore = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert {f"{d}/" for d in SECRETS_DIRS.values()} <= set(dockerignore), "keys stay out of the build context"


def test_the_private_keys_owner_is_the_images_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(rf"useradd [^\n]*--uid {CONTAINER_UID}\b", dockerfile)
    assert re.search(r"^USER zhengming$", dockerfile, re.M)


# -- docker-compose.yml ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", PROCESSES)
def test_every_service_is_in_compose_and_serves_its_name(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    assert name in services, f"service {name!r} missing from docker-compose.yml"
    assert _command(services[name]) == ["serve", name]
    assert "build" in services[name], f"{name} is not built from the project's Dockerfile"


@pytest.mark.parametrize("name", PROCESSES)
def test_published_port_matches_settings(services: dict[str, dict[str, Any]], name: str) -> None:
    port = ServiceSettings().port(name)
    service = services[name]
    assert _published_ports(service) == [(port, port)]
    env = _environment(service)
    assert env.get(f"ZM_SERVICE_{name.upper()}_PORT") == str(port)
    assert env.get("ZM_SERVICE_HOST") == "0.0.0.0", f"{name} must listen on all interfaces"


@pytest.mark.parametrize("deployment", list(COMPOSE_FILES))
def test_every_zm_variable_is_a_settings_field(
    composes: dict[Deployment, dict[str, Any]], deployment: Deployment
) -> None:
    accepted = _accepted_env_names()
    assert {"ZM_PG_HOST", "ZM_KAFKA_BOOTSTRAP_SERVERS", "ZM_SERVICE_INTAKE_PORT"} <= accepted
    used: dict[str, str] = {}
    for service_name, service in composes[deployment]["services"].items():
        for var in _environment(service):
            if var.upper().startswith("ZM_"):
                used[var] = f"environment of {service_name}"
    texts = [COMPOSE_FILES[deployment].read_text(encoding="utf-8")]
    if deployment == "city":
        texts.append(CLUSTER_ENV.read_text(encoding="utf-8"))
    for var in INTERPOLATION.findall("\n".join(texts)) + list(env_file(CLUSTER_ENV)):
        if var.upper().startswith("ZM_"):
            used[var] = "interpolation"
    assert used, "compose uses no ZM_ variable at all"
    unknown = {var: where for var, where in used.items() if var.upper() not in accepted}
    assert not unknown, f"ZM_ variables that no settings field reads: {unknown}"


def test_clarification_asks_intake_by_its_compose_name(services: dict[str, dict[str, Any]]) -> None:
    """Inside compose each service is its own host: the stack's default (127.0.0.1) is not intake."""
    port = ServiceSettings().port("intake")
    assert _environment(services["clarification"]).get("ZM_INTAKE_URL") == f"http://intake:{port}"


def test_postgres_credentials_match_settings_defaults(services: dict[str, dict[str, Any]]) -> None:
    pg = PostgresSettings()
    postgres = services["postgres"]
    assert str(postgres["image"]).startswith("postgres:18")
    env = _environment(postgres)
    assert env.get("POSTGRES_USER") == pg.user
    assert env.get("POSTGRES_PASSWORD") == pg.password
    assert env.get("POSTGRES_DB") == pg.database
    assert "pg_isready" in _healthcheck_words(postgres)
    for name in (*SERVICES, "migrate"):
        app_env = _environment(services[name])
        assert app_env.get("ZM_PG_HOST") == "postgres", name
        assert app_env.get("ZM_PG_PORT") == "5432", name
        assert app_env.get("ZM_PG_USER") == pg.user, name
        assert app_env.get("ZM_PG_PASSWORD") == pg.password, name
        assert app_env.get("ZM_PG_DATABASE") == pg.database, name


def kafka_nodes(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, str]]:
    return {n: _environment(s) for n, s in services.items() if KAFKA_IMAGE.match(str(s.get("image", "")))}


def test_kafka_is_apache_kafka_4_in_kraft_mode_one_node_by_default(
    services: dict[str, dict[str, Any]],
) -> None:
    nodes = kafka_nodes(services)
    assert list(nodes) == ["kafka"], "without the cluster profile: one node"
    env = nodes["kafka"]
    roles = {role.strip() for role in env.get("KAFKA_PROCESS_ROLES", "").split(",")}
    assert roles == {"broker", "controller"}
    assert env.get("KAFKA_NODE_ID") == "1"
    assert env.get("KAFKA_CONTROLLER_QUORUM_VOTERS") == "1@kafka:9093"
    for replication in ("OFFSETS_TOPIC", "TRANSACTION_STATE_LOG", "SHARE_COORDINATOR_STATE_TOPIC"):
        assert env.get(f"KAFKA_{replication}_REPLICATION_FACTOR") == "1"
    assert env.get("KAFKA_DEFAULT_REPLICATION_FACTOR") == "1"
    assert env.get("KAFKA_MIN_INSYNC_REPLICAS") == "1"
    words = _healthcheck_words(services["kafka"])
    assert "kafka-broker-api-versions" in words and "-ge 1 ]" in words
    advertised = env.get("KAFKA_ADVERTISED_LISTENERS", "")
    assert "PLAINTEXT://kafka:9092" in advertised.split(",")
    for name in (*SERVICES, "migrate"):
        assert _environment(services[name]).get("ZM_KAFKA_BOOTSTRAP_SERVERS") == "kafka:9092", name


def test_the_cluster_profile_is_three_nodes_replicating_three_ways() -> None:
    extra = env_file(CLUSTER_ENV)
    assert extra.get("COMPOSE_PROFILES") == "cluster"
    services = active(load(COMPOSE_FILE, extra), {"cluster"})
    nodes = kafka_nodes(services)
    assert len(nodes) == 3, sorted(nodes)
    ids = {env["KAFKA_NODE_ID"]: name for name, env in nodes.items()}
    assert sorted(ids) == ["1", "2", "3"]
    voters = {f"{node_id}@{name}:9093" for node_id, name in ids.items()}
    brokers = set()
    for name, env in nodes.items():
        assert set(env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")) == voters, name
        assert {r.strip() for r in env["KAFKA_PROCESS_ROLES"].split(",")} == {"broker", "controller"}
        assert env["CLUSTER_ID"] == nodes["kafka"]["CLUSTER_ID"], "one cluster"
        for replication in ("OFFSETS_TOPIC", "TRANSACTION_STATE_LOG", "SHARE_COORDINATOR_STATE_TOPIC"):
            assert env[f"KAFKA_{replication}_REPLICATION_FACTOR"] == "3", (name, replication)
        for min_isr in ("TRANSACTION_STATE_LOG", "SHARE_COORDINATOR_STATE_TOPIC"):
            assert env[f"KAFKA_{min_isr}_MIN_ISR"] == "2", (name, min_isr)
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
        [listener] = [a for a in env["KAFKA_ADVERTISED_LISTENERS"].split(",") if a.startswith("PLAINTEXT://")]
        assert listener == f"PLAINTEXT://{name}:9092"
        brokers.add(listener.removeprefix("PLAINTEXT://"))
        volumes = services[name]["volumes"]
        assert len({v.split(":")[0] for v in volumes}) == 1 and volumes[0].endswith(":/var/lib/kafka/data")
    assert len({services[n]["volumes"][0] for n in nodes}) == 3, "each node its own data volume"
    assert "-ge 3 ]" in _healthcheck_words(services["kafka"]), "healthy once all three are brokers"
    for name in (*SERVICES, "migrate"):
        bootstrap = KafkaSettings(
            bootstrap_servers=_environment(services[name])["ZM_KAFKA_BOOTSTRAP_SERVERS"]
        )
        assert set(bootstrap.bootstrap.split(",")) == brokers, name
        assert services[name]["depends_on"]["kafka"]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", SERVICES)
def test_app_service_waits_for_infrastructure_and_is_healthy_when_ready(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    service = services[name]
    depends = service.get("depends_on")
    assert isinstance(depends, dict), f"{name}: depends_on must use the long form with conditions"
    for infra in ("kafka", "postgres"):
        assert infra in depends, f"{name} does not depend on {infra}"
        assert depends[infra].get("condition") == "service_healthy", f"{name} -> {infra}"
    assert depends.get("migrate", {}).get("condition") == "service_completed_successfully"


@pytest.mark.parametrize(("deployment", "process"), [(d, p) for d, p in CASES if p != "migrate"])
def test_health_checks_ask_readyz(
    composes: dict[Deployment, dict[str, Any]], deployment: Deployment, process: str
) -> None:
    """/readyz (database, broker, consumers, calendar), not /healthz (the process is alive)."""
    words = _healthcheck_words(composes[deployment]["services"][process])
    assert f"127.0.0.1:{ServiceSettings().port(process)}/readyz" in words
    assert "/healthz" not in words


def test_the_console_waits_for_the_services_it_calls(services: dict[str, dict[str, Any]]) -> None:
    depends = services["console"]["depends_on"]
    assert {name: d["condition"] for name, d in depends.items()} == dict.fromkeys(SERVICES, "service_healthy")


def test_migrate_is_a_one_shot_before_the_services(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    assert "version" not in compose, "the compose spec has no `version:` key"
    migrate = services["migrate"]
    assert "build" in migrate
    assert _command(migrate) == ["migrate"]
    assert migrate.get("restart", "no") == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_the_header_documents_bootstrap_and_the_cluster(compose_text: str) -> None:
    header = compose_text.split("\nx-", 1)[0]
    assert "zhengming keys bootstrap" in header and "docker compose up --build" in header
    assert "--env-file deploy/kafka-cluster.env --profile cluster up" in header
    county = COMPOSE_FILES["county"].read_text(encoding="utf-8").split("\nx-", 1)[0]
    assert "zhengming keys bootstrap --deployment county" in county
