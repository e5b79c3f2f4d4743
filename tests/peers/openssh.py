"""Debian's OpenSSH server (``/usr/sbin/sshd``) on loopback, serving SFTP only: the real peer for
UploadFileSftp, beside the asyncssh one in ``sftp_server.py``.

The configuration is generated (nothing of /etc/ssh is read): a fresh ed25519 host key, password
and public-key logins for the tests' account (``daemon.py``) with its authorized keys in its home,
``internal-sftp`` chrooted to ``root`` whose writable folder is ``upload/``.
"""

from __future__ import annotations

from pathlib import Path

import asyncssh

from tests.peers.daemon import Daemon, LocalUser, make_chroot
from tests.peers.peer import credential_data
from tests.peers.sftp_server import ShowsHostKey
from wf.procs import free_port

SSHD = "/usr/sbin/sshd"


class OpenSshPeer(ShowsHostKey):
    def __init__(self, home: Path, root: Path, user: LocalUser, client_key: asyncssh.SSHKey) -> None:
        self.home = home
        self.root = root
        self.user = user
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.client_key = client_key
        self.port = free_port()
        self.upload = make_chroot(root, user)
        self._daemon = Daemon(
            [SSHD, "-D", "-e", "-f", str(home / "sshd_config")], port=self.port, log=home / "sshd.log"
        )

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        host_key = self.home / "ssh_host_ed25519_key"
        self.host_key.write_private_key(str(host_key))
        host_key.chmod(0o600)
        # sshd reads it as the user: in the account's home (root's, like every folder above it).
        authorized = self.user.home / "authorized_keys"
        authorized.write_bytes(self.client_key.export_public_key("openssh"))
        (self.home / "sshd_config").write_text(
            "\n".join(
                [
                    f"ListenAddress 127.0.0.1:{self.port}",
                    f"HostKey {host_key}",
                    f"PidFile {self.home / 'sshd.pid'}",
                    "UsePAM no",
                    "PasswordAuthentication yes",
                    "KbdInteractiveAuthentication no",
                    "PubkeyAuthentication yes",
                    f"AuthorizedKeysFile {authorized}",
                    "StrictModes yes",
                    "PermitRootLogin no",
                    f"AllowUsers {self.user.name}",
                    "MaxAuthTries 3",
                    "LoginGraceTime 10",
                    "Subsystem sftp internal-sftp",
                    "ForceCommand internal-sftp",
                    f"ChrootDirectory {self.root}",
                    "AllowTcpForwarding no",
                    "X11Forwarding no",
                    "LogLevel VERBOSE",
                    "",
                ]
            )
        )
        # Debian's sshd insists on its privilege-separation folder, which a booted system creates.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self._daemon.start()

    def stop(self) -> None:
        self._daemon.stop()

    def log(self) -> str:
        return self._daemon.output()

    def credential(self, **overrides: object) -> dict[str, object]:
        """Sftp credential data for this server: password login as the tests' account, no pin."""
        login = {"username": self.user.name, "password": self.user.password}
        return credential_data({"host": "localhost", "port": self.port, **login}, overrides)
