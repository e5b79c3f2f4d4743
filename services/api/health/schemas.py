from __future__ import annotations

from pydantic import Field

from services.api.schemas import Schema, UtcDatetime


class WorkflowHealthResult(Schema):
    """Figures count non-test runs by the time they were queued."""

    WorkflowId: int
    TotalRuns24h: int
    SuccessRuns24h: int
    FailedRuns24h: int
    TotalRuns7d: int
    SuccessRuns7d: int
    FailedRuns7d: int
    TotalRuns30d: int
    SuccessRuns30d: int
    FailedRuns30d: int
    SuccessRatePercent: float = Field(description="Completed / total over 30 days × 100, one decimal")
    AverageDurationMs: int = Field(description="Mean CompletedOn − StartedOn of completed runs over 30 days")
    LastRunOn: UtcDatetime | None
    LastError: str | None
