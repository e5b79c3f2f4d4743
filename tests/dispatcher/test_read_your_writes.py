"""Read-your-writes matching: an event produced right after the API answered a save is matched against
the saved definitions, by whichever dispatcher replica consumes it.

The API runs under uvicorn (tests/support/live_api.py), so its answer reaches the client the way it
does in production; the events are produced with no pause after that answer.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session

from services.dispatcher.service import DispatcherService
from shared.config import Settings
from tests.conftest import token_for
from tests.peers.https_server import HttpsPeer
from tests.peers.tls import LocalCA
from tests.support.helpers import event, fetch, isolated, wait_for
from tests.support.live_api import live_api
from tests.support.services import running_services
from wf.procs import free_port

_departments = itertools.count(7_000_000 + int(time.time()) % 50_000 * 40)


@pytest.fixture
def cfg(settings: Settings) -> Settings:
    return isolated(settings)


@asynccontextmanager
async def dispatchers(cfg: Settings, *refresh_s: float) -> AsyncIterator[list[DispatcherService]]:
    """Dispatcher replicas of one consumer group, each with its background index refresh interval."""
    started: list[DispatcherService] = []
    try:
        for interval in refresh_s:
            service = DispatcherService(cfg, side_port=free_port())
            service.index_refresh_s = interval
            await service.start()
            started.append(service)
        yield started
    finally:
        for service in reversed(started):
            await service.stop()


@asynccontextmanager
async def event_producer(cfg: Settings) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(bootstrap_servers=cfg.kafka_bootstrap, acks="all", linger_ms=0)
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


async def send_event(producer: AIOKafkaProducer, cfg: Settings, body: dict[str, Any]) -> None:
    await (
        await producer.send(
            cfg.topic_events, value=orjson.dumps(body), key=str(body["DepartmentId"]).encode()
        )
    )


def client(base_url: str, cfg: Settings, department_id: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        headers={"Authorization": f"Bearer {token_for(cfg, department_id)}"},
        timeout=30,
    )


async def create(api: httpx.AsyncClient, **fields: Any) -> int:
    response = await api.post("/api/v4/workflows", json={"Name": "Pager", "TriggerEventType": 9, **fields})
    assert response.status_code == 200, response.text
    return int(response.json()["WorkflowId"])


async def update(api: httpx.AsyncClient, workflow_id: int, **fields: Any) -> None:
    body = {"Name": "Pager", "TriggerEventType": 9, "IsEnabled": True, **fields}
    response = await api.put(f"/api/v4/workflows/{workflow_id}", json=body)
    assert response.status_code == 200, response.text


async def runs_for(db: AsyncEngine, event_ids: list[str]) -> set[tuple[int, str]]:
    rows = await fetch(
        db, "SELECT workflow_id, event_id FROM workflow_runs WHERE event_id = ANY(:e)", e=event_ids
    )
    return {(int(w), str(e)) for w, e in rows}


async def wait_for_runs(db: AsyncEngine, expected: set[tuple[int, str]], timeout: float = 60) -> None:
    event_ids = sorted({e for _, e in expected})

    async def present() -> bool:
        return expected <= await runs_for(db, event_ids)

    try:
        await wait_for(present, timeout=timeout, interval=0.2)
    except TimeoutError:
        pass  # the caller's assertions say what is missing


def department_on(service: DispatcherService, cfg: Settings, partitions: int) -> int:
    """A fresh department whose events land on a partition ``service`` consumes."""
    assert service.consumer is not None
    mine = {tp.partition for tp in service.consumer.assignment() if tp.topic == cfg.topic_events}
    assert mine, "the replica has no partition"
    every = list(range(partitions))
    while True:
        department_id = next(_departments)
        if DefaultPartitioner()(str(department_id).encode(), every, every) in mine:
            return department_id


async def wait_for_assignment(replicas: list[DispatcherService], partitions: int) -> None:
    async def balanced() -> bool:
        counts = [len(r.consumer.assignment()) for r in replicas if r.consumer is not None]
        return sum(counts) == partitions and all(counts)

    await wait_for(balanced, timeout=60, interval=0.2)


async def test_a_replica_that_has_not_seen_a_change_catches_up_before_matching(
    cfg: Settings, db: AsyncEngine
) -> None:
    """Replica A applies the new workflow in the background; replica B (background refresh off) has
    not seen it when the event reaches it, and still matches it."""
    partitions = cfg.partitions_events
    async with dispatchers(cfg, 0.25, 3600.0) as (fresh, stale), event_producer(cfg) as producer:
        await wait_for_assignment([fresh, stale], partitions)
        department_id = department_on(stale, cfg, partitions)
        with live_api(cfg) as base_url:
            async with client(base_url, cfg, department_id) as api:
                workflow_id = await create(api)

                async def fresh_has_it() -> bool:
                    return workflow_id in fresh.index.match(department_id, 9)

                await wait_for(fresh_has_it, timeout=10)
                assert workflow_id not in stale.index.match(department_id, 9)  # B has not seen it
                created = event(department_id, 9)
                await send_event(producer, cfg, created)
                await wait_for_runs(db, {(workflow_id, created["EventId"])})

                # And the other way round: B, still without a background refresh, sees the disable.
                await update(api, workflow_id, IsEnabled=False)
                sentinel = await create(api)
                disabled = event(department_id, 9)
                await send_event(producer, cfg, disabled)
                await wait_for_runs(db, {(sentinel, disabled["EventId"])})
        assert await runs_for(db, [disabled["EventId"]]) == {(sentinel, disabled["EventId"])}
        assert stale.index.applied >= fresh.index.applied - 1


async def test_changes_of_every_kind_apply_to_the_next_event(cfg: Settings, db: AsyncEngine) -> None:
    """Create, disable, enable, TriggerEventType change and delete, each followed at once by an event;
    with the background refresh off, so only the per-batch catch-up can make it right."""
    department_id = next(_departments)
    async with dispatchers(cfg, 3600.0) as replicas, event_producer(cfg) as producer:
        await wait_for_assignment(replicas, cfg.partitions_events)
        with live_api(cfg) as base_url:
            async with client(base_url, cfg, department_id) as api:
                sentinel = await create(api, TriggerEventType=10)  # proves each event was processed
                expected: set[tuple[int, str]] = set()
                unexpected: set[tuple[int, str]] = set()

                async def step(kind: int, matches: bool, workflow_id: int) -> None:
                    probe = event(department_id, kind)
                    await send_event(producer, cfg, probe)
                    marker = event(department_id, 10)
                    await send_event(producer, cfg, marker)
                    (expected if matches else unexpected).add((workflow_id, probe["EventId"]))
                    expected.add((sentinel, marker["EventId"]))
                    # Processed before the next change: a later change may rightly apply to a late event.
                    await wait_for_runs(db, {(sentinel, marker["EventId"])})

                workflow_id = await create(api)
                await step(9, True, workflow_id)
                await update(api, workflow_id, IsEnabled=False)
                await step(9, False, workflow_id)
                await update(api, workflow_id, IsEnabled=True)
                await step(9, True, workflow_id)
                await update(api, workflow_id, TriggerEventType=11)
                await step(9, False, workflow_id)
                await step(11, True, workflow_id)
                # Deleting a workflow deletes its runs: check them first.
                await wait_for_runs(db, expected)
                found = await runs_for(db, sorted({e for _, e in expected | unexpected}))
                assert expected - found == set()
                assert found & unexpected == set()
                expected = {(w, e) for w, e in expected if w == sentinel}
                response = await api.delete(f"/api/v4/workflows/{workflow_id}")
                assert response.status_code in (200, 204), response.text
                await step(11, False, workflow_id)
                await wait_for_runs(db, expected)
        found = await runs_for(db, sorted({e for _, e in expected | unexpected}))
        assert expected - found == set()
        assert found & unexpected == set()


async def test_step_changes_apply_to_the_next_event(
    cfg: Settings, db: AsyncEngine, local_ca: LocalCA
) -> None:
    """A step changed, removed or added, and an event at once: the run performs the steps as saved."""
    department_id = next(_departments)
    async with (
        HttpsPeer(local_ca, hostnames=["127.0.0.1", "localhost"]) as peer,
        running_services(cfg, health=False) as services,
        event_producer(cfg) as producer,
    ):
        await wait_for_assignment([services["dispatcher"]], cfg.partitions_events)  # type: ignore[list-item]
        with live_api(cfg) as base_url:
            async with client(base_url, cfg, department_id) as api:

                def step(path: str) -> dict[str, Any]:
                    url = peer.url(path, host="127.0.0.1")
                    return {
                        "ActionType": 3,
                        "StepOrder": 1,
                        "OutputTemplate": "{}",
                        "ActionConfig": orjson.dumps({"url": url}).decode(),
                    }

                async def fire_and_wait(path: str) -> None:
                    await send_event(producer, cfg, event(department_id, 9))

                    async def arrived() -> bool:
                        return bool(peer.requests_to("POST", path))

                    await wait_for(arrived, timeout=30)

                workflow_id = await create(api)
                added = await api.post(f"/api/v4/workflows/{workflow_id}/steps", json=step("/first"))
                assert added.status_code == 200, added.text
                await fire_and_wait("/first")
                step_id = added.json()["WorkflowStepId"]
                changed = await api.put(
                    f"/api/v4/workflows/{workflow_id}/steps/{step_id}", json=step("/changed")
                )
                assert changed.status_code == 200, changed.text
                await fire_and_wait("/changed")
                removed = await api.delete(f"/api/v4/workflows/{workflow_id}/steps/{step_id}")
                assert removed.status_code == 200, removed.text
                again = await api.post(f"/api/v4/workflows/{workflow_id}/steps", json=step("/added"))
                assert again.status_code == 200, again.text
                await fire_and_wait("/added")
    assert len(peer.requests_to("POST", "/first")) == 1
    assert len(peer.requests_to("POST", "/changed")) == 1
    assert len(peer.requests_to("POST", "/added")) == 1


async def test_the_api_answers_a_save_only_after_its_commit(cfg: Settings, db: AsyncEngine) -> None:
    """The API's commit precedes its answer: with commits made slow, a workflow (or its change) is in
    the database the moment the client has the response (a request-scoped session would commit
    after sending it)."""
    department_id = next(_departments)

    def slow_commit(session: Session) -> None:
        time.sleep(0.5)  # on the API's own thread and loop

    with live_api(cfg) as base_url:
        async with client(base_url, cfg, department_id) as api:
            sa_event.listen(Session, "before_commit", slow_commit)
            try:
                workflow_id = await create(api)
                created = await fetch(
                    db, "SELECT is_enabled FROM workflows WHERE workflow_id = :w", w=workflow_id
                )
                await update(api, workflow_id, IsEnabled=False)
                updated = await fetch(
                    db, "SELECT is_enabled FROM workflows WHERE workflow_id = :w", w=workflow_id
                )
            finally:
                sa_event.remove(Session, "before_commit", slow_commit)
    assert created == [(True,)]
    assert updated == [(False,)]
