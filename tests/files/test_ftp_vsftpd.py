"""UploadFileFtp steps run by the executor against Debian's vsftpd requiring explicit TLS (AUTH TLS)
for the login and every data connection. What both protocols do alike is in test_file_transfer.py."""

from __future__ import annotations

import httpx
import pytest

from shared.enums import RunStatus
from tests.executor.conftest import Pipeline
from tests.files.conftest import files_under
from tests.files.steps import CONTENT, FILE, HOST, RealServer
from tests.peers.vsftpd import VsftpdPeer


@pytest.fixture
def server(vsftpd_tls: VsftpdPeer) -> RealServer:
    return RealServer(vsftpd_tls)


async def test_explicit_tls_protects_the_login_and_the_data_connections(
    api: httpx.AsyncClient, pipeline: Pipeline, department_id: int, server: RealServer, vsftpd_tls: VsftpdPeer
) -> None:
    # vsftpd requires each data connection to resume the control connection's TLS session and
    # accepts it only once STOR (or LIST) is sent; overwrite false adds a LIST, as vsftpd has no MLST.
    run, result = await server.run(
        api, pipeline, department_id, vsftpd_tls.credential(host=HOST), overwrite=False
    )

    assert run["status"] == RunStatus.Completed, run["error_message"]
    assert files_under(vsftpd_tls.upload) == {FILE: CONTENT.encode()}
    assert result == f"FTP upload: {server.url()} ({len(CONTENT)} bytes, explicit TLS)"


async def test_a_plain_login_to_a_server_requiring_tls_fails_clearly(
    api: httpx.AsyncClient, pipeline: Pipeline, department_id: int, server: RealServer, vsftpd_tls: VsftpdPeer
) -> None:
    credential = vsftpd_tls.credential(host=HOST, tls="none")

    run, _ = await server.run(api, pipeline, department_id, credential)

    assert run["status"] == RunStatus.Failed
    assert run["error_message"] == (
        f"Step 1 (UploadFileFtp) failed: FTP login to {HOST} failed for user {vsftpd_tls.user.name!r} "
        "(530 Non-anonymous sessions must use encryption.)"
    )
    assert files_under(vsftpd_tls.upload) == {}
