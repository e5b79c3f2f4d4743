"""The coalescer: concurrent requests share statements, each caller gets its own result, and one
request the batch cannot take fails alone."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from shared.db.coalescer import Coalescer


class Recorder:
    def __init__(self, *, refuse: int | None = None, delay: float = 0.01) -> None:
        self.batches: list[list[int]] = []
        self.refuse = refuse
        self.delay = delay

    async def __call__(self, requests: Sequence[int]) -> list[int]:
        self.batches.append(list(requests))
        await asyncio.sleep(self.delay)  # a statement in flight: others queue meanwhile
        if self.refuse in requests:
            raise ValueError(f"refused {self.refuse}")
        return [r * 10 for r in requests]


async def test_a_lone_request_goes_out_at_once() -> None:
    recorder = Recorder()
    coalescer = Coalescer("t", recorder)

    assert await coalescer.submit(7) == 70
    assert recorder.batches == [[7]]


async def test_requests_made_together_share_one_statement() -> None:
    recorder = Recorder()
    coalescer = Coalescer("t", recorder)

    results = await asyncio.gather(*(coalescer.submit(n) for n in range(50)))

    assert results == [n * 10 for n in range(50)]
    assert recorder.batches == [list(range(50))]


async def test_requests_arriving_while_statements_are_in_flight_queue_for_the_next_free_one() -> None:
    recorder = Recorder(delay=0.05)
    coalescer = Coalescer("t", recorder, max_in_flight=2)

    async def arrive(n: int) -> int:
        await asyncio.sleep(n * 0.002)  # a steady trickle, faster than one statement
        return await coalescer.submit(n)

    results = await asyncio.gather(*(arrive(n) for n in range(60)))

    assert results == [n * 10 for n in range(60)]
    assert sorted(n for batch in recorder.batches for n in batch) == list(range(60))
    assert len(recorder.batches) <= 10  # 60 requests, ~0.12 s of arrivals, 2 statements of 0.05 s at a time


async def test_batches_are_capped() -> None:
    recorder = Recorder()
    coalescer = Coalescer("t", recorder, max_batch=8)

    await asyncio.gather(*(coalescer.submit(n) for n in range(30)))

    assert max(len(batch) for batch in recorder.batches) == 8


async def test_a_request_the_batch_refuses_fails_alone() -> None:
    recorder = Recorder(refuse=3)
    coalescer = Coalescer("t", recorder)

    results = await asyncio.gather(*(coalescer.submit(n) for n in range(6)), return_exceptions=True)

    assert isinstance(results[3], ValueError)
    assert [r for i, r in enumerate(results) if i != 3] == [0, 10, 20, 40, 50]


async def test_a_result_count_mismatch_is_an_error_for_every_caller() -> None:
    async def short(requests: Sequence[int]) -> list[int]:
        return [1]

    coalescer = Coalescer("t", short)
    results = await asyncio.gather(coalescer.submit(1), coalescer.submit(2), return_exceptions=True)

    assert all(isinstance(r, RuntimeError) for r in results)


async def test_callers_are_not_left_waiting_when_the_worker_is_cancelled() -> None:
    recorder = Recorder(delay=10)
    coalescer = Coalescer("t", recorder)
    waiting = [asyncio.ensure_future(coalescer.submit(n)) for n in range(3)]
    await asyncio.sleep(0.05)

    assert coalescer._workers
    for worker in list(coalescer._workers):
        worker.cancel()

    for future in waiting:
        with pytest.raises(asyncio.CancelledError):
            await future


@pytest.mark.parametrize("max_in_flight", [1, 2])
async def test_a_request_made_as_the_last_worker_finishes_is_not_stranded(max_in_flight: int) -> None:
    # The caller resumes before the finished worker's done-callback runs: a worker still counted
    # then would take no new request, and none would start for it.
    recorder = Recorder(delay=0)
    coalescer = Coalescer("t", recorder, max_in_flight=max_in_flight)

    async with asyncio.timeout(2):  # not wait_for: its own task would start only after the callbacks
        for n in range(20):
            assert await coalescer.submit(n) == n * 10
    assert await asyncio.wait_for(asyncio.gather(*(coalescer.submit(n) for n in range(5))), 2) == [
        0,
        10,
        20,
        30,
        40,
    ]
