"""`dispatch`: events from the events topic to runs stored and run messages produced.

Each repetition produces its events to a topic of its own first; then the dispatcher (a real
``python -m services.dispatcher`` process) and the baseline (a bare aiokafka consume → produce loop,
``bench.baselines kafka``) each drain that same backlog in turn, in alternating order. The
dispatcher's span runs from the first run's ``queued_on`` (so process start-up and index loading are
not counted): every clock here runs from the first batch fetched to the last offset commit
(the commit follows the last batch's acknowledgements), read from the process's own stamps
(``WF_STAGE_LOG``, ``shared/probes.py``), for the dispatcher and the tuned baseline alike.

Two baselines, both reported: the **tuned** one (``bench.baselines kafka-tuned``: the dispatcher's own
batch loop, depth-2 pipelining, 0.2 s commit interval and record-batch production, minus the
database) gives ``ratio``; the **naive** one (``bench.baselines kafka``: consume a batch → produce one
message each → await acks → commit, timed by itself to its last commit) is kept beside it.
``ratio`` is the median of the per-repetition ratios.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench.harness import (
    RUN_DIR,
    PairedFigures,
    bench_process,
    engine_for,
    median,
    say,
    service,
    settings_env_plain,
    wait_until,
)
from bench.stack import BenchStack, topic_size
from bench.workload import event
from shared.config import Settings


async def produce_backlog(
    stack: BenchStack, topic: str, tag: str, events: int, keys: Sequence[tuple[int, int]]
) -> None:
    rng = random.Random(tag)
    chosen = [keys[rng.randrange(len(keys))] for _ in range(events)]
    await stack.produce(
        topic,
        ((str(dep).encode(), event(f"{tag}-{i}", dep, etype, i)) for i, (dep, etype) in enumerate(chosen)),
    )


async def run_dispatcher(
    stack: BenchStack,
    database_url: str,
    tag: str,
    events: int,
    *,
    timeout: float = 300.0,
    profile: Any = None,
) -> float:
    settings = stack.isolated(tag, database_url=database_url)
    stamps = stamp_file(f"dispatcher-{tag}")
    process = service("dispatcher", settings, WF_STAGE_LOG=str(stamps)).start()
    try:
        if profile is not None:
            profile(process)

        async def all_produced() -> bool:
            return await topic_size(settings, settings.topic_runs, settings.partitions_runs) >= events

        await wait_until(
            all_produced, timeout=timeout, what=f"dispatching {events} events", watch=[process], interval=0.5
        )
        engine = engine_for(database_url)
        try:
            query = text(
                "SELECT count(*), extract(epoch FROM min(queued_on)), extract(epoch FROM max(published_on)) "
                "FROM workflow_runs WHERE event_id LIKE :p"
            )
            row: Any = None

            async def all_published() -> bool:
                nonlocal row
                async with engine.connect() as conn:
                    row = (
                        await conn.execute(
                            text(
                                "SELECT count(*) FILTER (WHERE published_on IS NOT NULL), count(*) FROM workflow_runs "
                                "WHERE event_id LIKE :p"
                            ),
                            {"p": f"{tag}-%"},
                        )
                    ).one()
                return bool(row[0] >= events)

            await wait_until(all_published, timeout=60, what="runs marked published", watch=[process])

            async def all_committed() -> bool:
                return committed_through(stamps) >= events

            await wait_until(
                all_committed, timeout=60, what="offsets committed", watch=[process], interval=0.2
            )
            async with engine.connect() as conn:
                count = (await conn.execute(query, {"p": f"{tag}-%"})).one()[0]
            seconds = stamped_span(stamps)
        finally:
            await engine.dispose()
    finally:
        process.stop()
    if count != events:
        raise RuntimeError(f"dispatch {tag}: expected {events} runs, found {count}")
    return float(count) / seconds


def stamp_file(name: str) -> Path:
    path = RUN_DIR / "logs" / f"stages-{name}-{time.time_ns()}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _stamps(path: Path, stage: str) -> list[tuple[str, int]]:
    """(key, µs) of every stamp of ``stage``."""
    if not path.exists():
        return []
    found = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == stage:
            found.append((parts[1], int(parts[2])))
    return found


def committed_through(path: Path) -> int:
    """The largest committed offset sum stamped so far (= events, partitions starting at 0)."""
    return max((int(key) for key, _ in _stamps(path, "offsets.committed")), default=0)


def stamped_span(path: Path) -> float:
    """Seconds from the first batch fetched to the last offset commit."""
    fetched = [at for _, at in _stamps(path, "dispatcher.fetched")]
    committed = [at for _, at in _stamps(path, "offsets.committed")]
    return (max(committed) - min(fetched)) / 1e6


async def last_message_time(settings: Settings, topic: str, partitions: int) -> float:
    """The latest (producer) timestamp of the last message of each partition, in epoch seconds."""
    from aiokafka import TopicPartition

    from shared.kafka.clients import create_reader

    consumer = create_reader(settings)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        waiting = {tp for tp, end in ends.items() if end > 0}
        for tp in waiting:
            consumer.seek(tp, ends[tp] - 1)
        latest = 0
        async with asyncio.timeout(30):
            while waiting:
                for tp, records in (await consumer.getmany(*waiting, timeout_ms=500)).items():
                    latest = max([latest, *(r.timestamp for r in records)])
                    waiting.discard(tp)
        return latest / 1000
    finally:
        await consumer.stop()


async def run_baseline(stack: BenchStack, tag: str, events: int, *, tuned: bool = True) -> float:
    settings = stack.isolated(tag)
    stamps = stamp_file(f"baseline-{tag}")
    process = bench_process(
        f"baseline-kafka-{tag}",
        "bench.baselines",
        "kafka-tuned" if tuned else "kafka",
        "--bootstrap",
        settings.kafka_bootstrap,
        "--topic",
        settings.topic_events,
        "--out-topic",
        f"bench.{tag}.baseline{'-tuned' if tuned else ''}",
        "--events",
        str(events),
        "--max-records",  # the dispatcher's batch size (with any --set override)
        str(settings.dispatcher_batch_max),
        env={**settings_env_plain(), "WF_STAGE_LOG": str(stamps)},
    ).start()
    result = await process.result(timeout=300)
    if tuned:
        return float(result["events"]) / stamped_span(stamps)
    return float(result["per_s"])


async def one_repetition(
    stack: BenchStack,
    database_url: str,
    tag: str,
    events: int,
    keys: Sequence[tuple[int, int]],
    *,
    baseline_first: bool,
    baseline: bool = True,
    profile: Any = None,
    naive: list[float] | None = None,
) -> tuple[float, float | None]:
    naive = [] if naive is None else naive
    settings = stack.isolated(tag, database_url=database_url)
    await stack.create_topics(settings)
    await stack.create_topics(settings.model_copy(update={"topic_events": f"bench.{tag}.baseline"}))
    await stack.create_topics(settings.model_copy(update={"topic_events": f"bench.{tag}.baseline-tuned"}))
    await produce_backlog(stack, settings.topic_events, tag, events, keys)
    base: float | None = None
    if baseline and baseline_first:
        base = await run_baseline(stack, tag, events)
        naive.append(await run_baseline(stack, tag, events, tuned=False))
    served = await run_dispatcher(stack, database_url, tag, events, profile=profile)
    if baseline and not baseline_first:
        naive.append(await run_baseline(stack, tag, events, tuned=False))
        base = await run_baseline(stack, tag, events)
    return served, base


@dataclass
class DispatchFigures(PairedFigures):
    """The dispatcher against the tuned baseline (the ratio), with the naive baseline beside it."""

    naive_per_s: list[float] = field(default_factory=list)

    def extra_json(self) -> dict[str, Any]:
        naive = PairedFigures(self.service_per_s, self.naive_per_s)
        return {
            "baseline": "tuned loop (bench.baselines kafka-tuned)",
            "naive_baseline_events_per_s": round(median(self.naive_per_s), 1),
            "naive_ratio": round(naive.ratio, 3),
            "naive_baseline_repetitions": [round(v, 1) for v in self.naive_per_s],
        }


async def measure(
    stack: BenchStack, keys: Sequence[tuple[int, int]], *, events: int, repetitions: int, warmup: int
) -> DispatchFigures:
    say(f"dispatch: warm-up with {warmup} events")
    await one_repetition(
        stack, stack.settings.database_url, "dispatch-warm", warmup, keys, baseline_first=True
    )
    figures = DispatchFigures()
    for rep in range(repetitions):
        served, base = await one_repetition(
            stack,
            stack.settings.database_url,
            f"dispatch-{rep}",
            events,
            keys,
            baseline_first=rep % 2 == 1,
            naive=figures.naive_per_s,
        )
        assert base is not None
        figures.service_per_s.append(served)
        figures.baseline_per_s.append(base)
        say(
            f"dispatch: repetition {rep + 1}/{repetitions}: {served:,.0f} events/s, tuned baseline "
            f"{base:,.0f}/s, naive {figures.naive_per_s[-1]:,.0f}/s"
        )
    return figures
