"""CallApiGet/Post/Put/Delete against an HTTPS peer on loopback."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from services.executor.actions.base import ActionContext, ActionDeps, ActionError, ActionResult
from services.executor.egress import EgressGuard
from services.executor.registry import ACTIONS
from shared.actions.configs import ActionConfigError, coerce_rendered
from shared.enums import ActionType
from tests.actions.conftest import loopback_guard, make_ctx, make_deps
from tests.peers.https_server import HttpsPeer, Reply


def http_ctx(
    action: ActionType,
    url: str,
    *,
    credential: dict[str, Any] | None = None,
    content: str = '{"a": 1}',
    **config: Any,
):
    """The context the engine builds: the rendered config checked (and given its defaults) first."""
    checked = coerce_rendered(action, {"url": url, **config}, has_credential=credential is not None)
    return make_ctx(action, config=checked, credential=credential, content=content)


async def call_api(ctx: ActionContext, deps: ActionDeps) -> ActionResult:
    return await ACTIONS[ctx.action_type](ctx, deps)


@pytest.mark.parametrize(
    ("action", "method", "has_body"),
    [
        (ActionType.CallApiGet, "GET", False),
        (ActionType.CallApiPost, "POST", True),
        (ActionType.CallApiPut, "PUT", True),
        (ActionType.CallApiDelete, "DELETE", False),
    ],
)
async def test_each_verb_sends_its_method_headers_and_body(
    https_peer: HttpsPeer, action: ActionType, method: str, has_body: bool
) -> None:
    https_peer.reply(method, "/hook", Reply(201, {"id": 5}))
    headers = {"X-Dept": "9", "Idempotency-Key": "mine"}
    ctx = http_ctx(action, https_peer.url("/hook?x=1"), headers=headers)
    result = await call_api(ctx, make_deps())

    assert result.message == 'HTTP 201: {"id": 5}'
    [request] = https_peer.requests
    assert (request.method, request.path, request.query) == (method, "/hook", "x=1")
    assert request.headers["x-dept"] == "9"
    assert request.headers["idempotency-key"] == "wf-run-41-step-7"
    if has_body:
        assert request.body == b'{"a": 1}'
        assert request.headers["content-type"] == "application/json"
    else:
        assert request.body == b""


def test_a_framing_header_in_the_config_is_refused_before_sending() -> None:
    with pytest.raises(ActionConfigError) as caught:
        http_ctx(ActionType.CallApiPost, "https://x.example.org/", headers={"Content-Length": "999"})
    assert "'Content-Length' cannot be set (the HTTP client sets it)" in str(caught.value)


async def test_empty_success_body(https_peer: HttpsPeer) -> None:
    https_peer.reply("DELETE", "/item", Reply(204))
    result = await call_api(http_ctx(ActionType.CallApiDelete, https_peer.url("/item")), make_deps())
    assert result.message == "HTTP 204"


async def test_content_type_from_config(https_peer: HttpsPeer) -> None:
    ctx = http_ctx(ActionType.CallApiPost, https_peer.url("/"), content="a=1", contentType="text/plain")
    await call_api(ctx, make_deps())
    assert https_peer.requests[0].headers["content-type"] == "text/plain"


@pytest.mark.parametrize(
    ("credential", "header", "value"),
    [
        ({"token": "tok-123"}, "authorization", "Bearer tok-123"),
        (
            {"username": "u", "password": "p:w"},
            "authorization",
            "Basic " + base64.b64encode(b"u:p:w").decode(),
        ),
        ({"headerName": "X-Custom-Key", "apiKey": "k-456"}, "x-custom-key", "k-456"),
        ({"apiKey": "k-789"}, "x-api-key", "k-789"),
    ],
)
async def test_credential_types_become_auth_headers(
    https_peer: HttpsPeer, credential: dict[str, Any], header: str, value: str
) -> None:
    await call_api(http_ctx(ActionType.CallApiGet, https_peer.url("/"), credential=credential), make_deps())
    assert https_peer.requests[0].headers[header] == value


async def test_result_body_is_cut_at_4000_characters(https_peer: HttpsPeer) -> None:
    https_peer.reply("GET", "/big", Reply(200, "é" * 10_000))
    result = await call_api(http_ctx(ActionType.CallApiGet, https_peer.url("/big")), make_deps())
    assert result.message == "HTTP 200: " + "é" * 4000


async def test_client_error_is_permanent_with_the_body_in_the_message(https_peer: HttpsPeer) -> None:
    https_peer.reply("POST", "/missing", Reply(404, "no such hook; token tok-123"))
    ctx = http_ctx(ActionType.CallApiPost, https_peer.url("/missing"), credential={"token": "tok-123"})
    with pytest.raises(ActionError) as caught:
        await call_api(ctx, make_deps())
    assert caught.value.permanent
    assert caught.value.result == "HTTP 404"
    assert "no such hook" in caught.value.message
    assert "tok-123" not in caught.value.message


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [
        (503, "12", 12.0),
        (429, None, None),
        (408, "3", 3.0),
        (500, "soon", None),
    ],
)
async def test_retryable_statuses_are_transient(
    https_peer: HttpsPeer, status: int, retry_after: str | None, expected: float | None
) -> None:
    headers = {"Retry-After": retry_after} if retry_after else {}
    https_peer.reply("GET", "/", Reply(status, "busy", headers=headers))
    with pytest.raises(ActionError) as caught:
        await call_api(http_ctx(ActionType.CallApiGet, https_peer.url("/")), make_deps())
    assert not caught.value.permanent
    assert caught.value.retry_after == expected
    assert caught.value.result == f"HTTP {status}"


async def test_retry_after_as_http_date(https_peer: HttpsPeer) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    https_peer.reply("GET", "/", Reply(429, "", headers={"Retry-After": when}))
    with pytest.raises(ActionError) as caught:
        await call_api(http_ctx(ActionType.CallApiGet, https_peer.url("/")), make_deps())
    assert caught.value.retry_after is not None
    assert 80 < caught.value.retry_after <= 90


async def test_redirects_are_followed(https_peer: HttpsPeer) -> None:
    https_peer.reply("GET", "/old", Reply(302, "", headers={"Location": "/new"}))
    https_peer.reply("GET", "/new", Reply(200, "moved here"))
    result = await call_api(http_ctx(ActionType.CallApiGet, https_peer.url("/old")), make_deps())
    assert result.message == "HTTP 200: moved here"
    assert [r.path for r in https_peer.requests] == ["/old", "/new"]


@pytest.mark.parametrize(
    ("credential", "secret_header"),
    [
        ({"apiKey": "api-key-secret", "headerName": "X-Api-Key"}, "x-api-key"),
        ({"token": "bearer-secret"}, "authorization"),
        ({"username": "dispatch", "password": "basic-secret"}, "authorization"),
    ],
)
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_a_cross_origin_redirect_drops_credential_and_step_headers(
    https_peer: HttpsPeer, local_ca, credential: dict[str, Any], secret_header: str, status: int
) -> None:
    async with HttpsPeer(local_ca) as elsewhere:
        https_peer.reply("POST", "/start", Reply(status, "", headers={"Location": elsewhere.url("/landing")}))
        elsewhere.reply("POST", "/landing", Reply(200, "landed"))
        elsewhere.reply("GET", "/landing", Reply(200, "landed"))
        ctx = http_ctx(
            ActionType.CallApiPost,
            https_peer.url("/start"),
            credential=credential,
            headers={"X-Station-Token": "station-secret", "X-Dept": "9"},
        )
        result = await call_api(ctx, make_deps())

        assert result.message == "HTTP 200: landed"
        [first] = https_peer.requests
        assert secret_header in first.headers
        assert first.headers["x-station-token"] == "station-secret"
        [landed] = elsewhere.requests
        for name in (secret_header, "x-station-token", "x-dept"):
            assert name not in landed.headers, (name, dict(landed.headers))
        assert "secret" not in repr(dict(landed.headers))
        assert landed.headers["idempotency-key"] == "wf-run-41-step-7"


async def test_a_same_origin_redirect_keeps_credential_and_step_headers(https_peer: HttpsPeer) -> None:
    https_peer.reply("GET", "/old", Reply(307, "", headers={"Location": "/new"}))
    https_peer.reply("GET", "/new", Reply(200, "moved here"))
    ctx = http_ctx(
        ActionType.CallApiGet,
        https_peer.url("/old"),
        credential={"apiKey": "api-key-secret"},
        headers={"X-Station-Token": "station-secret"},
    )
    await call_api(ctx, make_deps())
    [_, moved] = https_peer.requests
    assert moved.headers["x-api-key"] == "api-key-secret"
    assert moved.headers["x-station-token"] == "station-secret"


async def test_redirect_loop_is_permanent(https_peer: HttpsPeer) -> None:
    https_peer.reply("GET", "/loop", Reply(302, "", headers={"Location": "/loop"}))
    with pytest.raises(ActionError) as caught:
        await call_api(http_ctx(ActionType.CallApiGet, https_peer.url("/loop")), make_deps())
    assert caught.value.permanent
    assert "redirect" in caught.value.message


async def test_timeout_is_transient(https_peer: HttpsPeer) -> None:
    https_peer.reply("GET", "/slow", Reply(200, "late", delay=2.0))
    ctx = http_ctx(ActionType.CallApiGet, https_peer.url("/slow"), timeoutSeconds="1")
    with pytest.raises(ActionError) as caught:
        await call_api(ctx, make_deps())
    assert not caught.value.permanent
    assert caught.value.message.startswith("Request timed out after 1 s")


async def test_plain_http_is_refused_without_a_request(https_peer: HttpsPeer) -> None:
    url = https_peer.url("/").replace("https://", "http://")
    with pytest.raises(ActionConfigError) as caught:  # the engine fails the step permanently with it
        await call_api(http_ctx(ActionType.CallApiPost, url), make_deps())
    assert "must use https" in str(caught.value)
    assert https_peer.requests == []

    # Even a config that skipped the check (built without validation) is refused by the action.
    ctx = make_ctx(ActionType.CallApiPost, config={"url": url, "headers": {}, "timeoutSeconds": 30})
    with pytest.raises(ActionError) as refused:
        await call_api(ctx, make_deps())
    assert refused.value.permanent
    assert "Only https URLs are allowed" in refused.value.message
    assert https_peer.requests == []


async def test_blocked_host_is_refused_before_connecting(https_peer: HttpsPeer) -> None:
    guard = EgressGuard(host_overrides={"localhost": "127.0.0.1"})  # loopback not allowed
    with pytest.raises(ActionError) as caught:
        await call_api(http_ctx(ActionType.CallApiGet, https_peer.url("/")), make_deps(guard))
    assert caught.value.permanent
    assert "loopback" in caught.value.message
    assert https_peer.requests == []
    await guard.aclose()


async def test_untrusted_certificate_is_permanent(https_peer: HttpsPeer) -> None:
    # The peer's certificate names localhost and 127.0.0.1 only.
    deps = make_deps(loopback_guard(**{"api.example.org": "127.0.0.1"}))
    with pytest.raises(ActionError) as caught:
        await call_api(http_ctx(ActionType.CallApiGet, https_peer.url("/", host="api.example.org")), deps)
    assert caught.value.permanent
    assert "certificate" in caught.value.message


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, "ActionConfig.url: is required"),
        ({"url": "https://"}, "ActionConfig.url: must name a host"),
        (
            {"url": "https://x.example.org/", "timeoutSeconds": "soon"},
            "ActionConfig.timeoutSeconds: must be a whole number",
        ),
        (
            {"url": "https://x.example.org/", "headers": {"X-A": "1\r\nX-B: 2"}},
            "ActionConfig.headers: value of 'X-A' must be a single line without control characters",
        ),
        (
            {"url": "https://x.example.org/", "headers": "X-A: 1"},
            "ActionConfig.headers: must be an object of header names to string values",
        ),
    ],
)
def test_invalid_rendered_config_fails_the_step_before_the_action(
    config: dict[str, Any], expected: str
) -> None:
    """The engine checks the rendered config first; its message is what the run log shows (permanent)."""
    with pytest.raises(ActionConfigError) as caught:
        coerce_rendered(ActionType.CallApiGet, config)
    assert expected in str(caught.value)


async def test_a_bound_credential_is_not_sent_to_another_origin(https_peer: HttpsPeer) -> None:
    """A templated URL can point anywhere: the credential goes only to its allowedOrigins."""
    credential = {"token": "bearer-secret", "allowedOrigins": [https_peer.url("/").rstrip("/")]}
    ctx = http_ctx(ActionType.CallApiGet, https_peer.url("/hook", host="127.0.0.1"), credential=credential)
    with pytest.raises(ActionError) as caught:
        await call_api(ctx, make_deps())
    assert caught.value.permanent
    assert "not one the HTTP credential allows" in caught.value.message
    assert https_peer.requests == []

    https_peer.reply("GET", "/hook", Reply(200, "ok"))
    await call_api(
        http_ctx(ActionType.CallApiGet, https_peer.url("/hook"), credential=credential), make_deps()
    )
    [request] = https_peer.requests
    assert request.headers["authorization"] == "Bearer bearer-secret"
