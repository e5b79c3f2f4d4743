"""UploadFileFtp against a real aioftp server on loopback (plain and explicit TLS)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from services.executor.actions.base import ActionDeps, ActionError
from services.executor.registry import ACTIONS
from shared.enums import ActionType
from tests.files.conftest import files_under, make_ctx
from tests.peers.ftp_server import FtpPeer
from tests.peers.tls import LocalCA

upload_ftp = ACTIONS[ActionType.UploadFileFtp]

CONTENT = "Call 2024-0042: Structure fire — 12 Main St ✓\n"


@pytest.fixture
async def ftp(tmp_path: Path):
    async with FtpPeer(tmp_path / "root") as peer:
        yield peer


def ftp_ctx(peer: FtpPeer, config: Mapping[str, Any], content: str = CONTENT, **credential: object):
    return make_ctx(
        ActionType.UploadFileFtp, content=content, config=config, credential=peer.credential(**credential)
    )


async def test_uploads_the_content_into_created_folders(ftp: FtpPeer, deps: ActionDeps) -> None:
    ctx = ftp_ctx(ftp, {"remotePath": "/incoming/station-7", "filename": "call-2024-0042.txt"})

    result = await upload_ftp(ctx, deps)

    assert files_under(ftp.root) == {"incoming/station-7/call-2024-0042.txt": CONTENT.encode()}
    size = len(CONTENT.encode())
    assert (
        result.message
        == f"FTP upload: ftp://localhost:{ftp.port}/incoming/station-7/call-2024-0042.txt ({size} bytes)"
    )


async def test_default_filename_is_dated_in_utc(ftp: FtpPeer, deps: ActionDeps) -> None:
    await upload_ftp(ftp_ctx(ftp, {}), deps)

    [name] = files_under(ftp.root)
    assert re.fullmatch(r"workflow_20\d{12}\.txt", name)


async def test_overwrite_true_replaces_an_existing_file(ftp: FtpPeer, deps: ActionDeps) -> None:
    (ftp.root / "log.txt").write_text("old contents that are longer than the new ones")

    await upload_ftp(ftp_ctx(ftp, {"filename": "log.txt", "overwrite": True}, content="new"), deps)

    assert (ftp.root / "log.txt").read_text() == "new"


async def test_overwrite_false_refuses_an_existing_file(ftp: FtpPeer, deps: ActionDeps) -> None:
    (ftp.root / "reports").mkdir()
    (ftp.root / "reports" / "log.txt").write_text("keep me")

    with pytest.raises(ActionError) as caught:
        await upload_ftp(
            ftp_ctx(ftp, {"remotePath": "/reports", "filename": "log.txt", "overwrite": False}), deps
        )

    assert caught.value.permanent
    assert "/reports/log.txt already exists" in caught.value.message
    assert (ftp.root / "reports" / "log.txt").read_text() == "keep me"


async def test_overwrite_false_writes_a_new_file(ftp: FtpPeer, deps: ActionDeps) -> None:
    await upload_ftp(ftp_ctx(ftp, {"filename": "fresh.txt", "overwrite": False}), deps)

    assert (ftp.root / "fresh.txt").read_bytes() == CONTENT.encode()


async def test_wrong_password_is_permanent(ftp: FtpPeer, deps: ActionDeps) -> None:
    with pytest.raises(ActionError) as caught:
        await upload_ftp(ftp_ctx(ftp, {"filename": "x.txt"}, password="wrong"), deps)

    assert caught.value.permanent
    assert "login" in caught.value.message
    assert "uploader" in caught.value.message
    assert files_under(ftp.root) == {}


async def test_pasv_reply_address_is_ignored(tmp_path: Path, deps: ActionDeps) -> None:
    # A server (or a man in the middle) naming another host in PASV must not steer the data
    # connection: it has to go to the address the egress guard checked. 127.0.0.2 refuses.
    async with FtpPeer(tmp_path / "root", epsv=False, pasv_address="127.0.0.2") as peer:
        await upload_ftp(ftp_ctx(peer, {"filename": "pasv.txt"}), deps)

        assert (peer.root / "pasv.txt").read_bytes() == CONTENT.encode()


async def test_active_mode_is_refused_clearly(ftp: FtpPeer, deps: ActionDeps) -> None:
    with pytest.raises(ActionError) as caught:
        await upload_ftp(ftp_ctx(ftp, {}, passive=False), deps)

    assert caught.value.permanent
    assert "passive" in caught.value.message


class TestExplicitTls:
    async def test_uploads_over_auth_tls(self, tmp_path: Path, local_ca: LocalCA, deps: ActionDeps) -> None:
        context = local_ca.server_context("localhost")
        async with FtpPeer(tmp_path / "root", tls_context=context, require_tls=True) as peer:
            result = await upload_ftp(ftp_ctx(peer, {"filename": "secure.txt"}, tls="explicit"), deps)

            assert (peer.root / "secure.txt").read_bytes() == CONTENT.encode()
            assert result.message.endswith("explicit TLS)")

    async def test_plain_login_is_refused_by_a_tls_only_server(
        self, tmp_path: Path, local_ca: LocalCA, deps: ActionDeps
    ) -> None:
        context = local_ca.server_context("localhost")
        async with FtpPeer(tmp_path / "root", tls_context=context, require_tls=True) as peer:
            with pytest.raises(ActionError) as caught:
                await upload_ftp(ftp_ctx(peer, {"filename": "x.txt"}), deps)

            assert caught.value.permanent

    async def test_certificate_for_another_host_is_refused(
        self, tmp_path: Path, local_ca: LocalCA, deps: ActionDeps
    ) -> None:
        context = local_ca.server_context("files.example.org")
        async with FtpPeer(tmp_path / "root", tls_context=context, require_tls=True) as peer:
            with pytest.raises(ActionError) as caught:
                await upload_ftp(ftp_ctx(peer, {"filename": "x.txt"}, tls="explicit"), deps)

            assert caught.value.permanent
            assert "certificate" in caught.value.message
            assert files_under(peer.root) == {}

    async def test_server_without_auth_tls_is_permanent(self, ftp: FtpPeer, deps: ActionDeps) -> None:
        with pytest.raises(ActionError) as caught:
            await upload_ftp(ftp_ctx(ftp, {"filename": "x.txt"}, tls="explicit"), deps)

        assert caught.value.permanent
        assert "AUTH TLS" in caught.value.message
