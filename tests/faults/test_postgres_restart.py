"""PostgreSQL restarted during load: the services keep running, say so on /healthz (503) while it is
down, become healthy again by themselves, and every event gets its run exactly once."""

from __future__ import annotations

import asyncio
import logging
import time

import httpx
import pytest

from tests.faults.infra import start_postgres, stop_postgres
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

EVENTS = 1500
DOWN_S = 4.0


async def test_database_restart_during_load_reports_unhealthy_recovers_and_loses_nothing(
    db, settings, infra, department_id
):
    cfg = isolated(settings, executor_lease_s=5.0)
    departments = await departments_with_workflow(db, department_id, 20)
    async with running_services(cfg) as started, httpx.AsyncClient(timeout=10) as http:
        urls = {name: f"http://127.0.0.1:{service.side_port}/healthz" for name, service in started.items()}  # type: ignore[attr-defined]

        async def health() -> dict[str, int]:
            # All at once: each check may wait out its own database connect timeout during the outage.
            answers = await asyncio.gather(*(http.get(url) for url in urls.values()))
            return {name: answer.status_code for name, answer in zip(urls, answers, strict=True)}

        assert set((await health()).values()) == {200}
        load = SteadyLoad(cfg, departments, total=EVENTS, rate=200)
        producing = asyncio.create_task(load.run())
        await wait_for(lambda: _at_least(load, EVENTS // 4), timeout=60)
        began = time.monotonic()
        await stop_postgres(infra)

        async def all_unhealthy() -> bool:
            return set((await health()).values()) == {503}

        await wait_for(all_unhealthy, timeout=20, interval=0.3)
        # Not ready, but alive: the liveness probe must not restart pods for a database outage.
        for name, service in started.items():
            live = await http.get(f"http://127.0.0.1:{service.side_port}/livez")  # type: ignore[attr-defined]
            assert live.status_code == 200, (name, live.text)
        await asyncio.sleep(max(0.0, DOWN_S - (time.monotonic() - began)))
        sent_while_down = len(load.sent)
        await start_postgres(infra)

        async def all_healthy() -> bool:
            return set((await health()).values()) == {200}

        await wait_for(all_healthy, timeout=60, interval=0.3)
        healthy_after = time.monotonic() - began
        await asyncio.wait_for(producing, timeout=120)
        await wait_all_completed(db, departments, EVENTS, timeout=120)
        assert set((await health()).values()) == {200}  # still running and healthy after the load

    assert sent_while_down < EVENTS, "the load had finished before the database came back"
    await assert_every_event_has_its_run_once(db, departments, load.sent)
    log.info(f"database down ~{DOWN_S:g} s; all services healthy again {healthy_after:.1f} s after the stop")


async def _at_least(load: SteadyLoad, count: int) -> bool:
    return len(load.sent) >= count
