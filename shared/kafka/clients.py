"""Kafka producer, consumer and admin factories with the settings every service needs."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from shared.config import Settings
from shared.kafka import undecodable
from shared.kafka.security import kafka_security

# Every consumer of a process that builds its clients here returns an unreadable batch as a record to
# dead-letter instead of raising out of getmany() (shared/kafka/undecodable.py).
undecodable.install()


def compression_type(settings: Settings) -> str | None:
    return None if settings.kafka_compression == "none" else settings.kafka_compression


def create_producer(settings: Settings, *, linger_ms: int = 2) -> AIOKafkaProducer:
    # acks=all + idempotence: a producer retry never duplicates or reorders a message in a partition.
    return AIOKafkaProducer(
        **kafka_security(settings),
        acks="all",
        compression_type=compression_type(settings),
        enable_idempotence=True,
        linger_ms=linger_ms,
        max_batch_size=256 * 1024,
        max_request_size=2 * 1024 * 1024,
        request_timeout_ms=30000,
    )


def create_consumer(
    settings: Settings,
    *topics: str,
    group_id: str,
    max_records: int = 500,
    fetch_min_bytes: int = 1,
    fetch_max_wait_ms: int = 500,
) -> AIOKafkaConsumer:
    """Without ``topics`` the caller subscribes itself (e.g. with a rebalance listener).

    The defaults answer a fetch as soon as one record is there (the dispatcher's and executor's path);
    a consumer that batches anyway (health) asks the broker to hold its fetch for ``fetch_min_bytes``
    or ``fetch_max_wait_ms``, so it costs a fetch request per interval rather than one per message."""
    # Offsets are committed by the service only after its database work has committed.
    return AIOKafkaConsumer(
        *topics,
        **kafka_security(settings),
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=max_records,
        fetch_min_bytes=fetch_min_bytes,
        fetch_max_wait_ms=fetch_max_wait_ms,
        fetch_max_bytes=16 * 1024 * 1024,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        session_timeout_ms=20000,
        heartbeat_interval_ms=3000,
        max_poll_interval_ms=300000,
        metadata_max_age_ms=30000,
    )


def create_admin(settings: Settings, *, request_timeout_ms: int = 15000) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**kafka_security(settings), request_timeout_ms=request_timeout_ms)


def create_reader(settings: Settings, *topics: str) -> AIOKafkaConsumer:
    """A consumer outside any group (inspection: `wf dlq`, tests), reading from the earliest offset."""
    return AIOKafkaConsumer(
        *topics,
        **kafka_security(settings),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )


async def kafka_reachable(producer: AIOKafkaProducer) -> bool:
    """Whether a broker answers on the producer's connection (for /healthz)."""
    try:
        client = producer.client
        return bool(await client.ready(client.get_random_node()))
    except Exception:
        return False
