"""An executor killed with SIGKILL mid-step and while a run waits between attempts: after a
replacement starts, every run finishes, every completed step was performed once at the peer
(counted by distinct Idempotency-Key) and no run is left Running."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.enums import RunStatus
from tests.faults.workload import http_post, keys_by_path, start_run, statuses, wait_final, workflow
from tests.peers.https_server import HttpsPeer, Reply
from tests.support.helpers import isolated, wait_for
from tests.support.processes import ServiceProcess
from tests.support.services import running_services

pytestmark = pytest.mark.faults
log = logging.getLogger(__name__)  # figures for the report: pytest -o log_cli=true

SLOW_S = 5.0  # longer than the lease: the first executor's heartbeat must keep it


async def test_executor_killed_mid_step_and_between_attempts(db, settings, local_ca, department_id, tmp_path):
    # A short lease so the scheduler notices the dead executor quickly.
    cfg = isolated(settings, executor_lease_s=3.0, shutdown_grace_s=5.0)
    async with HttpsPeer(local_ca) as peer, running_services(cfg, executor=False, health=False):
        peer.reply("POST", "/slow", Reply(delay=SLOW_S))
        peer.reply("POST", "/then-slow", Reply(delay=SLOW_S))
        peer.reply("POST", "/flaky", Reply(503, "busy"), Reply(200, {"ok": True}))
        slow_wf, _ = await workflow(db, department_id, http_post(peer, "/slow"))
        two_wf, _ = await workflow(
            db, department_id, http_post(peer, "/first"), http_post(peer, "/then-slow")
        )
        # The second attempt is due 4 s after the 503: the kill lands while the run waits for it.
        retry_wf, _ = await workflow(
            db, department_id, http_post(peer, "/before-retry"), http_post(peer, "/flaky"), backoff_s=4
        )

        producer = AIOKafkaProducer(bootstrap_servers=cfg.kafka_bootstrap, acks="all")
        await producer.start()
        first = ServiceProcess("executor", cfg, tmp_path).start()
        try:
            runs = [
                await start_run(db, producer, cfg, wf, department_id) for wf in (slow_wf, two_wf, retry_wf)
            ]
            slow_run, two_run, retry_run = runs

            async def all_in_the_middle() -> bool:
                paths = {r.path for r in peer.requests}
                found = await statuses(db, runs)
                return (
                    {"/slow", "/then-slow"} <= paths
                    and found[retry_run] == RunStatus.Retrying
                    and found[slow_run] == found[two_run] == RunStatus.Running
                )

            await wait_for(all_in_the_middle, timeout=40)
            await wait_for(lambda: _still_running(db, [slow_run, two_run], SLOW_S * 0.5), timeout=10)
            first.kill()
        finally:
            if first.proc is not None and first.proc.poll() is None:
                first.kill()
            await producer.stop()
        killed_at = time.monotonic()

        second = ServiceProcess("executor", cfg, tmp_path).start()
        try:
            final = await wait_final(db, runs, timeout=90)
        finally:
            assert second.terminate() == 0, second.log()[-2000:]
        recovered_in = time.monotonic() - killed_at

    assert final == dict.fromkeys(runs, RunStatus.Completed), final
    keys = keys_by_path(peer)
    # performed exactly once: one distinct Idempotency-Key per step at the peer
    for path in ("/slow", "/first", "/then-slow", "/before-retry", "/flaky"):
        assert len(keys[path]) == 1, (path, keys[path])
    # steps completed before the kill were never sent again; the ones cut off were sent again with the same key
    assert keys["/first"].total() == keys["/before-retry"].total() == 1
    assert keys["/slow"].total() == keys["/then-slow"].total() == 2
    assert keys["/flaky"].total() == 2  # the 503, then the retry by the replacement
    log.info(
        f"raw requests per path: { {p: c.total() for p, c in keys.items()} }; recovered in {recovered_in:.1f} s"
    )


async def _still_running(db: AsyncEngine, run_ids: list[int], at_least_s: float) -> bool:
    """The steps have been in progress for a while (the heartbeat kept the lease past its 3 s)."""
    await asyncio.sleep(at_least_s)
    return all(s == RunStatus.Running for s in (await statuses(db, run_ids)).values())
