"""The executor's egress guard: every outbound connection is resolved once, checked against the
policy (``policy.py``), and made to the checked address (``transport.py`` for httpx, pooled by
``pool.py``; ``aiohttp_transport.py`` for the SDKs that bring aiohttp)."""

from services.executor.egress.guard import EgressGuard
from services.executor.egress.policy import EgressBlocked, HostUnresolvable, blocked_cidrs

__all__ = ["EgressBlocked", "EgressGuard", "HostUnresolvable", "blocked_cidrs"]
