"""The pipelined batch loop's guarantees: offsets are committed in order, only after a batch's work and
the rest of its work (its hand-off) are done, never past a failed batch, and never by a batch fetched
before its partitions were revoked. A fake consumer stands in for Kafka: these are about ordering."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from shared.kafka.batches import BatchLoop, Rest

TP = TopicPartition("events", 0)


class FakeConsumer:
    """One partition of ``size`` records; ``getmany`` hands out ``per_fetch`` at a time from the position."""

    def __init__(self, size: int, per_fetch: int) -> None:
        self.size = size
        self.per_fetch = per_fetch
        self.position = 0
        self.commits: list[int] = []
        self.assigned = {TP}

    async def getmany(
        self, *, timeout_ms: int, max_records: int
    ) -> dict[TopicPartition, list[ConsumerRecord]]:
        await asyncio.sleep(0)
        if TP not in self.assigned or self.position >= self.size:
            await asyncio.sleep(timeout_ms / 1000)
            return {}
        end = min(self.size, self.position + self.per_fetch)
        records = [
            ConsumerRecord(TP.topic, 0, o, 0, 0, None, b"{}", None, 0, 0, [])
            for o in range(self.position, end)
        ]
        self.position = end
        return {TP: records}

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.position = offset

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(offsets[TP])


async def run_until(loop: BatchLoop, *, predicate, timeout: float = 5) -> None:
    task = asyncio.create_task(loop.run())
    try:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.01)
    finally:
        loop.stop()
        await task


async def test_commits_follow_each_batch_and_its_hand_off_in_order():
    consumer = FakeConsumer(size=50, per_fetch=10)
    handed_off: list[int] = []

    async def handle(records: Sequence[ConsumerRecord]) -> Rest:
        first = records[0].offset

        async def rest() -> None:
            await asyncio.sleep(0.02 if first == 0 else 0)  # the first hand-off is the slowest
            handed_off.append(first)

        return rest

    loop = BatchLoop(consumer, handle, max_records=10, depth=2, poll_timeout_ms=10)  # type: ignore[arg-type]
    await run_until(loop, predicate=lambda: consumer.commits[-1:] == [50])
    assert handed_off == [0, 10, 20, 30, 40]
    assert consumer.commits == [10, 20, 30, 40, 50]


async def test_a_failed_hand_off_commits_nothing_from_its_batch_on_and_the_batch_is_read_again():
    consumer = FakeConsumer(size=40, per_fetch=10)
    handled: list[int] = []
    failures = {10}  # the hand-off of the batch at offset 10 fails once

    async def handle(records: Sequence[ConsumerRecord]) -> Rest:
        first = records[0].offset
        handled.append(first)

        async def rest() -> None:
            await asyncio.sleep(0.01)
            if first in failures:
                failures.discard(first)
                raise RuntimeError("broker unavailable")

        return rest

    loop = BatchLoop(consumer, handle, max_records=10, depth=2, poll_timeout_ms=10, retry_pause_s=0.01)  # type: ignore[arg-type]
    await run_until(loop, predicate=lambda: consumer.commits[-1:] == [40])
    # the batch at 20 was stored while 10's hand-off was failing: it is not committed but read again
    assert handled == [0, 10, 20, 10, 20, 30]
    assert consumer.commits == [10, 20, 30, 40]


async def test_a_failed_store_is_retried_and_the_batch_before_it_still_commits():
    consumer = FakeConsumer(size=30, per_fetch=10)
    attempts: dict[int, int] = {}

    async def handle(records: Sequence[ConsumerRecord]) -> Rest | None:
        first = records[0].offset
        attempts[first] = attempts.get(first, 0) + 1
        if first == 10 and attempts[first] == 1:
            raise RuntimeError("database unavailable")
        return None

    loop = BatchLoop(consumer, handle, max_records=10, depth=2, poll_timeout_ms=10, retry_pause_s=0.01)  # type: ignore[arg-type]
    await run_until(loop, predicate=lambda: consumer.commits[-1:] == [30])
    assert attempts[10] == 2
    assert attempts[20] == 1
    assert consumer.commits == sorted(consumer.commits)


async def test_on_revoke_batches_in_flight_finish_and_commit_but_one_fetched_before_commits_nothing():
    consumer = FakeConsumer(size=20, per_fetch=10)
    release_first = asyncio.Event()
    second_stored = asyncio.Event()
    release_second_store = asyncio.Event()

    async def handle(records: Sequence[ConsumerRecord]) -> Rest:
        first = records[0].offset
        if first == 10:
            second_stored.set()
            await release_second_store.wait()  # still storing while the partition is revoked

        async def rest() -> None:
            if first == 0:
                await release_first.wait()

        return rest

    loop = BatchLoop(consumer, handle, max_records=10, depth=2, poll_timeout_ms=10)  # type: ignore[arg-type]
    task = asyncio.create_task(loop.run())
    await asyncio.wait_for(second_stored.wait(), 5)
    revoke = asyncio.create_task(loop.on_partitions_revoked([TP]))
    await asyncio.sleep(0.05)
    assert not revoke.done(), "the revoke waits for the batch in flight"
    release_first.set()
    await asyncio.wait_for(revoke, 5)
    assert consumer.commits == [10], "the batch in flight committed before the partition was handed over"
    release_second_store.set()  # the batch fetched before the revoke now finishes: it must not commit
    await asyncio.sleep(0.1)
    loop.stop()
    await task
    assert consumer.commits == [10]


async def store_nothing(records: Sequence[ConsumerRecord]) -> None:
    return None


async def test_with_a_commit_interval_done_batches_commit_together_and_all_before_a_revoke():
    consumer = FakeConsumer(size=30, per_fetch=5)

    loop = BatchLoop(  # type: ignore[arg-type]
        consumer, store_nothing, max_records=5, depth=2, poll_timeout_ms=10, commit_interval_s=60
    )
    task = asyncio.create_task(loop.run())
    async with asyncio.timeout(5):
        while consumer.position < 30 or loop._in_flight:
            await asyncio.sleep(0.01)
    assert consumer.commits == [5], "the first done batch commits; the rest wait for the interval"

    await loop.on_partitions_revoked([TP])
    assert consumer.commits == [5, 30], "everything done is committed before the partitions go"
    loop.stop()
    await task
    assert consumer.commits == [5, 30]


async def test_with_a_commit_interval_a_clean_stop_commits_what_is_done():
    consumer = FakeConsumer(size=12, per_fetch=4)

    loop = BatchLoop(  # type: ignore[arg-type]
        consumer,
        store_nothing,
        max_records=4,
        poll_timeout_ms=10,
        commit_interval_s=60,
        batch_interval_s=0.01,
    )
    await run_until(loop, predicate=lambda: consumer.position >= 12 and not loop._in_flight)
    assert consumer.commits == [4, 12]
