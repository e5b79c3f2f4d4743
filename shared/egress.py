"""The egress guard: every outbound connection is resolved once, checked, and made to the checked address.

Checking a name and then letting a library resolve it again would allow DNS rebinding, so the guard
hands out connections (or an ``httpx.AsyncClient`` whose network backend does the same) to the very
address it checked. Private, loopback, link-local, CGNAT, unique-local, reserved and multicast
ranges are blocked unless an allowed CIDR covers them; cloud metadata addresses are always blocked.
IPv6 forms that embed an IPv4 address (mapped, compatible, NAT64, 6to4, Teredo) are unwrapped and
the IPv4 address is checked too.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import ssl
import weakref
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

import httpcore
import httpx

from shared.tls import client_ssl_context

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

__all__ = ["EgressBlocked", "EgressGuard", "HostUnresolvable"]


class EgressBlocked(Exception):
    """An outbound connection was refused; the message names the host or address and the reason."""


class HostUnresolvable(EgressBlocked):
    """The name did not resolve. Still refused (nothing was checked), but DNS trouble can pass, so
    actions treat it as transient rather than as a policy decision."""


_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)

# Longest prefixes first so the reason given is the most specific one.
_BLOCKED_V4: tuple[tuple[str, str], ...] = (
    ("255.255.255.255/32", "a broadcast address"),
    ("192.0.0.0/24", "an IETF protocol assignment address (192.0.0.0/24)"),
    ("192.0.2.0/24", "a documentation address (TEST-NET-1)"),
    ("192.88.99.0/24", "a deprecated 6to4 relay address"),
    ("198.51.100.0/24", "a documentation address (TEST-NET-2)"),
    ("203.0.113.0/24", "a documentation address (TEST-NET-3)"),
    ("169.254.0.0/16", "a link-local address"),
    ("192.168.0.0/16", "a private address (RFC 1918)"),
    ("198.18.0.0/15", "a benchmarking address (198.18.0.0/15)"),
    ("172.16.0.0/12", "a private address (RFC 1918)"),
    ("100.64.0.0/10", "a carrier-grade NAT address (100.64.0.0/10)"),
    ("0.0.0.0/8", "an unspecified ('this network') address"),
    ("10.0.0.0/8", "a private address (RFC 1918)"),
    ("127.0.0.0/8", "a loopback address"),
    ("224.0.0.0/4", "a multicast address"),
    ("240.0.0.0/4", "a reserved address (240.0.0.0/4)"),
)
_BLOCKED_V6: tuple[tuple[str, str], ...] = (
    ("::/128", "an unspecified address"),
    ("::1/128", "a loopback address"),
    ("100::/64", "a discard-only address"),
    ("2001:2::/48", "a benchmarking address"),
    ("2001:20::/28", "an ORCHIDv2 address"),
    ("2001:db8::/32", "a documentation address"),
    ("3fff::/20", "a documentation address"),
    ("fe80::/10", "a link-local address"),
    ("fec0::/10", "a site-local address"),
    ("fc00::/7", "a unique-local address"),
    ("ff00::/8", "a multicast address"),
)

_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
# Only the hostname characters the legacy inet_aton() forms use: 2130706433, 0x7f.1, 0177.0.0.1.
_LEGACY_IPV4 = re.compile(r"[0-9a-fx.]+")

_Range = tuple[int, int, str]  # network as int, netmask as int, reason


def _ranges(table: Iterable[tuple[str, str]]) -> tuple[_Range, ...]:
    nets = [(ipaddress.ip_network(cidr), reason) for cidr, reason in table]
    return tuple((int(n.network_address), int(n.netmask), reason) for n, reason in nets)


_BLOCKED = {4: _ranges(_BLOCKED_V4), 6: _ranges(_BLOCKED_V6)}


def blocked_cidrs(version: int) -> list[str]:
    """The guard's blocked ranges of one IP version, merged where adjacent: the executor's
    NetworkPolicy excepts exactly these (deploy/; `python -m shared.egress` prints them)."""
    table = _BLOCKED_V4 if version == 4 else _BLOCKED_V6
    networks = sorted(ipaddress.ip_network(cidr) for cidr, _ in table)
    return [str(n) for n in ipaddress.collapse_addresses(networks)]  # type: ignore[type-var]


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
            _normalize_host(name): _parse_override(name, value)
            for name, value in (host_overrides or {}).items()
        }
        self._pools: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[ssl.SSLContext, _ShardedPool]
        ] = weakref.WeakKeyDictionary()
        self._closing: set[asyncio.Task[None]] = set()

    # -- checking ---------------------------------------------------------------------------------

    def check_address(self, ip: str) -> None:
        """Raise ``EgressBlocked`` unless ``ip`` (an IP literal) may be connected to."""
        try:
            address = _parse_ip(ip)
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
        for embedded, form in _embedded_ipv4(address):
            reason = self._own_reason(embedded)
            if reason is not None:
                return f"{reason}: {embedded}, embedded in the IPv6 address as {form}"
        return None

    def _own_reason(self, address: IPAddress) -> str | None:
        if address in _METADATA_ADDRESSES:
            return "a cloud metadata address (always blocked)"
        value = int(address)
        for network, mask, reason in _BLOCKED[address.version]:
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
        name = _normalize_host(host)
        if not name:
            raise EgressBlocked(f"Egress refused: empty host {host!r}")
        override = self._overrides.get(name)
        if override is not None:
            ip, override_port = override
            self._check(host, _parse_ip(ip))
            return [(ip, override_port or port)]
        literal = _parse_ip_literal(name)
        if literal is not None:
            self._check(host, _parse_ip(literal))
            return [(literal, port)]
        addresses = await self._lookup(name, port)
        for ip in addresses:
            self._check(host, _parse_ip(ip))
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
                    sock=sock, ssl=ssl, server_hostname=_tls_hostname(host) if ssl else None
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
            transport = _SchemeCheckingTransport(self._pool(), require_https=require_https, owns_pool=False)
        except RuntimeError:  # no running loop: this client gets a pool of its own
            pool = _ShardedPool(self, client_ssl_context())
            transport = _SchemeCheckingTransport(pool, require_https=require_https, owns_pool=True)
        return httpx.AsyncClient(
            transport=transport,
            timeout=timeout,
            follow_redirects=follow_redirects,
            max_redirects=max_redirects,
            headers=dict(headers) if headers else None,
            trust_env=False,  # an environment proxy would resolve names itself, past the guard
        )

    def _pool(self) -> _ShardedPool:
        loop = asyncio.get_running_loop()
        context = client_ssl_context()
        cached = self._pools.get(loop)
        if cached is not None and cached[0] is context:
            return cached[1]
        pool = _ShardedPool(self, context)
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


class _GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
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


class _GuardedHTTPTransport(httpx.AsyncHTTPTransport):
    """httpx's transport (request/response mapping, error translation) over a guarded connection pool."""

    def __init__(self, guard: EgressGuard, context: ssl.SSLContext, limits: httpx.Limits) -> None:
        super().__init__(verify=context, trust_env=False, limits=limits)
        # httpx has no public hook for the network backend, so the pool it built is replaced.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_GuardedNetworkBackend(guard),
        )


POOL_SHARDS = 8
SHARD_SPILL_AT = 8  # requests in flight in a host's home pool before others are used
MAX_CONNECTIONS = 512
MAX_KEEPALIVE_CONNECTIONS = 256
KEEPALIVE_EXPIRY_S = 30.0


class _Shard(_GuardedHTTPTransport):
    in_flight: int = 0


class _ShardedPool(httpx.AsyncBaseTransport):
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
        self._shards = [_Shard(guard, context, limits) for _ in range(shards)]

    def _pick(self, url: httpx.URL) -> _Shard:
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
        response.stream = _ReleasingStream(response.stream, shard)
        return response

    async def aclose(self) -> None:
        for shard in self._shards:
            await shard.aclose()


class _ReleasingStream(httpx.AsyncByteStream):
    """A response body that counts its request out of its pool's in-flight figure when closed."""

    def __init__(self, inner: httpx.AsyncByteStream, shard: _Shard) -> None:
        self._inner = inner
        self._shard: _Shard | None = shard

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        if self._shard is not None:
            self._shard.in_flight -= 1
            self._shard = None
        await self._inner.aclose()


class _SchemeCheckingTransport(httpx.AsyncBaseTransport):
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


def _normalize_host(host: str) -> str:
    name = host.strip().lower().replace("%25", "%")
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    return name.rstrip(".")


def _tls_hostname(host: str) -> str:
    return _normalize_host(host).split("%", 1)[0]


def _parse_ip(ip: str) -> IPAddress:
    """Parse an IP literal, dropping any IPv6 zone id (the check is about the address)."""
    address = ipaddress.ip_address(ip.strip("[]"))
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        address = ipaddress.IPv6Address(str(address).split("%", 1)[0])
    return address


def _parse_ip_literal(name: str) -> str | None:
    """The connectable address if ``name`` is an IP literal in any form the C resolver accepts."""
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        pass
    if _LEGACY_IPV4.fullmatch(name):
        try:
            return socket.inet_ntoa(socket.inet_aton(name))
        except OSError:
            return None
    return None


def _parse_override(name: str, value: str) -> tuple[str, int | None]:
    value = value.strip()
    host, port = value, None
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else None
    elif value.count(":") == 1:
        host, _, port_text = value.partition(":")
        port = int(port_text)
    try:
        _parse_ip(host)
    except ValueError:
        raise ValueError(f"host override for {name!r} must be 'ip' or 'ip:port', got {value!r}") from None
    return host, port


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[tuple[ipaddress.IPv4Address, str]]:
    """IPv4 addresses an IPv6 address carries, with the form's name."""
    found: list[tuple[ipaddress.IPv4Address, str]] = []
    packed = address.packed
    if address.ipv4_mapped is not None:
        found.append((address.ipv4_mapped, "IPv4-mapped"))
    elif int(address) >> 32 == 0 and int(address) > 1:
        found.append((ipaddress.IPv4Address(packed[12:]), "IPv4-compatible"))
    if address in _NAT64_WELL_KNOWN:
        found.append((ipaddress.IPv4Address(packed[12:]), "NAT64"))
    elif address in _NAT64_LOCAL:
        # The operator's prefix may be /48, /56, /64 or /96 (RFC 6052 layouts skip octet 8, "u",
        # and zero the suffix); every layout the address fits is checked.
        found.append((ipaddress.IPv4Address(packed[12:16]), "local-use NAT64"))
        for embedded, suffix in (
            (packed[6:8] + packed[9:11], packed[11:]),
            (packed[7:8] + packed[9:12], packed[12:]),
            (packed[9:13], packed[13:]),
        ):
            if packed[8] == 0 and not any(suffix):
                found.append((ipaddress.IPv4Address(embedded), "local-use NAT64"))
    if address.sixtofour is not None:
        found.append((address.sixtofour, "6to4"))
    if address.teredo is not None:
        server, client = address.teredo
        found.extend([(client, "Teredo (client)"), (server, "Teredo (server)")])
    return found


if __name__ == "__main__":
    import sys

    for family in (4, 6):
        sys.stdout.write(f"    blockedIPv{family}:\n")
        sys.stdout.writelines(f"      - {cidr}\n" for cidr in blocked_cidrs(family))
