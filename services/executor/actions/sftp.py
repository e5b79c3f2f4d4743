"""UploadFileSftp: store the rendered content as a file over SFTP (asyncssh).

* The TCP connection is made by the egress guard to the address it checked (``connect_socket``);
  asyncssh only runs the SSH protocol over that socket.
* Authentication: password, private key (PEM or OpenSSH text, ``privateKeyPassphrase`` when it
  is encrypted), or both (key first, then password). Nothing from ``~/.ssh`` or an agent is used.
* Host-key verification happens during the key exchange, before any password is sent. With a
  ``hostKey`` pin (an OpenSSH public key line or a ``SHA256:`` fingerprint) a different key fails
  the step permanently, naming the key seen and the one expected. Without a pin the upload goes
  ahead and the result shows the fingerprint the server presented, so the user can pin it.
* ``overwrite: false`` opens the file with O_EXCL (SFTP ``CREAT|EXCL``), so an existing file is
  never replaced, even one created a moment before; the error names the file.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncssh

from services.executor.actions.base import (
    ActionContext,
    ActionDeps,
    ActionError,
    ActionResult,
    permanent,
    transient,
)
from services.executor.actions.config_readers import (
    flag_value,
    port_value,
    required_text,
    secret_value,
    text_value,
)
from services.executor.actions.http_requests import blocked_error
from services.executor.egress import EgressBlocked
from shared.actions.file_names import RemotePath, byte_count, encode_content, join_remote_path

WHAT = "SFTP credential"
CONNECT_TIMEOUT_S = 30.0


@dataclass
class HostKeyPin:
    """What the credential's ``hostKey`` pins: a whole public key or only its SHA-256 fingerprint."""

    text: str
    key: asyncssh.SSHKey | None = None
    fingerprint: str = ""

    def matches(self, key: asyncssh.SSHKey) -> bool:
        if self.key is not None:
            return bool(key.public_data == self.key.public_data)
        return _same_fingerprint(key.get_fingerprint("sha256"), self.fingerprint)

    def describe(self) -> str:
        if self.key is not None:
            return f"{self.key.get_fingerprint('sha256')} ({self.key.get_algorithm()})"
        return self.fingerprint


def _same_fingerprint(seen: str, pinned: str) -> bool:
    # Pins are often pasted from `ssh-keygen -l` (no padding) or from tools that keep it.
    return seen.removeprefix("SHA256:").rstrip("=") == pinned.removeprefix("SHA256:").rstrip("=")


def parse_host_key_pin(value: str | None) -> HostKeyPin | None:
    """Read a ``hostKey`` pin; an unreadable one is a permanent configuration error."""
    if not value:
        return None
    text = value.strip()
    if text.upper().startswith("SHA256:"):
        digest = text[len("SHA256:") :].rstrip("=")
        try:
            raw = base64.b64decode(digest + "=" * (-len(digest) % 4), validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            raise permanent(
                f"{WHAT} has an invalid 'hostKey' fingerprint {text[:60]!r} (expected SHA256:<base64>)"
            )
        return HostKeyPin(text=text, fingerprint="SHA256:" + digest)
    try:
        key = asyncssh.import_public_key(text)
    except (asyncssh.KeyImportError, ValueError):
        raise permanent(
            f"{WHAT} has an invalid 'hostKey': expected an OpenSSH public key line "
            "('ssh-ed25519 AAAA...') or a fingerprint ('SHA256:...')"
        ) from None
    return HostKeyPin(text=text, key=key)


@dataclass
class _HostKeyCheck:
    pin: HostKeyPin | None
    seen: list[asyncssh.SSHKey] = field(default_factory=list)


class _VerifyingClient(asyncssh.SSHClient):
    """Accepts the server's host key when it matches the pin (any key when there is none), recording it."""

    def __init__(self, check: _HostKeyCheck) -> None:
        self._check = check

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        self._check.seen.append(key)
        return self._check.pin is None or self._check.pin.matches(key)


def _describe_key(key: asyncssh.SSHKey) -> str:
    return f"{key.get_fingerprint('sha256')} ({key.get_algorithm()})"


async def _load_client_key(credential: Mapping[str, Any]) -> asyncssh.SSHKey | None:
    private_key = secret_value(credential, "privateKey", what=WHAT)
    if private_key is None:
        return None
    passphrase = secret_value(credential, "privateKeyPassphrase", what=WHAT)
    try:
        # bcrypt-protected OpenSSH keys take a CPU-bound second to decrypt: keep the loop free.
        return await asyncio.to_thread(asyncssh.import_private_key, private_key.strip() + "\n", passphrase)
    except asyncssh.KeyEncryptionError:
        raise permanent(f"{WHAT}: the privateKeyPassphrase does not decrypt the private key") from None
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise permanent(f"{WHAT}: the privateKey could not be read ({exc})") from None


def _url(host: str, port: int, target: RemotePath) -> str:
    authority = f"[{host}]" if ":" in host else host
    if port != 22:
        authority += f":{port}"
    return f"sftp://{authority}{target.path}"


async def upload_sftp(ctx: ActionContext, deps: ActionDeps) -> ActionResult:
    credential = ctx.credential
    if not credential:
        raise permanent("SFTP upload needs an SFTP credential")
    host = required_text(credential, "host", what=WHAT)
    port = port_value(credential, "port", what=WHAT, default=22)
    username = required_text(credential, "username", what=WHAT)
    password = secret_value(credential, "password", what=WHAT)
    client_key = await _load_client_key(credential)
    if password is None and client_key is None:
        raise permanent(f"{WHAT} needs a password or a privateKey")
    check = _HostKeyCheck(parse_host_key_pin(text_value(credential, "hostKey", what=WHAT)))
    target = join_remote_path(
        text_value(ctx.config, "remotePath", what="Action config", default="/"),
        text_value(ctx.config, "filename", what="Action config"),
    )
    overwrite = flag_value(ctx.config, "overwrite", what="Action config", default=True)
    data = encode_content(ctx.content)
    url = _url(host, port, target)
    timeout = deps.settings.upload_timeout_s

    try:
        sock = await deps.egress.connect_socket(host, port, timeout=min(CONNECT_TIMEOUT_S, timeout))
    except EgressBlocked as exc:
        raise blocked_error(exc, f"SFTP server {host}") from None
    except (OSError, TimeoutError) as exc:
        raise transient(f"SFTP connection to {host}:{port} failed: {type(exc).__name__}: {exc}") from None

    pinned_keys = [check.pin.key] if check.pin is not None and check.pin.key is not None else []
    stage = "connecting"
    server_key: asyncssh.SSHKey | None = None
    try:
        async with asyncio.timeout(timeout):
            async with asyncssh.connect(
                host,
                port,
                sock=sock,
                client_factory=lambda: _VerifyingClient(check),
                # An explicit (trusted keys, CA keys, revoked keys) triple: no ~/.ssh/known_hosts, and
                # keys not listed go to validate_host_public_key.
                known_hosts=(pinned_keys, [], []),
                username=username,
                password=password,
                client_keys=[client_key] if client_key is not None else None,
                agent_path=None,
                config=None,
                x509_trusted_certs=None,
                login_timeout=min(CONNECT_TIMEOUT_S, timeout),
            ) as connection:
                server_key = connection.get_server_host_key()
                stage = "starting SFTP"
                async with connection.start_sftp_client() as sftp:
                    if target.directory != "/":
                        stage = f"creating folder {target.directory}"
                        await sftp.makedirs(target.directory, exist_ok=True)
                    stage = f"uploading {target.path}"
                    async with sftp.open(target.path, "wb" if overwrite else "xb") as remote:
                        await remote.write(data)
    except BaseException as exc:
        error = _classify(
            exc, stage=stage, host=host, username=username, url=url, check=check, overwrite=overwrite
        )
        if error is None:
            raise
        raise error from None
    finally:
        sock.close()

    message = f"SFTP upload: {url} ({byte_count(len(data))})"
    if check.pin is None:
        shown = _describe_key(server_key) if server_key is not None else "an unknown key"
        fingerprint, _, algorithm = shown.partition(" ")
        message += f"; host key not pinned — server presented {fingerprint} {algorithm}".rstrip()
    return ActionResult(message)


def _classify(
    exc: BaseException,
    *,
    stage: str,
    host: str,
    username: str,
    url: str,
    check: _HostKeyCheck,
    overwrite: bool,
) -> ActionError | None:
    """Host-key mismatch, authentication and SFTP refusals are permanent; the network is transient."""
    if isinstance(exc, ActionError):
        return exc
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        if check.pin is not None and check.seen:
            seen = check.seen[-1]
            return permanent(
                f"SFTP host key mismatch for {host}: the server presented {seen.export_public_key('openssh').decode().strip()} "
                f"({_describe_key(seen)}) but the credential pins {check.pin.describe()}; nothing was uploaded"
            )
        return permanent(f"SFTP host key of {host} could not be verified: {exc.reason}")
    if isinstance(exc, asyncssh.PermissionDenied):
        return permanent(f"SFTP authentication to {host} failed for user {username!r}")
    # SFTP v3 servers report a failed exclusive create as a generic failure.
    if isinstance(exc, asyncssh.SFTPFileAlreadyExists) or (
        not overwrite and isinstance(exc, asyncssh.SFTPFailure) and stage.startswith("uploading")
    ):
        return permanent(f"SFTP upload refused: {url} already exists and overwrite is false")
    if isinstance(exc, asyncssh.SFTPConnectionLost | asyncssh.SFTPNoConnection):
        return transient(f"SFTP connection lost while {stage} ({url})")
    if isinstance(exc, asyncssh.SFTPError):
        return permanent(f"SFTP {stage} failed for {url}: {exc.reason}")
    if isinstance(exc, asyncssh.ProtocolNotSupported | asyncssh.KeyExchangeFailed):
        return permanent(f"SFTP server {host} could not agree on the SSH protocol: {exc.reason}")
    if isinstance(exc, asyncssh.ChannelOpenError):
        return permanent(f"SFTP server {host} refused the SFTP subsystem: {exc.reason}")
    if isinstance(exc, asyncssh.DisconnectError):
        return transient(f"SFTP server {host} disconnected while {stage}: {exc.reason}")
    if isinstance(exc, TimeoutError):
        return transient(f"SFTP {stage} timed out ({url})")
    if isinstance(exc, OSError | ConnectionError | EOFError):
        return transient(f"SFTP {stage} failed for {url}: {type(exc).__name__}: {exc}")
    return None
