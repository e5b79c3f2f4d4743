"""The guard's HTTP connection pool on aiohttp: httpx's client API (what the actions call) over
aiohttp's connection handling and C HTTP parser.

httpx with httpcore cost the executor ~1.7 ms of CPU per HTTPS request even spread over eight pools
(bench/README.md); the same request through aiohttp costs a fraction of that.
httpx keeps everything above the connection: building requests, ``Authorization`` flows, redirects
(every hop still passes ``SchemeCheckingTransport`` and, on a new connection, the guard), content
decoding and response objects. Underneath, every connection is made by ``GuardedConnector``: each
new connection resolves the host once through the guard and connects to the address it checked,
IP literals included; redirects are never followed by aiohttp and environment proxies never used.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import aiohttp
import httpx
import yarl

from services.executor.egress.policy import EgressBlocked

if TYPE_CHECKING:
    from services.executor.egress.guard import EgressGuard

MAX_CONNECTIONS = 512
KEEPALIVE_EXPIRY_S = 30.0
_DROPPED = {"transfer-encoding"}  # the body is sent whole, with its length


class AiohttpPool(httpx.AsyncBaseTransport):
    """An httpx transport over one aiohttp session whose connector is the guard's."""

    def __init__(self, guard: EgressGuard, context: ssl.SSLContext) -> None:
        self._guard = guard
        self._context = context
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            from services.executor.egress.aiohttp_transport import GuardedConnector  # imports the guard

            connector = GuardedConnector(
                self._guard, ssl=self._context, limit=MAX_CONNECTIONS, keepalive_timeout=KEEPALIVE_EXPIRY_S
            )
            # httpx decodes Content-Encoding itself; aiohttp must hand over the bytes as received.
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,
                trust_env=False,
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._open()
        limits = request.extensions.get("timeout", {})
        timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=limits.get("connect"),
            connect=_sum(limits.get("connect"), limits.get("pool")),
            sock_read=limits.get("read"),
        )
        body = await request.aread()
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in request.headers.raw
            if name.lower().decode("latin-1") not in _DROPPED
        ]
        url = request.url
        if url.userinfo:  # httpx turned it into the Authorization header already
            url = url.copy_with(userinfo=b"")
        try:
            reply = await session.request(
                request.method,
                yarl.URL(str(url), encoded=True),  # as httpx encoded it, not re-quoted
                headers=headers,
                data=body or None,
                allow_redirects=False,
                timeout=timeout,
                skip_auto_headers=("Content-Type",),
            )
        except BaseException as exc:
            raise _translated(exc, request) from exc
        return httpx.Response(
            status_code=reply.status,
            headers=list(reply.raw_headers),
            stream=_Body(reply, request),
            request=request,
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": (reply.reason or "").encode("latin-1", errors="replace"),
            },
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _sum(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a + b


def _translated(exc: BaseException, request: httpx.Request) -> BaseException:
    """aiohttp's failures as the httpx exceptions the callers handle (the cause chain is kept, so an
    ``EgressBlocked`` or a certificate error inside stays findable)."""
    if isinstance(exc, EgressBlocked | asyncio.CancelledError) or not isinstance(exc, Exception):
        return exc
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(str(exc) or "connect timed out", request=request)
    if isinstance(exc, TimeoutError):
        return httpx.ReadTimeout(str(exc) or "read timed out", request=request)
    if isinstance(exc, aiohttp.ClientConnectorError | ConnectionError):
        return httpx.ConnectError(str(exc), request=request)
    if isinstance(exc, aiohttp.ClientError | OSError):
        return httpx.ReadError(f"{type(exc).__name__}: {exc}", request=request)
    return exc


class _Body(httpx.AsyncByteStream):
    """A response body read from aiohttp; closing it before its end closes the connection."""

    def __init__(self, reply: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._reply = reply
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._reply.content.iter_any():
                yield chunk
        except Exception as exc:
            raise _translated(exc, self._request) from exc

    async def aclose(self) -> None:
        self._reply.release()
