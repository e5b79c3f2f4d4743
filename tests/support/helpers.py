"""Small helpers shared by integration tests: isolated topics, producing events, waiting, queries."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.config import Settings

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
    predicate: Callable[[], Awaitable[T]], *, timeout: float = 30.0, interval: float = 0.1
) -> T:
    async with asyncio.timeout(timeout):
        while True:
            result = await predicate()
            if result:
                return result
            await asyncio.sleep(interval)


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
