"""UploadFileBox: config model and accepted credential (performed by the executor's Box module)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator

from shared.actions.config_fields import as_text, pattern
from shared.actions.file_transfer import FileName, utc_filename
from shared.actions.spec import ActionConfig, ActionSpec
from shared.credential_fields import (
    CredentialData,
    Line,
    MultiLine,
    Token,
    _secret,
    matching,
    snake_name,
)
from shared.enums import ActionType, CredentialType

# --- credentials ------------------------------------------------------------------------------------


def _pem_key_problem(key: str, password: str | None) -> tuple[str, str] | None:
    """None when the PEM key loads, else (field, problem)."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        load_pem_private_key(key.encode(), password.encode() if password else None)
    except TypeError:
        if password:
            return ("privateKeyPassword", "must be empty: privateKey is not encrypted")
        return ("privateKeyPassword", "is required: privateKey is encrypted")
    except ValueError:
        return ("privateKey", "is not a PEM private key, or privateKeyPassword does not decrypt it")
    return None


class BoxCredential(CredentialData):
    """Box (type 12): a JWT app (clientId, clientSecret, enterpriseId, publicKeyId, privateKey), or developerToken alone."""

    jwt_fields: ClassVar[tuple[str, ...]] = (
        "clientId",
        "clientSecret",
        "enterpriseId",
        "publicKeyId",
        "privateKey",
    )

    client_id: Token | None = None
    client_secret: Token | None = _secret()
    enterprise_id: (
        Annotated[
            str,
            BeforeValidator(lambda v: str(v) if isinstance(v, int) and not isinstance(v, bool) else v),
            matching(r"^\d{1,32}$", "must be the numeric Box enterprise ID"),
        ]
        | None
    ) = None
    public_key_id: Token | None = None
    private_key: MultiLine | None = _secret()
    private_key_password: Line | None = _secret()
    developer_token: Token | None = _secret()

    def cross_field_errors(self) -> list[tuple[str, str]]:
        if self.developer_token:
            used = [
                name for name in (*self.jwt_fields, "privateKeyPassword") if getattr(self, snake_name(name))
            ]
            if used:
                return [("developerToken", f"must be used alone, without {', '.join(used)}")]
            return []
        missing = [
            (name, "is required (or give developerToken alone)")
            for name in self.jwt_fields
            if not getattr(self, snake_name(name))
        ]
        if missing:
            return missing
        problem = _pem_key_problem(self.private_key or "", self.private_key_password)
        return [problem] if problem else []


# --- config -----------------------------------------------------------------------------------------


class UploadBoxConfig(ActionConfig):
    stamped: ClassVar[Mapping[str, Callable[[datetime], str]]] = {"filename": utc_filename}

    folder_id: Annotated[
        str, as_text(pattern(r"^\d{1,32}$", "must be a numeric Box folder id"), accepts_number=True)
    ] = "0"
    filename: FileName | None = None


SPECS: list[ActionSpec[Any, Any]] = [
    ActionSpec(ActionType.UploadFileBox, UploadBoxConfig, frozenset({CredentialType.Box}))
]
