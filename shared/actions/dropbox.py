"""UploadFileDropbox: config model and accepted credential (performed by the executor's Dropbox module)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any, ClassVar

from shared.actions.config_fields import as_text, dropbox_path, one_of
from shared.actions.file_transfer import FileName, utc_filename
from shared.actions.spec import ActionConfig, ActionSpec
from shared.credential_fields import (
    CredentialData,
    Token,
    _secret,
)
from shared.enums import ActionType, CredentialType

# --- credentials ------------------------------------------------------------------------------------


class DropboxCredential(CredentialData):
    """Dropbox app with an offline refresh token (type 13)."""

    refresh_token: Token = _secret(required=True)
    app_key: Token
    app_secret: Token = _secret(required=True)


# --- config -----------------------------------------------------------------------------------------


class UploadDropboxConfig(ActionConfig):
    stamped: ClassVar[Mapping[str, Callable[[datetime], str]]] = {"filename": utc_filename}

    target_path: Annotated[str, as_text(dropbox_path)] = "/"
    filename: FileName | None = None
    write_mode: Annotated[str, as_text(one_of("add", "overwrite"))] = "add"


SPECS: list[ActionSpec[Any, Any]] = [
    ActionSpec(ActionType.UploadFileDropbox, UploadDropboxConfig, frozenset({CredentialType.Dropbox}))
]
