"""The in-memory matching index: (department, event type) → enabled workflow ids, plus plans.

Matching is a dict lookup, so its cost does not grow with the number of stored workflows. The index
is loaded once, then refreshed per department from the ``workflow_changes`` log that database
triggers append to (a workflow created, edited, enabled/disabled or deleted, a plan changed), and
fully reloaded every few minutes as a safety net.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.enums import Plan

LOAD_ALL = text(
    "SELECT department_id, trigger_event_type, workflow_id FROM workflows WHERE is_enabled ORDER BY workflow_id"
)
LOAD_PLANS = text("SELECT department_id, plan FROM departments WHERE plan <> 'Free'")
LOAD_DEPARTMENTS = text(
    "SELECT department_id, trigger_event_type, workflow_id FROM workflows "
    "WHERE is_enabled AND department_id = ANY(CAST(:ids AS int[])) ORDER BY workflow_id"
)
LOAD_DEPARTMENT_PLANS = text(
    "SELECT department_id, plan FROM departments WHERE department_id = ANY(CAST(:ids AS int[]))"
)
CHANGES_SINCE = text(
    "SELECT change_id, department_id, changed_on FROM workflow_changes "
    "WHERE changed_on >= CAST(:since AS timestamptz) ORDER BY change_id"
)
NOW = text("SELECT clock_timestamp()")

# A change row becomes visible when its transaction commits, which can be a little after its
# timestamp; each poll looks back this far and skips change ids it has already applied.
LOOKBACK = timedelta(seconds=15)


@dataclass
class MatchIndex:
    workflows: dict[tuple[int, int], tuple[int, ...]] = field(default_factory=dict)
    plans: dict[int, Plan] = field(default_factory=dict)
    _seen: dict[int, float] = field(default_factory=dict)
    _since: datetime | None = None
    loaded_at: float = 0.0

    def match(self, department_id: int, event_type: int) -> tuple[int, ...]:
        return self.workflows.get((department_id, event_type), ())

    def plan(self, department_id: int) -> Plan:
        return self.plans.get(department_id, Plan.Free)

    def __len__(self) -> int:
        return sum(len(ids) for ids in self.workflows.values())

    async def load_all(self, conn: AsyncConnection) -> None:
        now = (await conn.execute(NOW)).scalar_one()
        grouped: dict[tuple[int, int], list[int]] = defaultdict(list)
        for department_id, event_type, workflow_id in await conn.execute(LOAD_ALL):
            grouped[(department_id, event_type)].append(workflow_id)
        self.workflows = {key: tuple(ids) for key, ids in grouped.items()}
        self.plans = {dep: Plan(plan) for dep, plan in await conn.execute(LOAD_PLANS)}
        self._since = now - LOOKBACK if self._since is None else min(self._since, now - LOOKBACK)
        self.loaded_at = time.monotonic()

    async def refresh(self, conn: AsyncConnection) -> int:
        """Apply changes committed since the last poll; returns how many departments were reloaded."""
        if self._since is None:
            await self.load_all(conn)
            return 0
        now = (await conn.execute(NOW)).scalar_one()
        rows = (await conn.execute(CHANGES_SINCE, {"since": self._since})).all()
        departments = {dep for change_id, dep, _ in rows if change_id not in self._seen}
        stamp = time.monotonic()
        for change_id, _, _ in rows:
            self._seen.setdefault(change_id, stamp)
        self._since = now - LOOKBACK
        expiry = stamp - 2 * LOOKBACK.total_seconds()
        self._seen = {cid: t for cid, t in self._seen.items() if t >= expiry}
        if departments:
            await self._reload(conn, sorted(departments))
        return len(departments)

    async def _reload(self, conn: AsyncConnection, departments: list[int]) -> None:
        wanted = set(departments)
        grouped: dict[tuple[int, int], list[int]] = defaultdict(list)
        for department_id, event_type, workflow_id in await conn.execute(
            LOAD_DEPARTMENTS, {"ids": departments}
        ):
            grouped[(department_id, event_type)].append(workflow_id)
        kept = {key: ids for key, ids in self.workflows.items() if key[0] not in wanted}
        kept.update({key: tuple(ids) for key, ids in grouped.items()})
        self.workflows = kept
        for dep in departments:
            self.plans.pop(dep, None)
        for dep, plan in await conn.execute(LOAD_DEPARTMENT_PLANS, {"ids": departments}):
            if plan != Plan.Free.value:
                self.plans[dep] = Plan(plan)
