"""The broker restarted during a steady load of thousands of events: after it comes back every event
has its run, exactly once, and the services' producers and consumers reconnected by themselves."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from tests.faults.infra import start_kafka, stop_kafka
from tests.faults.workload import (
    SteadyLoad,
    assert_every_event_has_its_run_once,
    departments_with_workflow,
    wait_all_completed,
)
from tests.support.helpers import isolated, wait_for
from tests.support.services import running_services

pytestmark = pytest.mark.faults
log = logging.getLogger(__name__)  # figures for the report: pytest -o log_cli=true

EVENTS = 3000


async def test_broker_restart_during_load_loses_and_duplicates_nothing(db, settings, infra, department_id):
    cfg = isolated(settings, executor_lease_s=10.0)
    departments = await departments_with_workflow(db, department_id, 20)
    async with running_services(cfg, health=False):
        load = SteadyLoad(cfg, departments, total=EVENTS, rate=250)
        producing = asyncio.create_task(load.run())
        await wait_for(lambda: _at_least(load, EVENTS // 4), timeout=60)
        began = time.monotonic()
        await stop_kafka(infra)
        await asyncio.sleep(2)
        await start_kafka(infra)
        outage = time.monotonic() - began
        sent_during_outage = len(load.sent)
        await asyncio.wait_for(producing, timeout=180)
        await wait_all_completed(db, departments, EVENTS, timeout=180)
        recovered = time.monotonic() - began

    assert sent_during_outage < EVENTS, "the load had finished before the broker came back"
    await assert_every_event_has_its_run_once(db, departments, load.sent)
    log.info(
        f"broker down {outage:.1f} s; producer re-sent {load.resends} chunk(s); all {EVENTS} runs done "
        f"{recovered:.1f} s after the stop"
    )


async def _at_least(load: SteadyLoad, count: int) -> bool:
    return len(load.sent) >= count
