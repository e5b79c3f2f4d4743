"""Per-department rate limits shared by every dispatcher replica, kept in PostgreSQL.

- Executions per minute: each department has a cursor (window_start, window_used). New runs take
  the next free slots: a slot is a place in a fixed one-minute window, ``limit`` places per window,
  so runs over the limit are deferred to the next window(s) instead of dropped. The cursor row is
  locked while it moves, so concurrent dispatchers never hand out the same slot.
- Daily runs (free plan): an atomic counter per department and UTC day; runs beyond the cap fail.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

ENSURE_CURSORS = text(
    "INSERT INTO department_rate_state (department_id, window_start, window_used) "
    "SELECT d, date_trunc('minute', now()), 0 FROM unnest(CAST(:ids AS int[])) AS d "
    "ON CONFLICT (department_id) DO NOTHING"
)

TAKE_SLOTS = text(
    """
    WITH input AS (
        SELECT * FROM unnest(CAST(:ids AS int[]), CAST(:counts AS int[]), CAST(:limits AS int[]))
            AS t(department_id, n, lim)
    ), locked AS (
        SELECT s.department_id, s.window_start, s.window_used
        FROM department_rate_state s JOIN input i ON i.department_id = s.department_id
        ORDER BY s.department_id FOR UPDATE OF s
    ), base AS (
        SELECT l.department_id, i.n, i.lim,
               greatest(l.window_start, date_trunc('minute', now())) AS ws,
               CASE WHEN l.window_start < date_trunc('minute', now()) THEN 0
                    ELSE least(l.window_used, i.lim) END AS used
        FROM locked l JOIN input i ON i.department_id = l.department_id
    ), moved AS (
        UPDATE department_rate_state s
        SET window_start = b.ws + ((b.used + b.n - 1) / b.lim) * interval '1 minute',
            window_used = b.used + b.n - ((b.used + b.n - 1) / b.lim) * b.lim
        FROM base b WHERE s.department_id = b.department_id
    )
    SELECT department_id, ws, used, lim, date_trunc('minute', now()) AS current_window FROM base
    """
)

COUNT_DAILY_RUNS = text(
    "INSERT INTO department_daily_usage (department_id, usage_date, channel, used) "
    "SELECT d, (now() AT TIME ZONE 'UTC')::date, 'runs', n "
    "FROM unnest(CAST(:ids AS int[]), CAST(:counts AS int[])) AS t(d, n) "
    "ON CONFLICT (department_id, usage_date, channel) "
    "DO UPDATE SET used = department_daily_usage.used + EXCLUDED.used "
    "RETURNING department_id, used"
)


@dataclass(frozen=True, slots=True)
class SlotGrant:
    """The windows handed to a department's ``n`` new runs, in order."""

    first_window: datetime
    first_used: int
    limit: int
    current_window: datetime

    def window_of(self, index: int) -> datetime:
        return self.first_window + timedelta(minutes=(self.first_used + index) // self.limit)

    def due_now(self, index: int) -> bool:
        return self.window_of(index) <= self.current_window


async def take_slots(conn: AsyncConnection, wanted: Mapping[int, tuple[int, int]]) -> dict[int, SlotGrant]:
    """``wanted`` maps department → (runs, per-minute limit)."""
    if not wanted:
        return {}
    ids = sorted(wanted)
    await conn.execute(ENSURE_CURSORS, {"ids": ids})
    rows = await conn.execute(
        TAKE_SLOTS,
        {
            "ids": ids,
            "counts": [wanted[d][0] for d in ids],
            "limits": [wanted[d][1] for d in ids],
        },
    )
    return {dep: SlotGrant(ws, used, lim, current) for dep, ws, used, lim, current in rows}


async def count_daily_runs(conn: AsyncConnection, wanted: Mapping[int, tuple[int, int]]) -> dict[int, int]:
    """``wanted`` maps department → (runs, daily cap); returns how many of those runs are allowed."""
    if not wanted:
        return {}
    ids = sorted(wanted)
    rows = await conn.execute(COUNT_DAILY_RUNS, {"ids": ids, "counts": [wanted[d][0] for d in ids]})
    allowed = {}
    for dep, used in rows:
        n, cap = wanted[dep]
        allowed[dep] = max(0, min(n, cap - (used - n)))
    return allowed
