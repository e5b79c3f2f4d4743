"""What the OpenSSH and vsftpd peers share: a local login for the tests and a daemon run as a child.

Both daemons authenticate a real system account (sshd reads /etc/shadow, vsftpd asks PAM). Each
session creates an account of its own (``wf-files-<pid>``) with a random password and removes it at
the end, so sessions side by side never share a password; root is needed for that, which CI has
(``.ci/run``). The account has no shell (``/usr/sbin/nologin``) and each daemon confines it to a
chroot whose one writable folder is ``upload/``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from wf.procs import pid_alive, port_open

USER_PREFIX = "wf-files-"
START_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class LocalUser:
    name: str
    password: str
    uid: int
    gid: int
    home: Path  # root's: the daemons' chroots are made in it


def missing(*programs: str) -> str | None:
    """Why the real-daemon tests cannot run here (None when they can)."""
    absent = [p for p in programs if not Path(p).exists()]
    if absent:
        return f"{', '.join(absent)} not installed (apt-get install openssh-server vsftpd; .ci/run does)"
    if os.geteuid() != 0:
        return "the real-daemon tests create a local account and run the daemons: they need root"
    return None


def _account_tool(*command: str, stdin: str | None = None) -> None:
    """useradd, chpasswd, userdel: retried while another session holds the lock on /etc/passwd."""
    for attempt in range(20):
        done = subprocess.run(list(command), input=stdin, capture_output=True, text=True)
        if done.returncode == 0 or "lock" not in done.stderr:
            break
        time.sleep(0.1 * (attempt + 1))
    if done.returncode != 0 and command[0] != "userdel":
        raise RuntimeError(f"{' '.join(command[:2])}... failed: {done.stderr.strip()}")


def create_user(home: Path) -> LocalUser:
    """An account of this session's (``wf-files-<pid>``, so sessions side by side never share a
    password), with a random password and ``home`` (root's, where the daemons' chroots live).
    Accounts left by sessions that were killed are removed first."""
    accounts = subprocess.run(["getent", "passwd"], capture_output=True, text=True, check=True).stdout
    for line in accounts.splitlines():
        name = line.split(":", 1)[0]
        pid = name.removeprefix(USER_PREFIX)
        if name.startswith(USER_PREFIX) and pid.isdigit() and not pid_alive(int(pid)):
            _account_tool("userdel", name)
    name = f"{USER_PREFIX}{os.getpid()}"
    home.mkdir(parents=True, exist_ok=True)
    _account_tool("userdel", name)  # a pid reused after a crash
    _account_tool(
        "useradd",
        "--system",
        "--no-create-home",
        "--home-dir",
        str(home),
        "--shell",
        "/usr/sbin/nologin",
        name,
    )
    # Spaces and punctuation: a password is sent exactly as stored.
    password = f"{secrets.token_urlsafe(12)} #{secrets.token_hex(4)}"
    _account_tool("chpasswd", stdin=f"{name}:{password}\n")
    entry = subprocess.run(["getent", "passwd", name], capture_output=True, text=True, check=True).stdout
    uid, gid = (int(part) for part in entry.split(":")[2:4])
    return LocalUser(name, password, uid, gid, home)


def remove_user(user: LocalUser) -> None:
    _account_tool("userdel", user.name)


def make_chroot(root: Path, user: LocalUser) -> Path:
    """``root`` owned by root and closed to others (both daemons insist), ``root/upload`` the user's."""
    root.mkdir(parents=True, exist_ok=True)
    os.chown(root, 0, 0)
    root.chmod(0o755)
    upload = root / "upload"
    upload.mkdir(exist_ok=True)
    os.chown(upload, user.uid, user.gid)
    return upload


def clear(folder: Path) -> None:
    """Empty a folder the daemon writes into, keeping the folder itself (its owner and mode)."""
    for child in folder.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


class Daemon:
    """A daemon in the foreground as a child process, its output in ``log``; ready once it listens."""

    def __init__(self, command: list[str], *, port: int, log: Path) -> None:
        self.command = command
        self.port = port
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not port_open("127.0.0.1", self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.command[0]} did not start:\n{self.output()}")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""
