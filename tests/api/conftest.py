"""Helpers for the API tests: clients for other departments and roles, direct database access, payloads."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.config import Settings
from tests.conftest import token_for
from tests.support.helpers import isolated
from tests.support.live_api import dispatcher_thread, serving

MASK = "••••••"
SMTP_DATA: dict[str, Any] = {
    "host": "smtp.example.org",
    "port": 587,
    "username": "dispatch",
    "password": "hunter2-secret",
    "fromAddress": "dispatch@example.org",
}
# HTTP credentials are bound to the origins their steps call (http_step uses cad.example.org).
ORIGINS = ["https://cad.example.org"]
BEARER_DATA = {"token": "bearer-token-very-secret", "allowedOrigins": ORIGINS}


def workflow_body(**overrides: Any) -> dict[str, Any]:
    return {"Name": "Page the duty officer", "TriggerEventType": 0, **overrides}


def http_step(**overrides: Any) -> dict[str, Any]:
    return {
        "ActionType": 3,
        "StepOrder": 1,
        "OutputTemplate": '{"call": "{{ call.name }}"}',
        "ActionConfig": json.dumps({"url": "https://cad.example.org/hook"}),
        **overrides,
    }


ClientFactory = Callable[..., Any]


@pytest.fixture
def client_for(api_app: object, settings: Settings) -> ClientFactory:
    """``async with client_for(department_id, "DepartmentAdmin") as c`` (no roles: a token without roles)."""

    @asynccontextmanager
    async def make(
        department_id: int, *roles: str, token: str | None = None
    ) -> AsyncIterator[httpx.AsyncClient]:
        if token is None:
            token = (
                token_for(settings, department_id, *roles)
                if roles
                else _no_role_token(settings, department_id)
            )
        transport = httpx.ASGITransport(app=api_app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(
            transport=transport, base_url="http://api.test", headers={"Authorization": f"Bearer {token}"}
        ) as client:
            yield client

    return make


def _no_role_token(settings: Settings, department_id: int) -> str:
    from shared.auth import issue_token

    return issue_token(settings, department_id=department_id, roles=[], user_id="test-user")


async def set_plan(db: AsyncEngine, department_id: int, plan: str) -> None:
    async with db.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO departments (department_id, plan) VALUES (:d, :p) "
                "ON CONFLICT (department_id) DO UPDATE SET plan = excluded.plan"
            ),
            {"d": department_id, "p": plan},
        )


async def insert_run(
    db: AsyncEngine,
    workflow_id: int,
    department_id: int,
    *,
    status: int = 0,
    queued_ago: str = "1 minute",
    duration_ms: int | None = None,
    error: str | None = None,
    is_test: bool = False,
    event_id: str | None = None,
) -> int:
    """A run row as the dispatcher and executor would leave it (queued ``queued_ago`` before now)."""
    import uuid

    async with db.begin() as conn:
        return int(
            (
                await conn.execute(
                    text(
                        """
            INSERT INTO workflow_runs (workflow_id, department_id, status, trigger_event_type, event_id,
                                       attempt_number, is_test, queued_on, started_on, completed_on,
                                       error_message, published_on)
            VALUES (:w, :d, :s, 0, :e, 1, :t, now() - CAST(:ago AS interval),
                    CASE WHEN :s IN (1, 2, 3) THEN now() - CAST(:ago AS interval) END,
                    CASE WHEN :s IN (2, 3) THEN now() - CAST(:ago AS interval)
                         + make_interval(secs => coalesce(:ms, 0) / 1000.0) END,
                    :err, now())
            RETURNING workflow_run_id
            """
                    ),
                    {
                        "w": workflow_id,
                        "d": department_id,
                        "s": status,
                        "e": event_id or str(uuid.uuid4()),
                        "t": is_test,
                        "ago": queued_ago,
                        "ms": duration_ms,
                        "err": error,
                    },
                )
            ).scalar_one()
        )


async def create_workflow(api: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    response = await api.post("/api/v4/workflows", json=workflow_body(**overrides))
    assert response.status_code == 200, response.text
    return dict(response.json())


async def create_credential(
    api: httpx.AsyncClient, ctype: int = 0, data: dict[str, Any] | None = None, name: str = "Mail relay"
) -> dict[str, Any]:
    response = await api.post(
        "/api/v4/workflows/credentials",
        json={"Name": name, "CredentialType": ctype, "Data": data or SMTP_DATA},
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def assert_error(response: httpx.Response, status: int, *words: str) -> dict[str, Any]:
    """The one error shape, with the status and (case-insensitively) the words in its message or fields."""
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body.get("Error"), str), body
    assert isinstance(body.get("Message"), str), body
    everything = (body["Message"] + " " + json.dumps(body.get("Fields", []), ensure_ascii=False)).lower()
    for word in words:
        assert word.lower() in everything, (word, body)
    return dict(body)


@pytest.fixture(scope="module")
def live_api(settings: Settings) -> Iterator[tuple[str, dict[str, Any]]]:
    from services.api.app import create_app

    # Topics of its own, served by a dispatcher of its own (a test run is created by the dispatcher from
    # the API's test event). The fuzzer may hit /test on a workflow it created: don't wait 30 s for an
    # executor (the run is returned as it stands).
    settings = isolated(settings, test_wait_s=0.5)
    with dispatcher_thread(settings):
        app = create_app(settings)
        with serving(app) as url:
            yield url, app.openapi()
