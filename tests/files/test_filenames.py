"""Default names and safe path joining shared by the upload actions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.executor.actions.base import ActionError
from shared.actions.file_names import (
    default_filename,
    default_object_key,
    join_remote_path,
    safe_object_key,
    safe_single_name,
)

# 23:30 in UTC-5 is 04:30 the next day in UTC.
LOCAL_EVENING = datetime(2024, 6, 1, 23, 30, 15, tzinfo=timezone(timedelta(hours=-5)))


def test_default_names_use_utc() -> None:
    assert default_filename(LOCAL_EVENING) == "workflow_20240602043015.txt"
    assert default_object_key(LOCAL_EVENING) == "workflow/2024/06/02/043015.txt"


@pytest.mark.parametrize(
    ("directory", "filename", "expected"),
    [
        ("/", "a.txt", "/a.txt"),
        (None, "a.txt", "/a.txt"),
        ("incoming", "a.txt", "/incoming/a.txt"),
        ("/incoming//station-7/./", "a.txt", "/incoming/station-7/a.txt"),
        ("/in", "2024/06/a.txt", "/in/2024/06/a.txt"),
        ("/in", "..a..txt", "/in/..a..txt"),
    ],
)
def test_join_remote_path(directory: str | None, filename: str, expected: str) -> None:
    assert join_remote_path(directory, filename).path == expected


def test_join_uses_the_dated_default_name() -> None:
    target = join_remote_path("/in", None, now=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert (target.directory, target.name) == ("/in", "workflow_20240102030405.txt")


@pytest.mark.parametrize(
    ("directory", "filename"),
    [
        ("/", "../x.txt"),
        ("/", "a/../../x.txt"),
        ("/in/../..", "x.txt"),
        ("/", "/etc/passwd"),
        ("/", "C:\\Windows\\x.txt"),
        ("/", "c:x.txt"),
        ("/", "a\\..\\x.txt"),
        ("/", "a\x00.txt"),
        ("/", "line\nbreak.txt"),
        ("/", "."),
        ("/", "x" * 2000),
    ],
)
def test_unsafe_paths_are_refused_permanently(directory: str, filename: str) -> None:
    with pytest.raises(ActionError) as caught:
        join_remote_path(directory, filename)
    assert caught.value.permanent


def test_object_keys_drop_the_leading_slash_and_refuse_escapes() -> None:
    assert safe_object_key("/calls//2024/x.json") == "calls/2024/x.json"
    with pytest.raises(ActionError):
        safe_object_key("calls/../../x.json")


def test_single_name_refuses_folders() -> None:
    assert safe_single_name("report.txt") == "report.txt"
    with pytest.raises(ActionError):
        safe_single_name("a/b.txt")
