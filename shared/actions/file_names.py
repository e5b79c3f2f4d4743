"""Names and paths for the file-upload actions: dated defaults and safe joining.

Every name arrives already rendered from a Liquid template, so it may carry anything an event
put into it. The policy is to **reject, not neutralise**: a ``..`` segment, a NUL or other control
character, a backslash, or an absolute-looking filename ("/etc/passwd", "C:\\x") fails the step
with a permanent error that names the offending value. Silently rewriting a path would put the
file somewhere the user did not ask for, and a visible failure is easier to fix than a file in
the wrong place. ``.`` segments and repeated slashes are harmless and are simply collapsed.

Directory paths (``remotePath``, ``targetPath``) are made absolute; a filename is a path
*relative* to that directory and may contain sub-folders ("reports/today.txt"). Object keys
(S3 keys, blob names) follow the same segment rules without a leading slash. Default names
use the current UTC time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from shared.actions.outcomes import permanent

MAX_PATH_CHARS = 1024


def utc_now() -> datetime:
    return datetime.now(UTC)


def default_filename(now: datetime | None = None) -> str:
    """``workflow_yyyyMMddHHmmss.txt`` in UTC (FTP, SFTP, Box, Dropbox)."""
    return f"workflow_{(now or utc_now()).astimezone(UTC):%Y%m%d%H%M%S}.txt"


def default_object_key(now: datetime | None = None) -> str:
    """``workflow/yyyy/MM/dd/HHmmss.txt`` in UTC (S3 keys, Azure blob names)."""
    return f"workflow/{(now or utc_now()).astimezone(UTC):%Y/%m/%d/%H%M%S}.txt"


@dataclass(frozen=True, slots=True)
class RemotePath:
    """A checked remote location: ``directory`` is absolute, ``path`` is ``directory/name``."""

    directory: str
    name: str

    @property
    def path(self) -> str:
        return f"{self.directory.rstrip('/')}/{self.name}"


def _segments(value: str, *, what: str) -> list[str]:
    if len(value) > MAX_PATH_CHARS:
        raise permanent(f"{what} is longer than {MAX_PATH_CHARS} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise permanent(f"{what} {value[:80]!r} contains a control character (NUL, line break...)")
    if "\\" in value:
        raise permanent(f"{what} {value[:80]!r} contains a backslash; use '/' between folders")
    segments = [s for s in value.split("/") if s not in ("", ".")]
    if ".." in segments:
        raise permanent(f"{what} {value[:80]!r} contains a '..' segment, which could leave the target folder")
    return segments


def _check_relative(value: str, *, what: str) -> list[str]:
    if value.startswith("/"):
        raise permanent(f"{what} {value[:80]!r} must not start with '/'; put folders in the path setting")
    if len(value) >= 2 and value[1] == ":" and value[0].isalpha():
        raise permanent(f"{what} {value[:80]!r} looks like a Windows drive path")
    segments = _segments(value, what=what)
    if not segments:
        raise permanent(f"{what} {value[:80]!r} does not name a file")
    return segments


def safe_directory(value: str | None, *, what: str) -> str:
    """An absolute folder path ("/" for none) with ``..``, control characters and backslashes refused."""
    segments = _segments(value or "/", what=what)
    return "/" + "/".join(segments)


def join_remote_path(
    directory: str | None, filename: str | None, *, now: datetime | None = None
) -> RemotePath:
    """``remotePath`` + ``filename`` (default dated name); sub-folders of the filename join the directory."""
    base = safe_directory(directory, what="Remote path")
    name = filename if filename else default_filename(now)
    segments = _check_relative(name, what="Filename")
    if len(segments) > 1:
        base = base.rstrip("/") + "/" + "/".join(segments[:-1])
    return RemotePath(directory=base, name=segments[-1])


def safe_object_key(key: str | None, *, what: str = "Object key", now: datetime | None = None) -> str:
    """An S3 key or blob name (default dated); a leading '/' is dropped because object stores have no root."""
    value = key if key else default_object_key(now)
    segments = _segments(value, what=what)
    if not segments:
        raise permanent(f"{what} {value[:80]!r} does not name an object")
    return "/".join(segments)


def safe_single_name(value: str | None, *, what: str = "Filename", now: datetime | None = None) -> str:
    """One file name with no folders (Box names cannot contain '/')."""
    name = value if value else default_filename(now)
    segments = _check_relative(name, what=what)
    if len(segments) != 1:
        raise permanent(f"{what} {name[:80]!r} must not contain '/'; choose the folder with folderId")
    return segments[0]


def encode_content(content: str) -> bytes:
    """The rendered template as UTF-8, encoded once; uploads stream views of this one object."""
    return content.encode("utf-8")


def byte_count(size: int) -> str:
    return f"{size:,} byte{'s' if size != 1 else ''}"
