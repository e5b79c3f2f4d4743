"""UploadFileSftp steps run by the executor against Debian's OpenSSH server (sshd, internal-sftp):
key logins and host-key pins. What both protocols do alike is in test_file_transfer.py."""

from __future__ import annotations

import asyncssh
import httpx
import pytest

from shared.enums import RunStatus
from tests.executor.conftest import Pipeline
from tests.files.conftest import files_under
from tests.files.steps import CONTENT, FILE, HOST, RealServer
from tests.peers.openssh import OpenSshPeer


@pytest.fixture
def server(openssh: OpenSshPeer) -> RealServer:
    return RealServer(openssh)


async def test_key_login_without_a_pin_shows_the_server_fingerprint(
    api: httpx.AsyncClient,
    pipeline: Pipeline,
    department_id: int,
    server: RealServer,
    openssh: OpenSshPeer,
    ssh_client_key: asyncssh.SSHKey,
) -> None:
    key = ssh_client_key.export_private_key("openssh").decode()
    credential = openssh.credential(host=HOST, password=None, privateKey=key)

    run, result = await server.run(api, pipeline, department_id, credential)

    assert run["status"] == RunStatus.Completed, run["error_message"]
    assert (openssh.upload / FILE).read_text() == CONTENT
    assert result == (
        f"SFTP upload: {server.url()} ({len(CONTENT)} bytes); "
        f"host key not pinned — server presented {openssh.fingerprint} (ssh-ed25519)"
    )


async def test_pinned_public_key_line_is_accepted(
    api: httpx.AsyncClient, pipeline: Pipeline, department_id: int, server: RealServer, openssh: OpenSshPeer
) -> None:
    credential = openssh.credential(host=HOST, hostKey=openssh.host_key_line)

    run, result = await server.run(api, pipeline, department_id, credential)

    assert run["status"] == RunStatus.Completed, run["error_message"]
    assert result == f"SFTP upload: {server.url()} ({len(CONTENT)} bytes)"


async def test_a_different_host_key_stops_before_the_password_is_sent(
    api: httpx.AsyncClient, pipeline: Pipeline, department_id: int, server: RealServer, openssh: OpenSshPeer
) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519")
    credential = openssh.credential(host=HOST, hostKey=other.export_public_key("openssh").decode())
    password_logins = f"password for {openssh.user.name}"  # sshd logs "Accepted/Failed password for"
    before = openssh.log().count(password_logins)

    run, _ = await server.run(api, pipeline, department_id, credential)

    assert run["status"] == RunStatus.Failed
    message = run["error_message"]
    assert message.startswith(f"Step 1 (UploadFileSftp) failed: SFTP host key mismatch for {HOST}: ")
    assert openssh.fingerprint in message
    assert other.get_fingerprint("sha256") in message
    assert files_under(openssh.upload) == {}
    assert openssh.log().count(password_logins) == before
