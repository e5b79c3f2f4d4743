"""Consume → process → commit, batch by batch, optionally with the next batch overlapping the last one's tail.

``handle`` does a batch's durable work (e.g. stores its runs) and may return the rest of it (e.g.
producing the runs' messages and awaiting their acks) as a callable. That rest runs after the previous
batch's rest, in order, while the next batch is already being handled (up to ``depth`` batches in
flight; ``depth=1`` is strictly one batch at a time). A batch's offsets are committed only after its
``handle`` and its rest both succeeded and every earlier batch was committed, so a committed offset
never covers work that is not done (the offsets and the commit throttle are ``shared.kafka.offsets``,
shared with the executor's ``shared.kafka.concurrent``).

A fetch that fails (broker unreachable, authorization withdrawn) is retried after a pause, the loop
unhealthy meanwhile; a batch that cannot be decoded arrives as records to dead-letter
(``shared.kafka.undecodable``), so no record's content stops the loop.

If any of it fails (database down, broker hiccup), nothing from that batch on is committed: the
batches in flight are let finish, the consumer is rewound to the first offset not committed and
reading resumes after a pause. Nothing is skipped; re-read events are harmless because the work is
idempotent (for the dispatcher, the unique (workflow_id, event_id); its outbox re-publishes stored
runs whose messages were never produced).

On a rebalance (subscribe with ``listener=`` this loop), the batches already in flight are let finish
and commit while the partitions are still ours; a batch fetched before the revoke but not yet in
flight, or not finished within ``revoke_wait_s``, commits nothing. The new owner re-reads it.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord
from prometheus_client import Counter

from shared.kafka.offsets import CommitThrottle, OffsetTracker
from shared.logging import get_logger

log = get_logger(__name__)

# Progress stopped by the infrastructure (broker or database unavailable); each is retried.
CONSUMER_FAILURES = Counter(
    "wf_kafka_consumer_failures_total",
    "Fetches and batches that failed on the infrastructure (the loop retries them)",
    ["topic", "stage"],
)


def subscribed(consumer: object) -> str:
    """The consumer's topics, as a metric label ("-" for a consumer that subscribes to none)."""
    subscription = getattr(consumer, "subscription", None)
    return ",".join(sorted(subscription())) if callable(subscription) and subscription() else "-"


Rest = Callable[[], Awaitable[None]]
BatchHandler = Callable[[Sequence[ConsumerRecord[bytes, bytes]]], Awaitable[Rest | None]]
Fetched = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]


@dataclass(eq=False)
class _InFlight:
    first: dict[TopicPartition, int]  # rewind points if it fails
    next: dict[TopicPartition, int]  # commit points once it is done
    epoch: int  # the rebalance epoch it was fetched in; commits only in that same epoch
    task: asyncio.Task[None] = field(init=False)


def _first_offsets(batch: Fetched) -> dict[TopicPartition, int]:
    return {tp: records[0].offset for tp, records in batch.items() if records}


def _next_offsets(batch: Fetched) -> dict[TopicPartition, int]:
    return {tp: records[-1].offset + 1 for tp, records in batch.items() if records}


class BatchLoop(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        handle: BatchHandler,
        *,
        max_records: int = 500,
        depth: int = 1,
        poll_timeout_ms: int = 100,
        retry_pause_s: float = 1.0,
        revoke_wait_s: float = 20.0,
        commit_interval_s: float = 0.0,
        batch_interval_s: float = 0.0,
    ) -> None:
        self.consumer = consumer
        self.handle = handle
        self.max_records = max_records
        self.depth = max(1, depth)
        self.poll_timeout_ms = poll_timeout_ms
        self.retry_pause_s = retry_pause_s
        self.revoke_wait_s = revoke_wait_s
        # At low rates a batch is an event or two: committing each one, or waking for each one, costs
        # the broker and the database more than the work itself. Done batches' offsets are committed
        # together at most every ``commit_interval_s`` (and always before a revoke or a stop); after a
        # partial batch the next fetch waits until ``batch_interval_s`` after the last one began.
        self.commit_interval_s = commit_interval_s
        self.batch_interval_s = batch_interval_s
        self.offsets = OffsetTracker()  # each batch in flight is keyed by its first offset per partition
        self._commits = CommitThrottle(consumer, self.offsets, interval_s=commit_interval_s)
        self.heartbeat = time.monotonic()
        self.healthy = True
        self._stopping = asyncio.Event()
        self._in_flight: deque[_InFlight] = deque()
        self._epoch = 0
        self._failed = False  # a batch in flight failed: nothing after it may be committed
        self._rewind_to: dict[TopicPartition, int] = {}
        self._fetch_failing = False

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        try:
            while not self._stopping.is_set():
                self.heartbeat = time.monotonic()
                while len(self._in_flight) >= self.depth:
                    await asyncio.wait([self._in_flight[0].task])
                if self._failed:
                    await self._recover()
                    continue
                epoch = self._epoch
                began = time.monotonic()
                try:
                    batch = await self.consumer.getmany(
                        timeout_ms=self.poll_timeout_ms, max_records=self.max_records
                    )
                except Exception as exc:
                    await self._fetch_failed(exc)
                    continue
                if self._fetch_failing:
                    self._fetch_failing = False
                    self.healthy = True
                records = [record for partition in batch.values() for record in partition]
                if not records:
                    await self._commits.maybe_commit()
                    continue
                try:
                    rest = await self.handle(records)
                except Exception as exc:
                    self._fail(exc, len(records), _first_offsets(batch), epoch)
                    continue
                self._start(_InFlight(_first_offsets(batch), _next_offsets(batch), epoch), rest, len(records))
                if len(records) < self.max_records and self.batch_interval_s:
                    await asyncio.sleep(max(0.0, began + self.batch_interval_s - time.monotonic()))
        finally:
            try:
                await self._settle()  # a clean stop commits what is in flight
                await self._commits.flush()
            except asyncio.CancelledError:
                for entry in list(self._in_flight):
                    entry.task.cancel()
                raise

    def _start(self, entry: _InFlight, rest: Rest | None, size: int) -> None:
        if entry.epoch == self._epoch:  # else fetched before a revoke: it will commit nothing
            for tp, first in entry.first.items():
                self.offsets.partition(tp).take(first, entry.next[tp])
        previous = self._in_flight[-1].task if self._in_flight else None
        entry.task = asyncio.create_task(self._finish(entry, previous, rest, size))
        self._in_flight.append(entry)

    async def _finish(
        self, entry: _InFlight, previous: asyncio.Task[None] | None, rest: Rest | None, size: int
    ) -> None:
        try:
            if previous is not None:
                await asyncio.wait([previous])  # in order: the rest of each batch, then its commit
            if rest is not None:
                await rest()
        except Exception as exc:
            self._fail(exc, size, entry.first, entry.epoch)
        else:
            if not self._failed and entry.epoch == self._epoch:
                self.healthy = True
                for tp, first in entry.first.items():
                    self.offsets.done(tp, first)
                await self._commits.maybe_commit()
            else:
                self._note_rewind(entry.first, entry.epoch)
        finally:
            self._in_flight.remove(entry)

    def _topics(self) -> str:
        return subscribed(self.consumer)

    async def _fetch_failed(self, exc: Exception) -> None:
        """The fetch itself failed (broker unreachable, authorization...): unhealthy, then try again.
        A record's content never gets here (an unreadable batch is a record: shared/kafka/undecodable.py)."""
        CONSUMER_FAILURES.labels(self._topics(), "fetch").inc()
        if not self._fetch_failing:
            log.error("fetch.failed", error=f"{type(exc).__name__}: {exc}"[:500])
        self._fetch_failing = True
        self.healthy = False
        await asyncio.sleep(self.retry_pause_s)

    def _fail(self, exc: Exception, size: int, first: dict[TopicPartition, int], epoch: int) -> None:
        self.healthy = False
        self._failed = True
        CONSUMER_FAILURES.labels(self._topics(), "batch").inc()
        log.error("batch.failed", error=f"{type(exc).__name__}: {exc}"[:500], records=size)
        self._note_rewind(first, epoch)

    def _note_rewind(self, first: dict[TopicPartition, int], epoch: int) -> None:
        if epoch != self._epoch:
            return  # fetched before a rebalance: the new assignment starts from the committed offsets anyway
        for tp, offset in first.items():
            self._rewind_to[tp] = min(offset, self._rewind_to.get(tp, offset))

    async def _recover(self) -> None:
        """Let the batches in flight finish (none commits), rewind to the first uncommitted offsets, pause."""
        await self._settle()
        assigned = self.consumer.assignment()
        for tp, offset in self._rewind_to.items():
            taken = self.offsets.partitions.get(tp)
            if taken is not None:
                taken.rewind(offset)  # the failed batch and all after it: read again
            if tp in assigned:
                self.consumer.seek(tp, offset)
        self._rewind_to.clear()
        self._failed = False
        await asyncio.sleep(self.retry_pause_s)

    async def _settle(self, timeout: float | None = None) -> None:
        tasks = [entry.task for entry in self._in_flight]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # The batches in flight finish and commit under the generation that still owns the partitions;
        # a batch fetched before now but not in flight yet is dropped (fetched in an older epoch).
        self._epoch += 1
        for entry in self._in_flight:
            entry.epoch = self._epoch
        await self._settle(self.revoke_wait_s)
        await self._commits.flush()
        self._epoch += 1  # whatever is still in flight now commits nothing
        self._rewind_to.clear()  # the next assignment starts from the committed offsets
        self.offsets.forget()

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        return None
