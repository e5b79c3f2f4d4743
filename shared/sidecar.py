"""The side HTTP server of every service, apart from the API's public port: the three probes and
GET /metrics.

- /livez: the process makes progress (its loops are alive). Dependencies are NOT checked: a
  restart cannot fix PostgreSQL or Kafka being down, and restarting every pod at once during an
  outage makes it worse. The liveness and startup probes ask this.
- /readyz: the process can serve now (dependencies answer and the loops are alive). The readiness
  probe asks this; /healthz answers the same, for people and older probes.
"""

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
# A loop whose heartbeat is older than this is stalled (readiness says so after 30 s already).
LIVENESS_STALL_S = 120.0


async def _always_alive() -> dict[str, bool]:
    return {"event_loop": True}


def metrics_response(_: Request | None = None) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def check_response(checks: dict[str, bool]) -> JSONResponse:
    ok = all(checks.values())
    return JSONResponse(
        {"status": "ok" if ok else "unhealthy", "checks": checks}, status_code=200 if ok else 503
    )


def side_app(ready: HealthCheck, live: HealthCheck = _always_alive) -> Starlette:
    async def readyz(_: Request) -> Response:
        return check_response(await ready())

    async def livez(_: Request) -> Response:
        return check_response(await live())

    async def metrics(request: Request) -> Response:
        return metrics_response(request)

    return Starlette(
        routes=[
            Route("/livez", livez),
            Route("/readyz", readyz),
            Route("/healthz", readyz),
            Route("/metrics", metrics),
        ]
    )


class _SignalFreeServer(uvicorn.Server):
    """The service owns SIGTERM/SIGINT (graceful stop); the side server must not capture them."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class SideServer:
    def __init__(
        self, check: HealthCheck, host: str, port: int, *, live: HealthCheck = _always_alive
    ) -> None:
        config = uvicorn.Config(
            side_app(check, live), host=host, port=port, log_level="warning", access_log=False, lifespan="off"
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
