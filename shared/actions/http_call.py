"""CallApiGet/Post/Put/Delete: config model and accepted credentials (performed by the executor's
HTTP module)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from shared.actions.config_fields import Headers, as_text, https_url, media_type, whole_number
from shared.actions.spec import ActionConfig, ActionSpec
from shared.enums import ActionType, CredentialType


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
