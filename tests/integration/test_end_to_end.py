"""The thin path: an event on `workflows.events` ends as an HTTPS request at a local receiver, with the
run Completed and its log stored."""

from __future__ import annotations

import uuid

import httpx
import orjson
from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from shared.config import Settings
from tests.peers.https_server import HttpsPeer
from tests.support.helpers import wait_for, workflow_with_http_step


async def test_event_from_kafka_reaches_https_receiver(
    api: httpx.AsyncClient, settings: Settings, services: dict[str, object], local_ca, department_id: int
):
    async with HttpsPeer(local_ca, hostnames=["127.0.0.1", "localhost"]) as receiver:
        receiver_url = receiver.url("/incidents", host="127.0.0.1")
        workflow_id, _ = await workflow_with_http_step(
            api,
            receiver_url,
            template='{"call": "{{ call.name }}", "priority": {{ call.priority }}, "dept": "{{ department.name }}"}',
            name="Notify CAD bridge",
        )

        event_id = str(uuid.uuid4())
        event = {
            "EventId": event_id,
            "DepartmentId": department_id,
            "EventType": 0,
            "OccurredOn": "2026-11-29T12:00:00Z",
            "Payload": {
                "call": {"id": 1001, "name": "Structure Fire", "priority": 3},
                "department": {"name": "Springfield FD"},
            },
        }
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
        await producer.start()
        try:
            index = services["dispatcher"].index  # type: ignore[attr-defined]

            async def indexed():
                return workflow_id in index.match(department_id, 0)

            await wait_for(indexed, timeout=10)  # the dispatcher's index picked up the new workflow
            await producer.send_and_wait(
                settings.topic_events, orjson.dumps(event), key=str(department_id).encode()
            )
        finally:
            await producer.stop()

        async def received():
            return receiver.requests_to("POST", "/incidents")

        requests = await wait_for(received)
        assert len(requests) == 1
        assert requests[0].json() == {"call": "Structure Fire", "priority": 3, "dept": "Springfield FD"}
        assert requests[0].headers["idempotency-key"].startswith("wf-run-")

    engine = create_async_engine(settings.database_url)
    try:

        async def completed():
            async with engine.connect() as conn:
                return (
                    await conn.execute(
                        text(
                            "SELECT workflow_run_id, status, error_message FROM workflow_runs "
                            "WHERE workflow_id = :w AND event_id = :e"
                        ),
                        {"w": workflow_id, "e": event_id},
                    )
                ).first()

        async def run_completed():
            row = await completed()
            return row if row is not None and row[1] == 2 else None

        run_id, status, error = await wait_for(run_completed)
        assert error is None
        async with engine.connect() as conn:
            logs = (
                await conn.execute(
                    text(
                        "SELECT status, action_result, rendered_output FROM workflow_run_logs WHERE workflow_run_id = :r"
                    ),
                    {"r": run_id},
                )
            ).all()
        assert len(logs) == 1
        assert logs[0][0] == 2
        assert logs[0][1].startswith("HTTP 200")
        assert "Structure Fire" in logs[0][2]

        async def counted():
            async with engine.connect() as conn:
                return (
                    await conn.execute(
                        text("SELECT total_runs, success_runs FROM health_rollups WHERE workflow_id = :w"),
                        {"w": workflow_id},
                    )
                ).first()

        assert await wait_for(counted) == (1, 1)
    finally:
        await engine.dispose()

    # The run shows in the metrics every service exposes for scraping.
    dispatcher = services["dispatcher"]
    async with httpx.AsyncClient() as client:
        scraped = (await client.get(f"http://127.0.0.1:{dispatcher.side_port}/metrics")).text  # type: ignore[attr-defined]
        health = await client.get(f"http://127.0.0.1:{dispatcher.side_port}/healthz")  # type: ignore[attr-defined]
    assert health.status_code == 200
    assert health.json()["checks"] == {
        "database": True,
        "kafka": True,
        "kafka_tls": True,
        "kafka_authentication": True,
        "consumer_loop": True,
        "scheduler": True,
        "matching_index": True,
    }
    values = parse_metrics(scraped)
    assert values["wf_dispatcher_events_consumed_total"] >= 1
    assert values['wf_dispatcher_runs_created_total{outcome="due"}'] >= 1
    assert values['wf_executor_runs_total{status="Completed"}'] >= 1
    assert values['wf_executor_steps_total{action="CallApiPost",status="Completed"}'] >= 1
    assert values['wf_health_outcomes_total{result="counted"}'] >= 1
    assert values['wf_api_requests_total{method="POST",route="/api/v4/workflows",status="200"}'] >= 1


def parse_metrics(text_format: str) -> dict[str, float]:
    values = {}
    for line in text_format.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values
