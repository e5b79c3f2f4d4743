"""A real SSH/SFTP server on loopback (asyncssh), chrooted to a temporary folder.

One user, with password and public-key authentication; a freshly generated ed25519 host key whose
OpenSSH line and SHA-256 fingerprint tests can pin.
"""

from __future__ import annotations

from pathlib import Path

import asyncssh

from tests.peers.peer import Peer, credential_data


class _Authenticator(asyncssh.SSHServer):
    def __init__(self, peer: SftpPeer) -> None:
        self._peer = peer

    def begin_auth(self, username: str) -> bool:
        return True  # always require authentication

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return username == self._peer.username and password == self._peer.password

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return username == self._peer.username and any(
            key.public_data == k.public_data for k in self._peer.authorized_keys
        )


class ShowsHostKey:
    """A server with an SSH host key, shown the ways a credential's ``hostKey`` pins it."""

    host_key: asyncssh.SSHKey

    @property
    def host_key_line(self) -> str:
        """The host key as an OpenSSH public key line ("ssh-ed25519 AAAA...")."""
        return self.host_key.export_public_key("openssh").decode().strip()

    @property
    def fingerprint(self) -> str:
        return str(self.host_key.get_fingerprint("sha256"))


class SftpPeer(ShowsHostKey, Peer):
    """An SFTP server on 127.0.0.1 whose root ("/") is the folder ``root``."""

    def __init__(
        self,
        root: Path,
        *,
        username: str = "uploader",
        password: str = "s3cret pass",
        authorized_keys: list[asyncssh.SSHKey] | None = None,
        host_key: asyncssh.SSHKey | None = None,
    ) -> None:
        self.root = root
        self.username = username
        self.password = password
        self.authorized_keys = list(authorized_keys or [])
        self.host_key = host_key or asyncssh.generate_private_key("ssh-ed25519")
        self.port = 0
        self._acceptor: asyncssh.SSHAcceptor | None = None

    async def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        root = str(self.root)
        self._acceptor = await asyncssh.listen(
            "127.0.0.1",
            0,
            server_host_keys=[self.host_key],
            server_factory=lambda: _Authenticator(self),
            sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=root.encode()),
            allow_scp=False,
            config=None,
        )
        self.port = self._acceptor.get_port()

    async def stop(self) -> None:
        if self._acceptor is not None:
            self._acceptor.close()
            await self._acceptor.wait_closed()
            self._acceptor = None

    def credential(self, **overrides: object) -> dict[str, object]:
        """Canonical Sftp credential data for this server (password auth, host "localhost", no pin)."""
        login = {"username": self.username, "password": self.password}
        return credential_data({"host": "localhost", "port": self.port, **login}, overrides)
