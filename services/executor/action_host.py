"""The executor's side of ``shared.actions.spec.ActionHost``: HTTP through its egress guard, its settings."""

from __future__ import annotations

import socket
from typing import Any

import httpx

from services.executor.actions.base import ActionDeps, ActionSettings
from services.executor.actions.http_requests import blocked_error, http_request
from services.executor.egress import EgressBlocked
from shared import probes
from shared.actions.outcomes import transient
from shared.actions.replies import HttpReply
from shared.actions.spec import SendQuota


class ExecutorHost:
    """Implements ``ActionHost`` for one step's ``ActionDeps``."""

    __slots__ = ("_deps",)

    def __init__(self, deps: ActionDeps) -> None:
        self._deps = deps

    @property
    def settings(self) -> ActionSettings:
        return self._deps.settings

    @property
    def quota(self) -> SendQuota:
        return self._deps.quota

    async def http_request(self, method: str, url: str | httpx.URL, **options: Any) -> HttpReply:
        """``ActionHost.http_request`` (its keyword arguments are documented there) through this
        executor's egress guard."""
        if probes.ENABLED:
            probes.stamp("request.started", probes.CURRENT_RUN.get())
        return await http_request(self._deps.egress, method, url, **options)

    async def connect_socket(self, host: str, port: int, *, timeout: float, what: str) -> socket.socket:
        try:
            return await self._deps.egress.connect_socket(host, port, timeout=timeout)
        except EgressBlocked as exc:
            raise blocked_error(exc, what) from None
        except (OSError, TimeoutError) as exc:
            raise transient(f"Could not connect to {what}: {exc or type(exc).__name__}") from None
