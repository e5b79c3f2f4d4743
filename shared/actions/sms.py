"""SendSms: config model and accepted credential (performed by the executor's Twilio module)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator

from shared.actions.config_fields import as_text, phone_numbers
from shared.actions.spec import ActionConfig, ActionSpec
from shared.credential_fields import (
    CredentialData,
    Line,
    Token,
    _secret,
    matching,
)
from shared.enums import ActionType, CredentialType

# --- credentials ------------------------------------------------------------------------------------


_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")


def _twilio_sender(value: str) -> str:
    compact = re.sub(r"[\s().-]", "", value)
    if _E164.match(compact):
        return compact
    if _ALPHANUMERIC_SENDER.match(value):
        return value
    raise ValueError("must be an E.164 phone number like +15551234567 or an alphanumeric sender ID")


class TwilioCredential(CredentialData):
    """Twilio SMS (type 1). ``fromNumber`` or ``messagingServiceSid`` (or both) must be set."""

    account_sid: Annotated[Token, matching(r"^AC[0-9A-Za-z]+$", "must be a Twilio Account SID (AC...)")]
    auth_token: Token = _secret(required=True)
    from_number: Annotated[Line, AfterValidator(_twilio_sender)] | None = None
    messaging_service_sid: (
        Annotated[Token, matching(r"^MG[0-9A-Za-z]+$", "must be a Messaging Service SID (MG...)")] | None
    ) = None

    def cross_field_errors(self) -> list[tuple[str, str]]:
        if not self.from_number and not self.messaging_service_sid:
            return [("fromNumber", "is required unless messagingServiceSid is set")]
        return []


# --- config -----------------------------------------------------------------------------------------


class SendSmsConfig(ActionConfig):
    to: Annotated[str, as_text(phone_numbers)]


SPECS: list[ActionSpec[Any, Any]] = [
    ActionSpec(ActionType.SendSms, SendSmsConfig, frozenset({CredentialType.Twilio}))
]
