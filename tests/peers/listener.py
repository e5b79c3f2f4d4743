"""Loopback helpers for the peers: a TCP listener standing in for an internal address that must never
be reached, a port where nothing listens, and the start/stop shape of the peers run in a thread or
a child process."""

from __future__ import annotations

import asyncio
import socket
from typing import Self

INTERNAL = "127.0.0.2"  # loopback, but outside an allowance of 127.0.0.1/32


class Listener:
    """A TCP listener that records every connection and the bytes sent to it (answers nothing)."""

    def __init__(self) -> None:
        self.connections = 0
        self.received = b""
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Listener:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                self.received += await asyncio.wait_for(reader.read(65536), 2)
            except TimeoutError:
                pass
            writer.close()

        self._server = await asyncio.start_server(handle, INTERNAL, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


def unused_port() -> int:
    """A loopback port nothing listens on (a server that is down, or one about to be started)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class StartedPeer:
    """A peer used as ``with Peer(...) as peer:``: ``start()`` on entry, ``stop()`` on exit."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
