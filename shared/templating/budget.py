"""One render-time budget per step, enforced off the event loop.

All of a step's templates (condition, body, every ActionConfig value and header) share one deadline,
``STEP_RENDER_BUDGET_S`` from the step's start. Rendering runs in a small pool of worker threads, so
the event loop keeps serving Kafka heartbeats, lease renewals and other runs meanwhile. The sandbox
checks the deadline between filter calls and loop iterations (and reports where it ran out); when a
single call runs past it anyway, the waiting step fails at the deadline and the worker thread gets an
asynchronous exception (``PyThreadState_SetAsyncExc``), which the interpreter raises at the next
bytecode, so even a pure-Python filter stuck in a loop stops. A C call that never returns to Python
cannot be interrupted this way: its worker is retired and replaced, so the pool keeps its capacity.
"""

from __future__ import annotations

import asyncio
import ctypes
import queue
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from .environment import step_deadline
from .errors import TemplateLimitError
from .limits import RENDER_TIME_LIMIT_SECONDS

T = TypeVar("T")
V = TypeVar("V")

STEP_RENDER_BUDGET_S = RENDER_TIME_LIMIT_SECONDS
TIME_LIMIT_MESSAGE = f"Template exceeded the render time limit of {RENDER_TIME_LIMIT_SECONDS:g} seconds"
# The sandbox's own check reports the template position; the hard stop waits this much longer for it.
_HARD_STOP_GRACE_S = 0.05

MAX_WORKERS = 64  # a worker per render in flight, up to this many; idle ones exit after IDLE_S
IDLE_S = 30.0


def _raise_in(thread: int, exc: type[BaseException] | None) -> None:
    """Schedule ``exc`` in ``thread`` at its next bytecode; None clears one not yet raised."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread), ctypes.py_object(exc) if exc is not None else None
    )


class RenderInterrupted(BaseException):
    """Raised inside a worker thread whose render ran past its step's deadline.

    A BaseException, so that no ``except Exception`` in python-liquid or a filter swallows it."""


_QUEUED, _RUNNING, _DONE = 0, 1, 2


class _Job:
    """One render: the function, the deadline and the asyncio future of the step awaiting it."""

    __slots__ = ("args", "deadline", "fn", "interrupted", "loop", "state", "thread", "waiter")

    def __init__(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        deadline: float,
        loop: asyncio.AbstractEventLoop,
        waiter: asyncio.Future[Any],
    ) -> None:
        self.fn = fn
        self.args = args
        self.deadline = deadline
        self.loop = loop
        self.waiter = waiter
        self.state = _QUEUED
        self.thread: int | None = None  # ident of the worker running it, while it runs
        self.interrupted = False


def _settle(waiter: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if waiter.done():  # the step stopped waiting (deadline or cancellation)
        return
    if ok:
        waiter.set_result(value)
    else:
        waiter.set_exception(value)


class _InterruptiblePool:
    """Worker threads whose current job can be stopped from outside."""

    def __init__(self, max_workers: int) -> None:
        self._max_workers = max_workers
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._workers = 0
        self._idle = 0
        self._retiring: set[int] = set()

    def submit(self, job: _Job) -> None:
        # A render stuck until its deadline must not make the next step wait: start a worker
        # whenever none is idle (the GIL still shares the CPU, so a small render gets its turn).
        with self._lock:
            if self._idle == 0 and self._workers < self._max_workers:
                self._start_worker()
            elif self._idle > 0:
                self._idle -= 1  # claimed
        self._jobs.put(job)

    def _start_worker(self) -> None:
        self._workers += 1
        threading.Thread(target=self._work, name="template-render", daemon=True).start()

    def interrupt(self, job: _Job) -> None:
        """Stop ``job``: drop it if it has not started, else raise RenderInterrupted in its thread."""
        with self._lock:
            if job.state == _QUEUED:
                job.state = _DONE  # its worker will skip it
                return
            if job.state == _DONE or job.thread is None or job.interrupted:
                return
            job.interrupted = True
            _raise_in(job.thread, RenderInterrupted)
            # If the job is stuck in C code it will not see the exception soon: its thread ends
            # after this job and no longer counts as a worker (the next submit starts another).
            self._retiring.add(job.thread)
            self._workers -= 1

    def _work(self) -> None:
        me = threading.get_ident()
        while True:
            outcome: tuple[_Job, bool, Any] | None = None
            try:
                try:
                    job = self._jobs.get(timeout=IDLE_S)
                except queue.Empty:
                    with self._lock:
                        if self._idle > 0:  # not claimed by a submit meanwhile
                            self._idle -= 1
                            self._workers -= 1
                            return
                    continue
                outcome = self._run(job, me)
            except RenderInterrupted:  # delivered just after its job ended: nothing left to stop
                pass
            # Idle again before the step hears back, so its next render finds this worker free.
            with self._lock:
                retiring = me in self._retiring
                if retiring:
                    self._retiring.discard(me)
                else:
                    self._idle += 1
            if outcome is not None:
                done, ok, value = outcome
                try:
                    done.loop.call_soon_threadsafe(_settle, done.waiter, ok, value)
                except RuntimeError:  # the loop closed meanwhile
                    pass
            if retiring:
                return

    def _run(self, job: _Job, me: int) -> tuple[_Job, bool, Any] | None:
        with self._lock:
            if job.state != _QUEUED:
                return None
            job.state = _RUNNING
            job.thread = me
        step_deadline.value = job.deadline
        try:
            outcome: tuple[_Job, bool, Any] = (job, True, job.fn(*job.args))
        except RenderInterrupted:
            outcome = (job, False, TemplateLimitError(TIME_LIMIT_MESSAGE))
        except BaseException as exc:  # handed to the awaiting step
            outcome = (job, False, exc)
        finally:
            with self._lock:
                job.state = _DONE
                job.thread = None
                if job.interrupted:
                    _raise_in(me, None)  # clear one not raised yet
            step_deadline.value = None
        return outcome


_POOL = _InterruptiblePool(MAX_WORKERS)


class StepBudget:
    """The render-time budget of one step attempt, shared by all of its templates."""

    __slots__ = ("deadline",)

    def __init__(self, seconds: float = STEP_RENDER_BUDGET_S) -> None:
        self.deadline = time.monotonic() + seconds

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on a render worker; TemplateLimitError once the step's budget is spent."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TemplateLimitError(TIME_LIMIT_MESSAGE)
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[T] = loop.create_future()
        job = _Job(fn, args, self.deadline, loop, waiter)
        _POOL.submit(job)
        timer = loop.call_later(remaining + _HARD_STOP_GRACE_S, _expire, job)
        try:
            return await waiter
        except asyncio.CancelledError:
            _POOL.interrupt(job)
            raise
        finally:
            timer.cancel()

    async def render(self, fn: Callable[[V, Any], T], value: V, context: Any) -> T:
        """``fn(value, context)`` for a template or a config: inline when it holds no markup at all
        (nothing to render, nothing to wait for), else on a render worker within the budget."""
        if not contains_markup(value):
            return fn(value, context)
        return await self.run(fn, value, context)


def _expire(job: _Job) -> None:
    """The step's deadline passed: stop the render and fail the step now."""
    _POOL.interrupt(job)
    if not job.waiter.done():
        job.waiter.set_exception(TemplateLimitError(TIME_LIMIT_MESSAGE))


def contains_markup(value: object) -> bool:
    """Whether a template string, or any string in a config (nested too), holds Liquid markup."""
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, Mapping):
        return any(contains_markup(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(contains_markup(item) for item in value)
    return False
