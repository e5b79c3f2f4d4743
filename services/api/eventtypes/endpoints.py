from __future__ import annotations

from fastapi import APIRouter

from services.api.deps import DepartmentAdminDep
from services.api.eventtypes.schemas import EventTypeResult
from services.api.schemas import error_responses
from shared.templating import catalog_json

router = APIRouter(prefix="/api/v4/workflows", tags=["Event types"])


@router.get(
    "/eventtypes",
    response_model=list[EventTypeResult],
    summary="Event types and their template variables",
    description="All 28 trigger event types; Variables lists the common department.*, timestamp.* and "
    "user.* variables first, then the event's own.",
    responses=error_responses(),
)
async def event_types(_: DepartmentAdminDep) -> list[EventTypeResult]:
    return [EventTypeResult.model_validate(entry) for entry in catalog_json()]
