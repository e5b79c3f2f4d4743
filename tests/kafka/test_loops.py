"""A fetch that fails (broker unreachable, authorization withdrawn) never ends a consumer loop: the loop
turns unhealthy, counts it in wf_kafka_consumer_failures_total, retries, and recovers by itself.
(A stand-in consumer whose fetch fails on cue; the real broker paths are in the other tests here.)"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.errors import KafkaConnectionError
from prometheus_client import REGISTRY

from shared.kafka.batches import BatchLoop
from shared.kafka.concurrent import ConcurrentLoop


class FailingConsumer:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def subscription(self) -> set[str]:
        return {"loop-test"}

    def assignment(self) -> set[Any]:
        return set()

    async def getmany(self, *args: Any, **kwargs: Any) -> dict[Any, Any]:
        self.calls += 1
        await asyncio.sleep(0.01)
        if self.calls <= self.failures:
            raise KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 9)]")
        return {}

    async def commit(self, offsets: Any) -> None:
        return None


def failures(stage: str) -> float:
    return (
        REGISTRY.get_sample_value("wf_kafka_consumer_failures_total", {"topic": "loop-test", "stage": stage})
        or 0.0
    )


async def test_batch_loop_survives_failed_fetches() -> None:
    consumer = FailingConsumer(failures=3)
    loop = BatchLoop(consumer, lambda records: asyncio.sleep(0), retry_pause_s=0.05)  # type: ignore[arg-type]
    before = failures("fetch")
    task = asyncio.create_task(loop.run())
    await asyncio.sleep(0.08)
    assert not loop.healthy
    while consumer.calls <= 4:
        await asyncio.sleep(0.02)
    assert loop.healthy
    assert not task.done()
    assert failures("fetch") - before == 3
    loop.stop()
    await asyncio.wait_for(task, 5)


async def test_concurrent_loop_survives_failed_fetches() -> None:
    consumer = FailingConsumer(failures=2)

    async def handle(record: Any) -> None:
        return None

    loop = ConcurrentLoop(consumer, handle, concurrency=4)  # type: ignore[arg-type]
    before = failures("fetch")
    task = asyncio.create_task(loop.run())
    await asyncio.sleep(0.1)
    assert loop.fetch_error == "KafkaConnectionError"
    while consumer.calls <= 3:
        await asyncio.sleep(0.05)
    assert loop.fetch_error is None
    assert not task.done()
    assert failures("fetch") - before == 2
    loop.stop()
    await asyncio.wait_for(task, 5)
