"""The offsets a consumer loop may commit, and when it commits them: the part both loop styles share.

``OffsetTracker`` keeps, per partition, the work taken and not yet done (a record, or a batch keyed by
its first offset) and one past the last offset taken. A partition's commit point is the lowest
offset still in flight, or one past the last one taken when nothing is: a committed offset never
covers work that is not done, even when later work finished first.

``CommitThrottle`` commits the tracker's points at most every ``interval_s`` (at low rates committing
each batch costs the broker more than the work) and whenever told to flush, which the loops do
before a revoke hands partitions over and before a stop. It commits only partitions still assigned;
a commit that fails (a rebalance took the partition) is logged and retried with the next one.

The loops are arroyo-style strategies over these two: ``shared.kafka.batches`` (handle a batch, then
its hand-off, then commit; dispatcher and health) and ``shared.kafka.concurrent`` (one task per
record, commit what is contiguously done; executor).
"""

from __future__ import annotations

import time
from typing import Protocol

from aiokafka import TopicPartition

from shared import probes
from shared.logging import get_logger

log = get_logger(__name__)


class Committer(Protocol):
    """The part of ``AIOKafkaConsumer`` a commit needs."""

    def assignment(self) -> set[TopicPartition]: ...

    async def commit(self, offsets: dict[TopicPartition, int]) -> None: ...


class PartitionOffsets:
    __slots__ = ("in_flight", "next_offset", "committed")

    def __init__(self) -> None:
        self.in_flight: set[int] = set()
        self.next_offset: int | None = None
        self.committed: int | None = None

    def take(self, offset: int, next_offset: int) -> None:
        """Work starting at ``offset`` is in flight; the partition has been read up to ``next_offset``."""
        self.in_flight.add(offset)
        self.next_offset = next_offset

    def done(self, offset: int) -> None:
        self.in_flight.discard(offset)

    def rewind(self, offset: int) -> None:
        """Everything from ``offset`` on will be read again: nothing of it is in flight any more."""
        self.in_flight.clear()
        self.next_offset = offset

    def commit_point(self) -> int | None:
        if self.in_flight:
            return min(self.in_flight)
        return self.next_offset


class OffsetTracker:
    def __init__(self) -> None:
        self.partitions: dict[TopicPartition, PartitionOffsets] = {}

    def partition(self, tp: TopicPartition) -> PartitionOffsets:
        offsets = self.partitions.get(tp)
        if offsets is None:
            offsets = self.partitions[tp] = PartitionOffsets()
        return offsets

    def done(self, tp: TopicPartition, offset: int) -> None:
        offsets = self.partitions.get(tp)
        if offsets is not None:
            offsets.in_flight.discard(offset)

    def forget(self, partitions: set[TopicPartition] | None = None) -> None:
        """The partitions were handed over: their next owner starts from the committed offsets."""
        if partitions is None:
            self.partitions.clear()
        else:
            for tp in partitions:
                self.partitions.pop(tp, None)

    def commit_points(self, only: set[TopicPartition] | None = None) -> dict[TopicPartition, int]:
        """The partitions whose commit point moved since their last commit, with that point."""
        points = {}
        for tp, offsets in self.partitions.items():
            if only is not None and tp not in only:
                continue
            point = offsets.commit_point()
            if point is not None and point != offsets.committed:
                points[tp] = point
        return points

    def committed(self, points: dict[TopicPartition, int]) -> None:
        for tp, point in points.items():
            offsets = self.partitions.get(tp)
            if offsets is not None:
                offsets.committed = point


class CommitThrottle:
    def __init__(self, consumer: Committer, tracker: OffsetTracker, *, interval_s: float) -> None:
        self.consumer = consumer
        self.tracker = tracker
        self.interval_s = interval_s
        self._last = 0.0  # the first commit is never held back

    def due(self) -> bool:
        return time.monotonic() - self._last >= self.interval_s

    async def maybe_commit(self) -> None:
        """Commit if the interval since the last commit has passed (cheap to call after each batch)."""
        if time.monotonic() - self._last >= self.interval_s:
            await self.flush()

    async def flush(self, only: set[TopicPartition] | None = None) -> None:
        """Commit every partition's point now (before a revoke or a stop)."""
        points = self.tracker.commit_points(only)
        if not points:
            return
        self._last = time.monotonic()
        assigned = self.consumer.assignment()
        points = {tp: offset for tp, offset in points.items() if tp in assigned}
        if not points:
            return
        try:
            await self.consumer.commit(points)
        except Exception as exc:
            # A rebalance took the partition away; its new owner re-reads from the last commit and
            # the work's idempotency makes the re-read harmless. Still ours: retried next time.
            log.warning("commit.failed", error=f"{type(exc).__name__}: {exc}"[:300])
            return
        self.tracker.committed(points)
        if probes.ENABLED:  # the bench's dispatch clock stops at the last commit (bench/dispatch.py)
            total = sum(p.committed or 0 for p in self.tracker.partitions.values())
            probes.stamp("offsets.committed", total)
