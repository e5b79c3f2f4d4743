"""Both loop styles share one offset tracker and commit policy (shared/kafka/offsets.py): a committed
offset never covers work not done, commits are throttled but always flushed before a revoke or a stop,
and work fetched before a revoke commits nothing. The in-memory consumer stands in for Kafka."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from shared.kafka.batches import BatchLoop, Rest
from shared.kafka.concurrent import ConcurrentLoop
from shared.kafka.offsets import CommitThrottle, OffsetTracker
from tests.support.memory_consumer import MemoryConsumer

TP = TopicPartition("t", 0)


async def until(predicate: Callable[[], bool], timeout: float = 5) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


def test_the_commit_point_is_the_lowest_offset_still_in_flight() -> None:
    tracker = OffsetTracker()
    offsets = tracker.partition(TP)
    for offset in range(5):
        offsets.take(offset, offset + 1)
    for offset in (1, 2, 4):
        tracker.done(TP, offset)
    assert tracker.commit_points() == {TP: 0}
    tracker.done(TP, 0)
    assert tracker.commit_points() == {TP: 3}
    tracker.committed({TP: 3})
    assert tracker.commit_points() == {}, "an unchanged point is not committed again"
    tracker.done(TP, 3)
    assert tracker.commit_points() == {TP: 5}


async def test_the_throttle_commits_at_most_once_per_interval_but_a_flush_always() -> None:
    consumer = MemoryConsumer("t")
    tracker = OffsetTracker()
    throttle = CommitThrottle(consumer, tracker, interval_s=60)
    tracker.partition(TP).take(0, 1)
    tracker.done(TP, 0)
    await throttle.maybe_commit()
    tracker.partition(TP).take(1, 2)
    tracker.done(TP, 1)
    await throttle.maybe_commit()
    assert consumer.commits == [{TP: 1}], "the second commit waits for the interval"
    await throttle.flush()
    assert consumer.commits == [{TP: 1}, {TP: 2}]


async def test_a_failed_commit_is_retried_with_the_next_one() -> None:
    consumer = MemoryConsumer("t")
    tracker = OffsetTracker()
    throttle = CommitThrottle(consumer, tracker, interval_s=0)
    tracker.partition(TP).take(0, 1)
    tracker.done(TP, 0)
    fail = True
    real_commit = consumer.commit

    async def flaky(offsets: dict[TopicPartition, int]) -> None:
        if fail:
            raise RuntimeError("coordinator moved")
        await real_commit(offsets)

    consumer.commit = flaky  # type: ignore[method-assign]
    await throttle.flush()
    assert consumer.commits == []
    fail = False
    await throttle.flush()
    assert consumer.commits == [{TP: 1}]


# the concurrent loop (executor)


async def test_concurrent_out_of_order_completion_commits_only_the_contiguous_done_prefix() -> None:
    consumer = MemoryConsumer("t", sizes={0: 5})
    release: dict[int, asyncio.Event] = {o: asyncio.Event() for o in range(5)}
    done: list[int] = []

    async def handle(record: ConsumerRecord[bytes, bytes]) -> None:
        await release[record.offset].wait()
        done.append(record.offset)

    loop = ConcurrentLoop(consumer, handle, concurrency=10, commit_interval_s=0)
    task = asyncio.create_task(loop.run())
    await until(lambda: loop.in_flight == 5)
    for offset in (4, 2, 1):
        release[offset].set()
    await until(lambda: len(done) == 3)
    await asyncio.sleep(0.05)
    assert consumer.committed_offset(0) in (None, 0), "offset 0 is not done: nothing past it is committed"
    release[0].set()
    await until(lambda: consumer.committed_offset(0) == 3)
    release[3].set()
    await until(lambda: consumer.committed_offset(0) == 5)
    loop.stop()
    await task
    assert [c[TP] for c in consumer.commits if c[TP]] == [3, 5]


async def test_concurrent_revoke_waits_for_the_revoked_work_and_commits_it_first() -> None:
    consumer = MemoryConsumer("t", sizes={0: 3, 1: 3})
    gate = asyncio.Event()

    async def handle(record: ConsumerRecord[bytes, bytes]) -> None:
        await gate.wait()

    loop = ConcurrentLoop(consumer, handle, concurrency=10, commit_interval_s=60)
    consumer.subscribe(["t"], listener=loop)
    task = asyncio.create_task(loop.run())
    await until(lambda: loop.in_flight == 6)
    rebalance = asyncio.create_task(consumer.rebalance(assign={1}))
    await asyncio.sleep(0.05)
    assert not rebalance.done(), "the revoke waits for the messages in flight"
    gate.set()
    await asyncio.wait_for(rebalance, 5)
    assert consumer.committed == {consumer.partition(0): 3, consumer.partition(1): 3}
    consumer.append(1, 2)
    await until(lambda: consumer.positions[consumer.partition(1)] == 5 and loop.in_flight == 0)
    loop.stop()
    await task
    assert consumer.committed_offset(1) == 5, "the stop flushes what the throttle held back"
    assert consumer.committed_offset(0) == 3


async def test_concurrent_commits_are_throttled_and_a_stop_flushes_them() -> None:
    consumer = MemoryConsumer("t", sizes={0: 4})

    async def handle(record: ConsumerRecord[bytes, bytes]) -> None:
        return None

    loop = ConcurrentLoop(consumer, handle, concurrency=2, commit_interval_s=60)
    task = asyncio.create_task(loop.run())
    await until(lambda: consumer.positions[TP] == 4 and loop.in_flight == 0)
    await asyncio.sleep(0.05)
    assert len(consumer.commits) <= 1, "within the interval at most the first commit happens"
    loop.stop()
    await task
    assert consumer.committed_offset(0) == 4


# the batch loop (dispatcher, health)


async def test_batch_revoke_mid_batch_commits_the_batch_in_flight_and_the_new_owner_rereads_the_rest() -> (
    None
):
    consumer = MemoryConsumer("t", sizes={0: 6, 1: 6})
    handled: list[tuple[int, int]] = []
    second_stored = asyncio.Event()
    release_second = asyncio.Event()
    release_first_rest = asyncio.Event()
    batches = 0

    async def handle(records: Sequence[ConsumerRecord[bytes, bytes]]) -> Rest:
        nonlocal batches
        batches += 1
        mine = batches
        handled.extend((r.partition, r.offset) for r in records)
        if mine == 2:
            second_stored.set()
            await release_second.wait()  # still storing while the partitions are revoked

        async def rest() -> None:
            if mine == 1:
                await release_first_rest.wait()

        return rest

    loop = BatchLoop(consumer, handle, max_records=4, depth=2, poll_timeout_ms=5)
    consumer.subscribe(["t"], listener=loop)
    task = asyncio.create_task(loop.run())
    await asyncio.wait_for(second_stored.wait(), 5)
    rebalance = asyncio.create_task(consumer.rebalance(assign={0, 1}))
    await asyncio.sleep(0.05)
    assert not rebalance.done(), "the revoke waits for the batch in flight"
    release_first_rest.set()
    await asyncio.wait_for(rebalance, 5)
    # the first batch was partition 0's offsets 0-3: committed before the hand-over
    assert consumer.committed == {consumer.partition(0): 4}
    release_second.set()  # fetched before the revoke: it finishes but commits nothing
    await until(lambda: consumer.committed == {consumer.partition(0): 6, consumer.partition(1): 6})
    loop.stop()
    await task
    # partition 0's 4-5 and partition 1's 0-1 (the second batch) were read again after the revoke
    assert handled.count((0, 4)) == 2
    assert handled.count((1, 0)) == 2
    assert handled.count((0, 0)) == 1


async def test_batch_a_failed_batch_blocks_commits_past_it_on_every_partition_it_holds() -> None:
    consumer = MemoryConsumer("t", sizes={0: 4, 1: 4})
    failed = False

    async def handle(records: Sequence[ConsumerRecord[bytes, bytes]]) -> Rest | None:
        nonlocal failed
        if not failed and any(r.partition == 1 for r in records):
            failed = True
            raise RuntimeError("database unavailable")
        return None

    loop = BatchLoop(consumer, handle, max_records=4, depth=2, poll_timeout_ms=5, retry_pause_s=0.01)
    task = asyncio.create_task(loop.run())
    await until(lambda: consumer.committed == {consumer.partition(0): 4, consumer.partition(1): 4})
    loop.stop()
    await task
    assert all(c.get(consumer.partition(1), 0) <= 4 for c in consumer.commits)
    assert [c[consumer.partition(1)] for c in consumer.commits if consumer.partition(1) in c] == [4]


async def test_batch_stop_flushes_the_throttled_commits() -> None:
    consumer = MemoryConsumer("t", sizes={0: 9, 1: 3})

    async def handle(records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        return None

    loop = BatchLoop(consumer, handle, max_records=3, depth=2, poll_timeout_ms=5, commit_interval_s=60)
    task = asyncio.create_task(loop.run())
    await until(lambda: consumer.fetches > 6 and not loop._in_flight)
    assert len(consumer.commits) == 1, "only the first done batch commits within the interval"
    loop.stop()
    await task
    assert consumer.committed == {consumer.partition(0): 9, consumer.partition(1): 3}
