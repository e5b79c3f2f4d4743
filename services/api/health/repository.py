"""Health figures straight from the runs table (the health service's rollups will replace this)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# One pass over the workflow's runs of the last 30 days (index on workflow_id, queued_on).
WINDOW_FIGURES = text(
    """
    SELECT
        count(*) FILTER (WHERE queued_on >= now() - interval '24 hours'),
        count(*) FILTER (WHERE queued_on >= now() - interval '24 hours' AND status = 2),
        count(*) FILTER (WHERE queued_on >= now() - interval '24 hours' AND status = 3),
        count(*) FILTER (WHERE queued_on >= now() - interval '7 days'),
        count(*) FILTER (WHERE queued_on >= now() - interval '7 days' AND status = 2),
        count(*) FILTER (WHERE queued_on >= now() - interval '7 days' AND status = 3),
        count(*),
        count(*) FILTER (WHERE status = 2),
        count(*) FILTER (WHERE status = 3),
        avg(extract(epoch FROM completed_on - started_on) * 1000)
            FILTER (WHERE status = 2 AND started_on IS NOT NULL AND completed_on IS NOT NULL)
    FROM workflow_runs
    WHERE workflow_id = :workflow_id AND NOT is_test AND queued_on >= now() - interval '30 days'
    """
)

LAST_RUN = text("SELECT max(queued_on) FROM workflow_runs WHERE workflow_id = :workflow_id AND NOT is_test")

LAST_ERROR = text(
    """
    SELECT error_message FROM workflow_runs
    WHERE workflow_id = :workflow_id AND NOT is_test AND status = 3
    ORDER BY workflow_run_id DESC LIMIT 1
    """
)


@dataclass(frozen=True)
class HealthFigures:
    counts: tuple[int, ...]  # total, success, failed for 24 h, 7 d and 30 d, in that order
    average_duration_ms: float | None
    last_run_on: datetime | None
    last_error: str | None


class HealthRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> HealthRepository:
        return cls(session)

    async def figures(self, workflow_id: int) -> HealthFigures:
        params = {"workflow_id": workflow_id}
        row = (await self.session.execute(WINDOW_FIGURES, params)).one()
        last_run = (await self.session.execute(LAST_RUN, params)).scalar_one_or_none()
        last_error = (await self.session.execute(LAST_ERROR, params)).scalar_one_or_none()
        average = row[9]
        return HealthFigures(
            counts=tuple(int(v) for v in row[:9]),
            average_duration_ms=float(average) if average is not None else None,
            last_run_on=last_run,
            last_error=last_error,
        )
