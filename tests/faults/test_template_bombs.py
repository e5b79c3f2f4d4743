"""A template bomb fails its own step, never the executor: the same run's other steps still run and
the next run is processed as usual. (Loop, nesting and output-size bombs one per run:
tests/executor/test_template_bombs.py; this adds a memory bomb and bombs mixed with good steps.)"""

from __future__ import annotations

import logging

import pytest
from aiokafka import AIOKafkaProducer

from shared.enums import RunStatus
from tests.faults.workload import http_post, start_run, wait_final, workflow
from tests.peers.https_server import HttpsPeer
from tests.support.helpers import fetch, isolated
from tests.support.services import running_services

pytestmark = pytest.mark.faults
log = logging.getLogger(__name__)  # figures for the report: pytest -o log_cli=true

LOOP_BOMB = (
    "{% for i in (1..100000) %}{% for j in (1..100000) %}x{% endfor %}{% endfor %}"  # 10^10 iterations
)
# doubling a string 24 times: 160 MiB if nothing stopped it
STRING_BOMB = (
    '{% assign s = "xxxxxxxxxx" %}{% for i in (1..24) %}{% assign s = s | append: s %}{% endfor %}{{ s }}'
)
OVERSIZED = "{% for i in (1..400) %}" + "y" * 1000 + "{% endfor %}"  # 400,000 characters of output


async def test_template_bombs_fail_one_step_and_the_executor_carries_on(
    db, settings, local_ca, department_id
):
    cfg = isolated(settings)
    async with HttpsPeer(local_ca) as peer:
        bombs_wf, steps = await workflow(
            db,
            department_id,
            http_post(peer, "/loop", LOOP_BOMB),
            http_post(peer, "/string", STRING_BOMB),
            http_post(peer, "/oversized", OVERSIZED),
            http_post(peer, "/fine"),
        )
        next_wf, _ = await workflow(db, department_id, http_post(peer, "/next"))
        producer = AIOKafkaProducer(bootstrap_servers=cfg.kafka_bootstrap, acks="all")
        await producer.start()
        try:
            async with running_services(cfg, dispatcher=False, health=False):
                bombs_run = await start_run(db, producer, cfg, bombs_wf, department_id)
                final = await wait_final(db, [bombs_run], timeout=60)
                next_run = await start_run(db, producer, cfg, next_wf, department_id)
                final |= await wait_final(db, [next_run], timeout=30)
        finally:
            await producer.stop()

    assert final == {bombs_run: RunStatus.Failed, next_run: RunStatus.Completed}
    logs = await fetch(
        db,
        "SELECT workflow_step_id, status, error_message FROM workflow_run_logs "
        "WHERE workflow_run_id = :r ORDER BY workflow_run_log_id",
        r=bombs_run,
    )
    assert [(step, status) for step, status, _ in logs] == [
        (steps[0], RunStatus.Failed),
        (steps[1], RunStatus.Failed),
        (steps[2], RunStatus.Failed),
        (steps[3], RunStatus.Completed),
    ], logs
    for _, _, error in logs[:3]:
        assert error.startswith("OutputTemplate: "), error
    assert [r.path for r in peer.requests] == ["/fine", "/next"]  # no bomb was ever sent
    log.info(f"bomb errors: {[error for _, _, error in logs[:3]]}")
