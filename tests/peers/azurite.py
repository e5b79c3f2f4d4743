"""Azurite's Blob service (Microsoft's Azure Storage emulator) on loopback, optionally over HTTPS.

Azurite is a Node.js program pinned in ``tools/azurite``; install it with
``npm ci --prefix tools/azurite``. When it is missing the peer fails with that instruction
instead of letting tests skip silently.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.peers.listener import StartedPeer, unused_port
from tests.peers.tls import LocalCA

REPO_ROOT = Path(__file__).resolve().parents[2]
AZURITE_BLOB = REPO_ROOT / "tools" / "azurite" / "node_modules" / ".bin" / "azurite-blob"
INSTALL_HINT = (
    "Azurite is not installed: run `npm ci --prefix tools/azurite` in the repository root (needs Node.js)"
)

# Azurite's well-known development account (public, documented by Microsoft).
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class AzuritePeer(StartedPeer):
    """``azurite-blob`` on 127.0.0.1 with its data in ``location``; URLs use the host name "localhost"."""

    def __init__(self, location: Path, *, ca: LocalCA | None = None, startup_timeout: float = 30.0) -> None:
        self.location = location
        self.port = 0
        self._ca = ca
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def scheme(self) -> str:
        return "https" if self._ca is not None else "http"

    @property
    def account_url(self) -> str:
        return f"{self.scheme}://localhost:{self.port}/{ACCOUNT_NAME}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol={self.scheme};AccountName={ACCOUNT_NAME};"
            f"AccountKey={ACCOUNT_KEY};BlobEndpoint={self.account_url};"
        )

    def start(self) -> None:
        if not os.access(AZURITE_BLOB, os.X_OK):
            raise RuntimeError(INSTALL_HINT)
        self.location.mkdir(parents=True, exist_ok=True)
        self.port = unused_port()
        command = [
            str(AZURITE_BLOB),
            "--blobHost", "127.0.0.1",
            "--blobPort", str(self.port),
            "--location", str(self.location),
            "--silent",
            "--skipApiVersionCheck",
            "--loose",
            "--disableTelemetry",
        ]  # fmt: skip
        if self._ca is not None:
            cert = self.location / "azurite-cert.pem"
            key = self.location / "azurite-key.pem"
            issued = self._ca.ca.issue_cert("localhost", "127.0.0.1")
            issued.cert_chain_pems[0].write_to_path(str(cert))
            issued.private_key_pem.write_to_path(str(key))
            command += ["--cert", str(cert), "--key", str(key)]
        # A file, not a pipe: nobody reads the pipe while tests run, and a full one would block Node.
        with (self.location / "azurite.log").open("wb") as log:
            self._process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # so stop() can end Node and anything it spawned
            )
        self._wait_until_listening()

    def _wait_until_listening(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                output = (self.location / "azurite.log").read_text(errors="replace")
                raise RuntimeError(f"Azurite exited with code {self._process.returncode}: {output[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"Azurite did not listen on 127.0.0.1:{self.port} within {self._startup_timeout:g} s"
        )

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
