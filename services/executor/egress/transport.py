"""The scheme check in front of the guard's HTTP pool: every request, redirect hops included, is refused
unless https."""

from __future__ import annotations

import httpx

from services.executor.egress.policy import EgressBlocked


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
