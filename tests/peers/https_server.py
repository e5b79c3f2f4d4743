"""A scriptable HTTPS server on loopback that records every request (aiohttp.web based)."""

from __future__ import annotations

import asyncio
import json as jsonlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.peers.peer import Peer
from tests.peers.tls import LocalCA

_DEFAULT_REPLY_BODY: dict[str, Any] = {"ok": True}


@dataclass
class Reply:
    """One scripted response; a dict or list body is sent as JSON."""

    status: int = 200
    body: bytes | str | dict[str, Any] | list[Any] = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class RecordedRequest:
    """A request as the peer received it; header keys are lower-case."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return jsonlib.loads(self.body)


class HttpsPeer(Peer):
    """HTTPS server on 127.0.0.1, random port, certificate for the given hostnames from the LocalCA; records every request."""

    def __init__(self, ca: LocalCA, hostnames: Sequence[str] = ("localhost", "127.0.0.1")) -> None:
        self._ca = ca
        self._hostnames = tuple(hostnames)
        self._scripts: dict[tuple[str, str], list[Reply]] = {}
        self._runner: web.AppRunner | None = None
        self.port: int = 0
        self.requests: list[RecordedRequest] = []

    async def start(self) -> None:
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner,
            "127.0.0.1",
            0,
            ssl_context=self._ca.server_context(*self._hostnames),
            shutdown_timeout=0.5,
        )
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def url(self, path: str = "/", host: str = "localhost") -> str:
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"https://{host}:{self.port}{path}"

    def reply(self, method: str, path: str, *replies: Reply) -> None:
        """Script ``method path``: replies are used in order and the last one repeats."""
        key = (method.upper(), path)
        if replies:
            self._scripts[key] = list(replies)
        else:
            self._scripts.pop(key, None)

    def requests_to(self, method: str, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method.upper() and r.path == path]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        headers: dict[str, str] = {}
        for name, value in request.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=request.query_string,
                headers=headers,
                body=await request.read(),
            )
        )
        reply = self._next_reply(request.method, request.path)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        return _to_response(reply)

    def _next_reply(self, method: str, path: str) -> Reply:
        script = self._scripts.get((method.upper(), path))
        if not script:
            return Reply(body=_DEFAULT_REPLY_BODY)
        return script.pop(0) if len(script) > 1 else script[0]


def _to_response(reply: Reply) -> web.Response:
    headers = dict(reply.headers)
    body = reply.body
    if isinstance(body, dict | list):
        payload = jsonlib.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    elif isinstance(body, str):
        payload = body.encode()
        headers.setdefault("Content-Type", "text/plain; charset=utf-8")
    else:
        payload = body
    return web.Response(status=reply.status, body=payload, headers=headers)
