"""SendEmail: config model and accepted credential (performed by the executor's SMTP module)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, model_validator

from shared.actions.config_fields import OneLineText, as_text, email, emails
from shared.actions.spec import ActionConfig, ActionSpec
from shared.credential_fields import (
    CredentialData,
    Email,
    Host,
    Line,
    Port,
    _lower,
    _secret,
)
from shared.enums import ActionType, CredentialType

# --- credentials ------------------------------------------------------------------------------------


class SmtpCredential(CredentialData):
    """SMTP server (type 0)."""

    legacy_fields: ClassVar[frozenset[str]] = frozenset({"useSsl"})

    host: Host
    port: Port = 587
    username: Line | None = None
    password: Line | None = _secret()
    security: Annotated[Literal["starttls", "tls", "none"], BeforeValidator(_lower)] = "starttls"
    from_address: Email
    from_name: Line | None = None

    @model_validator(mode="before")
    @classmethod
    def _legacy_use_ssl(cls, data: Any) -> Any:
        if not isinstance(data, Mapping) or "useSsl" not in data:
            return data
        data = dict(data)
        use_ssl = data.pop("useSsl")
        if data.get("security") is None and use_ssl is not None:
            if not isinstance(use_ssl, bool):
                raise ValueError("useSsl must be true or false")
            # Port 465 only speaks implicit TLS; elsewhere "SSL" in the old UI meant STARTTLS.
            implicit = str(data.get("port")) == "465"
            data["security"] = ("tls" if implicit else "starttls") if use_ssl else "none"
        return data

    def cross_field_errors(self) -> list[tuple[str, str]]:
        if self.password and not self.username:
            return [("username", "is required when a password is set")]
        if self.username and not self.password:
            return [("password", "is required when a username is set")]
        return []


# --- config -----------------------------------------------------------------------------------------


class SendEmailConfig(ActionConfig):
    to: Annotated[str, as_text(emails)]
    cc: Annotated[str, as_text(emails)] | None = None
    subject: OneLineText
    reply_to: Annotated[str, as_text(email)] | None = None


SPECS: list[ActionSpec[Any, Any]] = [
    ActionSpec(ActionType.SendEmail, SendEmailConfig, frozenset({CredentialType.Smtp}))
]
