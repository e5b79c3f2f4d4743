"""Why Kafka cannot be reached, in words an operator can act on, for the log and /healthz.

aiokafka reports a failed bootstrap as "Unable to bootstrap from [...]" whatever the cause. A probe
connection to the bootstrap servers with the same settings tells the causes apart: the broker's
certificate is not trusted (or TLS is misconfigured), the login is refused, or nothing answers.
A service waits in :func:`wait_for_kafka` at start (its /healthz already up, naming the cause) instead of
exiting, and /healthz re-probes when the broker stops answering later.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass

from aiokafka.conn import create_conn
from aiokafka.errors import (
    IllegalSaslStateError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)

from shared.config import Settings
from shared.kafka.security import kafka_security
from shared.logging import get_logger

log = get_logger(__name__)

AUTHENTICATION = "authentication"
TLS = "tls"
UNREACHABLE = "unreachable"

_HINTS = {
    TLS: "check WF_KAFKA_SSL_CA_FILE (the CA that signed the broker's certificate) and WF_KAFKA_SECURITY_PROTOCOL",
    AUTHENTICATION: "check WF_KAFKA_SASL_USERNAME, the password and WF_KAFKA_SASL_MECHANISM",
    UNREACHABLE: "check WF_KAFKA_BOOTSTRAP and that the broker is up",
}


_EVENTS = {
    TLS: "kafka.tls_failed",
    AUTHENTICATION: "kafka.authentication_failed",
    UNREACHABLE: "kafka.unreachable",
}


@dataclass(frozen=True, slots=True)
class KafkaProblem:
    kind: str  # AUTHENTICATION, TLS or UNREACHABLE
    detail: str

    @property
    def hint(self) -> str:
        return _HINTS[self.kind]


def _bootstrap_hosts(bootstrap: str) -> list[tuple[str, int]]:
    hosts = []
    for item in bootstrap.split(","):
        host, _, port = item.strip().rpartition(":")
        if host:
            hosts.append((host.strip("[]"), int(port)))
    return hosts


def _classify(exc: BaseException) -> KafkaProblem:
    detail = f"{type(exc).__name__}: {exc}"[:300]
    if isinstance(exc, ssl.SSLError):  # certificate not trusted, wrong name, TLS against a plain port...
        return KafkaProblem(TLS, detail)
    if isinstance(exc, SaslAuthenticationFailed | UnsupportedSaslMechanismError | IllegalSaslStateError):
        return KafkaProblem(AUTHENTICATION, detail)
    return KafkaProblem(UNREACHABLE, detail)


async def probe(settings: Settings, *, timeout_s: float = 10.0) -> KafkaProblem | None:
    """None when a bootstrap server accepts a connection (TLS and login included); else the first cause."""
    kwargs = kafka_security(settings)
    kwargs.pop("bootstrap_servers")
    problem: KafkaProblem | None = KafkaProblem(UNREACHABLE, "no bootstrap servers (WF_KAFKA_BOOTSTRAP)")
    for host, port in _bootstrap_hosts(settings.kafka_bootstrap):
        try:
            async with asyncio.timeout(timeout_s):
                conn = await create_conn(host, port, request_timeout_ms=int(timeout_s * 1000), **kwargs)
        except Exception as exc:
            found = _classify(exc)
            # A TLS or login problem says more than an unreachable server further down the list.
            if problem is None or problem.kind == UNREACHABLE:
                problem = found
            continue
        conn.close()
        return None
    return problem


class KafkaStatus:
    """The last known cause Kafka cannot be used, for /healthz."""

    def __init__(self) -> None:
        self.problem: KafkaProblem | None = None

    def checks(self) -> dict[str, bool]:
        kind = self.problem.kind if self.problem else None
        return {"kafka_tls": kind != TLS, "kafka_authentication": kind != AUTHENTICATION}

    async def refresh(self, settings: Settings, *, timeout_s: float = 3.0) -> None:
        self.note(await probe(settings, timeout_s=timeout_s))

    def note(self, problem: KafkaProblem | None) -> None:
        if problem is not None and problem != self.problem:
            log.error(_EVENTS[problem.kind], error=problem.detail, hint=problem.hint)
        elif problem is None and self.problem is not None:
            log.info("kafka.connected")
        self.problem = problem


async def wait_for_kafka(settings: Settings, status: KafkaStatus, *, max_pause_s: float = 10.0) -> None:
    """Return once the cluster accepts a connection; until then log each new cause and keep trying."""
    pause = 0.5
    while True:
        problem = await probe(settings)
        status.note(problem)
        if problem is None:
            return
        await asyncio.sleep(pause)
        pause = min(pause * 2, max_pause_s)
