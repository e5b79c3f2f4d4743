"""The test broker's SASL_SSL listener: a certificate from a test CA (trustme) and SCRAM logins."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography.hazmat.primitives import serialization

from wf.kafka_local import SecureListener

USER = "workflows-svc"
# Test-only credential of the throw-away test broker.
PASSWORD = "test-only-scram-password-5f1c0e"


@dataclass(frozen=True)
class KafkaTls:
    listener: SecureListener
    ca_file: Path  # the CA that signed the broker's certificate (WF_KAFKA_SSL_CA_FILE)


def make_kafka_tls(directory: Path) -> KafkaTls:
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="Workflows test Kafka CA")
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    # Kafka's PEM keystore wants the key as PKCS#8.
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
    pkcs8 = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    keystore = directory / "broker.pem"
    keystore.write_bytes(pkcs8 + b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    keystore.chmod(0o600)
    ca_file = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return KafkaTls(SecureListener(keystore, {USER: PASSWORD}), ca_file)
