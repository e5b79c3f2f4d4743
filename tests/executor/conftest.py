"""Driving real runs through the real pipeline: workflows from the API, runs handed to the executor
through the run topic (the outbox path the dispatcher uses), outcomes read back from PostgreSQL and
the results topic."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.executor.engine import RunExecutor
from services.executor.service import ExecutorService
from shared.config import Settings
from shared.enums import CredentialType, RunStatus
from shared.runs.outbox import RunToPublish, produce_runs, publish_committed_runs
from tests.conftest import token_for
from tests.peers.https_server import HttpsPeer
from tests.peers.smtp_server import SmtpPeer
from tests.peers.tls import LocalCA
from tests.support.helpers import insert_step, store_credential, wait_for

WAIT_S = 30.0
FINAL = (RunStatus.Completed, RunStatus.Failed, RunStatus.Cancelled)


class ResultsTap:
    """Every outcome message on the results topic, by RunId."""

    def __init__(self, settings: Settings) -> None:
        self.consumer = AIOKafkaConsumer(
            settings.topic_results,
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=f"test-results-tap-{uuid.uuid4().hex[:8]}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        self.by_run: dict[int, list[dict[str, Any]]] = defaultdict(list)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        self._task = asyncio.create_task(self._collect())

    async def _collect(self) -> None:
        async for record in self.consumer:
            message = orjson.loads(record.value or b"{}")
            self.by_run[int(message["RunId"])].append(message)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await self.consumer.stop()

    async def outcome(self, run_id: int) -> dict[str, Any]:
        async def published() -> dict[str, Any] | None:
            return self.by_run[run_id][0] if self.by_run.get(run_id) else None

        return await wait_for(published, what=f"run {run_id}'s outcome on the results topic")


@dataclass
class Pipeline:
    settings: Settings
    db: AsyncEngine
    producer: AIOKafkaProducer
    results: ResultsTap
    executor: ExecutorService

    # --- workflows ---------------------------------------------------------------------------------

    async def workflow(
        self,
        api: httpx.AsyncClient,
        *steps: dict[str, Any],
        max_retries: int = 3,
        backoff_s: int = 1,
        name: str = "Notify",
    ) -> tuple[int, list[int]]:
        """A workflow created through the API, with its steps (ActionConfig given as a dict)."""
        created = await api.post(
            "/api/v4/workflows",
            json={
                "Name": name,
                "TriggerEventType": 0,
                "MaxRetryCount": max_retries,
                "RetryBackoffBaseSeconds": backoff_s,
            },
        )
        assert created.status_code == 200, created.text
        workflow_id = int(created.json()["WorkflowId"])
        step_ids = []
        for step in steps:
            body = {
                **step,
                "ActionConfig": json.dumps(step["ActionConfig"]) if "ActionConfig" in step else None,
            }
            added = await api.post(f"/api/v4/workflows/{workflow_id}/steps", json=body)
            assert added.status_code == 200, added.text
            step_ids.append(int(added.json()["WorkflowStepId"]))
        return workflow_id, step_ids

    async def insert_step(self, workflow_id: int, **step: Any) -> int:
        """A step row written directly (``tests.support.helpers.insert_step``'s keywords), for content
        the API refuses at save time but the executor must still survive (rows saved before a rule
        existed, or edited in the database)."""
        async with self.db.begin() as conn:
            return await insert_step(conn, workflow_id, **step)

    async def credential(self, department_id: int, ctype: CredentialType, data: dict[str, Any]) -> int:
        """A credential stored as the API stores it: public fields in clear, secrets encrypted."""
        async with self.db.begin() as conn:
            return await store_credential(conn, self.settings, department_id, ctype, data)

    async def set_plan(self, api: httpx.AsyncClient, department_id: int, plan: str) -> None:
        token = token_for(self.settings, department_id, "SystemAdmin")
        reply = await api.put(
            f"/api/v4/admin/departments/{department_id}",
            json={"Plan": plan},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert reply.status_code == 200, reply.text

    async def use_today(self, department_id: int, channel: str, used: int) -> None:
        """What the department already sent today on a channel ("email" or "sms")."""
        async with self.db.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO department_daily_usage (department_id, usage_date, channel, used) "
                    "VALUES (:d, (now() AT TIME ZONE 'UTC')::date, :c, :u)"
                ),
                {"d": department_id, "c": channel, "u": used},
            )

    # --- runs --------------------------------------------------------------------------------------

    async def start_run(
        self,
        workflow_id: int,
        department_id: int,
        payload: dict[str, Any] | None = None,
        *,
        publish: bool = True,
    ) -> int:
        """A Pending run committed and its message produced, as the dispatcher does for a matched event."""
        async with self.db.begin() as conn:
            run_id = int(
                (
                    await conn.execute(
                        text(
                            "INSERT INTO workflow_runs (workflow_id, department_id, status, trigger_event_type, event_id, "
                            "attempt_number, is_test, input_payload, occurred_on) "
                            "VALUES (:w, :d, 0, 0, :e, 1, false, CAST(:p AS jsonb), now()) RETURNING workflow_run_id"
                        ),
                        {
                            "w": workflow_id,
                            "d": department_id,
                            "e": str(uuid.uuid4()),
                            "p": json.dumps(payload if payload is not None else SAMPLE_CALL),
                        },
                    )
                ).scalar_one()
            )
        if publish:
            await publish_committed_runs(
                self.db, self.producer, self.settings, [RunToPublish(run_id, department_id)]
            )
        return run_id

    async def redeliver(self, run_id: int, department_id: int, *, times: int = 1) -> None:
        """The run's message produced again, as a redelivery after a rebalance or a producer retry would."""
        await produce_runs(self.producer, self.settings, [RunToPublish(run_id, department_id)] * times)

    async def run(self, run_id: int) -> RowMapping:
        async with self.db.connect() as conn:
            return (
                (
                    await conn.execute(
                        text("SELECT * FROM workflow_runs WHERE workflow_run_id = :r"), {"r": run_id}
                    )
                )
                .mappings()
                .one()
            )

    async def wait_status(self, run_id: int, *statuses: RunStatus, timeout: float = WAIT_S) -> RowMapping:
        wanted = {int(s) for s in (statuses or FINAL)}

        async def reached() -> RowMapping | None:
            row = await self.run(run_id)
            return row if row["status"] in wanted else None

        return await wait_for(reached, timeout=timeout, what=f"run {run_id} to reach {sorted(wanted)}")

    async def logs(self, run_id: int) -> list[RowMapping]:
        async with self.db.connect() as conn:
            return list(
                (
                    await conn.execute(
                        text(
                            "SELECT * FROM workflow_run_logs WHERE workflow_run_id = :r ORDER BY workflow_run_log_id"
                        ),
                        {"r": run_id},
                    )
                )
                .mappings()
                .all()
            )

    async def cancel(self, run_id: int) -> None:
        """What POST .../runs/{id}/cancel does to an open run."""
        async with self.db.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE workflow_runs SET status = 4, completed_on = now(), next_attempt_on = NULL "
                    "WHERE workflow_run_id = :r AND status IN (0, 1, 5)"
                ),
                {"r": run_id},
            )


SAMPLE_CALL: dict[str, Any] = {
    "call": {"id": 1001, "name": "Structure Fire", "priority": 3, "address": "1 Main St"},
    "department": {"name": "Springfield FD"},
}


@pytest.fixture(scope="session")
async def pipeline(settings: Settings, services: dict[str, object]) -> AsyncIterator[Pipeline]:
    db = create_async_engine(settings.database_url, pool_size=5)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    results = ResultsTap(settings)
    await producer.start()
    await results.start()
    executor = services["executor"]
    assert isinstance(executor, ExecutorService)
    try:
        yield Pipeline(settings, db, producer, results, executor)
    finally:
        await results.stop()
        await producer.stop()
        await db.dispose()


@pytest.fixture
def processed(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Run ids the session's executor was handed (each message it consumed), in order."""
    return record_processing(pipeline.executor, monkeypatch)


def record_processing(service: ExecutorService, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    assert service.executor is not None
    seen: list[int] = []
    original = RunExecutor.process
    executor = service.executor

    async def process(run_id: int) -> None:
        try:
            await original(executor, run_id)
        finally:
            seen.append(run_id)

    monkeypatch.setattr(executor, "process", process)
    return seen


@pytest.fixture
async def https_peer(local_ca: LocalCA) -> AsyncIterator[HttpsPeer]:
    async with HttpsPeer(local_ca, hostnames=["127.0.0.1", "localhost"]) as peer:
        yield peer


@pytest.fixture
async def smtp_peer() -> AsyncIterator[SmtpPeer]:
    async with SmtpPeer() as peer:
        yield peer


@pytest.fixture
def twilio_at(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> Callable[[HttpsPeer], None]:
    """Point the session executor's Twilio base URL at a peer (operators do this with WF_TWILIO_BASE_URL)."""
    assert pipeline.executor.executor is not None
    executor = pipeline.executor.executor

    def point(peer: HttpsPeer) -> None:
        pointed = replace(executor.action_settings, twilio_base_url=peer.url("", host="127.0.0.1"))
        monkeypatch.setattr(executor, "action_settings", pointed)

    return point


def smtp_data(peer: SmtpPeer, **overrides: Any) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": peer.port,
        "security": "none",
        "fromAddress": "alerts@dept.example.org",
        "fromName": "Station 5",
        **overrides,
    }


def http_step(
    peer: HttpsPeer,
    path: str,
    *,
    order: int,
    method: int = 3,
    template: str = '{"call": "{{ call.name }}"}',
    **extra: Any,
) -> dict[str, Any]:
    config = {"url": peer.url(path, host="127.0.0.1"), **extra.pop("config", {})}
    return {
        "ActionType": method,
        "StepOrder": order,
        "OutputTemplate": template,
        "ActionConfig": config,
        **extra,
    }
