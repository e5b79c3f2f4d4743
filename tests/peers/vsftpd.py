"""Debian's vsftpd on loopback: the real peer for UploadFileFtp, beside the aioftp one in ``ftp_server.py``.

The configuration is generated (``/etc/vsftpd.conf`` is not read): local logins of the tests'
account (``daemon.py``) chrooted to ``root`` whose writable folder is ``upload/``, passive mode on
127.0.0.1 only, and with ``tls`` explicit FTPS required for the login and every data connection
(``force_local_logins_ssl`` / ``force_local_data_ssl``, TLS session reuse required as vsftpd's
default ``require_ssl_reuse`` asks), with a certificate from the session's local CA.

PAM: the service name is one no file in /etc/pam.d describes, so PAM's ``other`` stack (pam_unix)
checks the password; Debian's ``vsftpd`` stack would also demand a login shell (pam_shells).
"""

from __future__ import annotations

from pathlib import Path

from tests.peers.daemon import Daemon, LocalUser, make_chroot
from tests.peers.peer import credential_data
from tests.peers.tls import LocalCA
from wf.procs import free_port

VSFTPD = "/usr/sbin/vsftpd"


class VsftpdPeer:
    def __init__(self, home: Path, root: Path, user: LocalUser, *, tls: LocalCA | None = None) -> None:
        self.home = home
        self.root = root
        self.user = user
        self.tls = tls
        self.port = free_port()
        self.upload = make_chroot(root, user)
        self._daemon = Daemon([VSFTPD, str(home / "vsftpd.conf")], port=self.port, log=home / "vsftpd.log")

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        empty = self.home / "empty"  # vsftpd chroots its unprivileged helper into an empty folder
        empty.mkdir(mode=0o755, exist_ok=True)
        pasv = free_port()
        lines = [
            "listen=YES",
            "listen_ipv6=NO",
            "listen_address=127.0.0.1",
            f"listen_port={self.port}",
            "background=NO",
            "anonymous_enable=NO",
            "local_enable=YES",
            "write_enable=YES",
            "local_umask=022",
            "chroot_local_user=YES",
            f"local_root={self.root}",
            f"secure_chroot_dir={empty}",
            "pam_service_name=wf-files-test",
            "pasv_enable=YES",
            "pasv_address=127.0.0.1",
            f"pasv_min_port={pasv}",
            f"pasv_max_port={pasv + 20}",
            "port_enable=NO",
            "connect_from_port_20=NO",
            # Containers refuse the namespaces and syscall filter vsftpd isolates its sessions with.
            "seccomp_sandbox=NO",
            "isolate=NO",
            "isolate_network=NO",
            "xferlog_enable=YES",
            f"vsftpd_log_file={self.home / 'transfers.log'}",
            "log_ftp_protocol=YES",
            "dual_log_enable=NO",
            "syslog_enable=NO",
            "delay_failed_login=0",
        ]
        if self.tls is not None:
            cert = self.home / "cert.pem"
            key = self.home / "key.pem"
            issued = self.tls.ca.issue_cert("localhost", "127.0.0.1")
            issued.cert_chain_pems[0].write_to_path(str(cert))
            issued.private_key_pem.write_to_path(str(key))
            key.chmod(0o600)
            lines += [
                "ssl_enable=YES",
                f"rsa_cert_file={cert}",
                f"rsa_private_key_file={key}",
                "force_local_logins_ssl=YES",
                "force_local_data_ssl=YES",
                "ssl_tlsv1=NO",
                "ssl_sslv2=NO",
                "ssl_sslv3=NO",
                "require_ssl_reuse=YES",
            ]
        (self.home / "vsftpd.conf").write_text("\n".join(lines) + "\n")
        self._daemon.start()

    def stop(self) -> None:
        self._daemon.stop()

    def log(self) -> str:
        transfers = self.home / "transfers.log"
        return self._daemon.output() + (
            transfers.read_text(errors="replace")[-4000:] if transfers.exists() else ""
        )

    def credential(self, **overrides: object) -> dict[str, object]:
        """Ftp credential data for this server (passive, explicit TLS when the server has it)."""
        tls = "explicit" if self.tls is not None else "none"
        defaults: dict[str, object] = {"host": "localhost", "port": self.port, "passive": True, "tls": tls}
        return credential_data(
            {**defaults, "username": self.user.name, "password": self.user.password}, overrides
        )
