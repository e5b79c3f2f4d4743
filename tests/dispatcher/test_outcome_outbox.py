"""The run row is the outbox of its outcome: the scheduler publishes outcomes left unacknowledged
past the grace period (once per run, the health service counting each once); a settled outcome that
was acknowledged is not published again. The broker-outage case: tests/faults/test_outcome_outbox.py."""

from __future__ import annotations

import httpx
import orjson
import pytest
from aiokafka.errors import KafkaTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.dispatcher.scheduler import Scheduler
from shared.config import Settings
from shared.db.engine import create_engine
from shared.kafka.clients import create_producer
from shared.kafka.topics import ensure_topics
from shared.runs import outbox as runs_outbox
from tests.api.conftest import create_workflow, insert_run
from tests.support.helpers import consume_all, execute, fetch, isolated, wait_for
from tests.support.services import running_services


async def test_scheduler_publishes_unacknowledged_outcomes_after_the_grace_period(
    settings: Settings, db: AsyncEngine, api: httpx.AsyncClient, department_id: int
) -> None:
    # The session's other schedulers republish marks older than 3 s (tests/support/infra.py) into their
    # own topics: the overdue mark is due for this scheduler (0.5 s) well before it is for theirs.
    cfg = isolated(settings, unpublished_grace_s=0.5)
    await ensure_topics(cfg)
    wid = (await create_workflow(api))["WorkflowId"]
    overdue = await insert_run(db, wid, department_id, status=2, duration_ms=1200)
    recent = await insert_run(db, wid, department_id, status=3, error="boom")
    announced = await insert_run(db, wid, department_id, status=2)
    await execute(
        db,
        "UPDATE workflow_runs SET outcome_pending_since = CASE workflow_run_id "
        "WHEN :o THEN now() - interval '1 second' WHEN :r THEN now() + interval '1 minute' END "
        "WHERE workflow_run_id = ANY(:ids)",
        o=overdue,
        r=recent,
        ids=[overdue, recent, announced],
    )
    engine = create_engine(cfg)
    producer = create_producer(cfg)
    await producer.start()
    try:
        scheduler = Scheduler(engine, producer, cfg)
        assert await scheduler.republish_outcomes() == 1
        assert await scheduler.republish_outcomes() == 0  # its mark went with the publish
    finally:
        await producer.stop()
        await engine.dispose()
    messages = await consume_all(cfg, cfg.topic_results, expect=1)
    outcomes = [orjson.loads(m.value) for m in messages]
    assert [(o["RunId"], o["Status"], o["WorkflowId"]) for o in outcomes] == [(overdue, 2, wid)]
    marks = dict(
        await fetch(
            db,
            "SELECT workflow_run_id, outcome_pending_since IS NOT NULL FROM workflow_runs "
            "WHERE workflow_run_id = ANY(:ids)",
            ids=[overdue, recent, announced],
        )
    )
    assert marks == {overdue: False, recent: True, announced: False}

    # The health service counts the republished outcome once, however often it arrives.
    async with running_services(cfg, dispatcher=False, executor=False):
        await producer_again(cfg, messages[0].value, times=2)

        async def counted() -> bool:
            rows = await fetch(db, "SELECT sum(total_runs) FROM health_rollups WHERE workflow_id = :w", w=wid)
            return bool(rows[0][0])

        await wait_for(counted, timeout=30)
    rows = await fetch(db, "SELECT sum(total_runs) FROM health_rollups WHERE workflow_id = :w", w=wid)
    assert rows == [(1,)]


async def producer_again(cfg: Settings, value: bytes, *, times: int) -> None:
    from tests.support.helpers import produce

    await produce(cfg, cfg.topic_results, [value] * times, key=b"1")


async def test_a_cancel_whose_outcome_cannot_be_published_leaves_it_in_the_outbox(
    settings: Settings,
    db: AsyncEngine,
    api: httpx.AsyncClient,
    department_id: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wid = (await create_workflow(api))["WorkflowId"]
    published, failing = await insert_run(db, wid, department_id), await insert_run(db, wid, department_id)
    response = await api.post(f"/api/v4/workflows/runs/{published}/cancel")
    assert response.status_code == 200, response.text

    async def broker_down(*args: object, **kwargs: object) -> None:
        raise KafkaTimeoutError()

    monkeypatch.setattr(runs_outbox, "produce_outcomes", broker_down)
    response = await api.post(f"/api/v4/workflows/runs/{failing}/cancel")
    assert response.status_code == 200, response.text  # the cancel stands
    rows = await fetch(
        db,
        "SELECT workflow_run_id, status, outcome_pending_since IS NOT NULL FROM workflow_runs "
        "WHERE workflow_run_id = ANY(:ids) ORDER BY 1",
        ids=[published, failing],
    )
    # Both Cancelled; the first outcome acknowledged, the second left for the scheduler.
    assert rows == [(published, 4, False), (failing, 4, True)]
