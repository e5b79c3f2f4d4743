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
        if not await WorkflowRepository.from_session(session).exists(principal.department_id, workflow_id):
            raise NotFound(f"Workflow {workflow_id} was not found")
        figures = await HealthRepository.from_session(session).figures(workflow_id)
        t24, s24, f24, t7, s7, f7, t30, s30, f30 = figures.counts
        return WorkflowHealthResult(
            WorkflowId=workflow_id,
            TotalRuns24h=t24,
            SuccessRuns24h=s24,
            FailedRuns24h=f24,
            TotalRuns7d=t7,
            SuccessRuns7d=s7,
            FailedRuns7d=f7,
            TotalRuns30d=t30,
            SuccessRuns30d=s30,
            FailedRuns30d=f30,
            SuccessRatePercent=round(s30 * 100 / t30, 1) if t30 else 0.0,
            AverageDurationMs=round(figures.average_duration_ms or 0),
            LastRunOn=figures.last_run_on,
            LastError=figures.last_error,
        )


health_service = HealthService()
