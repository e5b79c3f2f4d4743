"""Events from producers that are not aiokafka end as delivered runs: kcat (librdkafka) with every codec
Kafka defines, headers and a null key, and Kafka's own Java console producer with zstd."""

from __future__ import annotations

import uuid

import httpx
import orjson

from shared.config import Settings
from tests.peers.https_server import HttpsPeer
from tests.support.helpers import fetch, wait_for, workflow_with_http_step
from tests.support.producers import java_console_produce, kcat_produce

CODECS = ("gzip", "snappy", "lz4", "zstd")


def upstream_event(department_id: int, name: str) -> bytes:
    return orjson.dumps(
        {
            "EventId": str(uuid.uuid4()),
            "DepartmentId": department_id,
            "EventType": 0,
            "OccurredOn": "2026-11-29T12:00:00Z",
            "Payload": {"call": {"name": name}},
        }
    )


async def test_kcat_every_codec_and_java_zstd_are_delivered(
    api: httpx.AsyncClient, settings: Settings, services: dict[str, object], local_ca, db, department_id: int
) -> None:
    dispatcher = services["dispatcher"]
    events_task = dispatcher._tasks[0]  # type: ignore[attr-defined]
    async with HttpsPeer(local_ca, hostnames=["127.0.0.1"]) as receiver:
        workflow_id, _ = await workflow_with_http_step(
            api,
            receiver.url("/upstream", host="127.0.0.1"),
            template='{"via": "{{ call.name }}"}',
            name="Upstream",
        )
        index = dispatcher.index  # type: ignore[attr-defined]

        async def indexed() -> bool:
            return workflow_id in index.match(department_id, 0)

        await wait_for(indexed, timeout=10)

        for codec in CODECS:
            await kcat_produce(
                settings,
                settings.topic_events,
                [upstream_event(department_id, f"kcat-{codec}")],
                codec=codec,
                headers={"source": "kcat", "content-type": "application/json"},
            )
        await java_console_produce(
            settings,
            settings.topic_events,
            [upstream_event(department_id, "java-zstd")],
            properties={"compression.type": "zstd", "acks": "all"},
        )

        expected = {f"kcat-{codec}" for codec in CODECS} | {"java-zstd"}

        async def all_received() -> set[str] | None:
            got = {r.json()["via"] for r in receiver.requests_to("POST", "/upstream")}
            return got if got >= expected else None

        assert await wait_for(all_received, timeout=60) == expected

    async def all_completed() -> bool:
        rows = await fetch(db, "SELECT status FROM workflow_runs WHERE workflow_id = :w", w=workflow_id)
        return len(rows) == len(expected) and all(row[0] == 2 for row in rows)

    await wait_for(all_completed, timeout=30)
    assert not events_task.done()  # the dispatcher's consumer never stopped
