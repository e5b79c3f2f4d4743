"""Consume → process → commit, one batch at a time.

Offsets are committed only after ``handle`` returned, i.e. after the batch's database work committed
and its messages were produced. If ``handle`` fails (database down, broker hiccup), the consumer is
rewound to the batch's first offsets and the batch is retried after a pause: nothing is skipped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from shared.logging import get_logger

log = get_logger(__name__)

BatchHandler = Callable[[Sequence[ConsumerRecord[bytes, bytes]]], Awaitable[object]]


class BatchLoop:
    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        handle: BatchHandler,
        *,
        max_records: int = 500,
        poll_timeout_ms: int = 100,
        retry_pause_s: float = 1.0,
    ) -> None:
        self.consumer = consumer
        self.handle = handle
        self.max_records = max_records
        self.poll_timeout_ms = poll_timeout_ms
        self.retry_pause_s = retry_pause_s
        self.heartbeat = time.monotonic()
        self.healthy = True
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            self.heartbeat = time.monotonic()
            batch = await self.consumer.getmany(timeout_ms=self.poll_timeout_ms, max_records=self.max_records)
            records = [record for partition in batch.values() for record in partition]
            if not records:
                continue
            try:
                await self.handle(records)
            except Exception as exc:
                self.healthy = False
                log.error("batch.failed", error=f"{type(exc).__name__}: {exc}"[:500], records=len(records))
                self._rewind(batch)
                await asyncio.sleep(self.retry_pause_s)
                continue
            self.healthy = True
            await self._commit(batch)

    def _rewind(self, batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]) -> None:
        for tp, records in batch.items():
            if records and tp in self.consumer.assignment():
                self.consumer.seek(tp, records[0].offset)

    async def _commit(self, batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]) -> None:
        offsets = {
            tp: records[-1].offset + 1
            for tp, records in batch.items()
            if records and tp in self.consumer.assignment()
        }
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except Exception as exc:
            # A rebalance took the partition away; its new owner re-reads from the last commit and
            # the database's idempotency makes the re-read harmless.
            log.warning("commit.failed", error=f"{type(exc).__name__}: {exc}"[:300])
