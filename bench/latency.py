"""`latency`: from producing an event to the sink receiving its request, at a steady rate.

The dispatcher, executor and health services run as real processes on the bench's own topics. Each
event carries the time it was produced (µs) in its payload; the step's template copies it into the
request body and the sink subtracts it from its clock on arrival (same machine, same clock).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer, TopicPartition
from sqlalchemy import text

from bench.cpu import CpuMeter
from bench.harness import RUN_DIR, Process, median, percentile, say, service, wait_until
from bench.stack import BenchStack
from bench.workload import event, now_us
from shared.kafka.clients import create_reader
from shared.kafka.security import kafka_security

# The stages of an event's way to the sink, in order, and where each time comes from: the payload
# (produced), the services' stamps (shared/probes.py), the database (queued_on = the store
# transaction's start, started_on = the claim statement's), the run message's Kafka timestamp (ms),
# the sink's clock (received). Each stage's figure is the time from the previous point to it.
STAGES = (
    "produced",
    "dispatcher.fetched",
    "run.queued_on",
    "run_message.timestamp",
    "executor.fetched",
    "run.started_on",
    "executor.claimed",
    "step.started",
    "request.started",
    "sink.received",
)


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


async def run_message_times(stack: BenchStack, run_ids: set[int]) -> dict[int, int]:
    """The Kafka timestamp (µs, from the record's ms) of each of these runs' messages."""
    settings = stack.settings
    reader = create_reader(settings)
    await reader.start()
    found: dict[int, int] = {}
    try:
        partitions = [TopicPartition(settings.topic_runs, p) for p in range(settings.partitions_runs)]
        reader.assign(partitions)
        ends = await reader.end_offsets(partitions)
        await reader.seek_to_beginning(*partitions)
        while [tp for tp, end in ends.items() if await reader.position(tp) < end]:
            for records in (await reader.getmany(timeout_ms=1000, max_records=5000)).values():
                for record in records:
                    run_id = int(orjson.loads(record.value or b"{}").get("RunId", 0))
                    if run_id in run_ids and run_id not in found:
                        found[run_id] = record.timestamp * 1000
    finally:
        await reader.stop()
    return found


def read_stamps(path: Path) -> dict[str, dict[str, int]]:
    """stage → key → the first stamp (µs) of that key."""
    stamps: dict[str, dict[str, int]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 3:
                stamps.setdefault(parts[0], {}).setdefault(parts[1], int(parts[2]))
    return stamps


async def stage_breakdown(
    stack: BenchStack, *, tag: str, stamp_path: Path, arrivals: Sequence[Sequence[Any]], sample: int
) -> dict[str, Any]:
    """Per-stage p50/p99 (ms) over every ``sample``-th event of the phase tagged ``tag``."""
    async with stack.engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT event_id, workflow_run_id, (extract(epoch FROM queued_on) * 1e6)::bigint, "
                    "(extract(epoch FROM started_on) * 1e6)::bigint, input_payload FROM workflow_runs "
                    "WHERE event_id LIKE :prefix AND event_id NOT LIKE '%-warm-%'"
                ),
                {"prefix": f"{tag}-%"},
            )
        ).all()
    received = {int(call_id): int(at) for call_id, at in arrivals if call_id is not None}
    stamps = read_stamps(stamp_path)
    by_call: dict[int, dict[str, int]] = {}
    for event_id, run_id, queued, started, payload in rows:
        call_id = int(event_id.rsplit("-", 1)[1])
        if call_id % sample:
            continue
        points = {
            "produced": int(payload["bench"]["sent"]),
            "run.queued_on": int(queued),
            "run.started_on": int(started or 0),
            "run_id": int(run_id),
        }
        found = stamps.get("dispatcher.fetched", {}).get(event_id)
        if found is not None:
            points["dispatcher.fetched"] = found
        for stage in ("executor.fetched", "executor.claimed", "step.started", "request.started"):
            found = stamps.get(stage, {}).get(str(run_id))
            if found is not None:
                points[stage] = found
        if call_id in received:
            points["sink.received"] = received[call_id]
        by_call[call_id] = points
    message_times = await run_message_times(stack, {p["run_id"] for p in by_call.values()})
    for points in by_call.values():
        if points["run_id"] in message_times:
            points["run_message.timestamp"] = message_times[points["run_id"]]
    return stage_figures(list(by_call.values()), sample)


def stage_figures(events: Sequence[dict[str, int]], sample: int = 1) -> dict[str, Any]:
    """Per-stage p50/p99 (ms) over the events that have a time (µs) for every point of STAGES."""
    complete = [p for p in events if all(stage in p for stage in STAGES)]
    stages: dict[str, Any] = {}
    for before, after in zip(STAGES, STAGES[1:], strict=False):
        gaps = [(p[after] - p[before]) / 1000 for p in complete]
        stages[f"{before} -> {after}"] = {
            "p50_ms": round(median(gaps), 2),
            "p99_ms": round(percentile(gaps, 99), 2),
        }
    totals = [(p["sink.received"] - p["produced"]) / 1000 for p in complete]
    return {
        "sampled": len(complete),
        "every_nth_event": sample,
        "total": {"p50_ms": round(median(totals), 2), "p99_ms": round(percentile(totals, 99), 2)},
        "stages": stages,
    }


def stage_table(breakdown: dict[str, Any]) -> str:
    lines = [f"  {'stage':<48} {'p50 ms':>8} {'p99 ms':>8}"]
    for name, figure in breakdown["stages"].items():
        lines.append(f"  {name:<48} {figure['p50_ms']:>8.2f} {figure['p99_ms']:>8.2f}")
    total = breakdown["total"]
    lines.append(
        f"  {'total (produced -> sink.received)':<48} {total['p50_ms']:>8.2f} {total['p99_ms']:>8.2f}"
    )
    return "\n".join(lines)


async def measure(
    stack: BenchStack, keys: Sequence[tuple[int, int]], *, rate: int, seconds: float, sample: int = 1
) -> dict[str, Any]:
    settings = stack.settings
    await stack.create_topics(settings)
    stamp_path = RUN_DIR / "logs" / f"stages-{rate}-{time.time_ns()}.log"
    stamp_path.parent.mkdir(parents=True, exist_ok=True)
    processes: list[Process] = [
        service(name, settings, **stack.env(), WF_STAGE_LOG=str(stamp_path)).start()
        for name in ("dispatcher", "executor", "health")
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
        meter = CpuMeter({**{p.name: (p.pid, False) for p in processes}, **stack.infra_pids()})
        meter.start()
        db_before = await database_work(stack)
        total = await steady(stack, keys, tag=f"latency-{rate}", rate=rate, seconds=seconds)
        await wait_until(
            lambda: received(total), timeout=120, what="latency events delivered", watch=processes
        )
        meter.stop()
        stats = await stack.sink_stats()
        latencies = [float(v) for v in stats["latencies_ms"]]
    finally:
        for process in processes:
            process.stop()
    # A backend reports its counters when it ends (or idle, at most once a second): after the stop.
    db_work = {
        name: round((value - db_before[name]) / max(len(latencies), 1), 2)
        for name, value in (await database_work(stack)).items()
    }
    say(
        f"latency: p50 {median(latencies):.1f} ms, p99 {percentile(latencies, 99):.1f} ms over {len(latencies)}"
    )
    breakdown = await stage_breakdown(
        stack, tag=f"latency-{rate}", stamp_path=stamp_path, arrivals=stats["arrivals"], sample=sample
    )
    say(f"latency at {rate}/s by stage ({breakdown['sampled']} events):\n{stage_table(breakdown)}")
    cpu = meter.per_item_ms(len(latencies))
    say(f"latency at {rate}/s: CPU ms per event: {cpu}; load {os.getloadavg()[0]:.2f}")
    say(f"latency at {rate}/s: database work per event: {db_work}")
    return {
        "rate_per_s": rate,
        "p50_ms": round(median(latencies), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "p90_ms": round(percentile(latencies, 90), 2),
        "max_ms": round(max(latencies, default=0.0), 2),
        "events": len(latencies),
        "seconds": seconds,
        "stages": breakdown,
        "cpu_ms_per_event": cpu,
        "database_per_event": db_work,
        "load_1min": round(os.getloadavg()[0], 2),
    }


async def database_work(stack: BenchStack) -> dict[str, float]:
    """PostgreSQL's commits, rollbacks and WAL fsyncs so far (all databases: the services' and the
    bench's own few): their difference over a phase divided by its events is each event's database
    work, a count where CPU time is a noisy measure."""
    async with stack.engine.connect() as conn:
        commits, rollbacks = (
            await conn.execute(text("SELECT sum(xact_commit), sum(xact_rollback) FROM pg_stat_database"))
        ).one()
        fsyncs = (
            await conn.execute(text("SELECT coalesce(sum(fsyncs), 0) FROM pg_stat_io WHERE object = 'wal'"))
        ).scalar_one()
    return {"commits": float(commits), "rollbacks": float(rollbacks), "wal_fsyncs": float(fsyncs)}
