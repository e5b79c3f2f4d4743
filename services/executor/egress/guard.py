"""The egress guard: resolves, checks and connects outbound traffic (rules in ``policy.py``)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import weakref
from collections.abc import Iterable, Mapping

import httpx

from services.executor.egress.aiohttp_pool import AiohttpPool
from services.executor.egress.policy import (
    BLOCKED,
    METADATA_ADDRESSES,
    EgressBlocked,
    HostUnresolvable,
    IPAddress,
    embedded_ipv4,
    normalize_host,
    parse_ip,
    parse_ip_literal,
    parse_override,
    tls_hostname,
)
from services.executor.egress.transport import SchemeCheckingTransport
from shared.tls import client_ssl_context


class EgressGuard:
    """Resolves, checks and connects outbound traffic; see the module docstring for the rules.

    ``allow_cidrs`` exempts ranges from the block (on-premises targets; ``WF_EGRESS_ALLOW_CIDRS``);
    ``host_overrides`` maps a hostname to ``"ip"`` or ``"ip:port"`` instead of asking DNS
    (split-horizon setups and tests). Overridden addresses are still checked.
    """

    def __init__(
        self,
        allow_cidrs: Iterable[str] = (),
        host_overrides: Mapping[str, str] | None = None,
    ) -> None:
        if isinstance(allow_cidrs, str):
            allow_cidrs = allow_cidrs.split(",")
        allowed: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
        for cidr in allow_cidrs:
            if cidr.strip():
                net = ipaddress.ip_network(cidr.strip(), strict=False)
                allowed[net.version].append((int(net.network_address), int(net.netmask)))
        self._allowed = {version: tuple(nets) for version, nets in allowed.items()}
        self._overrides = {
            normalize_host(name): parse_override(name, value)
            for name, value in (host_overrides or {}).items()
        }
        self._pools: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[ssl.SSLContext, AiohttpPool]
        ] = weakref.WeakKeyDictionary()
        self._closing: set[asyncio.Task[None]] = set()

    # -- checking ---------------------------------------------------------------------------------

    def check_address(self, ip: str) -> None:
        """Raise ``EgressBlocked`` unless ``ip`` (an IP literal) may be connected to."""
        try:
            address = parse_ip(ip)
        except ValueError:
            raise EgressBlocked(f"Egress refused: {ip!r} is not an IP address") from None
        reason = self._blocked_reason(address)
        if reason is not None:
            raise EgressBlocked(f"Egress to {ip} refused: it is {reason}")

    def _check(self, host: str, address: IPAddress) -> None:
        reason = self._blocked_reason(address)
        if reason is not None:
            shown = f"{host!r} ({address})" if str(address) != host else str(address)
            raise EgressBlocked(f"Egress to {shown} refused: it is {reason}")

    def _blocked_reason(self, address: IPAddress) -> str | None:
        reason = self._own_reason(address)
        if reason is not None or isinstance(address, ipaddress.IPv4Address):
            return reason
        for embedded, form in embedded_ipv4(address):
            reason = self._own_reason(embedded)
            if reason is not None:
                return f"{reason}: {embedded}, embedded in the IPv6 address as {form}"
        return None

    def _own_reason(self, address: IPAddress) -> str | None:
        if address in METADATA_ADDRESSES:
            return "a cloud metadata address (always blocked)"
        value = int(address)
        for network, mask, reason in BLOCKED[address.version]:
            if value & mask == network:
                if any(value & m == n for n, m in self._allowed[address.version]):
                    return None
                return reason
        return None

    # -- resolving --------------------------------------------------------------------------------

    async def resolve(self, host: str, port: int) -> tuple[str, int]:
        """Resolve ``host`` once, check every address, return the ``(ip, port)`` to connect to."""
        return (await self._resolve_all(host, port))[0]

    async def _resolve_all(self, host: str, port: int) -> list[tuple[str, int]]:
        if not 0 < port < 65536:
            raise EgressBlocked(f"Egress to {host!r} refused: port {port} is out of range")
        name = normalize_host(host)
        if not name:
            raise EgressBlocked(f"Egress refused: empty host {host!r}")
        override = self._overrides.get(name)
        if override is not None:
            ip, override_port = override
            self._check(host, parse_ip(ip))
            return [(ip, override_port or port)]
        literal = parse_ip_literal(name)
        if literal is not None:
            self._check(host, parse_ip(literal))
            return [(literal, port)]
        addresses = await self._lookup(name, port)
        for ip in addresses:
            self._check(host, parse_ip(ip))
        return [(ip, port) for ip in addresses]

    async def _lookup(self, name: str, port: int) -> list[str]:
        """Ask the system resolver (in a worker thread); distinct addresses in resolver order."""
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(name, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise HostUnresolvable(
                f"Egress to {name!r} refused: could not resolve the host ({exc})"
            ) from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not addresses:
            raise EgressBlocked(f"Egress to {name!r} refused: the host has no addresses")
        return addresses

    # -- connecting -------------------------------------------------------------------------------

    async def connect_socket(self, host: str, port: int, *, timeout: float = 30.0) -> socket.socket:
        """A connected, non-blocking TCP socket to a checked address of ``host``, for ``sock=`` APIs."""
        async with asyncio.timeout(timeout):
            return await self._connect(host, port)

    async def open_connection(
        self,
        host: str,
        port: int,
        *,
        ssl: ssl.SSLContext | None = None,
        timeout: float = 30.0,
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Streams to a checked address of ``host``; with ``ssl``, TLS verifies the original hostname."""
        async with asyncio.timeout(timeout):
            sock = await self._connect(host, port)
            try:
                return await asyncio.open_connection(
                    sock=sock, ssl=ssl, server_hostname=tls_hostname(host) if ssl else None
                )
            except BaseException:
                sock.close()
                raise

    async def _connect(self, host: str, port: int) -> socket.socket:
        loop = asyncio.get_running_loop()
        last_error: OSError | None = None
        for ip, target_port in await self._resolve_all(host, port):
            family, _, _, _, sockaddr = socket.getaddrinfo(
                ip, target_port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST
            )[0]
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.setblocking(False)
                await loop.sock_connect(sock, sockaddr)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                return sock
            except OSError as exc:
                sock.close()
                last_error = exc
            except BaseException:
                sock.close()
                raise
        assert last_error is not None
        raise last_error

    # -- HTTP -------------------------------------------------------------------------------------

    def http_client(
        self,
        *,
        timeout: float,
        require_https: bool = True,
        follow_redirects: bool = True,
        max_redirects: int = 5,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` whose every connection, redirect hops included, goes through the guard.

        Clients made inside a coroutine are cheap: they share this guard's connection pool (one per event
        loop), so keep-alive connections survive across clients. Closing such a client leaves the pool
        open; ``aclose()`` the guard at shutdown.
        """
        try:
            transport = SchemeCheckingTransport(self._pool(), require_https=require_https, owns_pool=False)
        except RuntimeError:  # no running loop: a pool of its own, opened by its first request's loop
            pool = AiohttpPool(self, client_ssl_context())
            transport = SchemeCheckingTransport(pool, require_https=require_https, owns_pool=True)
        return httpx.AsyncClient(
            transport=transport,
            timeout=timeout,
            follow_redirects=follow_redirects,
            max_redirects=max_redirects,
            headers=dict(headers) if headers else None,
            trust_env=False,  # an environment proxy would resolve names itself, past the guard
        )

    def _pool(self) -> AiohttpPool:
        loop = asyncio.get_running_loop()
        context = client_ssl_context()
        cached = self._pools.get(loop)
        if cached is not None and cached[0] is context:
            return cached[1]
        pool = AiohttpPool(self, context)
        self._pools[loop] = (context, pool)
        if cached is not None:
            # SSL_CERT_FILE changed: connections verified against the old trust store must not be reused.
            task = loop.create_task(cached[1].aclose())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        return pool

    async def aclose(self) -> None:
        """Close the pooled HTTP connections of the running event loop."""
        cached = self._pools.pop(asyncio.get_running_loop(), None)
        if cached is not None:
            await cached[1].aclose()
