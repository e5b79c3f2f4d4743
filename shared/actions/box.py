"""UploadFileBox: config model and accepted credential (performed by the executor's Box module)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any, ClassVar

from shared.actions.config_fields import as_text, pattern
from shared.actions.file_transfer import FileName, utc_filename
from shared.actions.spec import ActionConfig, ActionSpec
from shared.enums import ActionType, CredentialType


class UploadBoxConfig(ActionConfig):
    stamped: ClassVar[Mapping[str, Callable[[datetime], str]]] = {"filename": utc_filename}

    folder_id: Annotated[
        str, as_text(pattern(r"^\d{1,32}$", "must be a numeric Box folder id"), accepts_number=True)
    ] = "0"
    filename: FileName | None = None


SPECS: list[ActionSpec[Any, Any]] = [
    ActionSpec(ActionType.UploadFileBox, UploadBoxConfig, frozenset({CredentialType.Box}))
]
