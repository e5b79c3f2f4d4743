"""UploadFileDropbox against a local HTTPS peer playing Dropbox's token and upload endpoints."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

import pytest

from services.executor.actions.base import ActionDeps, ActionError
from services.executor.registry import ACTIONS
from shared.enums import ActionType
from tests.files.conftest import at_base_url, make_ctx
from tests.peers.https_server import HttpsPeer, Reply
from tests.peers.listener import unused_port
from tests.peers.tls import LocalCA

upload_dropbox = ACTIONS[ActionType.UploadFileDropbox]

CONTENT = "Inventory adjusted: 4 × SCBA cylinders at Station 2 ✓\n"
UPLOAD = "/2/files/upload"
TOKEN = "/oauth2/token"
DROPBOX_URLS = ("dropbox_api_base_url", "dropbox_content_base_url")
CREDENTIAL = {"refreshToken": "dbx-refresh-token", "appKey": "dbx-app-key", "appSecret": "dbx-app-secret"}


@pytest.fixture
async def dropbox(local_ca: LocalCA):
    async with HttpsPeer(local_ca) as peer:
        peer.reply(
            "POST",
            TOKEN,
            Reply(body={"access_token": "sl.short-lived", "token_type": "bearer", "expires_in": 14400}),
        )
        yield peer


@pytest.fixture
def dropbox_deps(deps: ActionDeps, dropbox: HttpsPeer) -> ActionDeps:
    return at_base_url(deps, dropbox.url("").rstrip("/"), *DROPBOX_URLS)


def dropbox_ctx(config: Mapping[str, Any], credential: dict[str, str] = CREDENTIAL):
    return make_ctx(ActionType.UploadFileDropbox, content=CONTENT, config=config, credential=credential)


def uploaded(path: str, rev: str = "015f1a2b3c") -> Reply:
    return Reply(
        body={
            "name": path.rsplit("/", 1)[-1],
            "path_display": path,
            "rev": rev,
            "size": len(CONTENT.encode()),
        }
    )


async def test_refreshes_the_token_and_uploads(dropbox: HttpsPeer, dropbox_deps: ActionDeps) -> None:
    dropbox.reply("POST", UPLOAD, uploaded("/Reports/Station 7/Rapport été.txt"))
    config = {"targetPath": "/Reports/Station 7", "filename": "Rapport été.txt"}

    result = await upload_dropbox(dropbox_ctx(config), dropbox_deps)

    [token_request] = dropbox.requests_to("POST", TOKEN)
    assert (
        token_request.headers["authorization"]
        == "Basic " + base64.b64encode(b"dbx-app-key:dbx-app-secret").decode()
    )
    form = {k: v[0] for k, v in parse_qs(token_request.body.decode()).items()}
    assert form == {"grant_type": "refresh_token", "refresh_token": "dbx-refresh-token"}

    [upload] = dropbox.requests_to("POST", UPLOAD)
    assert upload.headers["authorization"] == "Bearer sl.short-lived"
    assert upload.headers["content-type"] == "application/octet-stream"
    arg_header = upload.headers["dropbox-api-arg"]
    assert arg_header.isascii()
    assert json.loads(arg_header) == {
        "path": "/Reports/Station 7/Rapport été.txt",
        "mode": "add",
        "autorename": False,
    }
    assert upload.body == CONTENT.encode()
    size = len(CONTENT.encode())
    assert (
        result.message
        == f"Dropbox upload: /Reports/Station 7/Rapport été.txt (rev: 015f1a2b3c, {size} bytes)"
    )


async def test_default_filename_at_the_root(dropbox: HttpsPeer, dropbox_deps: ActionDeps) -> None:
    await upload_dropbox(dropbox_ctx({}), dropbox_deps)

    arg = json.loads(dropbox.requests_to("POST", UPLOAD)[0].headers["dropbox-api-arg"])
    assert re.fullmatch(r"/workflow_20\d{12}\.txt", arg["path"])


async def test_overwrite_mode_is_sent(dropbox: HttpsPeer, dropbox_deps: ActionDeps) -> None:
    dropbox.reply("POST", UPLOAD, uploaded("/log.txt"))

    await upload_dropbox(dropbox_ctx({"filename": "log.txt", "writeMode": "overwrite"}), dropbox_deps)

    arg = json.loads(dropbox.requests_to("POST", UPLOAD)[0].headers["dropbox-api-arg"])
    assert arg["mode"] == "overwrite"


async def test_conflict_in_add_mode_is_permanent(dropbox: HttpsPeer, dropbox_deps: ActionDeps) -> None:
    conflict = {
        "error_summary": "path/conflict/file/..",
        "error": {".tag": "path", "reason": {".tag": "conflict", "conflict": {".tag": "file"}}},
    }
    dropbox.reply("POST", UPLOAD, Reply(status=409, body=conflict))

    with pytest.raises(ActionError) as caught:
        await upload_dropbox(dropbox_ctx({"targetPath": "/logs", "filename": "log.txt"}), dropbox_deps)

    assert caught.value.permanent
    assert "/logs/log.txt already exists" in caught.value.message


async def test_revoked_refresh_token_is_permanent(dropbox: HttpsPeer, dropbox_deps: ActionDeps) -> None:
    dropbox.reply(
        "POST",
        TOKEN,
        Reply(
            status=400,
            body={"error": "invalid_grant", "error_description": "refresh token is invalid or revoked"},
        ),
    )

    with pytest.raises(ActionError) as caught:
        await upload_dropbox(dropbox_ctx({"filename": "x.txt"}), dropbox_deps)

    assert caught.value.permanent
    assert "revoked" in caught.value.message
    assert "dbx-refresh-token" not in caught.value.message
    assert dropbox.requests_to("POST", UPLOAD) == []


async def test_rate_limit_is_transient_with_the_servers_hint(
    dropbox: HttpsPeer, dropbox_deps: ActionDeps
) -> None:
    dropbox.reply(
        "POST",
        UPLOAD,
        Reply(
            status=429, body={"error_summary": "too_many_write_operations/"}, headers={"Retry-After": "12"}
        ),
    )

    with pytest.raises(ActionError) as caught:
        await upload_dropbox(dropbox_ctx({"filename": "x.txt"}), dropbox_deps)

    assert not caught.value.permanent
    assert caught.value.retry_after == 12


async def test_server_down_is_transient(deps: ActionDeps) -> None:
    down = at_base_url(deps, f"https://localhost:{unused_port()}", *DROPBOX_URLS)

    with pytest.raises(ActionError) as caught:
        await upload_dropbox(dropbox_ctx({}), down)

    assert not caught.value.permanent


@pytest.mark.parametrize(
    ("target", "filename"), [("/", "../escaped.txt"), ("/a/../..", "x.txt"), ("/", "a\x00.txt")]
)
async def test_path_escape_is_refused(
    dropbox: HttpsPeer, dropbox_deps: ActionDeps, target: str, filename: str
) -> None:
    with pytest.raises(ActionError) as caught:
        await upload_dropbox(dropbox_ctx({"targetPath": target, "filename": filename}), dropbox_deps)

    assert caught.value.permanent
    assert dropbox.requests == []


async def test_loopback_is_refused_without_an_allowance(
    dropbox: HttpsPeer, dropbox_deps: ActionDeps, strict_deps: ActionDeps
) -> None:
    with pytest.raises(ActionError) as caught:
        await upload_dropbox(
            dropbox_ctx({}), dataclasses.replace(strict_deps, settings=dropbox_deps.settings)
        )

    assert caught.value.permanent
    assert dropbox.requests == []
