"""Health figures come from the health service's rollups (see figures.py)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.api.health.figures import HealthFigures, health_figures


class HealthRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def figures(self, department_id: int, workflow_id: int) -> HealthFigures:
        conn = await self.session.connection()
        return await health_figures(conn, department_id, workflow_id)
