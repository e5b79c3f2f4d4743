"""The one place a ``RunOutcome`` (the results topic's message) is built from a run."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from shared.enums import RunStatus
from shared.messages import RunOutcome

if TYPE_CHECKING:  # the executor and dispatcher need not load the ORM
    from shared.models import WorkflowRun


def run_outcome(
    run_id: int,
    workflow_id: int,
    department_id: int,
    status: int,
    is_test: bool,
    attempt_number: int,
    queued_on: datetime,
    started_on: datetime | None,
    completed_on: datetime | None,
    error_message: str | None,
) -> RunOutcome:
    """A final run's outcome, from its columns in ``statements.OUTCOME_COLUMNS`` order (so a row of
    ``OUTCOMES_DUE`` is passed as ``run_outcome(*row)``)."""
    return RunOutcome(
        RunId=run_id,
        WorkflowId=workflow_id,
        DepartmentId=department_id,
        Status=RunStatus(status),
        IsTest=is_test,
        AttemptNumber=attempt_number,
        QueuedOn=queued_on,
        StartedOn=started_on,
        CompletedOn=completed_on,
        ErrorMessage=error_message,
    )


def outcome_of(run: WorkflowRun) -> RunOutcome:
    """The outcome of a run loaded through the ORM (the API's cancels)."""
    return run_outcome(
        run.workflow_run_id,
        run.workflow_id,
        run.department_id,
        run.status,
        run.is_test,
        run.attempt_number,
        run.queued_on,
        run.started_on,
        run.completed_on,
        run.error_message,
    )
