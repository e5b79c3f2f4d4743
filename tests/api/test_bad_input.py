"""Bad input is a 400 (or 401/403/404/413), never a 500: the contract's promise, checked on the three
inputs a review found and by hypothesis over every route."""

from __future__ import annotations

import json

import httpx
import jwt
import pytest

from shared.config import Settings
from tests.api.conftest import SMTP_DATA, assert_error, create_workflow, http_step, workflow_body


def _token(settings: Settings, **claims: object) -> str:
    import time

    now = int(time.time())
    body = {"sub": "u", "iat": now, "exp": now + 600, "roles": ["DepartmentAdmin"], **claims}
    if settings.jwt_audience:
        body["aud"] = settings.jwt_audience
    if settings.jwt_issuer:
        body["iss"] = settings.jwt_issuer
    assert settings.jwt_secret is not None
    return jwt.encode(body, settings.jwt_secret.get_secret_value(), algorithm="HS256")


@pytest.mark.parametrize("department", ["²", "١٢", "99999999999999999999", 2**31, 2**63, -1, "0", 1.5])
async def test_a_token_with_an_odd_department_id_is_401(
    anonymous_api: httpx.AsyncClient, settings: Settings, department: object
) -> None:
    token = _token(settings, department_id=department)
    response = await anonymous_api.get("/api/v4/workflows", headers={"Authorization": f"Bearer {token}"})
    assert_error(response, 401)


async def test_an_event_payload_nested_deeply_is_400(api: httpx.AsyncClient) -> None:
    payload: object = "bottom"
    for _ in range(600):
        payload = {"a": payload}
    body = '{"EventType": 0, "Payload": ' + json.dumps(payload) + "}"
    response = await api.post(
        "/api/v4/workflows/events", content=body, headers={"Content-Type": "application/json"}
    )
    assert_error(response, 400, "nested")


@pytest.mark.parametrize("number", ["-14633614492802852080058368", "18446744073709551616"])
async def test_an_event_number_beyond_64_bits_is_400(api: httpx.AsyncClient, number: str) -> None:
    body = '{"EventType": 0, "Payload": {"call": {"id": ' + number + "}}}"
    response = await api.post(
        "/api/v4/workflows/events", content=body, headers={"Content-Type": "application/json"}
    )
    assert_error(response, 400, "64 bits")


async def test_the_largest_64_bit_numbers_are_accepted(api: httpx.AsyncClient) -> None:
    body = '{"EventType": 0, "Payload": {"low": -9223372036854775808, "high": 18446744073709551615}}'
    response = await api.post(
        "/api/v4/workflows/events", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 202, response.text


@pytest.mark.parametrize("url", ["https://xn--localhost-/", "https://xn--/hook"])
async def test_a_step_url_with_a_broken_punycode_host_is_400(api: httpx.AsyncClient, url: str) -> None:
    workflow = await create_workflow(api)
    step = http_step(ActionConfig=json.dumps({"url": url}))
    response = await api.post(f"/api/v4/workflows/{workflow['WorkflowId']}/steps", json=step)
    assert_error(response, 400, "url")


@pytest.mark.parametrize("path", ["/api/v4/workflows", "/api/v4/workflows/credentials"])
async def test_a_blank_name_is_400_with_its_field(api: httpx.AsyncClient, path: str) -> None:
    body = (
        workflow_body(Name=" \t ")
        if path.endswith("workflows")
        else {
            "Name": " \t ",
            "CredentialType": 0,
            "Data": SMTP_DATA,
        }
    )
    error = assert_error(await api.post(path, json=body), 400, "must not be blank")
    assert error["Fields"] == [{"Field": "Name", "Message": "must not be blank"}]
