"""Run the consumer services in the test's event loop (the same code `python -m services.X` runs)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from services.dispatcher.service import DispatcherService
from services.executor.service import ExecutorService
from services.health.service import HealthService
from shared.config import Settings
from wf.procs import free_port


@asynccontextmanager
async def running_services(
    settings: Settings, *, dispatcher: bool = True, executor: bool = True, health: bool = True
) -> AsyncIterator[dict[str, object]]:
    started: dict[str, object] = {}
    try:
        if dispatcher:
            started["dispatcher"] = DispatcherService(settings, side_port=free_port())
        if executor:
            started["executor"] = ExecutorService(settings, side_port=free_port())
        if health:
            started["health"] = HealthService(settings, side_port=free_port())
        for service in started.values():
            await service.start()  # type: ignore[attr-defined]
        yield started
    finally:
        for service in reversed(list(started.values())):
            await service.stop()  # type: ignore[attr-defined]
