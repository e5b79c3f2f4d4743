"""RunOutcome messages for runs the API cancelled, so the health service counts them like any final run."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from services.api.state import ApiState
from shared.enums import RunStatus
from shared.logging import get_logger
from shared.messages import RunOutcome
from shared.models import WorkflowRun

log = get_logger(__name__)


def outcome_message(run: WorkflowRun) -> bytes:
    return (
        RunOutcome(
            RunId=run.workflow_run_id,
            WorkflowId=run.workflow_id,
            DepartmentId=run.department_id,
            Status=RunStatus(run.status),
            IsTest=run.is_test,
            AttemptNumber=run.attempt_number,
            QueuedOn=run.queued_on,
            StartedOn=run.started_on,
            CompletedOn=run.completed_on,
            ErrorMessage=run.error_message,
        )
        .model_dump_json()
        .encode()
    )


async def publish_outcomes(state: ApiState, runs: Sequence[WorkflowRun]) -> None:
    """Call after the cancel committed. A failure is logged, not raised: the cancel itself stands."""
    try:
        futures = [
            await state.producer.send(
                state.settings.topic_results, value=outcome_message(run), key=str(run.department_id).encode()
            )
            for run in runs
        ]
        await asyncio.gather(*futures)
    except Exception as exc:
        log.warning("run.outcome_not_published", runs=len(runs), error=type(exc).__name__)
