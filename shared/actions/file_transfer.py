"""What UploadFileFtp and UploadFileSftp share: their config model, and the upload they both prepare
(the target path, the bytes, the URL the run log shows) and the network failures they both classify.

Each protocol's credential and ``perform`` live in ``ftp.py`` and ``sftp.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, ClassVar

from shared.actions.config_fields import Flag, as_text, filename, path
from shared.actions.file_names import RemotePath, encode_content, join_remote_path
from shared.actions.outcomes import ActionError, transient
from shared.actions.spec import ActionConfig

# A connection (TCP and login) never waits longer than this, even when the upload may take longer.
CONNECT_TIMEOUT_S = 30.0

# --- config -----------------------------------------------------------------------------------------


def utc_filename(now: datetime) -> str:
    return now.strftime("workflow_%Y%m%d%H%M%S.txt")


FileName = Annotated[str, as_text(filename)]


class FileTransferConfig(ActionConfig):
    stamped: ClassVar[Mapping[str, Callable[[datetime], str]]] = {"filename": utc_filename}

    remote_path: Annotated[str, as_text(path)] = "/"
    filename: FileName | None = None
    overwrite: Flag = True


# --- perform: the parts both protocols share ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Upload:
    """One file to store: where, what, whether it may replace a file, and the URL the run log shows."""

    target: RemotePath
    data: bytes
    overwrite: bool
    url: str


def prepare_upload(
    config: FileTransferConfig, content: str, *, scheme: str, host: str, port: int, default_port: int
) -> Upload:
    """The upload a step asks for; a path escaping the server's root is a permanent error."""
    target = join_remote_path(config.remote_path or "/", config.filename or None)
    authority = f"[{host}]" if ":" in host else host
    if port != default_port:
        authority += f":{port}"
    return Upload(
        target=target,
        data=encode_content(content),
        overwrite=config.overwrite,
        url=f"{scheme}://{authority}{target.path}",
    )


def network_error(protocol: str, exc: BaseException, *, stage: str, url: str) -> ActionError | None:
    """Timeouts and connection failures are transient; None for anything else."""
    if isinstance(exc, TimeoutError):
        return transient(f"{protocol} {stage} timed out ({url})")
    if isinstance(exc, OSError | ConnectionError | EOFError | asyncio.IncompleteReadError):
        return transient(f"{protocol} {stage} failed for {url}: {type(exc).__name__}: {exc}")
    return None
