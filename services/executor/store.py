"""The executor's database statements: claim a run, load what it needs, record steps, settle it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

# A run can be claimed when it is waiting and due, or when its previous executor's lease ran out.
CLAIM = text(
    """
    WITH claimed AS (
        UPDATE workflow_runs
        SET status = 1, started_on = coalesce(started_on, now()), lease_owner = :owner,
            lease_until = now() + make_interval(secs => :lease)
        WHERE workflow_run_id = :run_id
          AND ((status IN (0, 5) AND coalesce(next_attempt_on, now()) <= now())
               OR (status = 1 AND lease_until < now()))
        RETURNING workflow_id, department_id, trigger_event_type, event_id, attempt_number, is_test,
                  input_payload, occurred_on, queued_on, started_on, started_on < now() AS resumed
    )
    SELECT c.*, w.name, w.max_retry_count, w.retry_backoff_base_seconds, coalesce(d.plan, 'Free'),
           (SELECT json_agg(json_build_array(s.workflow_step_id, s.action_type, s.step_order,
                                             s.output_template, s.action_config, s.workflow_credential_id,
                                             s.condition_expression)
                            ORDER BY s.step_order, s.workflow_step_id)
            FROM workflow_steps s WHERE s.workflow_id = c.workflow_id AND s.is_enabled)
    FROM claimed c
    LEFT JOIN workflows w ON w.workflow_id = c.workflow_id
    LEFT JOIN departments d ON d.department_id = c.department_id
    """
)

LOAD_LEDGER = text("SELECT workflow_step_id, outcome FROM run_step_ledger WHERE workflow_run_id = :run_id")

LAST_ERRORS = text(
    """
    SELECT DISTINCT ON (workflow_step_id) workflow_step_id, error_message
    FROM workflow_run_logs
    WHERE workflow_run_id = :run_id AND workflow_step_id = ANY(CAST(:ids AS int[]))
    ORDER BY workflow_step_id, workflow_run_log_id DESC
    """
)

LOAD_CREDENTIALS = text(
    """
    SELECT workflow_credential_id, credential_type, public_data, encrypted_data
    FROM workflow_credentials
    WHERE department_id = :dep AND workflow_credential_id = ANY(CAST(:ids AS int[]))
    """
)

RENEW = text(
    """
    UPDATE workflow_runs SET lease_until = now() + make_interval(secs => :lease)
    WHERE workflow_run_id = :run_id AND status = 1 AND lease_owner = :owner
    RETURNING 1
    """
)

RENEW_MANY = text(
    "UPDATE workflow_runs SET lease_until = now() + make_interval(secs => :lease) "
    "WHERE workflow_run_id = ANY(CAST(:ids AS bigint[])) AND status = 1 AND lease_owner = :owner"
)

RECORD_STEP = text(
    """
    WITH entry AS (
        INSERT INTO workflow_run_logs (workflow_run_id, workflow_step_id, attempt_number, status, rendered_output,
                                       action_result, error_message, started_on, completed_on, duration_ms)
        VALUES (:run_id, :step_id, :attempt, :status, :rendered, :result, :error, :started, :completed,
                :duration)
        RETURNING workflow_run_log_id
    )
    INSERT INTO run_step_ledger (workflow_run_id, workflow_step_id, outcome, completed_on)
    SELECT :run_id, :step_id, CAST(:outcome AS varchar), :completed FROM entry
    WHERE CAST(:outcome AS varchar) IS NOT NULL
    ON CONFLICT DO NOTHING
    """
)

SETTLE = text(
    """
    UPDATE workflow_runs
    SET status = :status, completed_on = CASE WHEN :final THEN now() END, error_message = :error,
        next_attempt_on = :next_attempt_on, attempt_number = :attempt,
        published_on = CASE WHEN :final THEN published_on END,
        lease_owner = NULL, lease_until = NULL
    WHERE workflow_run_id = :run_id AND status = 1 AND lease_owner = :owner
    RETURNING workflow_id, department_id, queued_on, started_on, completed_on, is_test
    """
)


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


class RunStore:
    def __init__(self, engine: AsyncEngine, owner: str, lease_s: float) -> None:
        self.engine = engine
        # Every write here is a single atomic statement: autocommit saves the BEGIN and COMMIT round trips.
        self.db = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.owner = owner
        self.lease_s = lease_s

    async def claim(self, run_id: int) -> tuple[ClaimedRun, RunDefinition | None, bool] | None:
        """Claim the run and read its workflow and steps in the same round trip.

        Returns the run, its definition (None when the workflow was deleted) and whether the run was
        started before (a retry, or a run taken over from an executor that died), i.e. whether it may
        have steps in the ledger already.
        """
        async with self.db.connect() as conn:
            row = (
                await conn.execute(CLAIM, {"run_id": run_id, "owner": self.owner, "lease": self.lease_s})
            ).first()
        if row is None:
            return None
        (
            workflow_id,
            dep,
            event_type,
            event_id,
            attempt,
            is_test,
            payload,
            occurred_on,
            queued_on,
            started_on,
            resumed,
            name,
            max_retry,
            backoff,
            plan,
            steps,
        ) = row
        run = ClaimedRun(
            run_id,
            workflow_id,
            dep,
            event_type,
            event_id,
            attempt,
            is_test,
            payload or {},
            occurred_on,
            queued_on,
            started_on,
        )
        definition = None
        if name is not None:
            definition = RunDefinition(
                name, max_retry, backoff, plan, [StepDefinition(*step) for step in steps or []]
            )
        return run, definition, bool(resumed)

    async def ledger(self, run_id: int) -> dict[int, str]:
        async with self.db.connect() as conn:
            return dict((await conn.execute(LOAD_LEDGER, {"run_id": run_id})).all())

    async def credentials(
        self, department_id: int, ids: list[int]
    ) -> dict[int, tuple[int, dict[str, Any], str]]:
        if not ids:
            return {}
        async with self.db.connect() as conn:
            rows = await conn.execute(LOAD_CREDENTIALS, {"dep": department_id, "ids": ids})
            return {cid: (ctype, public or {}, token) for cid, ctype, public, token in rows}

    async def last_errors(self, run_id: int, step_ids: list[int]) -> dict[int, str]:
        """The error each step's latest log row shows."""
        async with self.db.connect() as conn:
            rows = await conn.execute(LAST_ERRORS, {"run_id": run_id, "ids": step_ids})
            return {step_id: error for step_id, error in rows if error}

    async def renew(self, run_id: int) -> bool:
        async with self.db.connect() as conn:
            return (
                await conn.execute(RENEW, {"run_id": run_id, "owner": self.owner, "lease": self.lease_s})
            ).first() is not None

    async def renew_many(self, run_ids: list[int]) -> None:
        if run_ids:
            async with self.db.connect() as conn:
                await conn.execute(RENEW_MANY, {"ids": run_ids, "owner": self.owner, "lease": self.lease_s})

    async def record_step(self, **values: Any) -> None:
        async with self.db.connect() as conn:
            await conn.execute(RECORD_STEP, values)

    async def settle(
        self,
        run_id: int,
        *,
        status: int,
        final: bool,
        error: str | None,
        next_attempt_on: datetime | None,
        attempt: int,
    ) -> tuple[Any, ...] | None:
        async with self.db.connect() as conn:
            row = (
                await conn.execute(
                    SETTLE,
                    {
                        "run_id": run_id,
                        "owner": self.owner,
                        "status": status,
                        "final": final,
                        "error": error,
                        "next_attempt_on": next_attempt_on,
                        "attempt": attempt,
                    },
                )
            ).first()
        return tuple(row) if row is not None else None
