"""Secrets never appear in a log line, a step log, a run error, a Kafka message (runs, results and
DLQ topics) or an API response,
for a run that uses a credential of every one of the 14 types (each step fails against a closed port
or an unresolvable provider, the path on which error text is most likely to carry a secret)."""

from __future__ import annotations

import asyncio
import io
import json
import uuid

import httpx
import pytest
import structlog
from aiokafka import AIOKafkaConsumer
from sqlalchemy.ext.asyncio import create_async_engine

from services.api.department.service import set_plan
from shared.db.engine import create_engine, create_sessionmaker, session_scope
from shared.enums import ActionType, CredentialType, Plan
from shared.logging import configure_logging
from tests.support.helpers import event, fetch, produce, wait_for

CLOSED = "127.0.0.1"
CLOSED_PORT = 9  # discard: nothing listens there on this machine


def secret(kind: str) -> str:
    return f"S3cr3t{kind}{uuid.uuid4().hex[:12]}"


def credentials() -> list[tuple[CredentialType, ActionType, dict[str, object], dict[str, object], list[str]]]:
    """(type, action, credential data, action config, the secret strings that must never leak)."""
    s = {
        name: secret(name)
        for name in (
            "smtp",
            "twilio",
            "ftp",
            "sftp",
            "s3",
            "bearer",
            "basic",
            "apikey",
            "teams",
            "slack",
            "discord",
            "azure",
            "box",
            "dropboxrefresh",
            "dropboxapp",
        )
    }
    azure_key = "QzE" + s["azure"] + "AAAA=="
    https_closed = f"https://{CLOSED}:{CLOSED_PORT}/hook"
    return [
        (
            CredentialType.Smtp,
            ActionType.SendEmail,
            {
                "host": CLOSED,
                "port": CLOSED_PORT,
                "username": "mailer",
                "password": s["smtp"],
                "security": "none",
                "fromAddress": "alerts@example.org",
            },
            {"to": "chief@example.org", "subject": "Fire"},
            [s["smtp"]],
        ),
        (
            CredentialType.Twilio,
            ActionType.SendSms,
            {"accountSid": "AC" + "0" * 32, "authToken": s["twilio"], "fromNumber": "+15551230000"},
            {"to": "+15551239999"},
            [s["twilio"]],
        ),
        (
            CredentialType.Ftp,
            ActionType.UploadFileFtp,
            {"host": CLOSED, "port": CLOSED_PORT, "username": "ftpuser", "password": s["ftp"]},
            {"remotePath": "/in"},
            [s["ftp"]],
        ),
        (
            CredentialType.Sftp,
            ActionType.UploadFileSftp,
            {"host": CLOSED, "port": CLOSED_PORT, "username": "sftpuser", "password": s["sftp"]},
            {"remotePath": "/in"},
            [s["sftp"]],
        ),
        (
            CredentialType.AwsS3,
            ActionType.UploadFileS3,
            {
                "accessKeyId": "AKIAEXAMPLEEXAMPLE",
                "secretAccessKey": s["s3"],
                "bucketName": "wf-bucket",
                "endpointUrl": f"https://{CLOSED}:{CLOSED_PORT}",
            },
            {},
            [s["s3"]],
        ),
        (
            CredentialType.HttpBearer,
            ActionType.CallApiPost,
            {"token": s["bearer"], "allowedOrigins": [f"https://{CLOSED}:{CLOSED_PORT}"]},
            {"url": https_closed},
            [s["bearer"]],
        ),
        (
            CredentialType.HttpBasic,
            ActionType.CallApiPut,
            {
                "username": "api",
                "password": s["basic"],
                "allowedOrigins": [f"https://{CLOSED}:{CLOSED_PORT}"],
            },
            {"url": https_closed},
            [s["basic"]],
        ),
        (
            CredentialType.HttpApiKey,
            ActionType.CallApiGet,
            {
                "headerName": "X-Api-Key",
                "apiKey": s["apikey"],
                "allowedOrigins": [f"https://{CLOSED}:{CLOSED_PORT}"],
            },
            {"url": https_closed},
            [s["apikey"]],
        ),
        (
            CredentialType.MicrosoftTeams,
            ActionType.SendTeamsMessage,
            {"webhookUrl": f"https://contoso.webhook.office.com/webhookb2/{s['teams']}"},
            {},
            [s["teams"]],
        ),
        (
            CredentialType.Slack,
            ActionType.SendSlackMessage,
            {"webhookUrl": f"https://hooks.slack.com/services/T0000/B0000/{s['slack']}"},
            {},
            [s["slack"]],
        ),
        (
            CredentialType.Discord,
            ActionType.SendDiscordMessage,
            {"webhookUrl": f"https://discord.com/api/webhooks/1234/{s['discord']}"},
            {},
            [s["discord"]],
        ),
        (
            CredentialType.AzureBlobStorage,
            ActionType.UploadFileAzureBlob,
            {
                "accountName": "devstoreaccount1",
                "accountKey": azure_key,
                "containerName": "workflows",
                "accountUrl": f"https://{CLOSED}:{CLOSED_PORT}/devstoreaccount1",
            },
            {},
            [s["azure"]],
        ),
        (CredentialType.Box, ActionType.UploadFileBox, {"developerToken": s["box"]}, {}, [s["box"]]),
        (
            CredentialType.Dropbox,
            ActionType.UploadFileDropbox,
            {"refreshToken": s["dropboxrefresh"], "appKey": "appkey1", "appSecret": s["dropboxapp"]},
            {},
            [s["dropboxrefresh"], s["dropboxapp"]],
        ),
    ]


@pytest.fixture
def captured_logs():
    buffer = io.StringIO()
    configure_logging("DEBUG", json=True, service="test", stream=buffer, cache=False)
    yield buffer
    structlog.reset_defaults()


async def test_no_secret_leaves_the_vault(
    api: httpx.AsyncClient, settings, services, department_id, captured_logs
):
    engine = create_engine(settings, pool_size=1)
    try:
        async with session_scope(create_sessionmaker(engine)) as session:
            await set_plan(session, department_id, Plan.Paid)
    finally:
        await engine.dispose()

    created = await api.post(
        "/api/v4/workflows", json={"Name": "Every credential", "TriggerEventType": 11, "MaxRetryCount": 0}
    )
    assert created.status_code == 200, created.text
    workflow_id = created.json()["WorkflowId"]
    secrets: list[str] = []
    for order, (ctype, action, data, config, leaks) in enumerate(credentials()):
        secrets.extend(leaks)
        cred = await api.post(
            "/api/v4/workflows/credentials",
            json={"Name": f"{ctype.name} credential", "CredentialType": int(ctype), "Data": data},
        )
        assert cred.status_code == 200, (ctype.name, cred.text)
        step = await api.post(
            f"/api/v4/workflows/{workflow_id}/steps",
            json={
                "ActionType": int(action),
                "StepOrder": order,
                "OutputTemplate": "Log entry {{ log.id }}",
                "ActionConfig": json.dumps(config),
                "WorkflowCredentialId": cred.json()["WorkflowCredentialId"],
            },
        )
        assert step.status_code == 200, (action.name, step.text)

    index = services["dispatcher"].index

    async def indexed():
        return workflow_id in index.match(department_id, 11)

    await wait_for(indexed, timeout=10)
    await produce(settings, settings.topic_events, [event(department_id, 11, payload={"log": {"id": 801}})])

    db = create_async_engine(settings.database_url)
    try:

        async def finished():
            rows = await fetch(
                db,
                "SELECT workflow_run_id, status, error_message FROM workflow_runs WHERE workflow_id = :w",
                w=workflow_id,
            )
            return rows if rows and rows[0][1] in (2, 3) else None

        ((run_id, status, run_error),) = await wait_for(finished, timeout=120)
        logs = await fetch(
            db,
            "SELECT status, rendered_output, action_result, error_message "
            "FROM workflow_run_logs WHERE workflow_run_id = :r",
            r=run_id,
        )
    finally:
        await db.dispose()
    assert status == 3  # every step failed, as intended
    assert len(logs) == 14
    listed = await api.get("/api/v4/workflows/credentials")
    run_logs_api = await api.get(f"/api/v4/workflows/runs/{run_id}/logs")
    await asyncio.sleep(0.5)

    topics = {
        name: await _topic_text(settings, topic)
        for name, topic in (
            ("runs topic", settings.topic_runs),
            ("results topic", settings.topic_results),
            ("DLQ topic", settings.topic_dlq),
        )
    }
    # The sweep is not vacuous: this run's messages are in the topics it reads.
    assert str(run_id) in topics["runs topic"]
    assert str(run_id) in topics["results topic"]
    haystacks = {
        **topics,
        "service logs": captured_logs.getvalue(),
        "step logs": json.dumps([list(map(str, row)) for row in logs]),
        "run error": run_error or "",
        "credentials API": listed.text,
        "run logs API": run_logs_api.text,
    }
    assert "Connection" in haystacks["step logs"] or "refused" in haystacks["step logs"].lower()
    for where, text in haystacks.items():
        leaked = [s for s in secrets if s in text]
        assert not leaked, f"{where} contains {len(leaked)} secret(s)"


async def _topic_text(settings, topic: str) -> str:
    """Every record now in ``topic`` (keys, values and headers), as one text to search."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    parts: list[str] = []
    try:
        async with asyncio.timeout(10):
            while not consumer.assignment():
                await asyncio.sleep(0.05)
        partitions = list(consumer.assignment())
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        async with asyncio.timeout(30):
            while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    for record in records:
                        parts.append(repr(record.key))
                        parts.append((record.value or b"").decode("utf-8", "replace"))
                        parts.extend(f"{k}={v!r}" for k, v in record.headers)
    finally:
        await consumer.stop()
    return "\n".join(parts)


async def test_kafka_login_secrets_are_never_logged(secure_settings, captured_logs, caplog):
    """The SASL password and the TLS key password stay out of every log line (ours and aiokafka's, at
    DEBUG), out of the settings' repr and JSON, and out of a refused start's error."""
    from pydantic import SecretStr

    from shared.config import Settings
    from shared.kafka.clients import create_producer
    from shared.kafka.connection import KafkaStatus
    from tests.support.kafka_tls import PASSWORD

    wrong_password, key_password = secret("kafkasasl"), secret("kafkakey")
    wrong = secure_settings.model_copy(
        update={
            "kafka_sasl_password": SecretStr(wrong_password),
            "kafka_ssl_key_password": SecretStr(key_password),
        }
    )
    caplog.set_level("DEBUG")
    status = KafkaStatus()
    await status.refresh(wrong)  # a refused login, logged as an error naming the cause
    assert status.problem is not None
    assert status.problem.kind == "authentication"
    producer = create_producer(secure_settings)  # a login that works, aiokafka logging at DEBUG
    await producer.start()
    await producer.stop()
    try:
        Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_password=wrong_password)  # no username
    except ValueError as exc:
        refused = str(exc)
    haystacks = {
        "service logs": captured_logs.getvalue(),
        "library logs": caplog.text,
        "settings repr": repr(wrong) + str(wrong),
        "settings JSON": wrong.model_dump_json(),
        "refused settings": refused,
    }
    assert "kafka.authentication_failed" in haystacks["service logs"]
    for where, text in haystacks.items():
        leaked = [s for s in (wrong_password, key_password, PASSWORD) if s in text]
        assert not leaked, f"{where} contains {len(leaked)} secret(s)"
