"""aiohttp plumbing for the SDKs that bring their own HTTP stack (aiobotocore for S3, azure-core for
Azure Blob): every connection goes through the egress guard, redirects are never followed and
environment proxies are never used. Actions get it through ``ActionHost.aiohttp_connector``.

aiohttp consults a resolver only for host *names*: an IP literal (say, the ``Location`` of a 307)
would be connected to unchecked. ``GuardedConnector`` therefore sends every host, literal or name,
through ``EgressGuard.resolve`` and connects to the address it checked. Neither SDK needs redirects
(S3 answers a wrong region with an error that names the region; Azure never redirects), so a
redirect is returned to the SDK as the error response it is rather than followed (by the S3 action's
session wrapper and the Azure client's ``permit_redirects=False``).
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from services.executor.egress.guard import EgressGuard


def _result(host: str, ip: str, port: int) -> ResolveResult:
    return ResolveResult(
        hostname=host,
        host=ip,
        port=port,
        family=socket.AF_INET6 if ":" in ip else socket.AF_INET,
        proto=0,
        flags=socket.AI_NUMERICHOST,
    )


class EgressResolver(AbstractResolver):
    """aiohttp resolver that answers with the egress guard's checked address instead of DNS."""

    def __init__(self, egress: EgressGuard) -> None:
        self._egress = egress

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        ip, checked_port = await self._egress.resolve(host, port or 443)
        return [_result(host, ip, checked_port)]

    async def close(self) -> None:
        return None


class GuardedConnector(aiohttp.TCPConnector):
    """A TCP connector that connects only to addresses the egress guard checked, IP literals included."""

    def __init__(self, egress: EgressGuard, **kwargs: Any) -> None:
        kwargs.setdefault("use_dns_cache", False)  # the guard decides on every connection
        super().__init__(resolver=EgressResolver(egress), **kwargs)
        self._egress = egress

    async def _resolve_host(
        self, host: str, port: int, traces: Sequence[Any] | None = None
    ) -> list[ResolveResult]:
        ip, checked_port = await self._egress.resolve(host, port or 443)
        return [_result(host, ip, checked_port)]
