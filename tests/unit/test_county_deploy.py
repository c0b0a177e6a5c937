"""The county deployment agrees with the code: docker-compose.county.yml sets real settings for one
known county, and deploy/county/acls.sh grants that county its own prefix and nothing of another's."""

from __future__ import annotations

import inspect
import os
import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import asyncpg
import pytest
import yaml
from pydantic_settings import BaseSettings

import services.clarification.settings as clarification_settings
import services.intake.settings as intake_settings
import shared.auth as auth_module
import shared.settings as settings_module
from services.definitions import DEFINITIONS
from shared.envelope import CITY, JURISDICTIONS
from shared.outbox import OutboxRelay
from shared.settings import SERVICES, KafkaSettings, ServiceSettings
from shared.topics import (
    CHECKPOINTS_TOPIC,
    dead_letter_topic,
    events_pattern,
    events_topic,
    inbound_reports_topic,
    personnel_notices_topic,
    provisioned_topics,
)

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.county.yml"
ACLS = ROOT / "deploy" / "county" / "acls.sh"
COUNTY = "331122"  # 缙云县
COUNTIES = sorted(set(JURISDICTIONS) - {CITY})
INTERPOLATION = re.compile(r"(?<!\$)\$\{?([A-Za-z_][A-Za-z0-9_]*)")
APPS = (*SERVICES, "migrate")

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="acls.sh needs bash")


@pytest.fixture(autouse=True)
def _no_zm_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("ZM_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def environment(compose: dict[str, Any], service: str) -> dict[str, str]:
    raw = compose["services"][service].get("environment") or {}
    assert isinstance(raw, dict), f"{service}: environment must be a mapping"
    return {str(k): "" if v is None else str(v) for k, v in raw.items()}


def accepted_env_names() -> set[str]:
    names: set[str] = set()
    modules: list[ModuleType] = [settings_module, auth_module, intake_settings, clarification_settings]
    for module in modules:
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseSettings) and cls is not BaseSettings:
                prefix = str(dict(cls.model_config).get("env_prefix", ""))
                names.update(f"{prefix}{field}".upper() for field in cls.model_fields)
    return names


def resolved(env: dict[str, str]) -> dict[str, str]:
    """The environment as the container would see it, with a stand-in for each ${VAR:?...}."""
    return {k: "stand-in" if INTERPOLATION.search(v) else v for k, v in env.items()}


def acls(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(ACLS), *args], capture_output=True, text=True, timeout=30, check=False)


def consumer_names() -> list[str]:
    return [s.name for d in DEFINITIONS.values() for s in d.subscriptions]


# -- docker-compose.county.yml ---------------------------------------------------------------------


def test_county_compose_has_no_kafka_and_the_four_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert "kafka" not in services, "a county uses the city's cluster"
    assert set(services) == {"postgres", *APPS}
    for name in SERVICES:
        assert services[name]["command"] == ["serve", name]
        assert "kafka" not in services[name].get("depends_on", {})


def test_every_zm_variable_is_a_settings_field(compose: dict[str, Any]) -> None:
    accepted = accepted_env_names()
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    used = {v for name in APPS for v in environment(compose, name) if v.startswith("ZM_")}
    used |= {v for v in INTERPOLATION.findall(text) if v.startswith("ZM_")}
    assert {"ZM_SERVICE_JURISDICTIONS", "ZM_SERVICE_GROUP_PREFIX", "ZM_KAFKA_SASL_PASSWORD"} <= used
    assert used - accepted == set()


@pytest.mark.parametrize("name", APPS)
def test_settings_load_from_the_county_environment(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str
) -> None:
    env = resolved(environment(compose, name))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    served = ServiceSettings()
    assert served.jurisdictions == [COUNTY]
    assert served.jurisdictions[0] in COUNTIES, "a county deployment serves one county"
    assert served.group_id("review.handover") == f"zm.{COUNTY}.review.handover"
    cafile = tmp_path / "ca.pem"
    monkeypatch.setenv("ZM_KAFKA_SSL_CAFILE", str(cafile))
    kafka = KafkaSettings()
    assert kafka.security_protocol == "SASL_SSL" and kafka.uses_ssl
    assert kafka.sasl_username == f"zm-{COUNTY}"
    if name in SERVICES:  # the migration talks to PostgreSQL only (keys: test_compose.py)
        assert env["ZM_KAFKA_SSL_CAFILE"].startswith("/run/secrets/")
    assert env["ZM_PG_DATABASE"] == f"zhengming_{COUNTY}"
    for secret in ("ZM_KAFKA_SASL_PASSWORD", "ZM_PG_PASSWORD"):
        assert environment(compose, name)[secret].startswith(f"${{{secret}:?"), f"{secret} from the shell"


def test_county_consumers_see_only_the_county_topics() -> None:
    pattern = re.compile(events_pattern("intake", [COUNTY]))
    assert pattern.match(f"zm.{COUNTY}.intake.events")
    assert not any(pattern.match(f"zm.{j}.intake.events") for j in JURISDICTIONS if j != COUNTY)
    city = re.compile(events_pattern("intake"))  # the city level aggregates every jurisdiction
    assert all(city.match(f"zm.{j}.intake.events") for j in JURISDICTIONS)


# -- deploy/county/acls.sh -------------------------------------------------------------------------


def test_acls_grant_the_county_prefix_and_nothing_of_another_county() -> None:
    done = acls(COUNTY)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    commands = [line for line in out.splitlines() if line and not line.startswith("#")]
    own = [c for c in commands if "kafka-acls.sh" in c and f"--topic zm.{COUNTY}. " in c]
    assert len(own) == 1 and "--resource-pattern-type prefixed" in own[0]
    assert all(f"--operation {op}" in own[0] for op in ("Read", "Describe"))
    assert "--operation Write" not in own[0], "writes are granted per topic, never on the prefix"
    groups = [c for c in commands if f"--group zm.{COUNTY}. " in c]
    assert len(groups) == 1 and "--resource-pattern-type prefixed" in groups[0]
    others = [j for j in JURISDICTIONS if j != COUNTY]
    assert not [j for j in others if j in out], "the output names another jurisdiction"
    assert "zm.*" not in out and "--topic zm. " not in out and "--topic '*'" not in out


def test_the_county_writes_only_its_own_context_topics_and_notices() -> None:
    out = acls(COUNTY).stdout
    writes = [line for line in out.splitlines() if "kafka-acls.sh" in line and "--operation Write" in line]
    grants = [line for line in writes if "--topic " in line]
    written = {line.rsplit("--topic ", 1)[1] for line in grants}
    own = {events_topic(COUNTY, c) for c in SERVICES} | {personnel_notices_topic(COUNTY)}
    shared = {dead_letter_topic(n) for n in consumer_names()} | {CHECKPOINTS_TOPIC}
    assert written == own | shared
    assert inbound_reports_topic(COUNTY) not in written, "another agency writes the inbound reports"
    for line in grants:
        assert "--resource-pattern-type" not in line, "literal grants only"
        assert "--operation Read" not in line or line.rsplit("--topic ", 1)[1] in own
    removed = [line for line in acls(COUNTY, "--remove").stdout.splitlines() if "--operation Write" in line]
    assert len(removed) == len(writes)


def test_the_county_relays_may_use_transactional_ids_of_their_own_prefix_only() -> None:
    out = acls(COUNTY).stdout
    [grant] = [line for line in out.splitlines() if "kafka-acls.sh" in line and "--transactional-id" in line]
    assert f"--transactional-id zm.{COUNTY}. --resource-pattern-type prefixed" in grant
    relay = OutboxRelay(cast(asyncpg.Pool, None), KafkaSettings(), schema="review", deployment=f"zm.{COUNTY}")
    assert relay.transactional_id.startswith(f"zm.{COUNTY}.")


def test_acls_cover_every_consumers_dead_letters_write_only() -> None:
    out = acls(COUNTY).stdout
    for name in consumer_names():
        topic = dead_letter_topic(name)
        [grant] = [
            line for line in out.splitlines() if "kafka-acls.sh" in line and f"--topic {topic}" in line
        ]
        assert grant.endswith(f"--topic {topic}"), "a literal grant, not a prefix"
        assert "--operation Write" in grant and "--operation Read" not in grant
    [checkpoints] = [
        line for line in out.splitlines() if "kafka-acls.sh" in line and CHECKPOINTS_TOPIC in line
    ]
    assert "--operation Read" not in checkpoints


def test_acls_create_exactly_the_provisioned_topics() -> None:
    out = acls(COUNTY).stdout
    created = re.findall(r"kafka-topics\.sh .* --create --if-not-exists --topic (\S+)", out)
    expected = set(provisioned_topics([COUNTY], SERVICES)) | {dead_letter_topic(n) for n in consumer_names()}
    assert set(created) == expected
    assert "--acls-only" not in out
    assert not re.findall(r"--create", acls(COUNTY, "--acls-only").stdout)


def test_acls_know_every_county_and_refuse_anything_else() -> None:
    text = ACLS.read_text(encoding="utf-8")
    listed = re.search(r"COUNTIES=\((.*?)\)", text, re.S)
    assert listed is not None
    assert sorted(re.findall(r"\b\d{6}\b", listed.group(1))) == COUNTIES
    for bad in (CITY, "331199", "zm", ""):
        done = acls(bad)
        assert done.returncode == 2 and not done.stdout, bad
    for county in COUNTIES:
        assert acls(county, "--acls-only").returncode == 0


def test_acls_remove_revokes_the_same_grants() -> None:
    added = [line for line in acls(COUNTY, "--acls-only").stdout.splitlines() if "kafka-acls.sh" in line]
    removed = [line for line in acls(COUNTY, "--remove").stdout.splitlines() if "kafka-acls.sh" in line]
    assert [line.replace(" --add ", " --remove --force ") for line in added] == removed
    assert "--create" not in acls(COUNTY, "--remove").stdout, "topics (and their data) are kept"


def test_optional_partner_grants_are_literal() -> None:
    out = acls(
        COUNTY, "--inbound-principal", "User:xf-331122", "--notices-principal", "User:zzb-331122"
    ).stdout
    inbound = [line for line in out.splitlines() if "User:xf-331122" in line]
    assert inbound == [line for line in inbound if line.endswith(f"--topic zm.{COUNTY}.inbound.reports")]
    assert len(inbound) == 1 and "--operation Write" in inbound[0]
    notices = [line for line in out.splitlines() if "User:zzb-331122" in line]
    assert any(line.endswith(f"--topic zm.{COUNTY}.public.personnel-notices.v1") for line in notices)
    assert not any("--operation Write" in line for line in notices)


def test_clarification_asks_the_countys_own_intake(compose: dict[str, Any]) -> None:
    """The 澄清内容 is checked against the reporters this county's intake holds."""
    port = ServiceSettings().port("intake")
    assert environment(compose, "clarification")["ZM_INTAKE_URL"] == f"http://intake:{port}"
