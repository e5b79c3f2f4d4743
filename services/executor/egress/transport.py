"""httpx/httpcore transports that connect only through the egress guard, and refuse plain http."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import httpcore
import httpx

from services.executor.egress.policy import EgressBlocked

if TYPE_CHECKING:
    from services.executor.egress.guard import EgressGuard


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """httpcore backend that resolves and checks through the guard, then connects to the checked IP.

    httpcore still starts TLS with the URL's hostname, so SNI and certificate checks use the name.
    """

    def __init__(self, guard: EgressGuard) -> None:
        self._guard = guard
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                targets = await self._guard._resolve_all(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host!r} timed out") from None
        last_error: Exception | None = None
        for ip, target_port in targets:
            try:
                return await self._inner.connect_tcp(
                    ip,
                    target_port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
        assert last_error is not None
        raise last_error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise EgressBlocked("Egress refused: unix sockets are not outbound connections")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedHTTPTransport(httpx.AsyncHTTPTransport):
    """httpx's transport (request/response mapping, error translation) over a guarded connection pool."""

    def __init__(self, guard: EgressGuard, context: ssl.SSLContext, limits: httpx.Limits) -> None:
        super().__init__(verify=context, trust_env=False, limits=limits)
        # httpx has no public hook for the network backend, so the pool it built is replaced.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedNetworkBackend(guard),
        )


class SchemeCheckingTransport(httpx.AsyncBaseTransport):
    """Refuses non-https requests (every redirect hop passes here) before they reach the shared pool."""

    def __init__(self, pool: httpx.AsyncBaseTransport, *, require_https: bool, owns_pool: bool) -> None:
        self._pool = pool
        self._owns_pool = owns_pool
        self._allowed_schemes = ("https",) if require_https else ("https", "http")

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        scheme = request.url.scheme
        if scheme not in self._allowed_schemes:
            # Only scheme and host: the path of a webhook URL is a secret.
            where = f"{scheme}://{request.url.host}"
            why = "plain HTTP is not permitted, use HTTPS" if scheme == "http" else f"scheme {scheme!r}"
            raise EgressBlocked(f"Egress to {where} refused: {why}")
        return await self._pool.handle_async_request(request)

    async def aclose(self) -> None:
        # A shared pool outlives its clients; EgressGuard.aclose() closes it.
        if self._owns_pool:
            await self._pool.aclose()
