"""An in-memory stand-in for the part of ``AIOKafkaConsumer`` the consumer loops use.

Partitions hold numbered records; ``getmany`` reads the assigned, unpaused partitions from their
positions; ``commit`` records what was committed (and refuses partitions not assigned, as the broker
does after a rebalance); ``rebalance`` calls the listener the way aiokafka does: the revoke callback
while the partitions are still assigned, then the new assignment starting from the committed
offsets. For the loops' ordering guarantees; the real-broker paths are tested elsewhere.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError
from aiokafka.structs import ConsumerRecord


class MemoryConsumer:
    def __init__(self, topic: str = "memory", *, sizes: dict[int, int] | None = None) -> None:
        self.topic = topic
        self.records: dict[TopicPartition, int] = {
            TopicPartition(topic, p): n for p, n in (sizes or {0: 0}).items()
        }
        self.assigned: set[TopicPartition] = set(self.records)
        self.positions: dict[TopicPartition, int] = dict.fromkeys(self.records, 0)
        self.committed: dict[TopicPartition, int] = {}
        self.commits: list[dict[TopicPartition, int]] = []
        self.paused_partitions: set[TopicPartition] = set()
        self.listener: ConsumerRebalanceListener | None = None
        self.fetches = 0

    # the AIOKafkaConsumer subset
    def subscribe(self, topics: list[str], listener: ConsumerRebalanceListener | None = None) -> None:
        self.listener = listener

    def subscription(self) -> set[str]:
        return {self.topic}

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        self.fetches += 1
        await asyncio.sleep(0)
        room = max_records if max_records is not None else 1 << 30
        batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = {}
        for tp in sorted(self.assigned - self.paused_partitions, key=lambda tp: tp.partition):
            start = self.positions[tp]
            end = min(self.records[tp], start + room)
            if end > start:
                batch[tp] = [record(tp, offset) for offset in range(start, end)]
                self.positions[tp] = end
                room -= end - start
        if not batch:
            await asyncio.sleep(timeout_ms / 1000)
        return batch

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        await asyncio.sleep(0)
        if not set(offsets) <= self.assigned:
            raise CommitFailedError("partitions not assigned")
        self.commits.append(dict(offsets))
        self.committed.update(offsets)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.positions[tp] = offset

    def pause(self, *partitions: TopicPartition) -> None:
        self.paused_partitions.update(partitions)

    def resume(self, *partitions: TopicPartition) -> None:
        self.paused_partitions.difference_update(partitions)

    def paused(self) -> set[TopicPartition]:
        return set(self.paused_partitions)

    # the test's controls
    def partition(self, p: int) -> TopicPartition:
        return TopicPartition(self.topic, p)

    def append(self, p: int, count: int) -> None:
        tp = self.partition(p)
        self.records[tp] = self.records.get(tp, 0) + count
        self.positions.setdefault(tp, 0)

    def committed_offset(self, p: int) -> int | None:
        return self.committed.get(self.partition(p))

    async def rebalance(self, assign: set[int]) -> None:
        """Revoke everything (eager, as aiokafka does), then assign ``assign`` from the committed offsets."""
        revoked = sorted(self.assigned, key=lambda tp: tp.partition)
        if self.listener is not None:
            await self.listener.on_partitions_revoked(revoked)
        self.assigned = {self.partition(p) for p in assign}
        for tp in self.assigned:
            self.positions[tp] = self.committed.get(tp, 0)
        self.paused_partitions &= self.assigned
        if self.listener is not None:
            await self.listener.on_partitions_assigned(sorted(self.assigned, key=lambda tp: tp.partition))


def record(tp: TopicPartition, offset: int) -> ConsumerRecord[bytes, bytes]:
    value = f"{tp.partition}:{offset}".encode()
    return ConsumerRecord(tp.topic, tp.partition, offset, 0, 0, None, value, None, 0, len(value), [])


def offsets_of(records: Any) -> list[tuple[int, int]]:
    return [(r.partition, r.offset) for r in records]
