"""`scale`: dispatch throughput as the number of stored workflows grows (100, 10,000, 100,000).

Each size gets a database of its own on the same server holding exactly that many workflows (three
per Paid department); events are aimed uniformly at all of them, so a larger table also means more
departments per batch. Sizes are measured round-robin (100, 10k, 100k, 100, ...) so that noise on
the machine is spread over all of them; the figure is the median per size.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bench import dispatch
from bench.harness import create_database, engine_for, median, say
from bench.stack import BenchStack
from bench.workload import seed_workflows, workflow_keys


async def measure(stack: BenchStack, *, sizes: list[int], events: int, repetitions: int) -> dict[str, Any]:
    databases: dict[int, tuple[str, list[tuple[int, int]]]] = {}
    for size in sizes:
        url = await asyncio.to_thread(create_database, stack.infra, f"bench_scale_{size}")
        engine = engine_for(url)
        try:
            departments = await seed_workflows(engine, total=size, sink_url=stack.sink_url)
            keys = await workflow_keys(engine, 1, departments)
        finally:
            await engine.dispose()
        databases[size] = (url, keys)
        say(f"scale: {size:,} workflows stored ({departments:,} departments)")
    per_size: dict[int, list[float]] = {size: [] for size in sizes}
    for rep in range(repetitions):
        for size in sizes:
            url, keys = databases[size]
            served, _ = await dispatch.one_repetition(
                stack, url, f"scale-{size}-{rep}", events, keys, baseline_first=False, baseline=False
            )
            per_size[size].append(served)
            say(f"scale: {size:,} workflows, repetition {rep + 1}/{repetitions}: {served:,.0f} events/s")
    figures = [round(median(per_size[size]), 1) for size in sizes]
    return {
        "workflows": sizes,
        "events_per_s": figures,
        "events": events,
        "ratio": round(figures[-1] / figures[0], 3) if figures[0] else 0.0,
        "repetitions": {str(size): [round(v, 1) for v in per_size[size]] for size in sizes},
    }
