"""Request size limit and Prometheus metrics as plain ASGI middleware (no per-request task or
response re-wrapping, which BaseHTTPMiddleware costs on every call).

The size limit runs before routing, authentication and parsing. A declared ``Content-Length`` over
1 MiB is refused at once (the server enforces the declared length, so a body within it cannot grow);
a body without one (``Transfer-Encoding: chunked``) is counted as it streams in and refused as soon
as it passes 1 MiB, so no more than 1 MiB of it is ever held."""

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
        declared: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value
        if declared is not None and declared.isdigit():
            if int(declared) > MAX_BODY_BYTES:
                await _too_large(send)
                return
        else:
            buffered = await _read_capped(receive)
            if buffered is _GONE:
                return  # the client left mid-body: nobody to answer
            if buffered is None:
                await _too_large(send)
                return
            receive = _replay(buffered, receive)
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


async def _too_large(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            # The rest of the body is never read: close rather than drain it.
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(TOO_LARGE)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": TOO_LARGE})


_GONE = b"client disconnected"  # a sentinel compared by identity


async def _read_capped(receive: Receive) -> bytes | None:
    """The whole body if it is at most MAX_BODY_BYTES, else None as soon as it passes the limit."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return _GONE
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        if pending:
            return pending.pop()
        return await receive()  # after the body: wait for the disconnect as usual

    return replay
