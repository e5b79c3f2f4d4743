"""SendSms: config model and accepted credential (performed by the executor's Twilio module)."""

from __future__ import annotations

from typing import Annotated, Any

from shared.actions.config_fields import as_text, phone_numbers
from shared.actions.spec import ActionConfig, ActionSpec
from shared.enums import ActionType, CredentialType


class SendSmsConfig(ActionConfig):
    to: Annotated[str, as_text(phone_numbers)]


SPECS: list[ActionSpec[Any, Any]] = [
    ActionSpec(ActionType.SendSms, SendSmsConfig, frozenset({CredentialType.Twilio}))
]
