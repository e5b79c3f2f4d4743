"""`latency`: from producing an event to the sink receiving its request, at a steady rate.

The dispatcher, executor and health services run as real processes on the bench's own topics. Each
event carries the time it was produced (µs) in its payload; the step's template copies it into the
request body and the sink subtracts it from its clock on arrival (same machine, same clock).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer

from bench.harness import Process, median, percentile, say, service, wait_until
from bench.stack import BenchStack
from bench.workload import event, now_us
from shared.kafka.security import kafka_security


async def steady(
    stack: BenchStack, keys: Sequence[tuple[int, int]], *, tag: str, rate: int, seconds: float
) -> int:
    """Produce ``rate`` events per second for ``seconds`` on a fixed schedule; returns how many."""
    producer = AIOKafkaProducer(**kafka_security(stack.settings), acks="all", linger_ms=0)
    await producer.start()
    rng = random.Random(tag)
    total = int(rate * seconds)
    pending = []
    try:
        began = time.perf_counter()
        for i in range(total):
            delay = began + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            dep, etype = keys[rng.randrange(len(keys))]
            pending.append(
                await producer.send(
                    stack.settings.topic_events,
                    key=str(dep).encode(),
                    value=event(f"{tag}-{i}", dep, etype, i, sent_us=now_us()),
                )
            )
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return total


async def measure(
    stack: BenchStack, keys: Sequence[tuple[int, int]], *, rate: int, seconds: float
) -> dict[str, Any]:
    settings = stack.settings
    await stack.create_topics(settings)
    processes: list[Process] = [
        service(name, settings, **stack.env()).start() for name in ("dispatcher", "executor", "health")
    ]
    try:
        await stack.sink_reset()
        say("latency: warm-up")
        warm = await steady(stack, keys, tag=f"latency-{rate}-warm", rate=rate, seconds=3)

        async def received(n: int) -> bool:
            return int((await stack.sink_stats())["count"]) >= n

        await wait_until(
            lambda: received(warm), timeout=120, what="warm-up events delivered", watch=processes
        )
        await asyncio.sleep(1)
        await stack.sink_reset()
        say(f"latency: {rate} events/s for {seconds:.0f} s")
        total = await steady(stack, keys, tag=f"latency-{rate}", rate=rate, seconds=seconds)
        await wait_until(
            lambda: received(total), timeout=120, what="latency events delivered", watch=processes
        )
        latencies = [float(v) for v in (await stack.sink_stats())["latencies_ms"]]
    finally:
        for process in processes:
            process.stop()
    say(
        f"latency: p50 {median(latencies):.1f} ms, p99 {percentile(latencies, 99):.1f} ms over {len(latencies)}"
    )
    return {
        "rate_per_s": rate,
        "p50_ms": round(median(latencies), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "p90_ms": round(percentile(latencies, 90), 2),
        "max_ms": round(max(latencies, default=0.0), 2),
        "events": len(latencies),
        "seconds": seconds,
    }
