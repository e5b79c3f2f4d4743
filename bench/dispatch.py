"""`dispatch`: events from the events topic to runs stored and run messages produced.

Each repetition produces its events to a topic of its own first; then the dispatcher (a real
``python -m services.dispatcher`` process) and the baseline (a bare aiokafka consume → produce loop,
``bench.baselines kafka``) each drain that same backlog in turn, in alternating order. The
dispatcher's span runs from the first run's ``queued_on`` (so process start-up and index loading are
not counted) to the later of the last run's ``published_on`` and the last run message's timestamp
(the dispatcher stores runs already marked published and produces their messages after the commit,
so ``published_on`` alone would leave out the last batch's hand-off); the baseline times itself the
same way, from its first batch to its last acknowledged and committed batch.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text

from bench.harness import (
    PairedFigures,
    bench_process,
    engine_for,
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
    process = service("dispatcher", settings).start()
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
            async with engine.connect() as conn:
                count, first_queued, last_published = (await conn.execute(query, {"p": f"{tag}-%"})).one()
            last_message = await last_message_time(settings, settings.topic_runs, settings.partitions_runs)
            seconds = max(float(last_published), last_message) - float(first_queued)
        finally:
            await engine.dispose()
    finally:
        process.stop()
    if count != events:
        raise RuntimeError(f"dispatch {tag}: expected {events} runs, found {count}")
    return float(count) / float(seconds)


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


async def run_baseline(stack: BenchStack, tag: str, events: int) -> float:
    settings = stack.isolated(tag)
    process = bench_process(
        f"baseline-kafka-{tag}",
        "bench.baselines",
        "kafka",
        "--bootstrap",
        settings.kafka_bootstrap,
        "--topic",
        settings.topic_events,
        "--out-topic",
        f"bench.{tag}.baseline",
        "--events",
        str(events),
        "--max-records",  # the dispatcher's batch size (with any --set override)
        str(settings.dispatcher_batch_max),
        env=settings_env_plain(),
    ).start()
    result = await process.result(timeout=300)
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
) -> tuple[float, float | None]:
    settings = stack.isolated(tag, database_url=database_url)
    await stack.create_topics(settings)
    await stack.create_topics(settings.model_copy(update={"topic_events": f"bench.{tag}.baseline"}))
    await produce_backlog(stack, settings.topic_events, tag, events, keys)
    base: float | None = None
    if baseline and baseline_first:
        base = await run_baseline(stack, tag, events)
    served = await run_dispatcher(stack, database_url, tag, events, profile=profile)
    if baseline and not baseline_first:
        base = await run_baseline(stack, tag, events)
    return served, base


async def measure(
    stack: BenchStack, keys: Sequence[tuple[int, int]], *, events: int, repetitions: int, warmup: int
) -> PairedFigures:
    say(f"dispatch: warm-up with {warmup} events")
    await one_repetition(
        stack, stack.settings.database_url, "dispatch-warm", warmup, keys, baseline_first=True
    )
    figures = PairedFigures()
    for rep in range(repetitions):
        served, base = await one_repetition(
            stack, stack.settings.database_url, f"dispatch-{rep}", events, keys, baseline_first=rep % 2 == 1
        )
        assert base is not None
        figures.service_per_s.append(served)
        figures.baseline_per_s.append(base)
        say(f"dispatch: repetition {rep + 1}/{repetitions}: {served:,.0f} events/s, baseline {base:,.0f}/s")
    return figures
