"""UploadFileSftp against a real asyncssh SFTP server on loopback."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from services.executor.actions.base import ActionDeps, ActionError
from services.executor.registry import ACTIONS
from shared.enums import ActionType
from tests.files.conftest import files_under, make_ctx
from tests.peers.sftp_server import SftpPeer

upload_sftp = ACTIONS[ActionType.UploadFileSftp]

CONTENT = "Unit E12 status: Available — Station 3 ✓\n"


@pytest.fixture(scope="module")
def client_key() -> asyncssh.SSHKey:
    return asyncssh.generate_private_key("ssh-ed25519")


@pytest.fixture
async def sftp(tmp_path: Path, client_key: asyncssh.SSHKey):
    async with SftpPeer(tmp_path / "root", authorized_keys=[client_key]) as peer:
        yield peer


def sftp_ctx(peer: SftpPeer, config: Mapping[str, Any], content: str = CONTENT, **credential: object):
    return make_ctx(
        ActionType.UploadFileSftp, content=content, config=config, credential=peer.credential(**credential)
    )


async def test_uploads_into_created_folders_and_shows_the_unpinned_key(
    sftp: SftpPeer, deps: ActionDeps
) -> None:
    result = await upload_sftp(
        sftp_ctx(sftp, {"remotePath": "/drop/calls", "filename": "2024/0042.txt"}), deps
    )

    assert files_under(sftp.root) == {"drop/calls/2024/0042.txt": CONTENT.encode()}
    size = len(CONTENT.encode())
    assert result.message == (
        f"SFTP upload: sftp://localhost:{sftp.port}/drop/calls/2024/0042.txt ({size} bytes); "
        f"host key not pinned — server presented {sftp.fingerprint} (ssh-ed25519)"
    )


async def test_default_filename_is_dated_in_utc(sftp: SftpPeer, deps: ActionDeps) -> None:
    await upload_sftp(sftp_ctx(sftp, {"remotePath": "/"}), deps)

    [name] = files_under(sftp.root)
    assert re.fullmatch(r"workflow_20\d{12}\.txt", name)


class TestHostKeyPinning:
    async def test_pinned_public_key_line_is_accepted(self, sftp: SftpPeer, deps: ActionDeps) -> None:
        result = await upload_sftp(sftp_ctx(sftp, {"filename": "a.txt"}, hostKey=sftp.host_key_line), deps)

        assert (sftp.root / "a.txt").read_bytes() == CONTENT.encode()
        assert "not pinned" not in result.message

    async def test_pinned_fingerprint_is_accepted(self, sftp: SftpPeer, deps: ActionDeps) -> None:
        await upload_sftp(sftp_ctx(sftp, {"filename": "b.txt"}, hostKey=sftp.fingerprint), deps)

        assert (sftp.root / "b.txt").read_bytes() == CONTENT.encode()

    @pytest.mark.parametrize("form", ["line", "fingerprint"])
    async def test_wrong_pin_refuses_and_uploads_nothing(
        self, sftp: SftpPeer, deps: ActionDeps, form: str
    ) -> None:
        other = asyncssh.generate_private_key("ssh-ed25519")
        pin = (
            other.export_public_key("openssh").decode() if form == "line" else other.get_fingerprint("sha256")
        )

        with pytest.raises(ActionError) as caught:
            await upload_sftp(sftp_ctx(sftp, {"filename": "c.txt"}, hostKey=pin), deps)

        assert caught.value.permanent
        message = caught.value.message
        assert "mismatch" in message
        assert sftp.fingerprint in message
        assert sftp.host_key_line in message
        assert other.get_fingerprint("sha256") in message
        assert files_under(sftp.root) == {}

    async def test_unreadable_pin_is_a_permanent_error(self, sftp: SftpPeer, deps: ActionDeps) -> None:
        with pytest.raises(ActionError) as caught:
            await upload_sftp(sftp_ctx(sftp, {}, hostKey="SHA256:not-a-fingerprint"), deps)

        assert caught.value.permanent


# Few bcrypt rounds keep the encrypted-key tests fast; the library warns about exactly that.
@pytest.mark.filterwarnings("ignore:.*bcrypt.kdf")
class TestAuthentication:
    async def test_private_key_with_passphrase(
        self, sftp: SftpPeer, deps: ActionDeps, client_key: asyncssh.SSHKey
    ) -> None:
        pem = client_key.export_private_key("openssh", passphrase="open sesame", rounds=4).decode()

        await upload_sftp(
            sftp_ctx(
                sftp, {"filename": "k.txt"}, password=None, privateKey=pem, privateKeyPassphrase="open sesame"
            ),
            deps,
        )

        assert (sftp.root / "k.txt").read_bytes() == CONTENT.encode()

    async def test_pkcs8_pem_private_key(
        self, sftp: SftpPeer, deps: ActionDeps, client_key: asyncssh.SSHKey
    ) -> None:
        pem = client_key.export_private_key("pkcs8-pem").decode()

        await upload_sftp(sftp_ctx(sftp, {"filename": "p.txt"}, password=None, privateKey=pem), deps)

        assert (sftp.root / "p.txt").exists()

    async def test_wrong_passphrase_is_permanent(
        self, sftp: SftpPeer, deps: ActionDeps, client_key: asyncssh.SSHKey
    ) -> None:
        pem = client_key.export_private_key("openssh", passphrase="open sesame", rounds=4).decode()

        with pytest.raises(ActionError) as caught:
            await upload_sftp(
                sftp_ctx(sftp, {}, password=None, privateKey=pem, privateKeyPassphrase="wrong"), deps
            )

        assert caught.value.permanent
        assert "passphrase" in caught.value.message.lower()

    async def test_wrong_password_is_permanent(self, sftp: SftpPeer, deps: ActionDeps) -> None:
        with pytest.raises(ActionError) as caught:
            await upload_sftp(sftp_ctx(sftp, {"filename": "x.txt"}, password="wrong"), deps)

        assert caught.value.permanent
        assert "authentication" in caught.value.message
        assert files_under(sftp.root) == {}

    async def test_unauthorized_key_is_permanent(self, sftp: SftpPeer, deps: ActionDeps) -> None:
        stranger = asyncssh.generate_private_key("ssh-ed25519").export_private_key("openssh").decode()

        with pytest.raises(ActionError) as caught:
            await upload_sftp(sftp_ctx(sftp, {}, password=None, privateKey=stranger), deps)

        assert caught.value.permanent


class TestOverwrite:
    async def test_true_replaces(self, sftp: SftpPeer, deps: ActionDeps) -> None:
        (sftp.root / "log.txt").write_text("old and longer contents")

        await upload_sftp(sftp_ctx(sftp, {"filename": "log.txt"}, content="new"), deps)

        assert (sftp.root / "log.txt").read_text() == "new"

    async def test_false_refuses_an_existing_file(self, sftp: SftpPeer, deps: ActionDeps) -> None:
        (sftp.root / "log.txt").write_text("keep me")

        with pytest.raises(ActionError) as caught:
            await upload_sftp(sftp_ctx(sftp, {"filename": "log.txt", "overwrite": False}), deps)

        assert caught.value.permanent
        assert "/log.txt already exists" in caught.value.message
        assert (sftp.root / "log.txt").read_text() == "keep me"

    async def test_false_writes_a_new_file(self, sftp: SftpPeer, deps: ActionDeps) -> None:
        await upload_sftp(sftp_ctx(sftp, {"filename": "new.txt", "overwrite": False}), deps)

        assert (sftp.root / "new.txt").read_bytes() == CONTENT.encode()


async def test_credential_without_password_or_key_is_permanent(sftp: SftpPeer, deps: ActionDeps) -> None:
    with pytest.raises(ActionError) as caught:
        await upload_sftp(sftp_ctx(sftp, {}, password=None), deps)

    assert caught.value.permanent
