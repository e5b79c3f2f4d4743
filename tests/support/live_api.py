"""The API under uvicorn on a loopback port, in a thread of its own, like a deployed server.

httpx's ASGITransport returns a response only once the whole ASGI call has finished; a real server
sends it as soon as it is written. Tests about what a client may rely on once it has its answer
(read-your-writes) need the real server.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from services.api.app import create_app
from shared.config import Settings
from wf.procs import free_port


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """The base URL of ``app`` served by uvicorn on a loopback port until the block ends."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="live-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "the API did not start"
        assert time.monotonic() < deadline, "the API did not start in 30 s"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextmanager
def live_api(settings: Settings) -> Iterator[str]:
    """The base URL of an API serving ``settings`` (its topics, its database) until the block ends."""
    with serving(create_app(settings)) as url:
        yield url


@contextmanager
def dispatcher_thread(settings: Settings) -> Iterator[None]:
    """A dispatcher on a thread (and event loop) of its own, beside a live API."""
    from services.dispatcher.service import DispatcherService

    stop = threading.Event()
    started = threading.Event()

    async def serve() -> None:
        service = DispatcherService(settings, side_port=free_port())
        await service.start()
        started.set()
        try:
            while not stop.is_set():
                await asyncio.sleep(0.1)
        finally:
            await service.stop()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), name="live-dispatcher", daemon=True)
    thread.start()
    assert started.wait(60), "the dispatcher did not start"
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)
