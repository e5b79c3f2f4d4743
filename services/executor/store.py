"""The executor's database statements: claim a run, load what it needs, record steps, settle it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db.coalescer import Coalescer
from shared.db.engine import StatementPool
from shared.logging import get_logger
from shared.runs.statements import CLAIM, CLEAR_OUTCOMES_PENDING_SQL, RECORD_STEPS, RENEW, RENEW_MANY, SETTLE

log = get_logger(__name__)

# The statements that change a run (claim, renew, record step, settle, clear the outcome mark) are in
# shared/runs/statements.py. Claims, step records and settlements of the runs in flight are coalesced
# (shared/db/coalescer.py): one statement serves every run that asked while the previous one was in flight.
LOAD_LEDGER = "SELECT workflow_step_id, outcome FROM run_step_ledger WHERE workflow_run_id = %(run_id)s"

LAST_ERRORS = """
    SELECT DISTINCT ON (workflow_step_id) workflow_step_id, error_message
    FROM workflow_run_logs
    WHERE workflow_run_id = %(run_id)s AND workflow_step_id = ANY(CAST(%(ids)s AS int[]))
    ORDER BY workflow_step_id, workflow_run_log_id DESC
    """

LOAD_CREDENTIALS = """
    SELECT workflow_credential_id, credential_type, public_data, encrypted_data
    FROM workflow_credentials
    WHERE department_id = %(dep)s AND workflow_credential_id = ANY(CAST(%(ids)s AS int[]))
    """

# The outcome outbox (shared/runs/outbox.py): cleared once the outcome message is acknowledged, for
# every outcome acknowledged within ANNOUNCE_FLUSH_S at once (off the runs' path: two statements a
# second at most, where one per settled batch cost the execute figure a few per cent).
ANNOUNCE_FLUSH_S = 0.5


def _storable(value: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL; a peer's reply may contain one, and a log row that cannot be
    written would leave its (performed) step unrecorded."""
    return value.replace("\x00", "\ufffd") if value else value


@dataclass(slots=True)
class StepRecord:
    """One step attempt's log row, and its ledger outcome ("completed", "skipped", "failed") when
    the step must not be performed again. Serialised as is (orjson) into the statement's rows."""

    run_id: int
    step_id: int
    attempt: int
    status: int
    rendered: str | None
    result: str | None
    error: str | None
    started: datetime
    completed: datetime
    duration: int
    outcome: str | None

    def __post_init__(self) -> None:
        self.rendered, self.result, self.error = map(_storable, (self.rendered, self.result, self.error))


@dataclass(slots=True)
class Settlement:
    """How a run's attempt ends; ``final`` unless Retrying. ``records``: step records not written yet
    (the last step's), written by the settling statement (shared/runs/statements.py: SETTLE)."""

    run_id: int
    status: int
    final: bool
    error: str | None
    next_attempt_on: datetime | None
    attempt: int
    records: list[StepRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.error = _storable(self.error)


@dataclass(frozen=True, slots=True)
class ClaimedRun:
    run_id: int
    workflow_id: int
    department_id: int
    event_type: int
    event_id: str
    attempt: int
    is_test: bool
    payload: dict[str, Any]
    occurred_on: datetime | None
    queued_on: datetime
    started_on: datetime


@dataclass(frozen=True, slots=True)
class StepDefinition:
    step_id: int
    action_type: int
    step_order: int
    output_template: str
    action_config: str | None
    credential_id: int | None
    condition: str | None


@dataclass(slots=True)
class RunDefinition:
    workflow_name: str
    max_retry_count: int
    backoff_base_s: int
    plan: str
    steps: list[StepDefinition] = field(default_factory=list)


ClaimRow = tuple[ClaimedRun, RunDefinition | None, bool]


class RunStore:
    def __init__(self, engine: AsyncEngine, statements: StatementPool, owner: str, lease_s: float) -> None:
        self.engine = engine
        # Every statement here is atomic on its own: autocommit saves the BEGIN and COMMIT round trips,
        # and plain psycopg (prepared statements) SQLAlchemy's per-statement work.
        self.db = statements
        self.owner = owner
        self.lease_s = lease_s
        self._claims = Coalescer[int, ClaimRow | None]("claim", self._claim_batch)
        self._records = Coalescer[StepRecord, None]("record_step", self._record_batch)
        self._settlements = Coalescer[Settlement, tuple[Any, ...] | None]("settle", self._settle_batch)
        self._announced: list[int] = []
        self._announce_armed = False
        self._announce_tasks: set[asyncio.Task[None]] = set()

    async def claim(self, run_id: int) -> ClaimRow | None:
        """Claim the run and read its workflow and steps in the same round trip.

        Returns the run, its definition (None when the workflow was deleted) and whether the run was
        started before (a retry, or a run taken over from an executor that died), i.e. whether it may
        have steps in the ledger already.
        """
        return await self._claims.submit(run_id)

    async def _claim_batch(self, run_ids: Sequence[int]) -> list[ClaimRow | None]:
        async with self.db.connection() as conn:
            cursor = await conn.execute(
                CLAIM, {"ids": sorted(set(run_ids)), "owner": self.owner, "lease": self.lease_s}
            )
            claimed = {row[0]: _claim_row(row) for row in await cursor.fetchall()}
        # A run asked for twice in one batch (a redelivered message) is handed to the first asker only.
        return [claimed.pop(run_id, None) for run_id in run_ids]

    async def record_step(self, record: StepRecord) -> None:
        await self._records.submit(record)

    async def _record_batch(self, records: Sequence[StepRecord]) -> list[None]:
        async with self.db.connection() as conn:
            await conn.execute(RECORD_STEPS, {"records": orjson.dumps(records).decode()})
        return [None] * len(records)

    async def settle(self, settlement: Settlement) -> tuple[Any, ...] | None:
        """Write the settlement's step records, and finish the run's attempt (Completed, Failed, or
        Retrying later) if this executor still holds it; returns (workflow_id, department_id, queued_on, started_on, completed_on, is_test), or None
        when the run was cancelled or taken over meanwhile."""
        return await self._settlements.submit(settlement)

    async def _settle_batch(self, settlements: Sequence[Settlement]) -> list[tuple[Any, ...] | None]:
        records = [record for s in settlements for record in s.records]
        rows = orjson.dumps([_settlement_row(s) for s in settlements]).decode()
        params = {"rows": rows, "records": orjson.dumps(records).decode(), "owner": self.owner}
        async with self.db.connection() as conn:
            cursor = await conn.execute(SETTLE, params)
            settled = {row[0]: tuple(row[1:]) for row in await cursor.fetchall()}
        return [settled.pop(s.run_id, None) for s in settlements]

    def outcome_published(self, run_id: int) -> None:
        """The run's outcome message was acknowledged: its outbox mark goes, with the others acknowledged
        within ANNOUNCE_FLUSH_S, in one statement. Nothing waits on it: a mark left behind (crash,
        database error) only makes the scheduler publish the outcome again, which health counts once."""
        self._announced.append(run_id)
        if not self._announce_armed:
            self._announce_armed = True
            task = asyncio.create_task(self._flush_announced(), name="outcome-marks")
            self._announce_tasks.add(task)
            task.add_done_callback(self._announce_tasks.discard)

    async def _flush_announced(self) -> None:
        try:
            await asyncio.sleep(ANNOUNCE_FLUSH_S)
        finally:
            self._announce_armed = False
        run_ids, self._announced = self._announced, []
        try:
            async with self.db.connection() as conn:
                await conn.execute(CLEAR_OUTCOMES_PENDING_SQL, {"ids": sorted(set(run_ids))})
        except Exception as exc:
            log.warning("run.outcome_marks_not_cleared", runs=len(run_ids), error=type(exc).__name__)

    async def ledger(self, run_id: int) -> dict[int, str]:
        async with self.db.connection() as conn:
            cursor = await conn.execute(LOAD_LEDGER, {"run_id": run_id})
            return dict(await cursor.fetchall())

    async def credentials(
        self, department_id: int, ids: list[int]
    ) -> dict[int, tuple[int, dict[str, Any], str]]:
        if not ids:
            return {}
        async with self.db.connection() as conn:
            cursor = await conn.execute(LOAD_CREDENTIALS, {"dep": department_id, "ids": ids})
            return {
                cid: (ctype, public or {}, token) for cid, ctype, public, token in await cursor.fetchall()
            }

    async def last_errors(self, run_id: int, step_ids: list[int]) -> dict[int, str]:
        """The error each step's latest log row shows."""
        async with self.db.connection() as conn:
            cursor = await conn.execute(LAST_ERRORS, {"run_id": run_id, "ids": step_ids})
            return {step_id: error for step_id, error in await cursor.fetchall() if error}

    async def renew(self, run_id: int) -> bool:
        async with self.db.connection() as conn:
            cursor = await conn.execute(RENEW, {"run_id": run_id, "owner": self.owner, "lease": self.lease_s})
            return await cursor.fetchone() is not None

    async def renew_many(self, run_ids: list[int]) -> None:
        if run_ids:
            async with self.db.connection() as conn:
                await conn.execute(RENEW_MANY, {"ids": run_ids, "owner": self.owner, "lease": self.lease_s})


def _settlement_row(s: Settlement) -> dict[str, Any]:
    """A settlement's row of SETTLE, its records apart (they go in the statement's own list)."""
    return {
        "run_id": s.run_id,
        "status": s.status,
        "final": s.final,
        "error": s.error,
        "next_attempt_on": s.next_attempt_on,
        "attempt": s.attempt,
    }


def _claim_row(row: Any) -> ClaimRow:
    # CLAIM returns the ClaimedRun's fields in order, then whether it resumed, then the definition.
    *fields, resumed, name, max_retry, backoff, plan, steps = row
    fields[7] = fields[7] or {}  # the payload
    definition = None
    if name is not None:
        definition = RunDefinition(
            name, max_retry, backoff, plan, [StepDefinition(*step) for step in steps or []]
        )
    return ClaimedRun(*fields), definition, bool(resumed)
