"""The in-memory matching index: (department, event type) → enabled workflow ids, plus plans.

Matching is a dict lookup, so its cost does not grow with the number of stored workflows. The index
is loaded once, then refreshed per department from the ``workflow_changes`` log that database
triggers append to (a workflow created, edited, enabled/disabled or deleted, a plan changed), and
fully reloaded every few minutes as a safety net.

Read-your-writes: before matching a batch, the dispatcher compares the log's head
(``workflow_change_head``, one row) with the change id the index has applied, and catches up first
when it is behind (``catch_up``). The change trigger numbers changes under the head row's lock, held
until the writing transaction ends, so ids commit in order and without gaps: a head of N read after
a save committed means every change up to N, that save's included, is visible. An event produced
after the API answered a save is therefore matched against the saved definitions, on every replica.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.db.engine import StatementPool
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
HEAD_SQL = "SELECT change_id FROM workflow_change_head"
HEAD = text(HEAD_SQL)
CHANGES_BETWEEN = text(
    "SELECT department_id, count(*) FROM workflow_changes "
    "WHERE change_id > CAST(:after AS bigint) AND change_id <= CAST(:upto AS bigint) GROUP BY department_id"
)


@dataclass
class MatchIndex:
    workflows: dict[tuple[int, int], tuple[int, ...]] = field(default_factory=dict)
    plans: dict[int, Plan] = field(default_factory=dict)
    applied: int = -1  # the last change id reflected in the index; -1 before the first load
    loaded_at: float = 0.0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def match(self, department_id: int, event_type: int) -> tuple[int, ...]:
        return self.workflows.get((department_id, event_type), ())

    def plan(self, department_id: int) -> Plan:
        return self.plans.get(department_id, Plan.Free)

    def __len__(self) -> int:
        return sum(len(ids) for ids in self.workflows.values())

    async def load_all(self, conn: AsyncConnection) -> None:
        async with self._lock:
            await self._load_all(conn)

    async def _load_all(self, conn: AsyncConnection) -> None:
        # The head first: whatever committed after it is applied (again, harmlessly) by the next catch-up.
        head = int((await conn.execute(HEAD)).scalar_one())
        grouped: dict[tuple[int, int], list[int]] = defaultdict(list)
        for department_id, event_type, workflow_id in await conn.execute(LOAD_ALL):
            grouped[(department_id, event_type)].append(workflow_id)
        self.workflows = {key: tuple(ids) for key, ids in grouped.items()}
        self.plans = {dep: Plan(plan) for dep, plan in await conn.execute(LOAD_PLANS)}
        self.applied = head
        self.loaded_at = time.monotonic()

    async def is_current(self, pool: StatementPool) -> bool:
        """Whether the index has applied every committed change: one single-row read (the batch path)."""
        async with pool.connection(timeout=5) as conn:  # the database down: fail the batch, retry it
            row = await (await conn.execute(HEAD_SQL)).fetchone()
        return row is not None and int(row[0]) <= self.applied

    async def refresh(self, conn: AsyncConnection) -> int:
        """Apply the changes committed since the index's change id; returns how many departments were
        reloaded (-1 after a full reload)."""
        async with self._lock:
            if self.applied < 0:
                await self._load_all(conn)
                return -1
            head = int((await conn.execute(HEAD)).scalar_one())
            if head <= self.applied:
                return 0
            bounds = {"after": self.applied, "upto": head}
            counts: dict[int, int] = dict((await conn.execute(CHANGES_BETWEEN, bounds)).tuples().all())
            departments = sorted(counts)
            # Ids have no gaps, so a shortfall means the log was pruned past this index (retention, a
            # reseeded database): only a full reload is sure to be right then.
            if sum(counts.values()) != head - self.applied:
                await self._load_all(conn)
                return -1
            if departments:
                await self._reload(conn, departments)
            self.applied = head
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
