from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import WorkflowCredential


class CredentialRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(
        self, department_id: int, credential_id: int, *, for_update: bool = False
    ) -> WorkflowCredential | None:
        stmt = select(WorkflowCredential).where(
            WorkflowCredential.workflow_credential_id == credential_id,
            WorkflowCredential.department_id == department_id,
        )
        if for_update:
            # A locked read must see the row as it is now, not a copy the session loaded before.
            stmt = stmt.with_for_update().execution_options(populate_existing=True)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def list(self, department_id: int) -> Sequence[WorkflowCredential]:
        stmt = (
            select(WorkflowCredential)
            .where(WorkflowCredential.department_id == department_id)
            .order_by(WorkflowCredential.workflow_credential_id)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def count(self, department_id: int) -> int:
        stmt = (
            select(func.count())
            .select_from(WorkflowCredential)
            .where(WorkflowCredential.department_id == department_id)
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def add(self, credential: WorkflowCredential) -> WorkflowCredential:
        self.session.add(credential)
        await self.session.flush()
        return credential

    async def delete(self, department_id: int, credential_id: int) -> bool:
        stmt = (
            delete(WorkflowCredential)
            .where(
                WorkflowCredential.workflow_credential_id == credential_id,
                WorkflowCredential.department_id == department_id,
            )
            .returning(WorkflowCredential.workflow_credential_id)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none() is not None
