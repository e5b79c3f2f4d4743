from __future__ import annotations

from pydantic import ConfigDict, Field

from services.api.schemas import InputSchema, Schema, UtcDatetime


class WorkflowRunResult(Schema):
    WorkflowRunId: int
    WorkflowId: int
    DepartmentId: int
    Status: int = Field(description="0 Pending, 1 Running, 2 Completed, 3 Failed, 4 Cancelled, 5 Retrying")
    TriggerEventType: int
    EventId: str
    AttemptNumber: int
    IsTest: bool
    QueuedOn: UtcDatetime
    StartedOn: UtcDatetime | None
    CompletedOn: UtcDatetime | None
    NextAttemptOn: UtcDatetime | None
    ErrorMessage: str | None


class WorkflowRunLogResult(Schema):
    WorkflowRunLogId: int
    WorkflowRunId: int
    WorkflowStepId: int
    AttemptNumber: int
    Status: int = Field(description="2 Completed, 3 Failed, 6 Skipped")
    RenderedOutput: str | None
    ActionResult: str | None
    ErrorMessage: str | None
    StartedOn: UtcDatetime
    CompletedOn: UtcDatetime | None
    DurationMs: int | None


class WorkflowTestRunResult(WorkflowRunResult):
    """A test run as it stood when it finished (or when the wait ran out), with its step logs."""

    Logs: list[WorkflowRunLogResult]


class WorkflowTestInput(InputSchema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"EventPayloadJson": '{"call": {"id": 1001, "name": "Structure Fire", "priority": 3}}'}
            ]
        }
    )

    EventPayloadJson: str | None = Field(
        default=None,
        description="A JSON object: the event payload (template roots). The event type's sample payload when omitted.",
    )


class ClearResult(Schema):
    Cancelled: int = Field(description="How many Pending, Running or Retrying runs were cancelled")
