"""Many coroutines producing to one partition at once (a burst of test runs, the scheduler beside the
dispatcher) all get their messages acknowledged: none fails with a spurious KafkaTimeoutError."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer

from shared.kafka.security import kafka_security
from shared.kafka.topics import ensure_topics
from shared.runs import outbox
from tests.support.helpers import isolated

SENDERS = 80


async def _burst(settings) -> list[BaseException | None]:
    producer = AIOKafkaProducer(
        acks="all",
        enable_idempotence=True,
        # A short request timeout makes aiokafka's shrinking wait show within a second or two.
        request_timeout_ms=1500,
        **kafka_security(settings),
    )
    await producer.start()
    try:
        sends = [
            outbox.produce_keyed(producer, settings.topic_runs, [(b"7", b"x" * 2000, [])])
            for _ in range(SENDERS)
        ]
        return await asyncio.gather(*sends, return_exceptions=True)
    finally:
        await producer.stop()


async def test_a_burst_of_senders_on_one_partition_is_acknowledged(settings) -> None:
    cfg = isolated(settings, partitions_runs=1)
    await ensure_topics(cfg)
    results = await _burst(cfg)
    failures = [r for r in results if isinstance(r, BaseException)]
    assert failures == [], f"{len(failures)} of {SENDERS} sends failed: {failures[:1]!r}"


async def test_without_turns_the_same_burst_times_out(settings, monkeypatch) -> None:
    """The control: aiokafka on its own loses such a burst (what the per-partition turn prevents)."""
    cfg = isolated(settings, partitions_runs=1)
    await ensure_topics(cfg)

    async def unordered(producer, batch, topic, partition):
        return await producer.send_batch(batch, topic, partition=partition)

    monkeypatch.setattr(outbox, "_send_batch", unordered)
    results = await _burst(cfg)
    assert any(isinstance(r, Exception) for r in results)
