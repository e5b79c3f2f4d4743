from __future__ import annotations

from collections.abc import Sequence

from services.api.runs.schemas import WorkflowRunLogResult, WorkflowRunResult, WorkflowTestRunResult
from shared.models import WorkflowRun, WorkflowRunLog


def _run_fields(run: WorkflowRun) -> dict[str, object]:
    return {
        "WorkflowRunId": run.workflow_run_id,
        "WorkflowId": run.workflow_id,
        "DepartmentId": run.department_id,
        "Status": run.status,
        "TriggerEventType": run.trigger_event_type,
        "EventId": run.event_id,
        "AttemptNumber": run.attempt_number,
        "IsTest": run.is_test,
        "QueuedOn": run.queued_on,
        "StartedOn": run.started_on,
        "CompletedOn": run.completed_on,
        "NextAttemptOn": run.next_attempt_on,
        "ErrorMessage": run.error_message,
    }


def run_result(run: WorkflowRun) -> WorkflowRunResult:
    return WorkflowRunResult.model_validate(_run_fields(run))


def log_result(log: WorkflowRunLog) -> WorkflowRunLogResult:
    return WorkflowRunLogResult(
        WorkflowRunLogId=log.workflow_run_log_id,
        WorkflowRunId=log.workflow_run_id,
        WorkflowStepId=log.workflow_step_id,
        AttemptNumber=log.attempt_number,
        Status=log.status,
        RenderedOutput=log.rendered_output,
        ActionResult=log.action_result,
        ErrorMessage=log.error_message,
        StartedOn=log.started_on,
        CompletedOn=log.completed_on,
        DurationMs=log.duration_ms,
    )


def result_with_logs(run: WorkflowRun, logs: Sequence[WorkflowRunLog]) -> WorkflowTestRunResult:
    return WorkflowTestRunResult.model_validate(
        {**_run_fields(run), "Logs": [log_result(entry) for entry in logs]}
    )
