"""Daily send limits (emails, SMS) per department, shared by every executor through PostgreSQL."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.executor.actions.base import permanent

RESERVE = text(
    """
    INSERT INTO department_daily_usage AS u (department_id, usage_date, channel, used)
    SELECT :dep, (now() AT TIME ZONE 'UTC')::date, :channel, :n WHERE :n <= :cap
    ON CONFLICT (department_id, usage_date, channel)
    DO UPDATE SET used = u.used + EXCLUDED.used WHERE u.used + EXCLUDED.used <= :cap
    RETURNING used
    """
)
RELEASE = text(
    "UPDATE department_daily_usage SET used = greatest(0, used - :n) "
    "WHERE department_id = :dep AND usage_date = (now() AT TIME ZONE 'UTC')::date AND channel = :channel"
)


class DailySendQuota:
    """Reserve before sending, release if the send did not happen: the count is of messages sent."""

    def __init__(
        self, engine: AsyncEngine, *, department_id: int, channel: str, cap: int, plan_name: str
    ) -> None:
        self.engine = engine
        self.department_id = department_id
        self.channel = channel
        self.cap = cap
        self.plan_name = plan_name

    async def reserve(self, count: int) -> None:
        if count <= 0:
            return
        async with self.engine.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
            row = (
                await conn.execute(
                    RESERVE, {"dep": self.department_id, "channel": self.channel, "n": count, "cap": self.cap}
                )
            ).first()
        if row is None:
            noun = "emails" if self.channel == "email" else "SMS messages"
            raise permanent(
                f"Daily send limit reached: the {self.plan_name} plan allows {self.cap} {noun} per day"
            )

    async def release(self, count: int) -> None:
        if count <= 0:
            return
        async with self.engine.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
            await conn.execute(RELEASE, {"dep": self.department_id, "channel": self.channel, "n": count})
