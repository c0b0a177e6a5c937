"""docker-compose.yml agrees with shared.settings (no Docker engine needed: the file is parsed).

A missing service, a port that differs from the settings, a misspelt ZM_ variable or database
credentials that do not match the PostgreSQL defaults fail here, not at `docker compose up`.
"""

from __future__ import annotations

import inspect
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

import console.settings as console_settings
import services.clarification.settings as clarification_settings
import shared.settings as settings_module
from shared.settings import PROCESSES, SERVICES, PostgresSettings, ServiceSettings

COMPOSE_FILE = Path(__file__).resolve().parents[2] / "docker-compose.yml"
# ${NAME}, ${NAME:-default}, ${NAME:?error} and $NAME; `$$` is an escaped dollar, not a variable.
INTERPOLATION = re.compile(r"(?<!\$)\$\{?([A-Za-z_][A-Za-z0-9_]*)")
KAFKA_IMAGE = re.compile(r"^(?:docker\.io/)?apache/kafka(?:-native)?:4\.\d+(?:\.\d+)?$")


@pytest.fixture(autouse=True)
def _no_zm_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings are compared at their defaults, whatever the developer's shell exports."""
    for name in list(os.environ):
        if name.upper().startswith("ZM_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def compose_text() -> str:
    return COMPOSE_FILE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def compose(compose_text: str) -> dict[str, Any]:
    data = yaml.safe_load(compose_text)
    assert isinstance(data, dict), "docker-compose.yml is not a mapping"
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose.get("services")
    assert isinstance(found, dict), "docker-compose.yml has no services"
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
    """ZM_ names the settings read: env_prefix + field name of every BaseSettings in the module."""
    names: set[str] = set()
    for module in (settings_module, clarification_settings, console_settings):
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if not issubclass(cls, BaseSettings) or cls is BaseSettings:
                continue
            prefix = str(dict(cls.model_config).get("env_prefix", ""))
            names.update(f"{prefix}{field}".upper() for field in cls.model_fields)
    return names


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


def test_every_zm_variable_is_a_settings_field(
    services: dict[str, dict[str, Any]], compose_text: str
) -> None:
    accepted = _accepted_env_names()
    assert {"ZM_PG_HOST", "ZM_KAFKA_BOOTSTRAP_SERVERS", "ZM_SERVICE_INTAKE_PORT"} <= accepted
    used: dict[str, str] = {}
    for service_name, service in services.items():
        for var in _environment(service):
            if var.upper().startswith("ZM_"):
                used[var] = f"environment of {service_name}"
    for var in INTERPOLATION.findall(compose_text):
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


def test_kafka_is_apache_kafka_4_in_kraft_mode(services: dict[str, dict[str, Any]]) -> None:
    kafka = services["kafka"]
    assert KAFKA_IMAGE.match(str(kafka["image"])), kafka["image"]
    env = _environment(kafka)
    roles = {role.strip() for role in env.get("KAFKA_PROCESS_ROLES", "").split(",")}
    assert roles == {"broker", "controller"}
    node_id = env.get("KAFKA_NODE_ID")
    assert node_id, "KAFKA_NODE_ID missing"
    assert env.get("KAFKA_CONTROLLER_QUORUM_VOTERS", "").startswith(f"{node_id}@")
    assert env.get("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR") == "1"
    assert env.get("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR") == "1"
    assert "kafka-broker-api-versions" in _healthcheck_words(kafka)
    advertised = env.get("KAFKA_ADVERTISED_LISTENERS", "")
    assert "PLAINTEXT://kafka:9092" in advertised.split(",")
    for name in (*SERVICES, "migrate"):
        assert _environment(services[name]).get("ZM_KAFKA_BOOTSTRAP_SERVERS") == "kafka:9092", name


@pytest.mark.parametrize("name", SERVICES)
def test_app_service_waits_for_infrastructure_and_has_healthcheck(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    service = services[name]
    depends = service.get("depends_on")
    assert isinstance(depends, dict), f"{name}: depends_on must use the long form with conditions"
    for infra in ("kafka", "postgres"):
        assert infra in depends, f"{name} does not depend on {infra}"
        assert depends[infra].get("condition") == "service_healthy", f"{name} -> {infra}"
    assert depends.get("migrate", {}).get("condition") == "service_completed_successfully"
    port = ServiceSettings().port(name)
    assert f"127.0.0.1:{port}/healthz" in _healthcheck_words(service)
    master_key = _environment(service).get("ZM_CRYPTO_MASTER_KEY", "")
    assert master_key.startswith("${ZM_CRYPTO_MASTER_KEY:?"), f"{name}: key required from the shell"


def test_migrate_is_a_one_shot_before_the_services(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    assert "version" not in compose, "the compose spec has no `version:` key"
    migrate = services["migrate"]
    assert "build" in migrate
    assert _command(migrate) == ["migrate"]
    assert migrate.get("restart", "no") == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
