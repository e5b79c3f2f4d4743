from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.api.errors import NotFound
from services.api.health.repository import HealthRepository
from services.api.health.schemas import WorkflowHealthResult
from services.api.workflows.repository import WorkflowRepository
from shared.auth import Principal


class HealthService:
    async def for_workflow(
        self, session: AsyncSession, principal: Principal, workflow_id: int
    ) -> WorkflowHealthResult:
        if not await WorkflowRepository(session).exists(principal.department_id, workflow_id):
            raise NotFound(f"Workflow {workflow_id} was not found")
        figures = await HealthRepository(session).figures(principal.department_id, workflow_id)
        day, week, month = figures.windows["24h"], figures.windows["7d"], figures.windows["30d"]
        return WorkflowHealthResult(
            WorkflowId=workflow_id,
            TotalRuns24h=day.total,
            SuccessRuns24h=day.success,
            FailedRuns24h=day.failed,
            TotalRuns7d=week.total,
            SuccessRuns7d=week.success,
            FailedRuns7d=week.failed,
            TotalRuns30d=month.total,
            SuccessRuns30d=month.success,
            FailedRuns30d=month.failed,
            SuccessRatePercent=figures.success_rate_percent,
            AverageDurationMs=figures.average_duration_ms,
            LastRunOn=figures.last_run_on,
            LastError=figures.last_error,
        )


health_service = HealthService()
