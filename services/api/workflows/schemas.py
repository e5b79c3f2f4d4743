from __future__ import annotations

from pydantic import Field

from services.api.schemas import InputSchema, Schema, UtcDatetime


class WorkflowInput(InputSchema):
    Name: str = Field(min_length=1, max_length=250)
    Description: str | None = Field(default=None, max_length=1000)
    TriggerEventType: int = Field(ge=0, le=27)
    IsEnabled: bool = True
    # Values above 5 are stored as 5 (CONTRACT.md §5); negative is invalid.
    MaxRetryCount: int = Field(default=3, ge=0)
    RetryBackoffBaseSeconds: int = Field(default=5, ge=1, le=3600)


class WorkflowStepInput(InputSchema):
    ActionType: int = Field(ge=0, le=14)
    StepOrder: int
    OutputTemplate: str = Field(min_length=1, max_length=65536)
    ActionConfig: str | None = None
    WorkflowCredentialId: int | None = None
    IsEnabled: bool = True
    ConditionExpression: str | None = Field(default=None, max_length=4096)


class WorkflowStepResult(Schema):
    WorkflowStepId: int
    WorkflowId: int
    ActionType: int
    StepOrder: int
    OutputTemplate: str
    ActionConfig: str | None
    WorkflowCredentialId: int | None
    IsEnabled: bool
    ConditionExpression: str | None
    CreatedOn: UtcDatetime
    UpdatedOn: UtcDatetime | None


class WorkflowResult(Schema):
    WorkflowId: int
    DepartmentId: int
    Name: str
    Description: str | None
    TriggerEventType: int
    IsEnabled: bool
    MaxRetryCount: int
    RetryBackoffBaseSeconds: int
    CreatedOn: UtcDatetime
    UpdatedOn: UtcDatetime | None
    Steps: list[WorkflowStepResult]
