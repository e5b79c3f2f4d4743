"""`scale`: dispatch throughput as the number of stored workflows grows (100, 10,000, 100,000).

Two cases, each size in a database of its own on the same server holding exactly that many workflows:

- **equal spread** (the figure, ``events_per_s``): 100 departments at every size, and the events aimed
  at the same 100 workflows (one per department, the only one on its event type; the others trigger
  on types never sent): the same departments per batch, workflows touched and runs per event at every
  size, so what changes is only how much is stored (``bench.workload.seed_equal_spread``);
- **spread over all** (``spread_over_all``): three workflows per department and the events aimed
  uniformly at all of them, so a larger table also means more departments and workflows per batch.

Sizes are measured round-robin (100, 10k, 100k, 100, ...) so that noise on the machine is spread over
all of them; the figure is the median per size, ``ratio`` = at 100,000 ÷ at 100.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bench import dispatch
from bench.harness import create_database, engine_for, median, say
from bench.stack import BenchStack
from bench.workload import seed_equal_spread, seed_workflows, touched_keys, workflow_keys

EQUAL_SPREAD_DEPARTMENTS = 100


async def measure(stack: BenchStack, *, sizes: list[int], events: int, repetitions: int) -> dict[str, Any]:
    equal = await measure_case(stack, sizes=sizes, events=events, repetitions=repetitions, equal=True)
    spread = await measure_case(stack, sizes=sizes, events=events, repetitions=repetitions, equal=False)
    return {**equal, "spread_over_all": spread}


async def measure_case(
    stack: BenchStack, *, sizes: list[int], events: int, repetitions: int, equal: bool
) -> dict[str, Any]:
    case = "equal" if equal else "spread"
    databases: dict[int, tuple[str, list[tuple[int, int]]]] = {}
    for size in sizes:
        url = await asyncio.to_thread(create_database, stack.infra, f"bench_scale_{case}_{size}")
        engine = engine_for(url)
        try:
            if equal:
                departments = EQUAL_SPREAD_DEPARTMENTS
                await seed_equal_spread(engine, total=size, departments=departments, sink_url=stack.sink_url)
                keys = touched_keys(departments)
            else:
                departments = await seed_workflows(engine, total=size, sink_url=stack.sink_url)
                keys = await workflow_keys(engine, 1, departments)
        finally:
            await engine.dispose()
        databases[size] = (url, keys)
        say(f"scale ({case}): {size:,} workflows stored ({departments:,} departments, {len(keys):,} touched)")
    per_size: dict[int, list[float]] = {size: [] for size in sizes}
    for rep in range(repetitions):
        for size in sizes:
            url, keys = databases[size]
            served, _ = await dispatch.one_repetition(
                stack, url, f"scale-{case}-{size}-{rep}", events, keys, baseline_first=False, baseline=False
            )
            per_size[size].append(served)
            say(
                f"scale ({case}): {size:,} workflows, repetition {rep + 1}/{repetitions}: {served:,.0f} events/s"
            )
    figures = [round(median(per_size[size]), 1) for size in sizes]
    return {
        "workflows": sizes,
        "events_per_s": figures,
        "events": events,
        "case": "equal spread: 100 departments, 100 workflows touched"
        if equal
        else "spread over all workflows",
        "ratio": round(figures[-1] / figures[0], 3) if figures[0] else 0.0,
        "repetitions": {str(size): [round(v, 1) for v in per_size[size]] for size in sizes},
    }
