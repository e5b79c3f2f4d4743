"""ORM rows → API results (PascalCase)."""

from __future__ import annotations

from services.api.workflows.schemas import WorkflowResult, WorkflowStepResult
from shared.models import Workflow, WorkflowStep


def step_result(step: WorkflowStep) -> WorkflowStepResult:
    return WorkflowStepResult(
        WorkflowStepId=step.workflow_step_id,
        WorkflowId=step.workflow_id,
        ActionType=step.action_type,
        StepOrder=step.step_order,
        OutputTemplate=step.output_template,
        ActionConfig=step.action_config,
        WorkflowCredentialId=step.workflow_credential_id,
        IsEnabled=step.is_enabled,
        ConditionExpression=step.condition_expression,
        CreatedOn=step.created_on,
        UpdatedOn=step.updated_on,
    )


def workflow_result(workflow: Workflow, steps: list[WorkflowStep] | None = None) -> WorkflowResult:
    ordered = sorted(
        steps if steps is not None else workflow.steps, key=lambda s: (s.step_order, s.workflow_step_id)
    )
    return WorkflowResult(
        WorkflowId=workflow.workflow_id,
        DepartmentId=workflow.department_id,
        Name=workflow.name,
        Description=workflow.description,
        TriggerEventType=workflow.trigger_event_type,
        IsEnabled=workflow.is_enabled,
        MaxRetryCount=workflow.max_retry_count,
        RetryBackoffBaseSeconds=workflow.retry_backoff_base_seconds,
        CreatedOn=workflow.created_on,
        UpdatedOn=workflow.updated_on,
        Steps=[step_result(s) for s in ordered],
    )
