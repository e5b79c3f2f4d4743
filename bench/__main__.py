"""`make bench` (``python -m bench``): start a dedicated PostgreSQL + Kafka, run the measurements of
bench/README.md, "Results file" (plus ``health``), print a table, write bench/results/latest.json and the plots.

    python -m bench [--quick] [--only dispatch,execute,latency,api,health,scale] [--keep]

``--quick`` shrinks every measurement (a smoke run, figures not comparable); ``--keep`` leaves the
servers running afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import time
from typing import Any

from bench import api, dispatch, execute, health, latency, report, scale
from bench.harness import RESULTS, say, start_infrastructure
from bench.stack import BenchStack
from bench.workload import seed_departments, workflow_keys

MEASUREMENTS = ("dispatch", "execute", "latency", "api", "health", "scale")
DEPARTMENTS = 1000  # of 3 workflows each (bench/README.md)


async def run(stack: BenchStack, only: set[str], quick: bool) -> dict[str, Any]:
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()}}
    await stack.start_sink()
    say(f"seeding {DEPARTMENTS} departments x 3 workflows")
    await seed_departments(stack.engine, first=1, departments=DEPARTMENTS, sink_url=stack.sink_url)
    keys = await workflow_keys(stack.engine, 1, DEPARTMENTS)
    if "dispatch" in only:
        events = 10_000 if quick else 100_000
        figures = await dispatch.measure(
            stack, keys, events=events, repetitions=1 if quick else 5, warmup=2_000 if quick else 10_000
        )
        results["dispatch"] = report.dispatch_json(events, figures)
    if "execute" in only:
        # 4 x 5,000 = the contract's 20,000 runs, as repetitions so that a median exists.
        per_rep, reps = (1_000, 1) if quick else (5_000, 4)
        exec_figures = await execute.measure(
            stack, DEPARTMENTS, runs=per_rep, repetitions=reps, warmup=300 if quick else 1_000
        )
        results["execute"] = report.execute_json(
            per_rep * reps, exec_figures, stack.settings.executor_concurrency
        )
        results["execute"]["runs_per_repetition"] = per_rep
    if "latency" in only:
        results["latency"] = await latency.measure(stack, keys, rate=200, seconds=5 if quick else 15)
        # Extra: the same path at a rate the executor sustains on this machine, i.e. the latency of an
        # event that does not queue behind others.
        results["latency_at_20_per_s"] = await latency.measure(
            stack, keys, rate=20, seconds=5 if quick else 15
        )
    if "api" in only or "health" in only:
        async with api.running_api(stack) as server:
            if "api" in only:
                results["api"] = await api.measure(
                    stack, server, repetitions=1 if quick else 3, seconds=3 if quick else 6
                )
            if "health" in only:
                results["health"] = await health.measure(
                    stack, server, runs=50_000 if quick else 1_000_000, seconds=3 if quick else 10
                )
    if "scale" in only:
        results["scale"] = await scale.measure(
            stack,
            sizes=[100, 10_000, 100_000],
            events=5_000 if quick else 30_000,
            repetitions=1 if quick else 2,
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--only", default=",".join(MEASUREMENTS))
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a setting of every service (experiments), e.g. dispatcher_batch_max=2000",
    )
    parser.add_argument("--keep", action="store_true", help="leave PostgreSQL and Kafka running")
    args = parser.parse_args()
    logging.getLogger("aiokafka").setLevel(logging.ERROR)  # retries on freshly created topics are expected
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    started = time.monotonic()
    say("starting PostgreSQL and Kafka under .run/bench")
    infra = start_infrastructure()
    stack = BenchStack(infra, overrides=dict(item.split("=", 1) for item in args.set))

    async def go() -> dict[str, Any]:
        try:
            return await run(stack, only, args.quick)
        finally:
            await stack.close()

    try:
        results = asyncio.run(go())
    finally:
        if not args.keep:
            infra.stop()
    results["took_s"] = round(time.monotonic() - started, 1)
    results["quick"] = args.quick
    if args.set:
        results["overrides"] = args.set
    print(report.table(results))
    # Only a full run replaces latest.json (the committed figures); experiments write beside it.
    complete = only >= set(MEASUREMENTS)
    name = "quick.json" if args.quick else ("latest.json" if complete else "partial.json")
    path = report.write(results, RESULTS / name)
    say(f"wrote {path}")
    if not args.quick and complete:
        from bench import plot

        for written in plot.plot(results, RESULTS):
            say(f"wrote {written}")


if __name__ == "__main__":
    main()
