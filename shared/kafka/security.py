"""The connection settings every Kafka client of ours uses: security protocol, TLS and SASL login.

One function, used by every producer, consumer and admin client (services, `wf`, benchmarks), so a
secured cluster works everywhere or nowhere.
"""

from __future__ import annotations

import ssl
from typing import Any

from aiokafka.helpers import create_ssl_context

from shared.config import Settings


def kafka_ssl_context(settings: Settings) -> ssl.SSLContext:
    """Verifying TLS: the CA file when given (else the system's CAs), the client certificate for mutual TLS."""
    key_password = settings.kafka_ssl_key_password
    context: ssl.SSLContext = create_ssl_context(
        cafile=settings.kafka_ssl_ca_file or None,
        certfile=settings.kafka_ssl_cert_file or None,
        keyfile=settings.kafka_ssl_key_file or None,
        password=key_password.get_secret_value() if key_password is not None else None,
    )
    return context


def kafka_security(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for AIOKafkaProducer / AIOKafkaConsumer / AIOKafkaAdminClient."""
    protocol = settings.kafka_security_protocol
    kwargs: dict[str, Any] = {"bootstrap_servers": settings.kafka_bootstrap, "security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        kwargs["ssl_context"] = kafka_ssl_context(settings)
    if protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        password = settings.kafka_sasl_secret()
        kwargs["sasl_mechanism"] = settings.kafka_sasl_mechanism
        kwargs["sasl_plain_username"] = settings.kafka_sasl_username
        kwargs["sasl_plain_password"] = password.get_secret_value() if password is not None else None
    return kwargs
