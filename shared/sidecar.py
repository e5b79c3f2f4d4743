"""The side HTTP server of a consumer service: GET /healthz (200 or 503) and GET /metrics."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

HealthCheck = Callable[[], Awaitable[dict[str, bool]]]


def metrics_response(_: Request | None = None) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def side_app(check: HealthCheck) -> Starlette:
    async def healthz(_: Request) -> Response:
        checks = await check()
        return JSONResponse(
            {"status": "ok" if all(checks.values()) else "unhealthy", "checks": checks},
            status_code=200 if all(checks.values()) else 503,
        )

    async def metrics(request: Request) -> Response:
        return metrics_response(request)

    return Starlette(routes=[Route("/healthz", healthz), Route("/metrics", metrics)])


class _SignalFreeServer(uvicorn.Server):
    """The service owns SIGTERM/SIGINT (graceful stop); the side server must not capture them."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class SideServer:
    def __init__(self, check: HealthCheck, host: str, port: int) -> None:
        config = uvicorn.Config(
            side_app(check), host=host, port=port, log_level="warning", access_log=False, lifespan="off"
        )
        self._server = _SignalFreeServer(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                await self._task  # re-raises the start-up error (e.g. port in use)
                return
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
