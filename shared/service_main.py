"""Run a consumer service until SIGTERM/SIGINT, then stop it gracefully (finish or hand back work)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from typing import Protocol

from shared.config import Settings, get_settings
from shared.logging import configure_logging
from shared.tracing import setup_tracing


class Service(Protocol):
    async def start(self) -> None: ...
    async def wait(self) -> None: ...
    async def stop(self) -> None: ...


async def wait_for_failure(tasks: list[asyncio.Task[None]]) -> None:
    """Return when the first of a service's long-running tasks fails, re-raising its error."""
    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    for task in done:
        if not task.cancelled() and (error := task.exception()) is not None:
            raise error


async def run_service(service: Service) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    stopper = asyncio.create_task(stop.wait())
    # A start that waits (e.g. for a Kafka login that is refused) still ends on SIGTERM.
    starting = asyncio.create_task(service.start())
    await asyncio.wait([starting, stopper], return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():
        starting.cancel()
        await asyncio.wait([starting])
        await service.stop()
        return
    starting.result()
    waiter = asyncio.create_task(service.wait())
    try:
        await asyncio.wait([waiter, stopper], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        await service.stop()
        if waiter.done() and not waiter.cancelled() and waiter.exception() is not None:
            raise waiter.exception()  # type: ignore[misc]
        waiter.cancel()


def serve(name: str, build: Callable[[Settings], Service]) -> None:
    """``python -m services.<name>``: the settings, logs and traces named for the service, then run it."""
    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_json, service=name)
    setup_tracing(name, settings)
    asyncio.run(run_service(build(settings)))
