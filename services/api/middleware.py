"""Request size limit and Prometheus metrics as plain ASGI middleware (no per-request task or
response re-wrapping, which BaseHTTPMiddleware costs on every call)."""

from __future__ import annotations

import time

import orjson
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.api.errors import error_body

MAX_BODY_BYTES = 1024 * 1024

REQUESTS = Counter("wf_api_requests_total", "API requests", ["method", "route", "status"])
LATENCY = Histogram(
    "wf_api_request_seconds",
    "API request latency",
    ["method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
TOO_LARGE = orjson.dumps(error_body("PayloadTooLarge", "The request body is larger than 1 MiB"))


class LimitsAndMetrics:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > MAX_BODY_BYTES:
                await send(
                    {
                        "type": "http.response.start",
                        "status": 413,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(TOO_LARGE)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": TOO_LARGE})
                return
        started = time.perf_counter()
        status = 500

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        finally:
            # The router records the matched route in the shared scope: label by template, not raw path.
            route = getattr(scope.get("route"), "path", "unmatched")
            LATENCY.labels(scope["method"], route).observe(time.perf_counter() - started)
            REQUESTS.labels(scope["method"], route, str(status)).inc()
