"""One drain budget for every consumer service (shared/service.py): the loop is told to stop and gets
WF_SHUTDOWN_GRACE_S plus the commit margin; a loop still running after that is cancelled, the other
tasks at once, and the consumer still leaves its group."""

from __future__ import annotations

import asyncio
import time

import pytest

from shared import service as service_module
from shared.config import load_settings
from shared.service import ConsumerService


class StuckLoop:
    """A loop whose in-flight work outlives any grace period."""

    def __init__(self) -> None:
        self.heartbeat = time.monotonic()
        self.stopped = False
        self.cancelled = False

    @property
    def healthy(self) -> bool:
        return True

    async def run(self) -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.cancelled = True
            raise

    def stop(self) -> None:
        self.stopped = True


class FakeConsumer:
    def __init__(self) -> None:
        self.stopped = False

    async def stop(self) -> None:
        self.stopped = True


async def test_stop_cancels_a_loop_that_outlives_the_drain_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service_module, "STOP_MARGIN_S", 0.1)
    service = ConsumerService(load_settings(shutdown_grace_s=0.2), side_port=0)
    loop = StuckLoop()
    side_task = asyncio.create_task(asyncio.sleep(3600))
    service.loop = loop
    service.consumer = FakeConsumer()
    service._tasks = [asyncio.create_task(loop.run()), side_task]
    await asyncio.sleep(0)
    began = time.monotonic()
    await service.stop()
    took = time.monotonic() - began
    await asyncio.wait(service._tasks)  # cancelled: they end at the next turn of the event loop
    assert loop.stopped
    assert loop.cancelled
    assert side_task.cancelled()
    assert 0.25 <= took < 2, took
    assert service.consumer.stopped


async def test_liveness_is_alive_before_the_loop_starts_and_dead_when_it_stalls() -> None:
    service = ConsumerService(load_settings(), side_port=0)
    assert await service.liveness() == {"consumer_loop": True}
    loop = StuckLoop()
    loop.heartbeat = time.monotonic() - 3600
    service.loop = loop
    assert await service.liveness() == {"consumer_loop": False}
