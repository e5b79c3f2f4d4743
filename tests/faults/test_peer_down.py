"""Action peers refusing connections: runs retry on their backoff schedule and complete once the
peer is back; a peer that stays down ends the run Failed with the last error."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.enums import ActionType, RunStatus
from tests.faults.workload import (
    Step,
    StickyHttpsPeer,
    StickySmtpPeer,
    http_post,
    smtp_credential,
    start_run,
    wait_final,
    workflow,
)
from tests.support.helpers import fetch, isolated
from tests.support.services import running_services
from wf.procs import free_port

pytestmark = pytest.mark.faults

DOWN_S = 2.5


async def step_attempts(db: AsyncEngine, run_id: int) -> list[Any]:
    return await fetch(
        db,
        "SELECT attempt_number, status, error_message, started_on, completed_on "
        "FROM workflow_run_logs WHERE workflow_run_id = :r ORDER BY workflow_run_log_id",
        r=run_id,
    )


def assert_on_schedule(attempts, base_s: float) -> None:
    """Attempt n+1 began no earlier than base × 2^(n−1) after attempt n failed."""
    for previous, current in zip(attempts, attempts[1:], strict=False):
        delay = timedelta(seconds=base_s * 2 ** (previous.attempt_number - 1))
        assert current.started_on >= previous.completed_on + delay, (previous, current)


async def test_peers_down_for_a_while_then_back_complete_and_a_peer_that_stays_down_fails(
    db, settings, local_ca, department_id
):
    cfg = isolated(settings)
    https = StickyHttpsPeer(local_ca)
    smtp = StickySmtpPeer()
    await https.start()
    await smtp.start()
    await https.stop()  # both refuse connections from the start...
    await smtp.stop()
    credential = await smtp_credential(db, cfg, department_id, smtp.port)
    http_wf, _ = await workflow(db, department_id, http_post(https, "/alert"), max_retries=4, backoff_s=1)
    mail_wf, _ = await workflow(
        db,
        department_id,
        Step(
            int(ActionType.SendEmail),
            "{{ call.name }}",
            {"to": "chief@example.org", "subject": "Call"},
            credential,
        ),
        max_retries=4,
        backoff_s=1,
    )
    dead = free_port()  # nothing ever listens here
    dead_wf, _ = await workflow(
        db,
        department_id,
        Step(int(ActionType.CallApiPost), "{}", {"url": f"https://127.0.0.1:{dead}/x"}),
        max_retries=2,
        backoff_s=1,
    )
    producer = AIOKafkaProducer(bootstrap_servers=cfg.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        async with running_services(cfg, health=False):
            http_run, mail_run, dead_run = [
                await start_run(db, producer, cfg, wf, department_id) for wf in (http_wf, mail_wf, dead_wf)
            ]
            await asyncio.sleep(DOWN_S)  # ...for a while
            await https.start()
            await smtp.start()
            final = await wait_final(db, [http_run, mail_run, dead_run], timeout=60)
    finally:
        await producer.stop()
        await https.stop()
        await smtp.stop()

    assert final[http_run] == final[mail_run] == RunStatus.Completed
    assert len(https.requests) == 1
    assert len(smtp.messages) == 1
    for run_id in (http_run, mail_run):
        attempts = await step_attempts(db, run_id)
        assert len(attempts) >= 2, attempts
        assert attempts[-1].status == RunStatus.Completed, attempts
        # refused connections: "Connection error: ..." (HTTP), "Could not connect to SMTP server ..." (SMTP)
        assert all(
            a.status == RunStatus.Failed and "connect" in a.error_message.lower() for a in attempts[:-1]
        ), attempts
        assert_on_schedule(attempts, 1.0)

    assert final[dead_run] == RunStatus.Failed
    attempts = await step_attempts(db, dead_run)
    assert [a.attempt_number for a in attempts] == [1, 2, 3]
    assert_on_schedule(attempts, 1.0)
    (error,) = (
        await fetch(db, "SELECT error_message FROM workflow_runs WHERE workflow_run_id = :r", r=dead_run)
    )[0]
    assert error.startswith("Step 1 (CallApiPost) failed: ")
    assert "gave up after 3 attempt(s)" in error
    assert "connect" in attempts[-1].error_message.lower()
    assert attempts[-1].error_message in error  # the run reports the last attempt's error
