from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, JsonValue

from services.api.schemas import InputSchema, NonBlankName, Schema, UtcDatetime
from shared.credential_types import MASK

# The examples' SMTP credential (its secret sent on input, masked in results).
_RELAY: dict[str, JsonValue] = {"host": "smtp.example.org", "port": 587, "username": "dispatch"}


class WorkflowCredentialInput(InputSchema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "Name": "Dispatch mail relay",
                    "CredentialType": 0,
                    "Data": {**_RELAY, "password": "s3cret", "fromAddress": "dispatch@example.org"},
                }
            ]
        }
    )

    Name: NonBlankName
    CredentialType: int = Field(ge=0, le=13, description="Credential type value (0-13)")
    Data: dict[str, Any] = Field(
        description="The type's fields (camelCase). On update, a secret field omitted or sent as "
        f'"{MASK}" keeps its stored value; null removes it.'
    )


class WorkflowCredentialResult(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "WorkflowCredentialId": 12,
                    "Name": "Dispatch mail relay",
                    "CredentialType": 0,
                    "Data": {**_RELAY, "password": MASK},
                    "CreatedOn": "2026-11-29T12:00:00.000Z",
                    "UpdatedOn": None,
                }
            ]
        }
    )

    WorkflowCredentialId: int
    Name: str
    CredentialType: int
    Data: dict[str, Any] = Field(description=f'Non-secret fields in clear, every secret field as "{MASK}"')
    CreatedOn: UtcDatetime
    UpdatedOn: UtcDatetime | None
