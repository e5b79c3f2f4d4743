from __future__ import annotations

from pydantic import ConfigDict, Field, field_validator

from services.api.schemas import INT32_MAX, Id32, InputSchema, NonBlankName, Schema, UtcDatetime
from shared.enums import ActionType as EnumActionType

MAX_TEMPLATE_BYTES = 64 * 1024
MAX_CONDITION_BYTES = 4 * 1024


class WorkflowInput(InputSchema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "Name": "Page the duty officer",
                    "Description": "Email for every new call",
                    "TriggerEventType": 0,
                    "IsEnabled": True,
                    "MaxRetryCount": 3,
                    "RetryBackoffBaseSeconds": 5,
                }
            ]
        }
    )

    Name: NonBlankName
    Description: str | None = Field(default=None, max_length=1000)
    TriggerEventType: int = Field(ge=0, le=27, description="Event type value (see GET /eventtypes)")
    IsEnabled: bool = True
    # Values above 5 are stored as 5 (docs/api-behaviour.md); negative is invalid.
    MaxRetryCount: int = Field(default=3, ge=0, description="Stored as at most 5")
    RetryBackoffBaseSeconds: int = Field(default=5, ge=1, le=3600)


class WorkflowStepInput(InputSchema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "ActionType": 3,
                    "StepOrder": 1,
                    "OutputTemplate": '{"call": "{{ call.name }}", "priority": {{ call.priority }}}',
                    "ActionConfig": '{"url": "https://cad.example.org/hooks/calls"}',
                    "WorkflowCredentialId": None,
                    "IsEnabled": True,
                    "ConditionExpression": "call.priority >= 2",
                }
            ]
        }
    )

    ActionType: int = Field(
        ge=0, le=max(EnumActionType), description=f"Action type value (0-{max(EnumActionType)})"
    )
    StepOrder: int = Field(ge=-INT32_MAX, le=INT32_MAX, description="Steps run in ascending StepOrder")
    OutputTemplate: str = Field(min_length=1, description="Liquid template, at most 64 KB (UTF-8)")
    ActionConfig: str | None = Field(default=None, description="JSON object text with the action's settings")
    WorkflowCredentialId: Id32 | None = None
    IsEnabled: bool = True
    ConditionExpression: str | None = Field(
        default=None,
        description="Liquid condition (at most 4 KB); the step is Skipped when it is false or empty",
    )

    @field_validator("OutputTemplate")
    @classmethod
    def _template_size(cls, value: str) -> str:
        if len(value.encode()) > MAX_TEMPLATE_BYTES:
            raise ValueError(f"must be at most {MAX_TEMPLATE_BYTES} bytes (64 KB)")
        return value

    @field_validator("ConditionExpression")
    @classmethod
    def _condition_size(cls, value: str | None) -> str | None:
        if value is not None and len(value.encode()) > MAX_CONDITION_BYTES:
            raise ValueError(f"must be at most {MAX_CONDITION_BYTES} bytes (4 KB)")
        return value


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
