"""Consumer lag of the partitions a consumer owns (exported as a gauge for autoscaling and alerts)."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer


async def consumer_lag(consumer: AIOKafkaConsumer | None) -> int:
    if consumer is None:
        return 0
    partitions = list(consumer.assignment())
    if not partitions:
        return 0
    ends = await consumer.end_offsets(partitions)
    lag = 0
    for tp in partitions:
        committed = await consumer.committed(tp)
        lag += max(0, ends[tp] - (committed or 0))
    return lag
