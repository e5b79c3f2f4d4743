"""Small helpers shared by integration tests: isolated topics, producing events, waiting, queries."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.config import Settings
from shared.credential_types import split_secrets
from shared.crypto import credential_aad
from shared.enums import CredentialType
from shared.keys import keyring_from

T = TypeVar("T")


def isolated(settings: Settings, **overrides: Any) -> Settings:
    """Settings with topics and consumer groups of their own, so a test's services see only its messages."""
    tag = uuid.uuid4().hex[:8]
    values: dict[str, Any] = {
        "topic_events": f"events-{tag}",
        "topic_runs": f"runs-{tag}",
        "topic_results": f"results-{tag}",
        "topic_dlq": f"dlq-{tag}",
        "consumer_group_prefix": f"test-{tag}",
    }
    values.update(overrides)
    return settings.model_copy(update=values)


async def wait_for(
    predicate: Callable[[], Awaitable[T | None]],
    *,
    timeout: float = 30.0,
    interval: float = 0.1,
    what: str = "condition",
) -> T:
    """The predicate's first truthy result, polled until ``timeout``; then TimeoutError naming ``what``."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                result = await predicate()
                if result:
                    return result
                await asyncio.sleep(interval)
    except TimeoutError:
        raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}") from None


def event(
    department_id: int,
    event_type: int | str = 0,
    *,
    event_id: str | None = None,
    payload: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "EventId": event_id or str(uuid.uuid4()),
        "DepartmentId": department_id,
        "EventType": event_type,
        "OccurredOn": "2026-11-29T12:00:00Z",
        "Payload": payload or {"call": {"id": 1, "name": "Test"}},
    }


async def produce(
    settings: Settings, topic: str, messages: Sequence[bytes | dict[str, Any]], *, key: bytes | None = None
) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, max_request_size=4 * 1024 * 1024, acks="all"
    )
    await producer.start()
    try:
        futures = []
        for message in messages:
            value = message if isinstance(message, bytes) else orjson.dumps(message)
            msg_key = (
                key
                if key is not None or isinstance(message, bytes)
                else str(message["DepartmentId"]).encode()
            )
            futures.append(await producer.send(topic, value=value, key=msg_key))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def consume_all(
    settings: Settings, topic: str, *, expect: int, timeout: float = 30.0
) -> list[ConsumerRecord[bytes, bytes]]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        async with asyncio.timeout(timeout):
            while len(records) < expect:
                batch = await consumer.getmany(timeout_ms=300)
                for partition in batch.values():
                    records.extend(partition)
        # anything beyond the expected count that is already there
        batch = await consumer.getmany(timeout_ms=500)
        for partition in batch.values():
            records.extend(partition)
    finally:
        await consumer.stop()
    return records


async def fetch(engine: AsyncEngine, sql: str, **params: Any) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(text(sql), params)).all())


async def execute(engine: AsyncEngine, sql: str, **params: Any) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(sql), params)


INSERT_STEP = text(
    "INSERT INTO workflow_steps (workflow_id, action_type, step_order, output_template, action_config, "
    "workflow_credential_id, is_enabled) VALUES (:w, :a, :o, :t, :c, :cred, true) RETURNING workflow_step_id"
)


async def insert_step(
    conn: AsyncConnection,
    workflow_id: int,
    *,
    action_type: int,
    step_order: int,
    template: str,
    config: dict[str, Any],
    credential_id: int | None = None,
) -> int:
    """A step row written directly (no API validation), enabled."""
    params = {
        "w": workflow_id,
        "a": action_type,
        "o": step_order,
        "t": template,
        "c": orjson.dumps(config).decode(),
        "cred": credential_id,
    }
    return int((await conn.execute(INSERT_STEP, params)).scalar_one())


async def store_credential(
    conn: AsyncConnection, settings: Settings, department_id: int, ctype: CredentialType, data: dict[str, Any]
) -> int:
    """A credential stored as the API stores it: public fields in clear, secrets encrypted (bound to
    the credential's id, so the row is inserted first)."""
    public, secret = split_secrets(ctype, data)
    inserted = await conn.execute(
        text(
            "INSERT INTO workflow_credentials (department_id, name, credential_type, public_data, secret_keys, "
            "encrypted_data) VALUES (:d, :n, :t, CAST(:p AS jsonb), CAST(:k AS jsonb), '') "
            "RETURNING workflow_credential_id"
        ),
        {
            "d": department_id,
            "n": f"{ctype.name} test",
            "t": int(ctype),
            "p": orjson.dumps(public).decode(),
            "k": orjson.dumps(sorted(secret)).decode(),
        },
    )
    credential_id = int(inserted.scalar_one())
    token = keyring_from(settings).encrypt_json(department_id, secret, aad=credential_aad(credential_id))
    await conn.execute(
        text("UPDATE workflow_credentials SET encrypted_data = :e WHERE workflow_credential_id = :i"),
        {"e": token, "i": credential_id},
    )
    return credential_id


async def workflow_with_http_step(
    api: httpx.AsyncClient,
    url: str,
    *,
    template: str,
    name: str = "Notify",
    trigger: int = 0,
    action_type: int = 3,
    credential_id: int | None = None,
    **workflow: Any,
) -> tuple[int, int]:
    """A workflow with one HTTP step (CallApiPost unless told), both created through the API: their ids."""
    created = await api.post(
        "/api/v4/workflows", json={"Name": name, "TriggerEventType": trigger, **workflow}
    )
    assert created.status_code == 200, created.text
    workflow_id = int(created.json()["WorkflowId"])
    step: dict[str, Any] = {
        "ActionType": action_type,
        "StepOrder": 1,
        "OutputTemplate": template,
        "ActionConfig": json.dumps({"url": url}),
    }
    if credential_id is not None:
        step["WorkflowCredentialId"] = credential_id
    added = await api.post(f"/api/v4/workflows/{workflow_id}/steps", json=step)
    assert added.status_code == 200, added.text
    return workflow_id, int(added.json()["WorkflowStepId"])
