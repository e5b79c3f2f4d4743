"""Tokens and tenancy: 401 for missing/expired/forged tokens, 403 without the role, 404 across departments."""

from __future__ import annotations

import time
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.config import Settings
from tests.api.conftest import (
    BEARER_DATA,
    ClientFactory,
    assert_error,
    create_credential,
    create_workflow,
    http_step,
    insert_run,
    workflow_body,
)

CREDENTIAL_BODY = {"Name": "c", "CredentialType": 5, "Data": BEARER_DATA}

# (method, path, body) for every endpoint under /api/v4/workflows; ids are filled from a foreign department.
ENDPOINTS: list[tuple[str, str, Any]] = [
    ("GET", "/api/v4/workflows", None),
    ("POST", "/api/v4/workflows", workflow_body()),
    ("GET", "/api/v4/workflows/{wid}", None),
    ("PUT", "/api/v4/workflows/{wid}", workflow_body()),
    ("DELETE", "/api/v4/workflows/{wid}", None),
    ("POST", "/api/v4/workflows/{wid}/steps", http_step()),
    ("PUT", "/api/v4/workflows/{wid}/steps/{sid}", http_step()),
    ("DELETE", "/api/v4/workflows/{wid}/steps/{sid}", None),
    ("GET", "/api/v4/workflows/credentials", None),
    ("POST", "/api/v4/workflows/credentials", CREDENTIAL_BODY),
    ("GET", "/api/v4/workflows/credentials/{cid}", None),
    ("PUT", "/api/v4/workflows/credentials/{cid}", CREDENTIAL_BODY),
    ("DELETE", "/api/v4/workflows/credentials/{cid}", None),
    ("POST", "/api/v4/workflows/{wid}/test", {}),
    ("GET", "/api/v4/workflows/{wid}/runs", None),
    ("GET", "/api/v4/workflows/runs", None),
    ("GET", "/api/v4/workflows/runs/pending", None),
    ("GET", "/api/v4/workflows/runs/{rid}/logs", None),
    ("POST", "/api/v4/workflows/runs/{rid}/cancel", None),
    ("POST", "/api/v4/workflows/runs/clear", None),
    ("GET", "/api/v4/workflows/{wid}/health", None),
    ("GET", "/api/v4/workflows/eventtypes", None),
    ("POST", "/api/v4/workflows/events", {"EventType": 0, "Payload": {}}),
]
WITH_IDS = [e for e in ENDPOINTS if "{" in e[1]]
IDS = {"wid": 2147483000, "sid": 2147483000, "cid": 2147483000, "rid": 2147483000}


def _token(settings: Settings, **claims: Any) -> str:
    assert settings.jwt_secret is not None
    now = int(time.time())
    base = {"sub": "u", "department_id": 7, "roles": ["DepartmentAdmin"], "iat": now, "exp": now + 600}
    base.update(claims)
    return jwt.encode(
        {k: v for k, v in base.items() if v is not None},
        settings.jwt_secret.get_secret_value(),
        algorithm="HS256",
    )


def _bad_tokens(settings: Settings) -> dict[str, str | None]:
    now = int(time.time())
    return {
        "missing": None,
        "expired": _token(settings, iat=now - 7200, exp=now - 3600),
        "forged": jwt.encode(
            {"sub": "u", "department_id": 7, "roles": ["DepartmentAdmin"], "exp": now + 600},
            "some-other-key-that-is-long-enough-for-hs256",
            algorithm="HS256",
        ),
        "no exp": _token(settings, exp=None),
        "no department": _token(settings, department_id=None),
        "garbage": "not.a.jwt",
        "alg none": jwt.encode(
            {"sub": "u", "department_id": 7, "roles": ["DepartmentAdmin"], "exp": now + 600},
            None,  # type: ignore[arg-type]
            algorithm="none",
        ),
    }


async def _call(
    client: httpx.AsyncClient, method: str, path: str, body: Any, ids: dict[str, int]
) -> httpx.Response:
    return await client.request(method, path.format(**ids), json=body)


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS, ids=[f"{m} {p}" for m, p, _ in ENDPOINTS])
async def test_bad_tokens_are_401(
    anonymous_api: httpx.AsyncClient, settings: Settings, method: str, path: str, body: Any
) -> None:
    for name, token in _bad_tokens(settings).items():
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await anonymous_api.request(method, path.format(**IDS), json=body, headers=headers)
        assert_error(response, 401)
        assert response.headers.get("www-authenticate") == "Bearer", name


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS, ids=[f"{m} {p}" for m, p, _ in ENDPOINTS])
async def test_missing_role_is_403(
    client_for: ClientFactory, department_id: int, method: str, path: str, body: Any
) -> None:
    for roles in ((), ("SystemAdmin",)):
        async with client_for(department_id, *roles) as client:
            assert_error(await _call(client, method, path, body, IDS), 403, "DepartmentAdmin")


@pytest.fixture
async def foreign_ids(client_for: ClientFactory, db: AsyncEngine, department_id: int) -> dict[str, int]:
    """A workflow, step, credential and run belonging to another department."""
    other_department = department_id + 500_000
    async with client_for(other_department, "DepartmentAdmin") as other:
        credential = await create_credential(other, 5, BEARER_DATA)
        workflow = await create_workflow(other)
        step = (
            await other.post(f"/api/v4/workflows/{workflow['WorkflowId']}/steps", json=http_step())
        ).json()
    run_id = await insert_run(db, workflow["WorkflowId"], other_department, status=0)
    return {
        "wid": workflow["WorkflowId"],
        "sid": step["WorkflowStepId"],
        "cid": credential["WorkflowCredentialId"],
        "rid": run_id,
    }


@pytest.mark.parametrize(("method", "path", "body"), WITH_IDS, ids=[f"{m} {p}" for m, p, _ in WITH_IDS])
async def test_other_departments_objects_are_404(
    api: httpx.AsyncClient,
    client_for: ClientFactory,
    foreign_ids: dict[str, int],
    department_id: int,
    method: str,
    path: str,
    body: Any,
) -> None:
    assert_error(await _call(api, method, path, body, foreign_ids), 404)
    # ... and still there, unchanged, for their owner.
    async with client_for(department_id + 500_000, "DepartmentAdmin") as owner:
        workflow = (await owner.get(f"/api/v4/workflows/{foreign_ids['wid']}")).json()
        assert workflow["Name"] == workflow_body()["Name"]
        assert [s["WorkflowStepId"] for s in workflow["Steps"]] == [foreign_ids["sid"]]
        assert (await owner.get(f"/api/v4/workflows/credentials/{foreign_ids['cid']}")).status_code == 200
        pending = (await owner.get("/api/v4/workflows/runs/pending")).json()
        assert [r["WorkflowRunId"] for r in pending] == [foreign_ids["rid"]]


async def test_lists_show_only_own_department(api: httpx.AsyncClient, foreign_ids: dict[str, int]) -> None:
    for path in (
        "/api/v4/workflows",
        "/api/v4/workflows/credentials",
        "/api/v4/workflows/runs",
        "/api/v4/workflows/runs/pending",
    ):
        assert (await api.get(path)).json() == [], path
