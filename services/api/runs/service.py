from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.errors import Conflict, NotFound, ValidationFailed
from services.api.runs.repository import RunRepository
from services.api.runs.schemas import WorkflowTestInput
from services.api.schemas import text_problem
from services.api.workflows.repository import WorkflowRepository
from shared.auth import Principal
from shared.enums import FINAL_RUN_STATUSES, EventType, RunStatus
from shared.models import WorkflowRun, WorkflowRunLog
from shared.templating import sample_payload

TEST_POLL_S = 0.2


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
    problem = text_problem(payload)
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
        if workflow_id is not None and not await WorkflowRepository.from_session(session).exists(
            principal.department_id, workflow_id
        ):
            raise NotFound(f"Workflow {workflow_id} was not found")
        return await RunRepository.from_session(session).page(
            principal.department_id, workflow_id=workflow_id, offset=(page - 1) * page_size, limit=page_size
        )

    async def pending(self, session: AsyncSession, principal: Principal) -> Sequence[WorkflowRun]:
        return await RunRepository.from_session(session).open_runs(principal.department_id)

    async def logs(
        self, session: AsyncSession, principal: Principal, run_id: int
    ) -> Sequence[WorkflowRunLog]:
        repo = RunRepository.from_session(session)
        if await repo.get(principal.department_id, run_id) is None:
            raise _run_not_found(run_id)
        return await repo.logs(run_id)

    async def cancel(self, session: AsyncSession, principal: Principal, run_id: int) -> WorkflowRun:
        repo = RunRepository.from_session(session)
        run = await repo.get(principal.department_id, run_id, for_update=True)
        if run is None:
            raise _run_not_found(run_id)
        if RunStatus(run.status) in FINAL_RUN_STATUSES:
            raise Conflict(
                f"Run {run_id} has already finished ({RunStatus(run.status).name}) and cannot be cancelled"
            )
        return await repo.cancel(run)

    async def clear(self, session: AsyncSession, principal: Principal) -> Sequence[WorkflowRun]:
        return await RunRepository.from_session(session).cancel_open(principal.department_id)

    async def start_test(
        self, session: AsyncSession, principal: Principal, workflow_id: int, data: WorkflowTestInput | None
    ) -> WorkflowRun:
        """Insert a Pending test run (the caller commits and publishes it); works for disabled workflows."""
        workflow = await WorkflowRepository.from_session(session).get(
            principal.department_id, workflow_id, with_steps=False
        )
        if workflow is None:
            raise NotFound(f"Workflow {workflow_id} was not found")
        payload = payload_for_test(data, EventType(workflow.trigger_event_type))
        run = WorkflowRun(
            workflow_id=workflow_id,
            department_id=principal.department_id,
            status=int(RunStatus.Pending),
            trigger_event_type=workflow.trigger_event_type,
            event_id=str(uuid.uuid4()),
            attempt_number=1,
            is_test=True,
            input_payload=payload,
            occurred_on=datetime.now(UTC),
        )
        run = await RunRepository.from_session(session).add(run)
        await session.refresh(run)
        return run

    async def wait_until_final(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        principal: Principal,
        run_id: int,
        timeout_s: float,
    ) -> tuple[WorkflowRun, Sequence[WorkflowRunLog]]:
        """The run once it is final, or as it stands when ``timeout_s`` has passed."""
        deadline = time.monotonic() + timeout_s
        while True:
            async with sessionmaker() as session:
                repo = RunRepository.from_session(session)
                run = await repo.get(principal.department_id, run_id)
                if run is None:  # its workflow was deleted meanwhile
                    raise _run_not_found(run_id)
                if RunStatus(run.status) in FINAL_RUN_STATUSES or time.monotonic() >= deadline:
                    return run, await repo.logs(run_id)
            await asyncio.sleep(TEST_POLL_S)


run_service = RunService()
