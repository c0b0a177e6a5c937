"""Kafka client security: the aiokafka keyword arguments and the FastStream broker security come
from the same settings and agree with each other."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
from faststream.kafka.security import parse_security
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from pydantic import ValidationError

from shared.kafka_security import broker_security
from shared.settings import KafkaSettings, ServiceSettings

SASL = {"sasl_username": "zm-331122", "sasl_password": "pw"}


def kafka(**values: Any) -> KafkaSettings:
    return KafkaSettings.model_validate(values)


@pytest.fixture
def cafile(tmp_path: Path) -> Path:
    """A real CA file: a self-signed certificate made with the cryptography package."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "zm-test-ca")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = tmp_path / "ca.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def test_plaintext_is_the_default_and_adds_nothing() -> None:
    settings = kafka()
    assert settings.security_protocol == "PLAINTEXT"
    assert settings.client_options() == {}
    assert broker_security(settings) is None


def test_env_variables_configure_sasl_ssl(monkeypatch: pytest.MonkeyPatch, cafile: Path) -> None:
    monkeypatch.setenv("ZM_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("ZM_KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("ZM_KAFKA_SASL_USERNAME", "zm-331122")
    monkeypatch.setenv("ZM_KAFKA_SASL_PASSWORD", "s3cret")
    monkeypatch.setenv("ZM_KAFKA_SSL_CAFILE", str(cafile))
    settings = KafkaSettings()
    options = settings.client_options()
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-256"
    assert options["sasl_plain_username"] == "zm-331122"
    assert options["sasl_plain_password"] == "s3cret"
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    # The CA of the file is the one trusted.
    trusted = [c["subject"] for c in options["ssl_context"].get_ca_certs()]
    assert trusted == [((("commonName", "zm-test-ca"),),)]
    assert "s3cret" not in repr(settings)


@pytest.mark.parametrize(
    ("mechanism", "kind"),
    [("PLAIN", SASLPlaintext), ("SCRAM-SHA-256", SASLScram256), ("SCRAM-SHA-512", SASLScram512)],
)
@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_broker_security_matches_client_options(
    mechanism: str, kind: type[BaseSecurity], protocol: str
) -> None:
    settings = kafka(
        security_protocol=protocol, sasl_mechanism=mechanism, sasl_username="zm-331122", sasl_password="pw"
    )
    security = broker_security(settings)
    assert type(security) is kind
    parsed = parse_security(security)  # what FastStream hands to aiokafka
    options = settings.client_options()
    assert isinstance(parsed.pop("ssl_context"), ssl.SSLContext) is (protocol == "SASL_SSL")
    assert isinstance(options.pop("ssl_context", None), ssl.SSLContext) is (protocol == "SASL_SSL")
    assert parsed == options


def test_ssl_without_sasl(cafile: Path) -> None:
    settings = kafka(security_protocol="SSL", ssl_cafile=cafile)
    options = settings.client_options()
    assert set(options) == {"security_protocol", "ssl_context"}
    assert options["security_protocol"] == "SSL"
    security = broker_security(settings)
    assert type(security) is BaseSecurity
    assert security.use_ssl and isinstance(security.ssl_context, ssl.SSLContext)
    assert parse_security(security)["security_protocol"] == "SSL"


def test_ssl_without_cafile_trusts_the_system_store() -> None:
    context = kafka(security_protocol="SSL").ssl_context()
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED


@pytest.mark.parametrize(
    "values",
    [
        {"security_protocol": "SASL_SSL"},
        {"security_protocol": "SASL_PLAINTEXT", "sasl_username": "zm-331122"},
        {"security_protocol": "PLAINTEXT", "ssl_cafile": "/etc/ssl/ca.pem"},
        {"security_protocol": "SASL_PLAINTEXT", **SASL, "ssl_cafile": "/etc/ssl/ca.pem"},
        {"security_protocol": "TLS"},
        {"security_protocol": "SASL_SSL", **SASL, "sasl_mechanism": "GSSAPI"},
    ],
)
def test_incomplete_or_unknown_security_is_refused(values: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        kafka(**values)


def test_group_ids_take_the_deployment_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ServiceSettings().group_id("review.handover") == "zm.review.handover"
    monkeypatch.setenv("ZM_SERVICE_GROUP_PREFIX", "zm.331122")
    assert ServiceSettings().group_id("review.handover") == "zm.331122.review.handover"
    for bad in ["", "zm.", ".zm", "zm..331122", "zm 331122", "zm.*"]:
        monkeypatch.setenv("ZM_SERVICE_GROUP_PREFIX", bad)
        with pytest.raises(ValidationError):
            ServiceSettings()
