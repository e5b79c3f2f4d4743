"""A TCP listener standing in for an internal address that must never be reached."""

from __future__ import annotations

import asyncio

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
