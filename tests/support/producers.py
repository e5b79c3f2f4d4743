"""Upstream producers that are not aiokafka: kcat (librdkafka) and Kafka's own Java console producer."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Sequence
from pathlib import Path

from shared.config import Settings
from wf.kafka_local import ensure_jars, java_executable

REPO = Path(__file__).resolve().parents[2]


def kcat() -> str:
    path = shutil.which("kcat") or shutil.which("kafkacat")
    if path is None:
        raise RuntimeError("kcat is needed by these tests: apt-get install kcat (.ci/run installs it)")
    return path


def kcat_security(settings: Settings) -> list[str]:
    """librdkafka properties for the settings' security (the names upstream teams use in their configs)."""
    protocol = settings.kafka_security_protocol
    args = ["-X", f"security.protocol={protocol.lower()}"]
    if protocol in ("SSL", "SASL_SSL") and settings.kafka_ssl_ca_file:
        args += ["-X", f"ssl.ca.location={settings.kafka_ssl_ca_file}"]
    if protocol.startswith("SASL_"):
        secret = settings.kafka_sasl_secret()
        assert secret is not None
        args += ["-X", f"sasl.mechanisms={settings.kafka_sasl_mechanism}"]
        args += ["-X", f"sasl.username={settings.kafka_sasl_username}"]
        args += ["-X", f"sasl.password={secret.get_secret_value()}"]
    return args


async def kcat_produce(
    settings: Settings,
    topic: str,
    values: Sequence[bytes],
    *,
    codec: str,
    headers: dict[str, str] | None = None,
    keys: Sequence[bytes] | None = None,
    partition: int | None = None,
) -> None:
    """One kcat run: the values (one per line) become one batch compressed with ``codec``; without
    ``keys`` every record has a null key."""
    args = [kcat(), "-P", "-b", settings.kafka_bootstrap, "-t", topic, "-z", codec, "-X", "linger.ms=50"]
    args += kcat_security(settings)
    for name, value in (headers or {}).items():
        args += ["-H", f"{name}={value}"]
    if partition is not None:
        args += ["-p", str(partition)]
    lines = list(values)
    if keys is not None:
        args += ["-K", "\t"]
        lines = [key + b"\t" + value for key, value in zip(keys, values, strict=True)]
    assert all(b"\n" not in line for line in lines), "kcat reads one message per line"
    proc = await asyncio.create_subprocess_exec(
        *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(b"\n".join(lines) + b"\n"), timeout=60)
    assert proc.returncode == 0, f"kcat failed ({proc.returncode}): {err.decode(errors='replace')}"


async def java_console_produce(
    settings: Settings, topic: str, values: Sequence[bytes], *, properties: dict[str, str]
) -> None:
    """org.apache.kafka.tools.ConsoleProducer from the broker's jars (kafka-tools), one value per line."""
    libs = ensure_jars(REPO / ".cache" / "kafka")
    args = [java_executable(), "-Xmx128m", "-XX:TieredStopAtLevel=1", "-cp", f"{libs}/*"]
    args += ["org.apache.kafka.tools.ConsoleProducer", "--bootstrap-server", settings.kafka_bootstrap]
    args += ["--topic", topic]
    for name, value in properties.items():
        args += ["--producer-property", f"{name}={value}"]
    proc = await asyncio.create_subprocess_exec(
        *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(b"\n".join(values) + b"\n"), timeout=120)
    assert proc.returncode == 0, (
        f"console producer failed ({proc.returncode}): {err.decode(errors='replace')}"
    )
