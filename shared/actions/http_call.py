"""CallApiGet/Post/Put/Delete: config model and accepted credentials (performed by the executor's
HTTP module)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field

from shared.actions.config_fields import Headers, as_text, https_url, media_type, whole_number
from shared.actions.spec import ActionConfig, ActionSpec
from shared.credential_fields import (
    FORBIDDEN_HEADERS,
    CredentialData,
    HeaderName,
    Line,
    Origins,
    Token,
    _secret,
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


# --- config -----------------------------------------------------------------------------------------


class CallApiConfig(ActionConfig):
    url: Annotated[str, as_text(https_url)]
    content_type: Annotated[str, as_text(media_type)] = "application/json"
    timeout_seconds: Annotated[int, whole_number(1, 120)] = 30
    headers: Headers = Field(default_factory=dict)


_CREDENTIALS = frozenset(
    {None, CredentialType.HttpBearer, CredentialType.HttpBasic, CredentialType.HttpApiKey}
)

SPECS: list[ActionSpec[Any, Any]] = [
    ActionSpec(action_type, CallApiConfig, _CREDENTIALS)
    for action_type in (
        ActionType.CallApiGet,
        ActionType.CallApiPost,
        ActionType.CallApiPut,
        ActionType.CallApiDelete,
    )
]
