"""CallApiGet/Post/Put/Delete: one HTTPS request to a URL from the step's config."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import httpx

from services.executor.actions.base import ActionContext, ActionDeps, ActionError, ActionResult, permanent
from services.executor.actions.config_readers import headers_value, number_value, required_text, text_value
from services.executor.actions.http_requests import http_request
from shared.actions.replies import body_snippet, redact, redact_error, secret_values, status_error
from shared.credential_types import url_origin
from shared.enums import ActionType

_METHODS: Mapping[ActionType, str] = {
    ActionType.CallApiGet: "GET",
    ActionType.CallApiPost: "POST",
    ActionType.CallApiPut: "PUT",
    ActionType.CallApiDelete: "DELETE",
}
_CONFIG = "HTTP action config"
_SECRET_KEYS = ("token", "password", "apiKey")
_FRAMING = frozenset({"host", "content-length", "transfer-encoding", "connection"})
DEFAULT_TIMEOUT_S = 30.0
MAX_TIMEOUT_S = 120.0


async def call_api(ctx: ActionContext, deps: ActionDeps) -> ActionResult:
    method = _METHODS.get(ctx.action_type)
    if method is None:
        raise permanent(f"call_api cannot perform action type {ctx.action_type!r}")
    url = _https_url(required_text(ctx.config, "url", what=_CONFIG))
    _check_origin(ctx.credential, url)
    timeout = number_value(
        ctx.config,
        "timeoutSeconds",
        what=_CONFIG,
        default=DEFAULT_TIMEOUT_S,
        minimum=1,
        maximum=MAX_TIMEOUT_S,
    )
    # Framing headers are httpx's job; a templated Content-Length would corrupt the request.
    headers = {
        k: v
        for k, v in headers_value(ctx.config, "headers", what=_CONFIG).items()
        if k.lower() not in _FRAMING
    }
    content: str | None = None
    if method in ("POST", "PUT"):
        content = ctx.content
        headers = _without(headers, "content-type")
        headers["Content-Type"] = text_value(ctx.config, "contentType", what=_CONFIG) or "application/json"
    # Our key wins so a retried step is always recognisable to the receiver, whatever the config says.
    headers = _without(headers, "idempotency-key")
    headers["Idempotency-Key"] = ctx.idempotency_key
    # What the step and its credential add is for this URL's origin only: a redirect elsewhere drops it.
    private = [*headers, *(auth := _auth_headers(ctx.credential))]
    headers.update(auth)

    secrets = secret_values(ctx.credential, _SECRET_KEYS)
    try:
        reply = await http_request(
            deps.egress,
            method,
            url,
            what=f"{method} {url.host}",
            timeout=timeout,
            follow_redirects=True,
            headers=headers,
            private_headers=[
                name for name in private if name.lower() not in ("content-type", "idempotency-key")
            ],
            content=content,
        )
    except ActionError as exc:
        raise redact_error(exc, secrets) from None
    snippet = redact(body_snippet(reply.text), secrets)
    if 200 <= reply.status < 300:
        return ActionResult(f"HTTP {reply.status}: {snippet}" if snippet else f"HTTP {reply.status}")
    raise redact_error(
        status_error(
            reply.status,
            what=f"{method} {url.host}",
            detail=snippet,
            retry_after=reply.retry_after(deps.settings.max_retry_after_s),
        ),
        secrets,
    )


def _https_url(raw: str) -> httpx.URL:
    try:
        url = httpx.URL(raw)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise permanent("HTTP action config has an invalid 'url'") from None
    if url.scheme != "https":
        raise permanent(f"Only https URLs are allowed for HTTP actions (got {url.scheme or 'no'} scheme)")
    if not url.host:
        raise permanent("HTTP action config 'url' has no host")
    return url


def _check_origin(credential: Mapping[str, Any] | None, url: httpx.URL) -> None:
    """An HTTP credential goes only to the origins set on it. One without origins has not been used
    by a step saved since origins existed (the API pins it then) and is not bound here."""
    allowed = (credential or {}).get("allowedOrigins")
    if not allowed:
        return
    origin = url_origin(str(url))
    if origin not in allowed:
        raise permanent(
            f"The step's URL origin {origin} is not one the HTTP credential allows "
            f"({', '.join(allowed)}); nothing was sent"
        )


def _auth_headers(credential: Mapping[str, Any] | None) -> dict[str, str]:
    """Headers for an HttpBearer, HttpBasic or HttpApiKey credential, recognised by its canonical keys."""
    if not credential:
        return {}
    what = "HTTP credential"
    if "token" in credential:
        return {
            "Authorization": f"Bearer {_header_safe(required_text(credential, 'token', what=what), 'token')}"
        }
    if "apiKey" in credential:
        name = text_value(credential, "headerName", what=what) or "X-Api-Key"
        if any(c in name for c in "\r\n: "):
            raise permanent("HTTP credential has an invalid 'headerName'")
        return {name: _header_safe(required_text(credential, "apiKey", what=what), "apiKey")}
    if "username" in credential or "password" in credential:
        username = required_text(credential, "username", what=what)
        password = required_text(credential, "password", what=what)
        token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        return {"Authorization": f"Basic {token}"}
    raise permanent("HTTP credential has none of 'token', 'username'/'password' or 'apiKey'")


def _header_safe(value: str, key: str) -> str:
    if "\r" in value or "\n" in value:
        raise permanent(f"HTTP credential '{key}' contains a line break")
    return value


def _without(headers: Mapping[str, str], name: str) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() != name}
