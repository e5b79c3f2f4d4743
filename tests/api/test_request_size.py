"""The 1 MiB request limit holds for bodies that declare no length: a chunked body is counted as it
streams and refused with 413 once it passes 1 MiB, before authentication and parsing, and the server
never holds more than about that much of it."""

from __future__ import annotations

import asyncio
import re
import select
import socket
from collections.abc import AsyncIterator

import httpx
import psutil

from shared.config import Settings
from tests.api.conftest import assert_error, workflow_body
from tests.support.helpers import wait_for
from tests.support.processes import ServiceProcess

MIB = 1024 * 1024
CHUNK = b"x" * 65536


def _write_routes(app: object) -> list[tuple[str, str]]:
    paths = app.openapi()["paths"]  # type: ignore[attr-defined]
    found = []
    for path, operations in paths.items():
        for method in operations:
            if method in {"post", "put", "patch", "delete"}:
                found.append((method.upper(), re.sub(r"\{[^}]+\}", "1", path)))
    return found


class Stream:
    """A chunked body of up to `limit` bytes that counts how much of it the server pulled."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.sent < self.limit:
            self.sent += len(CHUNK)
            yield CHUNK


async def test_every_write_route_refuses_a_chunked_body_over_one_mib_without_reading_it(
    api_app: object, anonymous_api: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    routes = _write_routes(api_app)
    assert len(routes) >= 10, routes
    for client in (anonymous_api, api):  # no token, then a valid one: 413 either way
        for method, path in routes:
            body = Stream(64 * MIB)
            response = await client.request(method, path, content=body)
            assert_error(response, 413, "1 MiB")
            assert body.sent <= MIB + 2 * len(CHUNK), (method, path, body.sent)


async def test_a_chunked_body_within_the_limit_is_accepted(api: httpx.AsyncClient) -> None:
    # Whitespace padding keeps the JSON valid and the body near (but under) the limit.
    payload = httpx.Request("POST", "/", json=workflow_body()).content + b" " * (MIB - 1000)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(payload), 1000):
            yield payload[start : start + 1000]

    response = await api.post(
        "/api/v4/workflows", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["Name"] == "Page the duty officer"


def _stream_until_answered(port: int, total: int) -> tuple[bytes, int]:
    """Send a chunked POST of up to `total` bytes over a plain socket, stopping when the server answers
    (or closes); return the answer and how many body bytes went out."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(
        b"POST /api/v4/workflows HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    frame = b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK)
    sent = 0
    answer = b""
    try:
        while sent < total:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break  # an answer (or a close) before the body ended
            try:
                sock.sendall(frame)
            except OSError:  # reset or broken pipe: the server closed after answering
                break
            sent += len(CHUNK)
        else:
            sock.sendall(b"0\r\n\r\n")
        try:
            while b"\r\n\r\n" not in answer:
                more = sock.recv(65536)
                if not more:
                    break
                answer += more
        except OSError:
            pass
    finally:
        sock.close()
    return answer, sent


async def test_real_server_answers_413_to_an_endless_chunked_body_and_its_memory_stays_flat(
    settings: Settings, tmp_path: object
) -> None:
    server = ServiceProcess("api", settings, tmp_path).start()  # type: ignore[arg-type]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:

            async def up() -> bool:
                try:
                    return (await client.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_for(up, timeout=60)
        assert server.proc is not None
        process = psutil.Process(server.proc.pid)
        before = process.memory_info().rss
        answer, sent = await asyncio.to_thread(_stream_until_answered, server.port, 150 * MIB)
        after = process.memory_info().rss
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert sent < 64 * MIB, sent  # answered long before the body ended
        assert after - before < 20 * MIB, (before, after)
    finally:
        server.terminate()
