"""UploadFileFtp and UploadFileSftp: their shared config model and accepted credentials (performed by
the executor's FTP and SFTP modules)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any, ClassVar

from shared.actions.config_fields import Flag, as_text, filename, path
from shared.actions.spec import ActionConfig, ActionSpec
from shared.enums import ActionType, CredentialType


def utc_filename(now: datetime) -> str:
    return now.strftime("workflow_%Y%m%d%H%M%S.txt")


FileName = Annotated[str, as_text(filename)]


class FileTransferConfig(ActionConfig):
    stamped: ClassVar[Mapping[str, Callable[[datetime], str]]] = {"filename": utc_filename}

    remote_path: Annotated[str, as_text(path)] = "/"
    filename: FileName | None = None
    overwrite: Flag = True


SPECS: list[ActionSpec[Any, Any]] = [
    ActionSpec(ActionType.UploadFileFtp, FileTransferConfig, frozenset({CredentialType.Ftp})),
    ActionSpec(ActionType.UploadFileSftp, FileTransferConfig, frozenset({CredentialType.Sftp})),
]
