"""Every outcome is counted exactly once: the broker stops after a run's step went out and stays down
past the executor's publish timeout, so the run is settled in PostgreSQL but its outcome cannot be
published. Once the broker is back the scheduler publishes it from the run row (the outbox), and the
health figures count the run once, without `wf health rebuild`."""

from __future__ import annotations

import asyncio
import logging
import time

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from tests.faults.infra import start_kafka, stop_kafka
from tests.faults.workload import http_post, start_run, wait_final, workflow
from tests.peers.https_server import HttpsPeer, Reply
from tests.support.helpers import fetch, isolated, wait_for
from tests.support.services import running_services

pytestmark = pytest.mark.faults
log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_S = 30  # the producers' request_timeout_ms (shared/kafka/clients.py)
STEP_REPLY_S = 15.0  # the peer answers the step this long after receiving it: the broker is down by then


async def test_outcome_settled_while_the_broker_is_down_is_counted_once_after_it_returns(
    db, settings, infra, local_ca, department_id, api: httpx.AsyncClient
):
    cfg = isolated(settings, unpublished_grace_s=2.0, http_timeout_s=STEP_REPLY_S + 20)
    async with HttpsPeer(local_ca) as peer, running_services(cfg):
        peer.reply("POST", "/slow", Reply(200, b"ok", delay=STEP_REPLY_S))
        workflow_id, _ = await workflow(db, department_id, http_post(peer, "/slow"))
        producer = AIOKafkaProducer(bootstrap_servers=cfg.kafka_bootstrap, acks="all")
        await producer.start()
        try:
            run_id = await start_run(db, producer, cfg, workflow_id, department_id)
        finally:
            await producer.stop()

        async def step_sent() -> bool:
            return bool(peer.requests_to("POST", "/slow"))

        await wait_for(step_sent, timeout=30)
        sent = time.monotonic()
        try:
            await stop_kafka(infra)  # the step is still in flight: its reply comes with the broker down
            assert time.monotonic() - sent < STEP_REPLY_S, "the broker took too long to stop; nothing tested"
            assert await wait_final(db, [run_id], timeout=60) == {run_id: 2}
            pending = await fetch(
                db, "SELECT outcome_pending_since FROM workflow_runs WHERE workflow_run_id = :r", r=run_id
            )
            assert pending[0][0] is not None  # settled, its outcome not acknowledged
            # Down past the publish timeout: the executor's own attempt to publish gives up.
            await asyncio.sleep(PUBLISH_TIMEOUT_S + 5)
        finally:
            await start_kafka(infra)  # also when the test failed: the later fault tests need it
        returned = time.monotonic()

        async def counted() -> bool:
            rows = await fetch(
                db, "SELECT sum(total_runs) FROM health_rollups WHERE workflow_id = :w", w=workflow_id
            )
            return bool(rows[0][0])

        await wait_for(counted, timeout=90, interval=0.5)
        recovered = time.monotonic() - returned
        await asyncio.sleep(3)  # a second publish (the executor's late ack, the scheduler) must not count

    rows = await fetch(
        db,
        "SELECT sum(total_runs), sum(success_runs) FROM health_rollups WHERE workflow_id = :w",
        w=workflow_id,
    )
    assert rows == [(1, 1)]
    marks = await fetch(
        db, "SELECT outcome_pending_since FROM workflow_runs WHERE workflow_run_id = :r", r=run_id
    )
    assert marks == [(None,)]
    health = await api.get(f"/api/v4/workflows/{workflow_id}/health")
    assert health.status_code == 200, health.text
    assert health.json()["TotalRuns24h"] == 1
    log.info(f"outcome counted {recovered:.1f} s after the broker returned")
