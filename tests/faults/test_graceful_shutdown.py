"""SIGTERM during load: the executor finishes its in-flight runs within the grace period and hands
the rest back; a replacement completes everything, each run's action performed once."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from aiokafka import AIOKafkaProducer

from shared.enums import RunStatus
from tests.faults.workload import http_post, keys_by_path, start_run, wait_final, workflow
from tests.peers.https_server import HttpsPeer, Reply
from tests.support.helpers import isolated, wait_for
from tests.support.processes import ServiceProcess
from tests.support.services import running_services

pytestmark = pytest.mark.faults
log = logging.getLogger(__name__)  # figures for the report: pytest -o log_cli=true

RUNS = 40
STEP_S = 1.5
GRACE_S = 8.0


async def test_sigterm_during_load_finishes_or_hands_back_in_flight_work(
    db, settings, local_ca, department_id, tmp_path
):
    cfg = isolated(settings, shutdown_grace_s=GRACE_S, executor_lease_s=5.0)
    async with HttpsPeer(local_ca) as peer, running_services(cfg, executor=False, health=False):
        peer.reply("POST", "/notify", Reply(delay=STEP_S))
        workflow_id, _ = await workflow(db, department_id, http_post(peer, "/notify"))
        producer = AIOKafkaProducer(bootstrap_servers=cfg.kafka_bootstrap, acks="all")
        await producer.start()
        first = ServiceProcess("executor", cfg, tmp_path).start()
        runs: list[int] = []

        async def steady_runs() -> None:  # 40 runs over ~4 s: some arrive after the SIGTERM
            for _ in range(RUNS):
                runs.append(await start_run(db, producer, cfg, workflow_id, department_id))
                await asyncio.sleep(0.1)

        try:
            feeding = asyncio.create_task(steady_runs())

            async def busy() -> bool:
                return len(peer.requests) >= 5

            await wait_for(busy, timeout=40)
            in_flight_at_term = len(peer.requests)
            began = time.monotonic()
            code = await asyncio.to_thread(first.terminate, GRACE_S + 10)
            stopped_in = time.monotonic() - began
            await feeding
        finally:
            if first.proc is not None and first.proc.poll() is None:
                first.kill()
            await producer.stop()
        assert code == 0, first.log()[-2000:]
        assert stopped_in < GRACE_S + 5, stopped_in
        handled_by_first = len(peer.requests)

        second = ServiceProcess("executor", cfg, tmp_path).start()
        try:
            final = await wait_final(db, runs, timeout=90)
        finally:
            assert second.terminate() == 0, second.log()[-2000:]

    assert final == dict.fromkeys(runs, RunStatus.Completed)
    keys = keys_by_path(peer)["/notify"]
    # nothing lost, and graceful means nothing cut off: every action once, not even a re-send
    assert len(keys) == RUNS, keys
    assert set(keys.values()) == {1}, keys
    assert handled_by_first < RUNS, "the SIGTERM came too late to prove the hand-back"
    log.info(
        f"in flight at SIGTERM >= {in_flight_at_term}, first executor performed {handled_by_first}, "
        f"stopped in {stopped_in:.1f} s"
    )
