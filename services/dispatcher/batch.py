"""Turning one batch of events into runs: the dispatcher's unit of work.

In one transaction per group of departments (two groups, stored concurrently): insert a run per
(event, matching workflow), skipping (workflow, EventId) pairs that already have one (the
database's unique constraint is the idempotency guard); count the
new runs against the daily cap and the per-minute windows; mark the over-cap ones Failed and the
deferred ones Pending with a ``next_attempt_on``. After the commit, the runs due now are produced
to the run topic (acks awaited). That hand-off runs while the batch loop stores the next batch; the
loop commits the offsets only after both, in order (``shared.kafka.batches``).

The event's uncommitted offset is the outbox of the runs it created: they are stored already marked
published (so the scheduler's sweep leaves them alone, and no second UPDATE per run is needed), and
if their messages were not acknowledged (crash, broker error, a partition revoked mid-batch), the
offset is not committed, the event is read again, and its runs that are still waiting for their first
claim are found on the unique conflict and produced again (executors claim idempotently). Deferred
runs are stored unpublished; the scheduler releases them when their window opens.
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
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.dispatcher import metrics
from services.dispatcher.events import ParsedEvent, PoisonMessage, parse_event
from services.dispatcher.matching import MatchIndex
from services.dispatcher.rate_limit import count_daily_runs, take_slots
from shared import probes
from shared.config import Settings
from shared.db.engine import StatementPool
from shared.enums import EventType, RunStatus
from shared.kafka.batches import Rest
from shared.kafka.dead_letter import send_dead_letters
from shared.logging import get_logger
from shared.plans import daily_cap_message, limits_for
from shared.runs.outbox import RunToPublish, announce_outcomes, produce_runs
from shared.runs.outcomes import run_outcome
from shared.runs.statements import CREATE, EXISTING_WAITING, LIMIT_NEW
from shared.tracing import context_from_headers, kafka_headers, tracer

log = get_logger(__name__)

# Concurrent store transactions per batch (see BatchDispatcher._store), for batches of at least
# SPLIT_AT runs: a small batch is cheaper in one transaction.
STORE_CONNECTIONS = 2
SPLIT_AT = 200


@dataclass(slots=True)
class NewRun:
    run_id: int
    workflow_id: int
    event_id: str
    department_id: int
    event_type: int
    order: int
    queued_on: datetime
    status: RunStatus = RunStatus.Pending
    next_attempt_on: datetime | None = None
    error: str | None = None
    traceparent: bytes | None = None
    redelivered: bool = False  # stored by an earlier delivery of its event, counted against the limits then
    is_test: bool = False


class BatchDispatcher:
    def __init__(
        self,
        engine: AsyncEngine,
        producer: AIOKafkaProducer,
        settings: Settings,
        index: MatchIndex,
        heads: StatementPool,
    ) -> None:
        self.engine = engine
        self.producer = producer
        self.settings = settings
        self.index = index
        self.heads = heads

    async def handle(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> Rest | None:
        """Store the batch's runs (committed when this returns); returns the hand-off of the due ones to
        executors, which the batch loop runs while the next batch is stored, and commits the offsets after."""
        started = time.perf_counter()
        events: list[ParsedEvent] = []
        poison: list[PoisonMessage] = []
        for record in records:
            parsed = parse_event(record, self.settings.max_event_bytes)
            if isinstance(parsed, ParsedEvent):
                events.append(parsed)
            else:
                poison.append(parsed)
        if probes.ENABLED:
            probes.stamp_many("dispatcher.fetched", [event.envelope.EventId for event in events])
        await self._dead_letter(poison)
        metrics.EVENTS_CONSUMED.inc(len(records))
        if any(event.test_workflow_id is None for event in events):
            await self._catch_up()

        candidates: list[tuple[ParsedEvent, int]] = []
        for event in events:
            # A test event is for the one workflow it names (enabled or not; the insert checks that it
            # belongs to the event's department); it is counted against the limits like any run.
            matched = (
                (event.test_workflow_id,)
                if event.test_workflow_id is not None
                else self.index.match(event.envelope.DepartmentId, int(event.envelope.EventType))
            )
            if not matched:
                metrics.EVENTS_UNMATCHED.inc()
            candidates.extend((event, workflow_id) for workflow_id in matched)
        metrics.BATCH_SIZE.observe(len(records))
        if not candidates:
            metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
            return None
        runs = await self._store(candidates)

        async def hand_off() -> None:
            await self._hand_off(runs)
            metrics.BATCH_SECONDS.observe(time.perf_counter() - started)

        return hand_off

    async def _catch_up(self) -> None:
        """Read-your-writes: every change committed before these events were fetched is in the index
        before they are matched (the background refresh usually got there first: then this is one
        single-row read)."""
        if await self.index.is_current(self.heads):
            return
        async with self.engine.connect() as conn:
            reloaded = await self.index.refresh(conn)
        metrics.INDEX_CATCH_UPS.inc()
        log.info("index.caught_up", departments=reloaded, change_id=self.index.applied)

    async def _dead_letter(self, poison: Sequence[PoisonMessage]) -> None:
        await send_dead_letters(self.producer, self.settings.topic_dlq, poison)
        for item in poison:
            metrics.DLQ_MESSAGES.labels(item.code).inc()

    async def _store(self, candidates: list[tuple[ParsedEvent, int]]) -> list[NewRun]:
        """Store the runs in STORE_CONNECTIONS concurrent transactions, split by department.

        One transaction keeps one PostgreSQL backend, i.e. one core, busy; the inserts (with their index
        entries) are most of a batch's cost. Split by department, the transactions share no run key and
        no rate-limit row, so they never wait on each other, and a department's runs keep their order
        within its transaction. If one fails the whole batch is retried: the runs the other committed
        are found again on the unique conflict (see the module docstring).
        """
        groups: dict[int, list[tuple[int, ParsedEvent, int]]] = defaultdict(list)
        ways = STORE_CONNECTIONS if len(candidates) >= SPLIT_AT else 1
        for position, (event, workflow_id) in enumerate(candidates):
            groups[event.envelope.DepartmentId % ways].append((position, event, workflow_id))
        stored = await asyncio.gather(
            *(self._store_group(g) for g in groups.values()), return_exceptions=True
        )
        runs: list[NewRun] = []
        for result in stored:
            if isinstance(result, BaseException):
                raise result
            runs.extend(result)
        runs.sort(key=lambda r: r.order)
        return runs

    async def _store_group(self, candidates: list[tuple[int, ParsedEvent, int]]) -> list[NewRun]:
        # A workflow deleted while this batch was being stored fails the foreign key; retrying re-joins
        # against the workflows that still exist.
        for attempt in range(3):
            try:
                async with self.engine.begin() as conn:
                    runs = await self._insert(conn, candidates)
                    new = [r for r in runs if not r.redelivered]
                    await self._apply_limits(conn, new)
                    await self._settle(conn, new)
                return runs
            except IntegrityError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _insert(
        self, conn: AsyncConnection, candidates: list[tuple[int, ParsedEvent, int]]
    ) -> list[NewRun]:
        rows: list[dict[str, object]] = []
        order: dict[tuple[int, str], tuple[int, ParsedEvent]] = {}
        for position, event, workflow_id in candidates:
            env = event.envelope
            row: dict[str, object] = {
                "workflow_id": workflow_id,
                "department_id": env.DepartmentId,
                "event_type": int(env.EventType),
                "event_id": env.EventId,
                "payload": orjson.Fragment(event.payload_json),
                "occurred_on": env.OccurredOn,
            }
            if event.test_workflow_id is not None:
                row["is_test"] = True
            rows.append(row)
            order.setdefault((workflow_id, env.EventId), (position, event))
        result = await conn.execute(CREATE, {"rows": orjson.dumps(rows).decode()})
        runs = [self._run(order, *row) for row in result]
        metrics.EVENTS_DUPLICATE.inc(len(candidates) - len(runs))
        if len(runs) < len(order):
            inserted = {(r.workflow_id, r.event_id) for r in runs}
            keys = [{"workflow_id": w, "event_id": e} for (w, e) in order if (w, e) not in inserted]
            existing = await conn.execute(EXISTING_WAITING, {"keys": orjson.dumps(keys).decode()})
            again = [self._run(order, *row, redelivered=True) for row in existing]
            metrics.RUNS_RELEASED.labels("redelivered").inc(len(again))
            runs.extend(again)
        runs.sort(key=lambda r: r.order)  # the limits defer or cap a department's later runs
        return runs

    @staticmethod
    def _run(
        order: dict[tuple[int, str], tuple[int, ParsedEvent]],
        run_id: int,
        workflow_id: int,
        event_id: str,
        queued_on: datetime,
        *,
        redelivered: bool = False,
    ) -> NewRun:
        position, event = order[(workflow_id, event_id)]
        return NewRun(
            run_id,
            workflow_id,
            event_id,
            event.envelope.DepartmentId,
            int(event.envelope.EventType),
            position,
            queued_on,
            traceparent=event.traceparent,
            redelivered=redelivered,
            is_test=event.test_workflow_id is not None,
        )

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
                LIMIT_NEW,
                {
                    "ids": [r.run_id for r in changed],
                    "statuses": [int(r.status) for r in changed],
                    "next": [r.next_attempt_on for r in changed],
                    "errors": [r.error for r in changed],
                },
            )

    async def _hand_off(self, runs: list[NewRun]) -> None:
        """Produce the due runs' messages (and the capped runs' outcomes) and await their acks."""
        due = [r for r in runs if r.status is RunStatus.Pending and r.next_attempt_on is None]
        capped = [r for r in runs if r.status is RunStatus.Failed]
        deferred = sum(1 for r in runs if r.next_attempt_on is not None)
        await produce_runs(
            self.producer,
            self.settings,
            [RunToPublish(r.run_id, r.department_id, headers=_dispatch_span(r)) for r in due],
        )
        # The capped runs' outcomes: their rows are the outbox (the scheduler publishes what fails here).
        await announce_outcomes(
            self.engine,
            self.producer,
            self.settings,
            [
                run_outcome(
                    run.run_id,
                    run.workflow_id,
                    run.department_id,
                    RunStatus.Failed,
                    run.is_test,
                    1,
                    run.queued_on,
                    None,
                    run.queued_on,
                    run.error,
                )
                for run in capped
            ],
        )
        metrics.RUNS_CREATED.labels("due").inc(sum(1 for r in due if not r.redelivered))
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
