"""Department plans: stored here, Free unless set (docs/api-behaviour.md, Tokens and tenancy)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.enums import Plan
from shared.models import Department


async def get_plan(session: AsyncSession, department_id: int) -> Plan:
    plan = (
        await session.execute(select(Department.plan).where(Department.department_id == department_id))
    ).scalar_one_or_none()
    return Plan(plan) if plan else Plan.Free


async def set_plan(session: AsyncSession, department_id: int, plan: Plan) -> None:
    stmt = insert(Department).values(department_id=department_id, plan=plan.value)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[Department.department_id],
            set_={"plan": plan.value, "updated_on": stmt.excluded.created_on},
        )
    )


async def lock_department(session: AsyncSession, department_id: int) -> Plan:
    """Serialise creations in a department (plan caps must hold under concurrency); returns its plan."""
    await session.execute(
        insert(Department)
        .values(department_id=department_id, plan=Plan.Free.value)
        .on_conflict_do_nothing(index_elements=[Department.department_id])
    )
    plan = (
        await session.execute(
            select(Department.plan).where(Department.department_id == department_id).with_for_update()
        )
    ).scalar_one()
    return Plan(plan)
