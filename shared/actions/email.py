"""SendEmail: config model and accepted credential (performed by the executor's SMTP module)."""

from __future__ import annotations

from typing import Annotated, Any

from shared.actions.config_fields import OneLineText, as_text, email, emails
from shared.actions.spec import ActionConfig, ActionSpec
from shared.enums import ActionType, CredentialType


class SendEmailConfig(ActionConfig):
    to: Annotated[str, as_text(emails)]
    cc: Annotated[str, as_text(emails)] | None = None
    subject: OneLineText
    reply_to: Annotated[str, as_text(email)] | None = None


SPECS: list[ActionSpec[Any, Any]] = [
    ActionSpec(ActionType.SendEmail, SendEmailConfig, frozenset({CredentialType.Smtp}))
]
