"""A secured cluster: the test broker's second listener (SASL_SSL, SCRAM logins, a certificate from a
test CA). The end-to-end path runs over it, and a refused login or an untrusted certificate shows as a
clear log line and a 503 from /healthz naming the cause, not as a hang or an exit."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import orjson
from pydantic import SecretStr

from shared.config import Settings
from shared.kafka.clients import create_producer
from tests.peers.https_server import HttpsPeer
from tests.support.helpers import isolated, wait_for, workflow_with_http_step
from tests.support.kafka_tls import PASSWORD
from tests.support.processes import ServiceProcess
from tests.support.services import running_services


async def health_of(port: int) -> tuple[int, dict[str, bool]] | None:
    try:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
    except httpx.HTTPError:
        return None
    return response.status_code, response.json()["checks"]


async def test_event_over_sasl_ssl_reaches_the_https_peer(
    api: httpx.AsyncClient, secure_settings: Settings, local_ca, department_id: int
) -> None:
    cfg = isolated(secure_settings)
    async with (
        HttpsPeer(local_ca, hostnames=["127.0.0.1"]) as receiver,
        running_services(cfg) as services,
    ):
        workflow_id, _ = await workflow_with_http_step(
            api,
            receiver.url("/secured", host="127.0.0.1"),
            template='{"call": "{{ call.name }}"}',
            name="Secured",
        )
        index = services["dispatcher"].index  # type: ignore[attr-defined]

        async def indexed() -> bool:
            return workflow_id in index.match(department_id, 0)

        await wait_for(indexed, timeout=10)
        event = {
            "EventId": str(uuid.uuid4()),
            "DepartmentId": department_id,
            "EventType": 0,
            "OccurredOn": "2026-11-29T12:00:00Z",
            "Payload": {"call": {"name": "Over SASL_SSL"}},
        }
        # kcat cannot be the producer here: librdkafka before 2.6.1 (Debian 12 ships 2.0.2) fails SCRAM
        # against Kafka 4 brokers (edenhill/kcat#462); docs/kafka.md says so.
        producer = create_producer(cfg)
        await producer.start()
        try:
            await producer.send_and_wait(cfg.topic_events, orjson.dumps(event), key=b"secured")
        finally:
            await producer.stop()

        async def received() -> list[object]:
            return receiver.requests_to("POST", "/secured")

        requests = await wait_for(received, timeout=30)
        assert requests[0].json() == {"call": "Over SASL_SSL"}  # type: ignore[attr-defined]
        port = services["dispatcher"].side_port  # type: ignore[attr-defined]
        status, checks = await health_of(port) or (0, {})
        assert status == 200, checks
        assert checks["kafka"] is True


async def test_refused_login_and_untrusted_certificate_show_in_log_and_healthz(
    secure_settings: Settings, local_ca, tmp_path: Path
) -> None:
    password_file = tmp_path / "kafka-password"  # as a Kubernetes Secret mounted as a file
    password_file.write_text(PASSWORD + "\n")
    # The good one reads its password from the file only (WF_KAFKA_SASL_PASSWORD_FILE).
    good = secure_settings.model_copy(
        update={"kafka_sasl_password": None, "kafka_sasl_password_file": str(password_file)}
    )
    wrong = secure_settings.model_copy(update={"kafka_sasl_password": SecretStr("not-the-password")})
    untrusted = secure_settings.model_copy(update={"kafka_ssl_ca_file": str(local_ca.ca_bundle)})
    processes = {
        "good": ServiceProcess("dispatcher", isolated(good), tmp_path),
        "wrong": ServiceProcess("dispatcher", isolated(wrong), tmp_path),
        "untrusted": ServiceProcess("dispatcher", isolated(untrusted), tmp_path),
    }
    for process in processes.values():
        process.start()
    try:

        async def settled(name: str, status: int, failing: str | None) -> tuple[int, dict[str, bool]]:
            """/healthz once it answers ``status`` with the check ``failing`` (if any) false."""

            async def check() -> tuple[int, dict[str, bool]] | None:
                found = await health_of(processes[name].port)
                if found is None or found[0] != status:
                    return None
                return found if failing is None or found[1].get(failing) is False else None

            return await wait_for(check, timeout=60, interval=0.3)

        results = await asyncio.gather(
            settled("good", 200, None),
            settled("wrong", 503, "kafka_authentication"),
            settled("untrusted", 503, "kafka_tls"),
        )
    finally:
        codes = {name: p.terminate(timeout=20) for name, p in processes.items()}
    assert codes == {"good": 0, "wrong": 0, "untrusted": 0}  # SIGTERM ends even a start still waiting
    (_, good_checks), (_, wrong_checks), (_, untrusted_checks) = results
    assert good_checks["kafka_authentication"] is True
    assert wrong_checks["kafka"] is False
    assert wrong_checks["kafka_authentication"] is False
    assert wrong_checks["kafka_tls"] is True
    assert untrusted_checks["kafka_tls"] is False
    wrong_log, untrusted_log = processes["wrong"].log(), processes["untrusted"].log()
    assert "kafka.authentication_failed" in wrong_log
    assert "SaslAuthenticationFailed" in wrong_log
    assert "kafka.tls_failed" in untrusted_log
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted_log
    for log in (wrong_log, untrusted_log, processes["good"].log()):
        assert PASSWORD not in log
        assert "not-the-password" not in log
