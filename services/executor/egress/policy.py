"""The egress policy: every outbound connection is resolved once, checked, and made to the checked address.

Checking a name and then letting a library resolve it again would allow DNS rebinding, so the guard
hands out connections (or an ``httpx.AsyncClient`` whose network backend does the same) to the very
address it checked. Private, loopback, link-local, CGNAT, unique-local, reserved and multicast
ranges are blocked unless an allowed CIDR covers them; cloud metadata addresses are always blocked.
IPv6 forms that embed an IPv4 address (mapped, compatible, NAT64, 6to4, Teredo) are unwrapped and
the IPv4 address is checked too.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class EgressBlocked(Exception):
    """An outbound connection was refused; the message names the host or address and the reason."""


class HostUnresolvable(EgressBlocked):
    """The name did not resolve. Still refused (nothing was checked), but DNS trouble can pass, so
    actions treat it as transient rather than as a policy decision."""


METADATA_ADDRESSES = frozenset(
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


BLOCKED = {4: _ranges(_BLOCKED_V4), 6: _ranges(_BLOCKED_V6)}


def blocked_cidrs(version: int) -> list[str]:
    """The guard's blocked ranges of one IP version, merged where adjacent: the executor's
    NetworkPolicy excepts exactly these (deploy/; `python -m services.executor.egress` prints them)."""
    table = _BLOCKED_V4 if version == 4 else _BLOCKED_V6
    networks = sorted(ipaddress.ip_network(cidr) for cidr, _ in table)
    return [str(n) for n in ipaddress.collapse_addresses(networks)]  # type: ignore[type-var]


def normalize_host(host: str) -> str:
    name = host.strip().lower().replace("%25", "%")
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    return name.rstrip(".")


def tls_hostname(host: str) -> str:
    return normalize_host(host).split("%", 1)[0]


def parse_ip(ip: str) -> IPAddress:
    """Parse an IP literal, dropping any IPv6 zone id (the check is about the address)."""
    address = ipaddress.ip_address(ip.strip("[]"))
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        address = ipaddress.IPv6Address(str(address).split("%", 1)[0])
    return address


def parse_ip_literal(name: str) -> str | None:
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


def parse_override(name: str, value: str) -> tuple[str, int | None]:
    value = value.strip()
    host, port = value, None
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else None
    elif value.count(":") == 1:
        host, _, port_text = value.partition(":")
        port = int(port_text)
    try:
        parse_ip(host)
    except ValueError:
        raise ValueError(f"host override for {name!r} must be 'ip' or 'ip:port', got {value!r}") from None
    return host, port


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[tuple[ipaddress.IPv4Address, str]]:
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
