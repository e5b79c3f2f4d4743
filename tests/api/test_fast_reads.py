"""What the fast paths of the workflow list must not cost: every request reads the database (another
replica's write shows at once), a connection the database dropped is not an error, and a token the
API has already verified is still refused once it expires or if its signature is altered."""

from __future__ import annotations

import asyncio
import time

import httpx
import jwt
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.config import Settings
from shared.db.engine import create_statement_pool, read_value
from tests.api.conftest import ClientFactory, assert_error, create_workflow, set_plan


async def test_list_shows_writes_made_elsewhere_at_once(
    api: httpx.AsyncClient, db: AsyncEngine, department_id: int
) -> None:
    created = await create_workflow(api)
    assert [w["WorkflowId"] for w in (await api.get("/api/v4/workflows")).json()] == [created["WorkflowId"]]
    # Another replica renames and deletes behind this one's back.
    async with db.begin() as conn:
        await conn.execute(
            text("UPDATE workflows SET name = 'renamed elsewhere' WHERE workflow_id = :w"),
            {"w": created["WorkflowId"]},
        )
    assert (await api.get("/api/v4/workflows")).json()[0]["Name"] == "renamed elsewhere"
    async with db.begin() as conn:
        await conn.execute(text("DELETE FROM workflows WHERE workflow_id = :w"), {"w": created["WorkflowId"]})
    assert (await api.get("/api/v4/workflows")).json() == []


async def test_a_read_survives_the_database_dropping_its_connection(
    settings: Settings, db: AsyncEngine
) -> None:
    pool = create_statement_pool(settings, name="reads")
    await pool.open(wait=True)
    try:
        backend = await read_value(pool, "SELECT pg_backend_pid()", {})
        async with db.begin() as conn:  # as a database restart or failover would
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
        assert await read_value(pool, "SELECT %(x)s::int + 1", {"x": 41}) == 42
        assert await read_value(pool, "SELECT pg_backend_pid()", {}) != backend
    finally:
        await pool.close()


def _token(settings: Settings, department_id: int, exp: int) -> str:
    assert settings.jwt_secret is not None
    claims = {"sub": "u", "department_id": department_id, "roles": ["DepartmentAdmin"], "exp": exp}
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm="HS256")


async def test_a_verified_token_is_refused_once_it_expires(
    client_for: ClientFactory, settings: Settings, department_id: int
) -> None:
    exp = int(time.time()) + 2
    async with client_for(department_id, token=_token(settings, department_id, exp)) as client:
        assert (await client.get("/api/v4/workflows")).status_code == 200
        assert (await client.get("/api/v4/workflows")).status_code == 200  # now from the cache
        await asyncio.sleep(max(0.0, exp - time.time()) + 0.05)
        assert_error(await client.get("/api/v4/workflows"), 401, "expired")


async def test_an_altered_signature_is_refused_after_the_genuine_token_was_accepted(
    client_for: ClientFactory, db: AsyncEngine, settings: Settings, department_id: int
) -> None:
    await set_plan(db, department_id, "Free")
    genuine = _token(settings, department_id, int(time.time()) + 600)
    head, payload, signature = genuine.split(".")
    altered = f"{head}.{payload}.{signature[:-4]}{'AAAA' if signature[-4:] != 'AAAA' else 'BBBB'}"
    async with client_for(department_id, token=genuine) as client:
        assert (await client.get("/api/v4/workflows")).status_code == 200
    async with client_for(department_id, token=altered) as client:
        assert_error(await client.get("/api/v4/workflows"), 401, "not accepted")
