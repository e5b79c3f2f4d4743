"""The encoded workflow lists, validated against the database on every request.

Each department's list is kept as the bytes sent, under the tag it was built at (its rows' ids and
xmins, ``repository.LISTS_IF_CHANGED``). Every request still asks PostgreSQL for the department's
current tag, so a write committed through any replica shows at once; only the JSON building is
skipped while the tag stands. Requests arriving while a check is in flight share the next one (a
``Coalescer``): that statement starts after they arrived, so it sees every write acknowledged before
them, and under load one round trip answers many requests.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

from services.api.workflows.repository import LISTS_IF_CHANGED
from shared.db.coalescer import Coalescer
from shared.db.engine import StatementPool

# 17 KB per department of 28 workflows: 1,000 departments hold ~17 MB at most.
MAX_DEPARTMENTS = 1000


@dataclass(frozen=True)
class EncodedList:
    tag: str  # also the ETag: it changes whenever the list does
    body: bytes


class WorkflowLists:
    def __init__(self, reads: StatementPool, *, max_departments: int = MAX_DEPARTMENTS) -> None:
        self._reads = reads
        self._max = max_departments
        self._known: OrderedDict[int, EncodedList] = OrderedDict()
        # One check in flight: the requests arriving meanwhile all share the next one (fewest round
        # trips; 0.19 against 0.20 ms of API CPU and 0.06 against 0.075 ms of PostgreSQL per request
        # with 4). A check is a short read that waits on no row lock, so holding the next back is cheap.
        self._checks: Coalescer[int, EncodedList] = Coalescer("workflow-lists", self._check, max_in_flight=1)

    async def get(self, department_id: int) -> EncodedList:
        """The department's list as of a statement started after this call."""
        return await self._checks.submit(department_id)

    async def _check(self, departments: Sequence[int]) -> list[EncodedList]:
        distinct = list(dict.fromkeys(departments))
        known = [self._known.get(d) for d in distinct]
        tags = [k.tag if k else None for k in known]
        try:
            rows = await self._read(distinct, tags)
        except psycopg.OperationalError:
            await self._reads.check()  # a dropped connection (restart, failover): retry once, it is a read
            rows = await self._read(distinct, tags)
        current: dict[int, EncodedList] = {}
        for (department_id, tag, body), held in zip(rows, known, strict=True):
            if body is not None:  # built because the tag moved (or was not known)
                held = EncodedList(tag, body.encode())
                self._known[department_id] = held
                self._known.move_to_end(department_id)
                while len(self._known) > self._max:
                    self._known.popitem(last=False)
            if held is None or held.tag != tag:  # cannot be: an unchanged tag is one that was held
                raise RuntimeError(f"workflow list of department {department_id}: no body for tag {tag}")
            current[department_id] = held
        return [current[d] for d in departments]

    async def _read(
        self, departments: list[int], tags: list[str | None]
    ) -> list[tuple[int, str, str | None]]:
        async with self._reads.connection() as conn:
            cursor = await conn.execute(LISTS_IF_CHANGED, {"departments": departments, "known": tags})
            rows = await cursor.fetchall()
        order = {d: i for i, d in enumerate(departments)}
        return sorted(rows, key=lambda row: order[row[0]])
