"""Hand-off of runs to executors, and of outcomes to the health service: the run row is the outbox.

A run row is committed first with ``published_on`` NULL; its run message is produced after the
commit and the row is then marked published. If a process dies in between, the dispatcher's
scheduler finds the unpublished due run after a grace period and publishes it (at-least-once;
executors claim runs idempotently, so a duplicate message does nothing).

Outcomes likewise: the statement that makes a run final sets ``outcome_pending_since``; the outcome
message is produced after the commit and the mark is cleared once it is acknowledged. An outcome
whose publish failed (broker down, process killed in between) stays marked, and the scheduler
publishes it after the grace period (``statements.OUTCOMES_DUE``). The health service counts each run once
(``health_counted_runs``), so an outcome published twice is counted once.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.config import Settings
from shared.logging import get_logger
from shared.messages import RunMessage, RunOutcome
from shared.runs.statements import CLEAR_OUTCOMES_PENDING, PUBLISH

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RunToPublish:
    run_id: int
    department_id: int
    attempt_number: int = 1
    headers: tuple[tuple[str, bytes], ...] = ()  # e.g. the trace context of the event behind the run


def run_message(run: RunToPublish) -> bytes:
    return RunMessage(run.run_id, run.department_id, run.attempt_number).to_bytes()


Keyed = tuple[bytes, bytes, Sequence[tuple[str, bytes]]]  # key, value, headers

_PARTITIONER = DefaultPartitioner()
# One sender at a time per partition and producer. aiokafka's accumulator waits for the partition's
# pending batch to drain, but takes the whole elapsed time off its timeout again on every turn of that
# wait: with many coroutines queued on one partition (a burst of test runs, the scheduler beside the
# dispatcher) the timeout went negative within seconds and send_batch raised KafkaTimeoutError. In
# turn, each caller waits for at most one pending batch, as aiokafka expects.
_SEND_LOCKS: weakref.WeakKeyDictionary[AIOKafkaProducer, dict[tuple[str, int], asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


async def _send_batch(
    producer: AIOKafkaProducer, batch: BatchBuilder, topic: str, partition: int
) -> asyncio.Future[object]:
    # Closed, the batch is complete: the sender takes it at once instead of letting it linger
    # (``linger_ms``) for messages that will never be appended to it.
    batch.close()
    locks = _SEND_LOCKS.setdefault(producer, {})
    lock = locks.get((topic, partition))
    if lock is None:
        lock = locks[(topic, partition)] = asyncio.Lock()
    async with lock:
        ack: asyncio.Future[object] = await producer.send_batch(batch, topic, partition=partition)
        return ack


async def produce_keyed(producer: AIOKafkaProducer, topic: str, messages: Iterable[Keyed]) -> None:
    """Produce messages in order and await their acks, one record batch per partition.

    The partition of each key is the one ``producer.send`` would pick (the default partitioner over the
    same partition list, computed once per key), so these messages and those sent one by one elsewhere
    (the scheduler, the API) share their key's partition and its order. Building the batches directly
    skips ``send``'s per-message coroutine, future and pure-Python murmur2 hash: in the dispatcher's
    profile, producing one message each was a fifth of its CPU.
    """
    partitions = list(await producer.partitions_for(topic))
    partition_of: dict[bytes, int] = {}
    batches: dict[int, BatchBuilder] = {}
    acks: list[asyncio.Future[object]] = []
    for key, value, headers in messages:
        partition = partition_of.get(key)
        if partition is None:
            partition = partition_of[key] = _PARTITIONER(key, partitions, partitions)
        batch = batches.get(partition)
        if batch is None:
            batch = batches[partition] = producer.create_batch()
        if batch.append(key=key, value=value, timestamp=None, headers=list(headers)) is None:
            acks.append(await _send_batch(producer, batch, topic, partition))  # full: send it
            batch = batches[partition] = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None, headers=list(headers)) is None:
                raise ValueError(f"a message of {len(value)} bytes does not fit in a record batch")
    for partition, batch in batches.items():
        acks.append(await _send_batch(producer, batch, topic, partition))
    await asyncio.gather(*acks)


async def produce_runs(producer: AIOKafkaProducer, settings: Settings, runs: Sequence[RunToPublish]) -> None:
    """Produce run messages (keyed by department, so a department's runs keep their order) and await acks."""
    if not runs:
        return
    await produce_keyed(
        producer,
        settings.topic_runs,
        ((str(run.department_id).encode(), run_message(run), run.headers) for run in runs),
    )


async def produce_outcomes(
    producer: AIOKafkaProducer, settings: Settings, outcomes: Sequence[RunOutcome]
) -> None:
    """Publish final run states for the health service (keyed by department) and await their acks."""
    if not outcomes:
        return
    futures = [
        await producer.send(
            settings.topic_results, value=outcome.encode(), key=str(outcome.DepartmentId).encode()
        )
        for outcome in outcomes
    ]
    await asyncio.gather(*futures)


def int_array(values: Sequence[int]) -> str:
    """A PostgreSQL array literal ('{1,2,3}') for ``CAST(:x AS bigint[])``: far cheaper to build than the
    driver's per-element dumping of a Python list, which showed in the dispatcher's profile."""
    return "{" + ",".join(str(int(v)) for v in values) + "}"


async def mark_published(conn: AsyncConnection, run_ids: Sequence[int]) -> None:
    if run_ids:
        await conn.execute(PUBLISH, {"ids": int_array(run_ids)})


async def publish_committed_runs(
    engine: AsyncEngine, producer: AIOKafkaProducer, settings: Settings, runs: Sequence[RunToPublish]
) -> None:
    await produce_runs(producer, settings, runs)
    async with engine.begin() as conn:
        await mark_published(conn, [r.run_id for r in runs])


async def clear_outcomes_pending(conn: AsyncConnection, run_ids: Sequence[int]) -> None:
    if run_ids:
        await conn.execute(CLEAR_OUTCOMES_PENDING, {"ids": int_array(run_ids)})


async def announce_outcomes(
    engine: AsyncEngine, producer: AIOKafkaProducer, settings: Settings, outcomes: Sequence[RunOutcome]
) -> bool:
    """Publish committed runs' outcomes and clear their outbox marks; False (and the marks left for
    the scheduler) when publishing failed."""
    if not outcomes:
        return True
    try:
        await produce_outcomes(producer, settings, outcomes)
    except Exception as exc:
        log.warning(
            "run.outcome_not_published",
            runs=[o.RunId for o in outcomes][:20],
            count=len(outcomes),
            error=type(exc).__name__,
        )
        return False
    async with engine.begin() as conn:
        await clear_outcomes_pending(conn, [o.RunId for o in outcomes])
    return True
