"""What UploadFileFtp and UploadFileSftp do alike: against the aioftp and asyncssh servers on loopback
(paths that would leave the server's folder, a server that is down, loopback without an allowance),
and as workflow steps run by the session's executor against Debian's vsftpd and OpenSSH server (the
rendered file on the server's disk, a wrong password, the overwrite rules)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.executor.actions.base import ActionDeps, ActionError
from services.executor.registry import ACTIONS
from shared.enums import ActionType, RunStatus
from tests.executor.conftest import Pipeline
from tests.files.conftest import files_under, make_ctx
from tests.files.steps import CONTENT, FILE, HOST, RealServer
from tests.peers.ftp_server import FtpPeer
from tests.peers.openssh import OpenSshPeer
from tests.peers.sftp_server import SftpPeer
from wf.procs import free_port

ACTION = {FtpPeer: ActionType.UploadFileFtp, SftpPeer: ActionType.UploadFileSftp}


@pytest.fixture(params=[FtpPeer, SftpPeer], ids=["ftp", "sftp"])
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FtpPeer | SftpPeer]:
    async with request.param(tmp_path / "root") as peer:
        yield peer


async def upload(
    peer: FtpPeer | SftpPeer, deps: ActionDeps, config: dict[str, Any], **credential: object
) -> None:
    action = ACTION[type(peer)]
    ctx = make_ctx(action, content="Call 2024-0042", config=config, credential=peer.credential(**credential))
    await ACTIONS[action](ctx, deps)


@pytest.mark.parametrize(
    ("remote_path", "filename"),
    [
        ("/", "../../escaped.txt"),
        ("/../..", "escaped.txt"),
        ("/x/../..", "escaped.txt"),
        ("/", "/etc/escaped.txt"),
        ("/", "a\x00b.txt"),
    ],
)
async def test_path_escapes_are_refused(
    tmp_path: Path, server: FtpPeer | SftpPeer, deps: ActionDeps, remote_path: str, filename: str
) -> None:
    with pytest.raises(ActionError) as caught:
        await upload(server, deps, {"remotePath": remote_path, "filename": filename})

    assert caught.value.permanent
    assert files_under(tmp_path) == {}


async def test_server_down_is_transient(server: FtpPeer | SftpPeer, deps: ActionDeps) -> None:
    with pytest.raises(ActionError) as caught:
        await upload(server, deps, {}, port=free_port())

    assert not caught.value.permanent


async def test_loopback_is_refused_without_an_allowance(
    server: FtpPeer | SftpPeer, strict_deps: ActionDeps
) -> None:
    with pytest.raises(ActionError) as caught:
        await upload(server, strict_deps, {"filename": "x.txt"})

    assert caught.value.permanent
    assert "egress" in caught.value.message.lower()
    assert files_under(server.root) == {}


# --- the same actions as workflow steps against vsftpd and OpenSSH's sshd ----------------------------


@pytest.fixture(params=["vsftpd", "openssh"])
def real_server(request: pytest.FixtureRequest) -> RealServer:
    return RealServer(request.getfixturevalue(request.param))


def login(server: RealServer, **overrides: object) -> dict[str, object]:
    """Password login; SFTP pins the server's fingerprint (so the result shows no "not pinned" note)."""
    if isinstance(server.peer, OpenSshPeer):
        return server.peer.credential(host=HOST, hostKey=server.peer.fingerprint, **overrides)
    return server.peer.credential(host=HOST, **overrides)


async def test_a_step_stores_the_rendered_file_in_created_folders(
    api: httpx.AsyncClient, pipeline: Pipeline, department_id: int, real_server: RealServer
) -> None:
    run, result = await real_server.run(api, pipeline, department_id, login(real_server))

    assert run["status"] == RunStatus.Completed, run["error_message"]
    assert files_under(real_server.upload) == {FILE: CONTENT.encode()}
    assert (real_server.upload / FILE).stat().st_uid == real_server.peer.user.uid
    assert result == f"{real_server.protocol} upload: {real_server.url()} ({len(CONTENT)} bytes)"


async def test_a_wrong_password_fails_the_step_for_good(
    api: httpx.AsyncClient, pipeline: Pipeline, department_id: int, real_server: RealServer
) -> None:
    user = real_server.peer.user
    credential = login(real_server, password=user.password + "x")

    run, _ = await real_server.run(api, pipeline, department_id, credential)

    assert run["status"] == RunStatus.Failed
    assert run["attempt_number"] == 1
    assert run["next_attempt_on"] is None
    refusal = {
        "FTP": f"FTP login to {HOST} failed for user {user.name!r} (530 Login incorrect.)",
        "SFTP": f"SFTP authentication to {HOST} failed for user {user.name!r}",
    }[real_server.protocol]
    assert run["error_message"] == f"Step 1 ({real_server.action.name}) failed: {refusal}"
    assert files_under(real_server.upload) == {}


async def test_overwrite_false_keeps_an_existing_file_and_true_replaces_it(
    api: httpx.AsyncClient, pipeline: Pipeline, department_id: int, real_server: RealServer
) -> None:
    existing = real_server.existing("written by the station's own system")

    kept, _ = await real_server.run(api, pipeline, department_id, login(real_server), overwrite=False)
    kept_text = existing.read_text()
    replaced, _ = await real_server.run(api, pipeline, department_id, login(real_server), overwrite=True)

    assert kept["status"] == RunStatus.Failed
    assert kept["error_message"] == (
        f"Step 1 ({real_server.action.name}) failed: {real_server.protocol} upload refused: "
        f"{real_server.url()} already exists and overwrite is false"
    )
    assert kept_text == "written by the station's own system"
    assert replaced["status"] == RunStatus.Completed, replaced["error_message"]
    assert existing.read_text() == CONTENT
