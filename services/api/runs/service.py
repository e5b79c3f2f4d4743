from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.errors import Conflict, NotFound, RunLimitReached, ServiceUnavailable, ValidationFailed
from services.api.runs.repository import RunRepository
from services.api.runs.schemas import WorkflowTestInput
from services.api.schemas import storable_problem
from services.api.workflows.repository import WorkflowRepository
from shared.auth import Principal
from shared.enums import FINAL_RUN_STATUSES, EventType, Plan, RunStatus
from shared.models import WorkflowRun, WorkflowRunLog
from shared.plans import DAILY_CAP_PREFIX, limits_for
from shared.templating import sample_payload

TEST_POLL_S = 0.2

# The department's plan and the runs it has stored today (the dispatcher's daily counter).
PLAN_AND_RUNS_TODAY = text(
    """
    SELECT coalesce((SELECT plan FROM departments WHERE department_id = :d), 'Free'),
           coalesce((SELECT used FROM department_daily_usage
                     WHERE department_id = :d AND channel = 'runs'
                       AND usage_date = (now() AT TIME ZONE 'UTC')::date), 0)
    """
)


@dataclass(frozen=True, slots=True)
class TestEvent:
    """The event a test run starts from: it goes to the events topic like any event, naming its workflow."""

    workflow_id: int
    department_id: int
    event_type: EventType
    event_id: str
    payload: dict[str, Any]

    def envelope(self) -> dict[str, Any]:
        return {
            "EventId": self.event_id,
            "DepartmentId": self.department_id,
            "EventType": int(self.event_type),
            "OccurredOn": datetime.now(UTC).isoformat(),
            "Payload": self.payload,
        }


def _run_not_found(run_id: int) -> NotFound:
    return NotFound(f"Run {run_id} was not found")


def payload_for_test(data: WorkflowTestInput | None, event_type: EventType) -> dict[str, Any]:
    if data is None or data.EventPayloadJson is None or not data.EventPayloadJson.strip():
        return sample_payload(event_type)
    try:
        payload = json.loads(data.EventPayloadJson)
    except (ValueError, RecursionError):
        raise ValidationFailed(
            "EventPayloadJson is not valid JSON", fields=[("EventPayloadJson", "is not valid JSON")]
        ) from None
    if not isinstance(payload, dict):
        raise ValidationFailed(
            "EventPayloadJson must be a JSON object", fields=[("EventPayloadJson", "must be a JSON object")]
        )
    problem = storable_problem(payload)
    if problem:
        raise ValidationFailed(f"EventPayloadJson: {problem}", fields=[("EventPayloadJson", problem)])
    return payload


class RunService:
    async def page(
        self,
        session: AsyncSession,
        principal: Principal,
        *,
        workflow_id: int | None,
        page: int,
        page_size: int,
    ) -> Sequence[WorkflowRun]:
        if workflow_id is not None and not await WorkflowRepository(session).exists(
            principal.department_id, workflow_id
        ):
            raise NotFound(f"Workflow {workflow_id} was not found")
        return await RunRepository(session).page(
            principal.department_id, workflow_id=workflow_id, offset=(page - 1) * page_size, limit=page_size
        )

    async def pending(self, session: AsyncSession, principal: Principal) -> Sequence[WorkflowRun]:
        return await RunRepository(session).open_runs(principal.department_id)

    async def logs(
        self, session: AsyncSession, principal: Principal, run_id: int
    ) -> Sequence[WorkflowRunLog]:
        repo = RunRepository(session)
        if await repo.get(principal.department_id, run_id) is None:
            raise _run_not_found(run_id)
        return await repo.logs(run_id)

    async def cancel(self, session: AsyncSession, principal: Principal, run_id: int) -> WorkflowRun:
        repo = RunRepository(session)
        run = await repo.get(principal.department_id, run_id, for_update=True)
        if run is None:
            raise _run_not_found(run_id)
        if RunStatus(run.status) in FINAL_RUN_STATUSES:
            raise Conflict(
                f"Run {run_id} has already finished ({RunStatus(run.status).name}) and cannot be cancelled"
            )
        return await repo.cancel(run)

    async def clear(self, session: AsyncSession, principal: Principal) -> Sequence[WorkflowRun]:
        return await RunRepository(session).cancel_open(principal.department_id)

    async def start_test(
        self, session: AsyncSession, principal: Principal, workflow_id: int, data: WorkflowTestInput | None
    ) -> TestEvent:
        """The test event for the workflow (disabled ones included); refused with 429 while the
        department's daily run limit is spent. The dispatcher creates the run from the event under
        the same limits as any run: deferred past the per-minute limit, capped at the daily one."""
        workflow = await WorkflowRepository(session).get(
            principal.department_id, workflow_id, with_steps=False
        )
        if workflow is None:
            raise NotFound(f"Workflow {workflow_id} was not found")
        event_type = EventType(workflow.trigger_event_type)
        payload = payload_for_test(data, event_type)
        plan_name, used = (await session.execute(PLAN_AND_RUNS_TODAY, {"d": principal.department_id})).one()
        plan = Plan(plan_name)
        cap = limits_for(plan).daily_runs
        if cap is not None and used >= cap:
            raise RunLimitReached(daily_limit_message(plan, cap))
        return TestEvent(workflow_id, principal.department_id, event_type, f"test-{uuid.uuid4()}", payload)

    async def wait_for_test_run(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        principal: Principal,
        test: TestEvent,
        timeout_s: float,
    ) -> tuple[WorkflowRun, Sequence[WorkflowRunLog]]:
        """The test event's run once it is final, or as it stands when ``timeout_s`` has passed (e.g.
        Pending, deferred by the per-minute limit). 429 when the dispatcher capped it at the daily
        limit; 503 when no dispatcher stored it in time."""
        deadline = time.monotonic() + timeout_s
        stmt = select(WorkflowRun).where(
            WorkflowRun.workflow_id == test.workflow_id,
            WorkflowRun.event_id == test.event_id,
            WorkflowRun.department_id == principal.department_id,
        )
        while True:
            async with sessionmaker() as session:
                run = (await session.execute(stmt)).scalar_one_or_none()
                expired = time.monotonic() >= deadline
                if run is not None and (RunStatus(run.status) in FINAL_RUN_STATUSES or expired):
                    if _capped_at_daily_limit(run):
                        raise RunLimitReached(run.error_message or DAILY_CAP_PREFIX)
                    return run, await RunRepository(session).logs(run.workflow_run_id)
                if expired:
                    raise ServiceUnavailable(
                        f"The test event was queued but no dispatcher stored its run within {timeout_s:g} s; "
                        f"it runs when the dispatcher catches up (EventId {test.event_id})"
                    )
            await asyncio.sleep(TEST_POLL_S)


def _capped_at_daily_limit(run: WorkflowRun) -> bool:
    """Failed by the dispatcher at the daily cap (never started), not by a step."""
    return (
        run.status == RunStatus.Failed
        and run.started_on is None
        and (run.error_message or "").startswith(DAILY_CAP_PREFIX)
    )


def daily_limit_message(plan: Plan, cap: int) -> str:
    return (
        f"{DAILY_CAP_PREFIX}: the {plan.value} plan allows {cap} runs per day, test runs included; "
        "try again after midnight UTC"
    )


run_service = RunService()
