"""An httpcore connection pool in a few shards, a host's requests kept on its home shard: the pool of
clients made outside a running event loop (inside one, ``aiohttp_pool.AiohttpPool`` serves them)."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import httpx

from services.executor.egress.transport import GuardedHTTPTransport

if TYPE_CHECKING:
    from services.executor.egress.guard import EgressGuard


POOL_SHARDS = 8
SHARD_SPILL_AT = 8  # requests in flight in a host's home pool before others are used
MAX_CONNECTIONS = 512
MAX_KEEPALIVE_CONNECTIONS = 256
KEEPALIVE_EXPIRY_S = 30.0


class Shard(GuardedHTTPTransport):
    in_flight: int = 0


class ShardedPool(httpx.AsyncBaseTransport):
    """A few smaller guarded pools instead of one large one.

    httpcore's pool re-examines all its connections whenever a request starts or ends (a readability
    probe of each idle connection, and an idle count that is quadratic in the pool's size): with 64
    requests in flight that bookkeeping was ~45 % of the executor's CPU (py-spy, bench/README.md);
    with 8 pools of about 8 connections a request costs 1.7 ms of CPU instead of 3.7-4.1 ms.
    Each host has a home pool, so light traffic keeps reusing one connection; once its home pool has
    ``SHARD_SPILL_AT`` requests in flight, more go to the least busy pool. A busy host may so hold up
    to ``POOL_SHARDS`` keep-alive connections per ``SHARD_SPILL_AT`` requests, as it would anyway.
    """

    def __init__(self, guard: EgressGuard, context: ssl.SSLContext, shards: int = POOL_SHARDS) -> None:
        limits = httpx.Limits(
            max_connections=MAX_CONNECTIONS // shards,
            max_keepalive_connections=MAX_KEEPALIVE_CONNECTIONS // shards,
            keepalive_expiry=KEEPALIVE_EXPIRY_S,
        )
        self._shards = [Shard(guard, context, limits) for _ in range(shards)]

    def _pick(self, url: httpx.URL) -> Shard:
        home = self._shards[hash((url.scheme, url.host, url.port)) % len(self._shards)]
        if home.in_flight < SHARD_SPILL_AT:
            return home
        return min(self._shards, key=lambda shard: shard.in_flight)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        shard = self._pick(request.url)
        shard.in_flight += 1
        try:
            response = await shard.handle_async_request(request)
        except BaseException:
            shard.in_flight -= 1
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = ReleasingStream(response.stream, shard)
        return response

    async def aclose(self) -> None:
        for shard in self._shards:
            await shard.aclose()


class ReleasingStream(httpx.AsyncByteStream):
    """A response body that counts its request out of its pool's in-flight figure when closed."""

    def __init__(self, inner: httpx.AsyncByteStream, shard: Shard) -> None:
        self._inner = inner
        self._shard: Shard | None = shard

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        if self._shard is not None:
            self._shard.in_flight -= 1
            self._shard = None
        await self._inner.aclose()
