"""POST /api/v4/workflows/events: the HTTP door to the `workflows.events` topic (docs/api-behaviour.md, Events)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter
from pydantic import BaseModel, Field, field_validator

from services.api.deps import DepartmentAdminDep, StateDep
from services.api.errors import BadRequest, ServiceUnavailable
from services.api.schemas import InputSchema, error_responses
from shared.enums import EventType
from shared.messages import MAX_PAYLOAD_DEPTH, EventEnvelope, json_depth, new_event_id
from shared.tracing import kafka_headers, tracer

router = APIRouter(prefix="/api/v4/workflows", tags=["Events"])


class EventInput(InputSchema):
    EventId: str | None = Field(
        default=None, min_length=1, max_length=64, description="Idempotency key; generated when omitted"
    )
    DepartmentId: int | None = Field(default=None, description="Defaults to the token's department")
    EventType: int | str = Field(description='Event type value (0-27) or name, e.g. 3 or "UnitStatusChanged"')
    OccurredOn: datetime | None = None
    Payload: dict[str, Any] = Field(
        default_factory=dict, description=f"Any JSON object, nested at most {MAX_PAYLOAD_DEPTH} levels deep"
    )

    @field_validator("Payload")
    @classmethod
    def _shallow_enough(cls, value: dict[str, Any]) -> dict[str, Any]:
        if json_depth(value) > MAX_PAYLOAD_DEPTH:
            raise ValueError(f"is nested more than {MAX_PAYLOAD_DEPTH} levels deep")
        return value


class EventAccepted(BaseModel):
    EventId: str


@router.post(
    "/events",
    status_code=202,
    response_model=EventAccepted,
    summary="Publish a trigger event",
    responses=error_responses(503),
)
async def publish_event(body: EventInput, state: StateDep, admin: DepartmentAdminDep) -> EventAccepted:
    if body.DepartmentId is not None and body.DepartmentId != admin.department_id:
        raise BadRequest("DepartmentId must be your own department (or omitted)")
    try:
        envelope = EventEnvelope(
            EventId=body.EventId or new_event_id(),
            DepartmentId=admin.department_id,
            EventType=body.EventType,
            OccurredOn=body.OccurredOn or datetime.now(UTC),
            Payload=body.Payload,
        )
    except ValueError:
        raise BadRequest(
            f"EventType must be a value from 0 to 27 or one of: {', '.join(e.name for e in EventType)}"
        ) from None
    value = orjson.dumps(envelope.model_dump(mode="json"))
    if len(value) > state.settings.max_event_bytes:
        raise BadRequest(f"The event is larger than {state.settings.max_event_bytes} bytes")
    try:
        with tracer().start_as_current_span(
            "event.publish",
            attributes={
                "workflows.event_id": envelope.EventId,
                "workflows.department_id": envelope.DepartmentId,
            },
        ):
            await state.producer.send_and_wait(
                state.settings.topic_events,
                value=value,
                key=str(envelope.DepartmentId).encode(),
                headers=kafka_headers(),
            )
    except Exception as exc:
        raise ServiceUnavailable(f"The event could not be queued ({type(exc).__name__}); try again") from exc
    return EventAccepted(EventId=envelope.EventId)
