"""An HTTP load generator (aiohttp: a lighter client than httpx, so more of the CPU goes to the server).

    python -m bench.loadgen --url U [--token T] --concurrency C --seconds S [--warmup W]

Prints one JSON line: requests, seconds, requests_per_s, errors and latency percentiles in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import aiohttp
import orjson


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(-(-q * len(ordered) // 100)) - 1))]


async def load(
    url: str, token: str | None, concurrency: int, seconds: float, warmup: float
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    connector = aiohttp.TCPConnector(limit=concurrency)
    latencies: list[float] = []
    errors = 0
    measuring = False
    stop_at = 0.0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while True:
            started = time.perf_counter()
            if started >= stop_at:
                return
            async with session.get(url, headers=headers) as reply:
                await reply.read()
                ok = reply.status == 200
            if measuring:
                latencies.append((time.perf_counter() - started) * 1000)
                errors += 0 if ok else 1

    async with aiohttp.ClientSession(connector=connector) as session:
        stop_at = time.perf_counter() + warmup
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        measuring = True
        began = time.perf_counter()
        stop_at = began + seconds
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "requests_per_s": len(latencies) / elapsed,
        "errors": errors,
        "p50_ms": _percentile(latencies, 50),
        "p95_ms": _percentile(latencies, 95),
        "p99_ms": _percentile(latencies, 99),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--token")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    args = parser.parse_args()
    result = asyncio.run(load(args.url, args.token, args.concurrency, args.seconds, args.warmup))
    print(orjson.dumps(result).decode(), flush=True)


if __name__ == "__main__":
    main()
