"""Consume with many messages in flight, committing only offsets whose messages are all done.

Each partition's commit point is the lowest offset still in flight (or one past the highest offset
taken when none is: ``shared.kafka.offsets``). A message is never acknowledged before it finished,
even when later ones finish first. On a rebalance, the revoked partitions' in-flight work is awaited
and committed before they are handed over; on shutdown the same happens for everything.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord

from shared.kafka.batches import CONSUMER_FAILURES, subscribed
from shared.kafka.offsets import CommitThrottle, OffsetTracker
from shared.logging import get_logger

log = get_logger(__name__)

RecordHandler = Callable[[ConsumerRecord[bytes, bytes]], Coroutine[Any, Any, None]]


class ConcurrentLoop(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        handle: RecordHandler,
        *,
        concurrency: int,
        drain_timeout_s: float = 25.0,
        commit_interval_s: float = 0.5,
    ) -> None:
        self.consumer = consumer
        self.handle = handle
        self.concurrency = concurrency
        self.drain_timeout_s = drain_timeout_s
        self.commit_interval_s = commit_interval_s
        self.heartbeat = time.monotonic()
        self.offsets = OffsetTracker()
        self._commits = CommitThrottle(consumer, self.offsets, interval_s=commit_interval_s)
        self._tasks: dict[asyncio.Task[None], tuple[TopicPartition, int]] = {}
        self._stopping = asyncio.Event()
        self._slots = asyncio.Semaphore(concurrency)
        self.fetch_error: str | None = None  # the last fetch failed with this error (for /healthz)

    @property
    def healthy(self) -> bool:
        return self.fetch_error is None

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            self.heartbeat = time.monotonic()
            room = self.concurrency - len(self._tasks)
            if room <= 0:
                await asyncio.wait(list(self._tasks), timeout=0.2, return_when=asyncio.FIRST_COMPLETED)
            else:
                try:
                    batch = await self.consumer.getmany(timeout_ms=100, max_records=room)
                except Exception as exc:
                    # Broker unreachable, authorization...: unhealthy, then try again (an unreadable
                    # batch is a record to dead-letter, never an exception: shared/kafka/undecodable.py).
                    CONSUMER_FAILURES.labels(subscribed(self.consumer), "fetch").inc()
                    if self.fetch_error is None:
                        log.error("fetch.failed", error=f"{type(exc).__name__}: {exc}"[:500])
                    self.fetch_error = type(exc).__name__
                    await asyncio.sleep(1.0)
                    continue
                self.fetch_error = None
                for tp, records in batch.items():
                    taken = self.offsets.partition(tp)
                    in_flight = taken.in_flight
                    for record in records:
                        in_flight.add(record.offset)
                        task = asyncio.create_task(self.handle(record))
                        self._tasks[task] = (tp, record.offset)
                        task.add_done_callback(self._done)
                    if records:
                        taken.next_offset = records[-1].offset + 1
            await self._commits.maybe_commit()
        await self._drain(None)

    def _done(self, task: asyncio.Task[None]) -> None:
        tp, offset = self._tasks.pop(task)
        self.offsets.done(tp, offset)
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "message.handler_failed",
                error=repr(task.exception())[:300],
                partition=tp.partition,
                offset=offset,
            )

    async def _drain(self, partitions: set[TopicPartition] | None) -> None:
        tasks = [t for t, (tp, _) in self._tasks.items() if partitions is None or tp in partitions]
        if tasks:
            await asyncio.wait(tasks, timeout=self.drain_timeout_s)
        await self._commits.flush(partitions)

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self._drain(set(revoked))
        self.offsets.forget(set(revoked))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        return None
