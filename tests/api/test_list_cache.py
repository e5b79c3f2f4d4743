"""The workflow list is kept encoded per department but checked against the database on every
request: a change made through another replica (or straight in the database) shows in the very
next list, whatever field it touched; the ETag follows the list and If-None-Match gets 304."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.config import Settings
from tests.api.conftest import create_workflow, http_step
from tests.conftest import api_instance


@pytest.fixture
async def other_replica(settings: Settings, department_id: int) -> AsyncIterator[httpx.AsyncClient]:
    """A second API instance with its own pools and list cache, as another replica would be."""
    async with api_instance(settings, department_id) as (_, client):
        yield client


async def _listed(api: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await api.get("/api/v4/workflows")
    assert response.status_code == 200, response.text
    return list(response.json())


async def test_every_write_through_another_replica_shows_in_the_next_list(
    api: httpx.AsyncClient, other_replica: httpx.AsyncClient
) -> None:
    async def same_on_both() -> list[dict[str, Any]]:
        here, there = await _listed(api), await _listed(other_replica)
        assert here == there
        return here

    assert await same_on_both() == []
    created = await create_workflow(other_replica)
    wid = created["WorkflowId"]
    assert [w["WorkflowId"] for w in await same_on_both()] == [wid]

    # Fields the dispatcher's change log does not cover: name, description, retries, steps.
    body = {"Name": "Renamed", "Description": "now described", "TriggerEventType": 0, "MaxRetryCount": 2}
    assert (await other_replica.put(f"/api/v4/workflows/{wid}", json=body)).status_code == 200
    (listed,) = await same_on_both()
    assert (listed["Name"], listed["Description"], listed["MaxRetryCount"]) == ("Renamed", "now described", 2)
    assert listed["UpdatedOn"] is not None

    step = (await other_replica.post(f"/api/v4/workflows/{wid}/steps", json=http_step())).json()
    assert [s["WorkflowStepId"] for s in (await same_on_both())[0]["Steps"]] == [step["WorkflowStepId"]]
    changed = http_step(OutputTemplate='{"changed": true}')
    path = f"/api/v4/workflows/{wid}/steps/{step['WorkflowStepId']}"
    assert (await other_replica.put(path, json=changed)).status_code == 200
    assert (await same_on_both())[0]["Steps"][0]["OutputTemplate"] == '{"changed": true}'
    assert (await other_replica.delete(path)).status_code == 200
    assert (await same_on_both())[0]["Steps"] == []

    assert (await other_replica.delete(f"/api/v4/workflows/{wid}")).status_code == 200
    assert await same_on_both() == []


async def test_a_step_changed_straight_in_the_database_shows_at_once(
    api: httpx.AsyncClient, db: AsyncEngine
) -> None:
    wid = (await create_workflow(api))["WorkflowId"]
    step = (await api.post(f"/api/v4/workflows/{wid}/steps", json=http_step())).json()
    assert (await _listed(api))[0]["Steps"][0]["IsEnabled"] is True
    async with db.begin() as conn:  # no trigger, no change-log row: only the step's row changes
        await conn.execute(
            text("UPDATE workflow_steps SET is_enabled = false WHERE workflow_step_id = :s"),
            {"s": step["WorkflowStepId"]},
        )
    assert (await _listed(api))[0]["Steps"][0]["IsEnabled"] is False


async def test_concurrent_lists_after_a_write_all_show_it(
    api: httpx.AsyncClient, other_replica: httpx.AsyncClient
) -> None:
    wid = (await create_workflow(api))["WorkflowId"]
    for round_ in range(5):
        await asyncio.gather(*(_listed(api) for _ in range(8)))  # the cache holds the current list
        name = f"Round {round_}"
        body = {"Name": name, "TriggerEventType": 0}
        assert (await other_replica.put(f"/api/v4/workflows/{wid}", json=body)).status_code == 200
        lists = await asyncio.gather(*(_listed(api) for _ in range(16)))
        assert {listed[0]["Name"] for listed in lists} == {name}


async def test_lists_of_other_departments_stay_apart(
    api: httpx.AsyncClient, client_for: Any, department_id: int
) -> None:
    await create_workflow(api, Name="Mine")
    async with client_for(department_id + 1_000_000, "DepartmentAdmin") as other:
        theirs, mine = await asyncio.gather(_listed(other), _listed(api))
    assert [w["Name"] for w in mine] == ["Mine"]
    assert all(w["Name"] != "Mine" for w in theirs)


async def test_etag_and_if_none_match(api: httpx.AsyncClient, other_replica: httpx.AsyncClient) -> None:
    first = await api.get("/api/v4/workflows")
    etag = first.headers["ETag"]
    assert etag[0] == etag[-1] == '"'

    for sent in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        unchanged = await api.get("/api/v4/workflows", headers={"If-None-Match": sent})
        assert (unchanged.status_code, unchanged.content, unchanged.headers["ETag"]) == (304, b"", etag)
    assert (await api.get("/api/v4/workflows", headers={"If-None-Match": '"other"'})).status_code == 200

    await create_workflow(other_replica)
    changed = await api.get("/api/v4/workflows", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert len(changed.json()) == 1
    assert changed.headers["ETag"] != etag
    again = await other_replica.get("/api/v4/workflows", headers={"If-None-Match": changed.headers["ETag"]})
    assert again.status_code == 304  # the tag is the data's, so every replica gives the same one


async def test_a_list_survives_the_database_dropping_its_connections(
    settings: Settings, db: AsyncEngine, department_id: int
) -> None:
    backends = text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
    async with db.connect() as conn:
        before = set((await conn.execute(backends)).scalars())
    async with api_instance(settings, department_id) as (_, api):
        await create_workflow(api)
        assert len(await _listed(api)) == 1
        async with db.begin() as conn:  # this replica's connections, as a restart or failover would
            new = set((await conn.execute(backends)).scalars()) - before
            assert new
            for backend in new:
                await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
        assert len(await _listed(api)) == 1


async def test_the_route_answers_as_the_fast_path_does(
    settings: Settings, department_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plainly good list is answered before routing (workflows/fast_list.py); when that path cannot
    answer (here: its first read fails) the route does, with the same status, headers and body."""
    async with api_instance(settings, department_id) as (app, api):
        await create_workflow(api)
        lists = app.state.api.lists
        genuine = lists.get
        calls: list[int] = []

        async def first_of_two_fails(department: int) -> Any:
            calls.append(department)
            if len(calls) % 2:
                raise OSError("the fast path's read fails")
            return await genuine(department)

        fast = [await api.get("/api/v4/workflows")]
        fast.append(await api.get("/api/v4/workflows", headers={"If-None-Match": fast[0].headers["ETag"]}))
        monkeypatch.setattr(lists, "get", first_of_two_fails)
        routed = [await api.get("/api/v4/workflows")]
        routed.append(await api.get("/api/v4/workflows", headers={"If-None-Match": fast[0].headers["ETag"]}))
        assert calls == [department_id] * 4  # each request read twice: fast path, then the route
    for a, b in zip(fast, routed, strict=True):
        assert (a.status_code, a.content, a.headers.raw) == (b.status_code, b.content, b.headers.raw)
    assert [r.status_code for r in fast] == [200, 304]
