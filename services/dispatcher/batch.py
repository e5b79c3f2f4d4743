"""Turning one batch of events into runs: the dispatcher's unit of work.

Within one transaction: insert a run per (event, matching workflow), skipping (workflow, EventId)
pairs that already have one (the database's unique constraint is the idempotency guard); count the
new runs against the daily cap and the per-minute windows; mark the over-cap ones Failed and the
deferred ones Pending with a ``next_attempt_on``. After the commit, the runs due now are produced
to the run topic and marked published. Offsets are committed by the caller only after all that.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.dispatcher import metrics
from services.dispatcher.events import ParsedEvent, PoisonMessage, dead_letter_headers, parse_event
from services.dispatcher.matching import MatchIndex
from services.dispatcher.rate_limit import count_daily_runs, take_slots
from shared.config import Settings
from shared.enums import EventType, Plan, RunStatus
from shared.logging import get_logger
from shared.messages import RunOutcome
from shared.plans import limits_for
from shared.runs_outbox import RunToPublish, mark_published, produce_outcomes, produce_runs
from shared.tracing import context_from_headers, kafka_headers, tracer

log = get_logger(__name__)

# The batch travels as one JSON array unpacked by jsonb_to_recordset: orjson builds it in C, where
# psycopg's list-to-array dumping of six parallel lists was the dispatcher's largest CPU cost (py-spy,
# bench/README.md).
INSERT_RUNS = text(
    """
    INSERT INTO workflow_runs (workflow_id, department_id, status, trigger_event_type, event_id, attempt_number,
                               is_test, input_payload, occurred_on, queued_on)
    SELECT t.workflow_id, t.department_id, 0, t.event_type, t.event_id, 1, false, t.payload, t.occurred_on, now()
    FROM jsonb_to_recordset(CAST(:rows AS jsonb))
         AS t(workflow_id int, department_id int, event_type int, event_id text, payload jsonb,
              occurred_on timestamptz)
    JOIN workflows w ON w.workflow_id = t.workflow_id AND w.department_id = t.department_id
    ON CONFLICT (workflow_id, event_id) DO NOTHING
    RETURNING workflow_run_id, workflow_id, event_id, queued_on
    """
)

SETTLE_RUNS = text(
    """
    UPDATE workflow_runs r
    SET status = t.status, next_attempt_on = t.next_attempt_on, error_message = t.error,
        completed_on = CASE WHEN t.status = 3 THEN now() END
    FROM unnest(CAST(:ids AS bigint[]), CAST(:statuses AS int[]), CAST(:next AS timestamptz[]),
                CAST(:errors AS text[])) AS t(id, status, next_attempt_on, error)
    WHERE r.workflow_run_id = t.id
    """
)


@dataclass(slots=True)
class NewRun:
    run_id: int
    workflow_id: int
    department_id: int
    event_type: int
    order: int
    queued_on: datetime
    status: RunStatus = RunStatus.Pending
    next_attempt_on: datetime | None = None
    error: str | None = None
    traceparent: bytes | None = None


def daily_cap_message(plan: Plan, cap: int) -> str:
    return (
        f"Daily run limit reached: the {plan.value} plan allows {cap} runs per day; "
        "this run performed no action"
    )


class BatchDispatcher:
    def __init__(
        self, engine: AsyncEngine, producer: AIOKafkaProducer, settings: Settings, index: MatchIndex
    ) -> None:
        self.engine = engine
        self.producer = producer
        self.settings = settings
        self.index = index
        self._marking: asyncio.Task[None] | None = None

    async def handle(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        started = time.perf_counter()
        events: list[ParsedEvent] = []
        poison: list[PoisonMessage] = []
        for record in records:
            parsed = parse_event(record, self.settings.max_event_bytes)
            if isinstance(parsed, ParsedEvent):
                events.append(parsed)
            else:
                poison.append(parsed)
        await self._dead_letter(poison)
        metrics.EVENTS_CONSUMED.inc(len(records))

        candidates: list[tuple[ParsedEvent, int]] = []
        for event in events:
            matched = self.index.match(event.envelope.DepartmentId, int(event.envelope.EventType))
            if not matched:
                metrics.EVENTS_UNMATCHED.inc()
            candidates.extend((event, workflow_id) for workflow_id in matched)
        if candidates:
            runs = await self._store(candidates)
            await self._hand_off(runs)
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        metrics.BATCH_SIZE.observe(len(records))

    async def _dead_letter(self, poison: Sequence[PoisonMessage]) -> None:
        if not poison:
            return
        futures = []
        for item in poison:
            log.warning(
                "event.dead_lettered",
                reason=item.reason,
                partition=item.record.partition,
                offset=item.record.offset,
            )
            futures.append(
                await self.producer.send(
                    self.settings.topic_dlq,
                    value=item.record.value,
                    key=item.record.key,
                    headers=dead_letter_headers(item),
                )
            )
            metrics.DLQ_MESSAGES.labels(item.code).inc()
        for future in futures:
            await future

    async def _store(self, candidates: list[tuple[ParsedEvent, int]]) -> list[NewRun]:
        # A workflow deleted while this batch was being stored fails the foreign key; retrying re-joins
        # against the workflows that still exist.
        for attempt in range(3):
            try:
                async with self.engine.begin() as conn:
                    runs = await self._insert(conn, candidates)
                    await self._apply_limits(conn, runs)
                    await self._settle(conn, runs)
                return runs
            except IntegrityError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _insert(self, conn: AsyncConnection, candidates: list[tuple[ParsedEvent, int]]) -> list[NewRun]:
        rows: list[dict[str, object]] = []
        order: dict[tuple[int, str], tuple[int, ParsedEvent]] = {}
        for position, (event, workflow_id) in enumerate(candidates):
            env = event.envelope
            rows.append(
                {
                    "workflow_id": workflow_id,
                    "department_id": env.DepartmentId,
                    "event_type": int(env.EventType),
                    "event_id": env.EventId,
                    "payload": orjson.Fragment(event.payload_json),
                    "occurred_on": env.OccurredOn,
                }
            )
            order.setdefault((workflow_id, env.EventId), (position, event))
        result = await conn.execute(INSERT_RUNS, {"rows": orjson.dumps(rows).decode()})
        runs = []
        for run_id, workflow_id, event_id, queued_on in result:
            position, event = order[(workflow_id, event_id)]
            runs.append(
                NewRun(
                    run_id,
                    workflow_id,
                    event.envelope.DepartmentId,
                    int(event.envelope.EventType),
                    position,
                    queued_on,
                    traceparent=event.traceparent,
                )
            )
        metrics.EVENTS_DUPLICATE.inc(len(candidates) - len(runs))
        runs.sort(key=lambda r: r.order)
        return runs

    async def _apply_limits(self, conn: AsyncConnection, runs: list[NewRun]) -> None:
        by_department: dict[int, list[NewRun]] = defaultdict(list)
        for run in runs:
            by_department[run.department_id].append(run)

        daily_wanted = {}
        for dep, dep_runs in by_department.items():
            cap = limits_for(self.index.plan(dep)).daily_runs
            if cap is not None:
                daily_wanted[dep] = (len(dep_runs), cap)
        for dep, allowed in (await count_daily_runs(conn, daily_wanted)).items():
            plan = self.index.plan(dep)
            for run in by_department[dep][allowed:]:
                run.status = RunStatus.Failed
                run.error = daily_cap_message(plan, daily_wanted[dep][1])

        counted: dict[int, list[NewRun]] = {}
        for dep, dep_runs in by_department.items():
            limits = limits_for(self.index.plan(dep))
            metered = [
                r
                for r in dep_runs
                if r.status is RunStatus.Pending and EventType(r.event_type) not in limits.rate_exempt_events
            ]
            if metered:
                counted[dep] = metered
        grants = await take_slots(
            conn,
            {
                dep: (len(dep_runs), limits_for(self.index.plan(dep)).executions_per_minute)
                for dep, dep_runs in counted.items()
            },
        )
        for dep, dep_runs in counted.items():
            grant = grants[dep]
            for i, run in enumerate(dep_runs):
                if not grant.due_now(i):
                    run.next_attempt_on = grant.window_of(i)

    async def _settle(self, conn: AsyncConnection, runs: list[NewRun]) -> None:
        changed = [r for r in runs if r.status is not RunStatus.Pending or r.next_attempt_on is not None]
        if changed:
            await conn.execute(
                SETTLE_RUNS,
                {
                    "ids": [r.run_id for r in changed],
                    "statuses": [int(r.status) for r in changed],
                    "next": [r.next_attempt_on for r in changed],
                    "errors": [r.error for r in changed],
                },
            )

    async def _mark_published(self, run_ids: list[int]) -> None:
        async with self.engine.begin() as conn:
            await mark_published(conn, run_ids)

    async def flush(self) -> None:
        """Wait for the last batch's runs to be marked published (before the next marking, and at stop)."""
        task, self._marking = self._marking, None
        if task is None:
            return
        try:
            await task
        except Exception as exc:
            # Left unpublished, the runs are re-published by the scheduler after the grace period;
            # executors claim idempotently, so a second message does nothing.
            log.warning("runs.mark_published_failed", error=f"{type(exc).__name__}: {exc}"[:300])

    async def _hand_off(self, runs: list[NewRun]) -> None:
        due = [
            RunToPublish(r.run_id, r.department_id, headers=_dispatch_span(r))
            for r in runs
            if r.status is RunStatus.Pending and r.next_attempt_on is None
        ]
        capped = [r for r in runs if r.status is RunStatus.Failed]
        deferred = sum(1 for r in runs if r.next_attempt_on is not None)
        await produce_runs(self.producer, self.settings, due)
        await produce_outcomes(
            self.producer,
            self.settings,
            [
                RunOutcome(
                    RunId=run.run_id,
                    WorkflowId=run.workflow_id,
                    DepartmentId=run.department_id,
                    Status=RunStatus.Failed,
                    QueuedOn=run.queued_on,
                    CompletedOn=run.queued_on,
                    ErrorMessage=run.error,
                )
                for run in capped
            ],
        )
        if due:
            # Marking is bookkeeping for the scheduler's re-publish sweep, not part of the hand-off: the
            # messages are acknowledged, so the offsets may be committed and the next batch stored while
            # it runs (one marking in flight at a time). Saved ~20 % of a batch's time (bench/README.md).
            await self.flush()
            self._marking = asyncio.create_task(self._mark_published([r.run_id for r in due]))
        metrics.RUNS_CREATED.labels("due").inc(len(due))
        metrics.RUNS_CREATED.labels("deferred").inc(deferred)
        metrics.RUNS_CREATED.labels("daily_cap").inc(len(capped))


def _dispatch_span(run: NewRun) -> tuple[tuple[str, bytes], ...]:
    """For a traced event, a `dispatch` span in its trace, whose context the run message carries on."""
    if run.traceparent is None:
        return ()
    parent = context_from_headers([("traceparent", run.traceparent)])
    with tracer().start_as_current_span(
        "dispatch",
        context=parent,
        attributes={
            "workflows.run_id": run.run_id,
            "workflows.workflow_id": run.workflow_id,
            "workflows.department_id": run.department_id,
        },
    ):
        return tuple(kafka_headers())
