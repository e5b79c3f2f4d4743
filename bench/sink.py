"""The HTTPS sink: a minimal ASGI app on uvicorn (uvloop + httptools) with a local CA's certificate.

It acknowledges every POST with 200, counts them, and for bodies carrying a non-zero ``"sent"``
(microseconds since the epoch, stamped when the event was produced) records the end-to-end latency
and the arrival time (µs) per call id (the latency phase's stage breakdown).
``GET /stats`` returns the count and latencies; ``POST /reset`` clears them.

    python -m bench.sink --port P --cert cert.pem --key key.pem
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import trustme
import uvicorn

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_state: dict[str, Any] = {"count": 0, "latencies_ms": [], "arrivals": []}
_OK = b'{"ok":true}'
_HEADERS = [(b"content-type", b"application/json")]


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    reply = _OK
    path = scope["path"]
    if path == "/stats":
        reply = orjson.dumps(_state)
    elif path == "/reset":
        _state["count"] = 0
        _state["latencies_ms"] = []
        _state["arrivals"] = []
    else:
        _state["count"] += 1
        if b'"sent": 0}' not in body and b'"sent"' in body:
            arrived = time.time_ns() // 1000
            parsed = orjson.loads(body)
            sent = parsed.get("sent") or 0
            if sent:
                _state["latencies_ms"].append((arrived - sent) / 1000)
                _state["arrivals"].append((parsed.get("id"), arrived))
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": reply})


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a certificate for 127.0.0.1/localhost: (ca.pem, cert.pem, key.pem)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    paths = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    ca.cert_pem.write_to_path(str(paths[0]))
    cert.private_key_and_cert_chain_pem.write_to_path(str(paths[1]))
    cert.private_key_pem.write_to_path(str(paths[2]))
    return paths


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        ssl_certfile=args.cert,
        ssl_keyfile=args.key,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        backlog=2048,
    )


if __name__ == "__main__":
    main()
