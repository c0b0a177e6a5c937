"""Client security of the FastStream broker, from the same settings as the aiokafka clients
(`KafkaSettings.client_options`): a county deployment talks to the city's cluster over SASL/TLS."""

from __future__ import annotations

from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from shared.settings import KafkaSettings

_SASL = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}


def broker_security(settings: KafkaSettings) -> BaseSecurity | None:
    """The `security=` of `KafkaBroker(...)`: None for PLAINTEXT."""
    if settings.security_protocol == "PLAINTEXT":
        return None
    ssl_context = settings.ssl_context()
    if not settings.uses_sasl:
        return BaseSecurity(ssl_context=ssl_context, use_ssl=True)
    assert settings.sasl_username is not None and settings.sasl_password is not None
    return _SASL[settings.sasl_mechanism](
        settings.sasl_username,
        settings.sasl_password.get_secret_value(),
        ssl_context=ssl_context,
        use_ssl=settings.uses_ssl,
    )
