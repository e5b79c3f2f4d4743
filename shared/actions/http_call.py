"""CallApiGet/Post/Put/Delete: one HTTPS request to a URL from the step's config: credentials, config
model and ``perform``."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any

import httpx
from pydantic import AfterValidator, BeforeValidator, Field

from shared.actions.config_fields import Headers, as_text, https_url, media_type, whole_number
from shared.actions.outcomes import ActionError, ActionResult, permanent
from shared.actions.replies import body_snippet, redact, redact_error, status_error
from shared.actions.spec import ActionConfig, ActionHost, ActionSpec, StepRun
from shared.credential_fields import (
    FORBIDDEN_HEADERS,
    CredentialData,
    HeaderName,
    Line,
    Origins,
    Token,
    _secret,
    url_origin,
)
from shared.enums import ActionType, CredentialType

# --- credentials ------------------------------------------------------------------------------------


def _strip_bearer(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower().startswith("bearer "):
        return value.strip()[7:]
    return value


class HttpBearerCredential(CredentialData):
    """``Authorization: Bearer <token>`` for HTTP calls (type 5)."""

    token: Annotated[Token, BeforeValidator(_strip_bearer)] = _secret(required=True)
    allowed_origins: Origins | None = None


def _no_colon(value: str) -> str:
    if ":" in value:
        raise ValueError("must not contain ':' (HTTP Basic separates user name and password with it)")
    return value


class HttpBasicCredential(CredentialData):
    """HTTP Basic authentication for HTTP calls (type 6)."""

    username: Annotated[Line, AfterValidator(_no_colon)]
    password: Line = _secret(required=True)
    allowed_origins: Origins | None = None


def _allowed_header(value: str) -> str:
    if value.lower() in FORBIDDEN_HEADERS:
        raise ValueError(f"cannot be {value} (set by the HTTP client)")
    return value


class HttpApiKeyCredential(CredentialData):
    """An API key sent in a header of the caller's choice for HTTP calls (type 7)."""

    header_name: Annotated[HeaderName, AfterValidator(_allowed_header)] = "X-Api-Key"
    api_key: Line = _secret(required=True)
    allowed_origins: Origins | None = None


HttpCredential = HttpBearerCredential | HttpBasicCredential | HttpApiKeyCredential


# --- config -----------------------------------------------------------------------------------------


class CallApiConfig(ActionConfig):
    url: Annotated[str, as_text(https_url)]
    content_type: Annotated[str, as_text(media_type)] = "application/json"
    timeout_seconds: Annotated[int, whole_number(1, 120)] = 30
    headers: Headers = Field(default_factory=dict)


# --- perform ----------------------------------------------------------------------------------------

_FRAMING = frozenset({"host", "content-length", "transfer-encoding", "connection"})


async def call_api(
    host: ActionHost, step: StepRun, config: CallApiConfig, credential: HttpCredential | None, *, method: str
) -> ActionResult:
    url = _https_url(config.url)
    _check_origin(credential, url)
    # Framing headers are httpx's job; a templated Content-Length would corrupt the request.
    headers = {k: v for k, v in config.headers.items() if k.lower() not in _FRAMING}
    content: str | None = None
    if method in ("POST", "PUT"):
        content = step.content
        headers = _without(headers, "content-type")
        headers["Content-Type"] = config.content_type or "application/json"
    # Our key wins so a retried step is always recognisable to the receiver, whatever the config says.
    headers = _without(headers, "idempotency-key")
    headers["Idempotency-Key"] = step.idempotency_key
    # What the step and its credential add is for this URL's origin only: a redirect elsewhere drops it.
    private = [*headers, *(auth := _auth_headers(credential))]
    headers.update(auth)

    secrets = _secrets(credential)
    try:
        reply = await host.http_request(
            method,
            url,
            what=f"{method} {url.host}",
            timeout=float(config.timeout_seconds),
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
            retry_after=reply.retry_after(host.settings.max_retry_after_s),
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


def _check_origin(credential: HttpCredential | None, url: httpx.URL) -> None:
    """An HTTP credential goes only to the origins set on it. One without origins has not been used
    by a step saved since origins existed (the API pins it then) and is not bound here."""
    allowed = credential.allowed_origins if credential is not None else None
    if not allowed:
        return
    origin = url_origin(str(url))
    if origin not in allowed:
        raise permanent(
            f"The step's URL origin {origin} is not one the HTTP credential allows "
            f"({', '.join(allowed)}); nothing was sent"
        )


def _auth_headers(credential: HttpCredential | None) -> dict[str, str]:
    """Headers for an HttpBearer, HttpBasic or HttpApiKey credential."""
    if isinstance(credential, HttpBearerCredential):
        return {"Authorization": f"Bearer {_header_safe(credential.token, 'token')}"}
    if isinstance(credential, HttpApiKeyCredential):
        name = credential.header_name or "X-Api-Key"
        return {name: _header_safe(credential.api_key, "apiKey")}
    if isinstance(credential, HttpBasicCredential):
        token = base64.b64encode(f"{credential.username}:{credential.password}".encode()).decode("ascii")
        return {"Authorization": f"Basic {token}"}
    return {}


def _secrets(credential: HttpCredential | None) -> list[str]:
    """What the run log must never show: the credential's secret."""
    if isinstance(credential, HttpBearerCredential):
        secret = credential.token
    elif isinstance(credential, HttpApiKeyCredential):
        secret = credential.api_key
    elif isinstance(credential, HttpBasicCredential):
        secret = credential.password
    else:
        return []
    return [secret] if secret else []


def _header_safe(value: str, key: str) -> str:
    if "\r" in value or "\n" in value:
        raise permanent(f"HTTP credential '{key}' contains a line break")
    return value


def _without(headers: Mapping[str, str], name: str) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() != name}


def _perform(
    method: str,
) -> Callable[[ActionHost, StepRun, CallApiConfig, HttpCredential | None], Awaitable[ActionResult]]:
    async def perform(
        host: ActionHost, step: StepRun, config: CallApiConfig, credential: HttpCredential | None
    ) -> ActionResult:
        return await call_api(host, step, config, credential, method=method)

    return perform


_CREDENTIALS = frozenset(
    {None, CredentialType.HttpBearer, CredentialType.HttpBasic, CredentialType.HttpApiKey}
)

_METHODS: Mapping[ActionType, str] = {
    ActionType.CallApiGet: "GET",
    ActionType.CallApiPost: "POST",
    ActionType.CallApiPut: "PUT",
    ActionType.CallApiDelete: "DELETE",
}

# The credential model is one of three, chosen by the credential's type (see CREDENTIAL_MODELS).
SPECS: list[ActionSpec[Any, Any]] = [
    ActionSpec(action_type, CallApiConfig, _CREDENTIALS, None, _perform(method))
    for action_type, method in _METHODS.items()
]
