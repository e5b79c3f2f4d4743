"""aiokafka against the real Kafka 4.1.1 broker: admin, produce, consumer group join, commit."""

from __future__ import annotations

import asyncio
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from shared.config import Settings
from shared.kafka.topics import ensure_topics, topic_layout


async def test_admin_produce_group_commit(settings: Settings) -> None:
    topic = f"smoke-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
        assert topic in await admin.list_topics()
    finally:
        await admin.close()

    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        for i in range(10):
            await producer.send_and_wait(topic, value=f"m{i}".encode(), key=str(i % 2).encode())
    finally:
        await producer.stop()

    group = f"smoke-group-{uuid.uuid4().hex[:6]}"
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        seen: list[bytes] = []
        async with asyncio.timeout(30):
            while len(seen) < 10:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    seen.extend(r.value for r in records)
        await consumer.commit()
        assert sorted(seen) == sorted(f"m{i}".encode() for i in range(10))
        committed = {p: await consumer.committed(TopicPartition(topic, p)) for p in (0, 1)}
        assert sum(v or 0 for v in committed.values()) == 10
    finally:
        await consumer.stop()


async def test_service_topics_exist_with_their_partition_counts(settings: Settings) -> None:
    await ensure_topics(settings)
    await ensure_topics(settings)  # idempotent: a second replica starting does not fail
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(list(topic_layout(settings)))
    finally:
        await admin.close()
    partitions = {t["topic"]: len(t["partitions"]) for t in described}
    assert partitions == topic_layout(settings)
