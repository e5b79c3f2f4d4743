"""Many concurrent callers' writes as one statement: group commit for independent requests.

While a statement is in flight, new requests queue; the next statement takes all of them (up to
``max_batch``). A lone request goes out at once, so batching adds no latency at low load, and under
load the statements per request fall as the batches grow. Each caller gets its own result.

If a batch fails, its requests are retried one by one before anyone is told of a failure, so one
bad request (a value the database refuses) fails alone instead of failing its neighbours.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from shared.logging import get_logger

log = get_logger(__name__)

Request = TypeVar("Request")
Result = TypeVar("Result")

BatchRunner = Callable[[Sequence[Request]], Awaitable[Sequence[Result]]]


class Coalescer(Generic[Request, Result]):
    """Runs ``run_batch`` over the requests queued meanwhile; ``run_batch`` returns one result per
    request, in order, and must be atomic (one statement, or one transaction). Up to
    ``max_in_flight`` batches run at once, so one slow statement does not hold up everyone."""

    def __init__(
        self,
        name: str,
        run_batch: BatchRunner[Request, Result],
        *,
        max_batch: int = 200,
        max_in_flight: int = 4,
    ) -> None:
        self.name = name
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._queue: list[tuple[Request, asyncio.Future[Result]]] = []
        self._workers: set[asyncio.Task[None]] = set()
        self._starting = False  # a worker is about to start and will take everything queued by then

    async def submit(self, request: Request) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.append((request, future))
        if not self._starting and len(self._workers) < self._max_in_flight:
            self._starting = True
            worker = asyncio.create_task(self._work(), name=f"coalesce-{self.name}")
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)
        return await future

    async def _work(self) -> None:
        self._starting = False
        batch: list[tuple[Request, asyncio.Future[Result]]] = []
        try:
            while self._queue:
                batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
                await self._run(batch)
                batch = []
        except asyncio.CancelledError:
            # Shutting down: no caller may wait forever on a statement that will not run.
            others = [w for w in self._workers if w is not asyncio.current_task() and not w.done()]
            for _, future in [*batch, *([] if others else self._queue)]:
                future.cancel()
            if not others:
                self._queue = []
            raise
        finally:
            # Leave the count now, in the same step as the last look at the queue: the done-callback
            # runs a step later, after a caller woken by this worker may already have queued a
            # request that, with the worker still counted, no worker would take.
            self._workers.discard(asyncio.current_task())

    async def _run(self, batch: list[tuple[Request, asyncio.Future[Result]]]) -> None:
        try:
            results = await self._run_batch([request for request, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][1], error=exc)
                return
            log.warning("coalesced_batch.failed", batch=self.name, size=len(batch), error=repr(exc)[:300])
            for item in batch:  # isolate the request at fault; the others proceed
                await self._run([item])
            return
        if len(results) != len(batch):
            error = RuntimeError(f"{self.name}: {len(results)} results for {len(batch)} requests")
            for _, future in batch:
                _settle(future, error=error)
            return
        for (_, future), result in zip(batch, results, strict=True):
            _settle(future, result=result)


def _settle(
    future: asyncio.Future[Result], *, result: Result | None = None, error: Exception | None = None
) -> None:
    # A caller that was cancelled meanwhile no longer waits; the write happened (or not) all the same.
    with contextlib.suppress(asyncio.InvalidStateError):
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]
