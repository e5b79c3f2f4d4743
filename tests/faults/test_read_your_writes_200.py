"""The issue's acceptance test for read-your-writes matching, slow (~40 s) so among the fault tests:
200 saves alternating create and disable, two dispatchers, each followed at once by an event
(helpers: tests/dispatcher/test_read_your_writes.py)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.config import Settings
from tests.dispatcher.test_read_your_writes import (
    _departments,
    client,
    create,
    dispatchers,
    event_producer,
    runs_for,
    send_event,
    update,
    wait_for_assignment,
    wait_for_runs,
)
from tests.support.helpers import event, isolated
from tests.support.live_api import live_api

pytestmark = pytest.mark.faults


@pytest.fixture
def cfg(settings: Settings) -> Settings:
    return isolated(settings)


async def test_two_hundred_saves_each_followed_at_once_by_an_event(cfg: Settings, db: AsyncEngine) -> None:
    """The issue's acceptance test: 200 tries alternating create and disable, two dispatchers, an event
    produced the moment the API answers. Each create's event must run the new workflow; each disable's
    event must not run the disabled one (a sentinel workflow of the same department proves the event
    was processed)."""
    tries = 200
    async with dispatchers(cfg, 0.25, 0.25) as replicas, event_producer(cfg) as producer:
        await wait_for_assignment(replicas, cfg.partitions_events)
        with live_api(cfg) as base_url:
            departments = [next(_departments) for _ in range(tries)]
            # Disable tries: a workflow that has been firing, and a sentinel beside it.
            firing: dict[int, tuple[int, int]] = {}
            for i, dep in enumerate(departments):
                if i % 2:
                    async with client(base_url, cfg, dep) as api:
                        firing[dep] = (await create(api), await create(api))
            await asyncio.sleep(0.5)
            expected: set[tuple[int, str]] = set()
            unexpected: set[tuple[int, str]] = set()
            for i, dep in enumerate(departments):
                async with client(base_url, cfg, dep) as api:
                    probe = event(dep, 9)
                    if i % 2 == 0:
                        workflow_id = await create(api)
                        await send_event(producer, cfg, probe)
                        expected.add((workflow_id, probe["EventId"]))
                    else:
                        workflow_id, sentinel = firing[dep]
                        await update(api, workflow_id, IsEnabled=False)
                        await send_event(producer, cfg, probe)
                        unexpected.add((workflow_id, probe["EventId"]))
                        expected.add((sentinel, probe["EventId"]))
            await wait_for_runs(db, expected, timeout=90)
        found = await runs_for(db, sorted({e for _, e in expected | unexpected}))
    wrong = len(expected - found) + len(found & unexpected)
    assert wrong == 0, f"{tries - wrong}/{tries} matched as saved"
    assert all(r.index.applied > 0 for r in replicas)
