"""Topics are created explicitly at start-up with the partition counts the services scale to;
the broker's automatic topic creation is never relied on."""

from __future__ import annotations

import asyncio

from aiokafka.admin import NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from shared.config import Settings
from shared.kafka.clients import create_admin


def topic_layout(settings: Settings) -> dict[str, int]:
    return {
        settings.topic_events: settings.partitions_events,
        settings.topic_runs: settings.partitions_runs,
        settings.topic_results: settings.partitions_results,
        settings.topic_dlq: settings.partitions_dlq,
    }


async def ensure_topics(settings: Settings, *, timeout_s: float = 60.0) -> None:
    admin = create_admin(settings)
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            await admin.start()
            break
        except Exception:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(1)
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(name, num_partitions=partitions, replication_factor=settings.kafka_replication_factor)
            for name, partitions in topic_layout(settings).items()
            if name not in existing
        ]
        if wanted:
            try:
                await admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                pass  # another replica created them first
    finally:
        await admin.close()
