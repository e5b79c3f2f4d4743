"""The executor's egress guard: every outbound connection is resolved once, checked against the
policy (``policy.py``), and made to the checked address by ``aiohttp_transport.GuardedConnector``:
for httpx clients through ``aiohttp_pool.py`` (behind ``transport.py``'s scheme check), and for the
SDKs that bring aiohttp."""

from services.executor.egress.guard import EgressGuard
from services.executor.egress.policy import EgressBlocked, HostUnresolvable, blocked_cidrs

__all__ = ["EgressBlocked", "EgressGuard", "HostUnresolvable", "blocked_cidrs"]
