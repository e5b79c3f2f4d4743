"""Messages on the Kafka topics: the event envelope (docs/api-behaviour.md, Events), run messages
(``RunMessage``) and run outcomes (``RunOutcome``, built from a run by ``shared.runs.outcomes``)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.enums import EventType, RunStatus

# The API's test event (POST /{id}/test) names the one workflow it is for in this header; the dispatcher
# creates that workflow's run (IsTest, also when disabled) under the usual limits.
TEST_WORKFLOW_HEADER = "wf-test-workflow"


class EventEnvelope(BaseModel):
    """A trigger event. ``EventType`` is the int value or the name."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    EventId: str = Field(min_length=1, max_length=64)
    DepartmentId: int = Field(gt=0, le=2**31 - 1)
    EventType: EventType
    OccurredOn: datetime | None = None
    Payload: dict[str, Any] = Field(default_factory=dict)

    @field_validator("EventType", mode="before")
    @classmethod
    def _event_type_by_name(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.lstrip("-").isdigit():
            try:
                return EventType[value]
            except KeyError:
                raise ValueError(f"unknown event type {value!r}") from None
        if isinstance(value, bool):
            raise ValueError("EventType must be an integer or a name")
        return value

    @field_validator("OccurredOn")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


# Deeper than any real CAD payload, well inside the JSON encoder's recursion limit (orjson: 254).
MAX_PAYLOAD_DEPTH = 64


def json_depth(value: Any) -> int:
    """How deeply containers nest in a JSON value (a scalar is 0, ``{}`` is 1); no recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        deepest = max(deepest, depth + 1)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def new_event_id() -> str:
    return str(uuid.uuid4())


class RunMessage(NamedTuple):
    """A run handed to the executors on the runs topic (keyed by department). A named tuple, not a
    pydantic model or a frozen dataclass: the dispatcher encodes thousands a second and the executor
    decodes each, and a tuple is the cheapest immutable object to build (bench/README.md, codecs)."""

    RunId: int
    DepartmentId: int
    AttemptNumber: int = 1

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {"RunId": self.RunId, "DepartmentId": self.DepartmentId, "AttemptNumber": self.AttemptNumber}
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> RunMessage:
        """Raises ValueError, KeyError or TypeError for a message that is not a run message. Only
        ``RunId`` is required, as the executor always read it: the other keys are informative."""
        message = orjson.loads(data)
        return cls(
            int(message["RunId"]), int(message.get("DepartmentId", 0)), int(message.get("AttemptNumber", 1))
        )


class RunOutcome(BaseModel):
    """A run that reached a final state, published on the results topic for the health service."""

    model_config = ConfigDict(frozen=True)

    RunId: int
    WorkflowId: int
    DepartmentId: int
    Status: RunStatus
    IsTest: bool = False
    AttemptNumber: int = 1
    QueuedOn: datetime
    StartedOn: datetime | None = None
    CompletedOn: datetime | None = None
    ErrorMessage: str | None = None

    def encode(self) -> bytes:
        return self.model_dump_json().encode()
