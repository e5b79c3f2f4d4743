"""The executor's side of ``shared.actions.spec.ActionHost``: outbound connections through its egress
guard (HTTP, sockets, the SDKs' aiohttp connector), its settings and the send quota."""

from __future__ import annotations

import socket
from typing import Any

import httpx

from services.executor.actions.base import ActionDeps
from services.executor.actions.http_requests import blocked_error, http_request
from services.executor.egress import EgressBlocked
from services.executor.egress.aiohttp_transport import GuardedConnector
from shared import probes
from shared.actions.outcomes import ActionError, transient
from shared.actions.replies import HttpReply, find_cause
from shared.actions.spec import SendQuota
from shared.config import ActionSection


class ExecutorHost:
    """Implements ``ActionHost`` for one step's ``ActionDeps`` (``run_id``: whose step, for the
    bench's stage stamps)."""

    __slots__ = ("_deps", "_run_id")

    def __init__(self, deps: ActionDeps, run_id: int | None = None) -> None:
        self._deps = deps
        self._run_id = run_id

    @property
    def settings(self) -> ActionSection:
        return self._deps.settings

    @property
    def quota(self) -> SendQuota:
        return self._deps.quota

    async def http_request(self, method: str, url: str | httpx.URL, **options: Any) -> HttpReply:
        """``ActionHost.http_request`` (its keyword arguments are documented there) through this
        executor's egress guard."""
        probes.stamp("request.started", self._run_id)
        return await http_request(self._deps.egress, method, url, **options)

    async def connect_socket(self, host: str, port: int, *, timeout: float, what: str) -> socket.socket:
        try:
            return await self._deps.egress.connect_socket(host, port, timeout=timeout)
        except EgressBlocked as exc:
            raise blocked_error(exc, what) from None
        except (OSError, TimeoutError) as exc:
            raise transient(f"Could not connect to {what}: {exc or type(exc).__name__}") from None

    async def check_endpoint(self, host: str, port: int, *, what: str) -> None:
        try:
            await self._deps.egress.resolve(host, port)
        except EgressBlocked as exc:
            raise blocked_error(exc, what) from None

    def aiohttp_connector(self, **options: Any) -> GuardedConnector:
        return GuardedConnector(self._deps.egress, **options)

    def egress_refusal(self, exc: BaseException, what: str) -> ActionError | None:
        blocked = find_cause(exc, EgressBlocked)
        return blocked_error(blocked, what) if blocked is not None else None
