"""Hypothesis: every textual form of an address in a blocked range stays blocked.

An address is drawn from a blocked IPv4 or IPv6 range, then written the ways resolvers accept it:
dotted, one integer, hex, octal, short (127.1), zero-padded, upper case, bracketed, with a trailing
dot, and IPv4 inside IPv6 (mapped, compatible, NAT64, 6to4, expanded or compressed). Each form must
be refused with the range's reason, never resolved to a connection and never merely "unresolvable".
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

from hypothesis import given, settings
from hypothesis import strategies as st

from services.executor.egress import EgressBlocked, EgressGuard, HostUnresolvable
from services.executor.egress.policy import _BLOCKED_V4, _BLOCKED_V6

GUARD = EgressGuard()
V4_NETS = [ipaddress.IPv4Network(cidr) for cidr, _ in _BLOCKED_V4]
V6_NETS = [ipaddress.IPv6Network(cidr) for cidr, _ in _BLOCKED_V6]


@st.composite
def blocked_v4(draw: st.DrawFn) -> ipaddress.IPv4Address:
    net = draw(st.sampled_from(V4_NETS))
    return net[draw(st.integers(0, net.num_addresses - 1))]


@st.composite
def blocked_v6(draw: st.DrawFn) -> ipaddress.IPv6Address:
    net = draw(st.sampled_from(V6_NETS))
    return net[draw(st.integers(0, net.num_addresses - 1))]


def _v4_forms(address: ipaddress.IPv4Address, draw: st.DrawFn) -> str:
    value = int(address)
    octets = list(address.packed)
    style = draw(
        st.sampled_from(
            [
                "dotted",
                "int",
                "hex",
                "HEX",
                "octal",
                "hexdotted",
                "short2",
                "short3",
                "padded",
                "dot",
                "mixed",
            ]
        )
    )
    if style == "dotted":
        return str(address)
    if style == "int":
        return str(value)
    if style == "hex":
        return hex(value)
    if style == "HEX":
        return hex(value).upper()
    if style == "octal":
        return ".".join(f"0{octet:o}" for octet in octets)
    if style == "hexdotted":
        return ".".join(hex(octet) for octet in octets)
    if style == "short2":  # a.b with b 24 bits
        return f"{octets[0]}.{value & 0xFFFFFF}"
    if style == "short3":  # a.b.c with c 16 bits
        return f"{octets[0]}.{octets[1]}.{value & 0xFFFF}"
    if style == "padded":  # leading zeros make a part octal in inet_aton: pad only 0 and write 1-7 as is
        return ".".join(f"0{octet:o}" if octet else "000" for octet in octets)
    if style == "dot":
        return f"{address}."
    parts = [draw(st.sampled_from([str(o), hex(o), f"0{o:o}"])) for o in octets]
    return ".".join(parts)


def _v6_text(address: ipaddress.IPv6Address, draw: st.DrawFn) -> str:
    style = draw(st.sampled_from(["compressed", "exploded", "upper", "bracketed"]))
    if style == "compressed":
        return address.compressed
    if style == "exploded":
        return address.exploded
    if style == "upper":
        return address.compressed.upper()
    return f"[{address.compressed}]"


@st.composite
def blocked_forms(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["v4", "v6", "mapped", "mapped-dotted", "compatible", "nat64", "6to4"]))
    if kind == "v6":
        return _v6_text(draw(blocked_v6()), draw)
    v4 = draw(blocked_v4())
    if kind == "v4":
        return _v4_forms(v4, draw)
    if kind == "mapped-dotted":
        return draw(st.sampled_from([f"::ffff:{v4}", f"[::ffff:{v4}]", f"::FFFF:{v4}"]))
    embedded = {
        "mapped": ipaddress.IPv6Address(f"::ffff:{v4}"),
        "compatible": ipaddress.IPv6Address(int(v4) | 0),
        "nat64": ipaddress.IPv6Address(f"64:ff9b::{v4}"),
        "6to4": ipaddress.IPv6Address((0x2002 << 112) | (int(v4) << 80)),
    }[kind]
    if kind == "compatible" and int(v4) <= 1:
        return str(v4)  # ::, ::1 are their own IPv6 addresses (covered by the v6 ranges)
    return _v6_text(embedded, draw)


def _system_accepts(form: str) -> bool:
    """Whether the C resolver reads `form` as an address literal (so a library could connect to it)."""
    host = form.strip("[]").rstrip(".")
    try:
        socket.getaddrinfo(host, 443, flags=socket.AI_NUMERICHOST)
        return True
    except (OSError, UnicodeError):
        return False


@settings(max_examples=500, deadline=None)
@given(form=blocked_forms())
def test_every_form_of_a_blocked_address_is_refused(form: str) -> None:
    try:
        asyncio.run(GUARD.resolve(form, 443))
    except HostUnresolvable:
        unresolvable = True
    except EgressBlocked:
        return  # refused with the range's reason
    else:
        raise AssertionError(f"{form!r} was allowed")
    # "Unresolvable" is acceptable only when no resolver could read it as an address either.
    assert unresolvable
    assert not _system_accepts(form), form
