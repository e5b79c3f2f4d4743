"""UploadFileSftp: store the rendered content as a file over SFTP (asyncssh): credential and ``perform``.

* The TCP connection is made by ``host.connect_socket`` (the egress guard) to the address it
  checked; asyncssh only runs the SSH protocol over that socket.
* Authentication: password, private key (PEM or OpenSSH text, ``privateKeyPassphrase`` when it
  is encrypted), or both (key first, then password). Nothing from ``~/.ssh`` or an agent is used.
* Host-key verification happens during the key exchange, before any password is sent. With a
  ``hostKey`` pin (an OpenSSH public key line or a ``SHA256:`` fingerprint) a different key fails
  the step permanently, naming the key seen and the one expected. Without a pin the upload goes
  ahead and the result shows the fingerprint the server presented, so the user can pin it.
* ``overwrite: false`` opens the file with O_EXCL (SFTP ``CREAT|EXCL``), so an existing file is
  never replaced, even one created a moment before; the error names the file.

asyncssh is imported when a credential with a key or pin is checked or a file is uploaded, never
when the API starts.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator

from shared.actions.file_names import byte_count
from shared.actions.file_transfer import CONNECT_TIMEOUT_S, FileTransferConfig, network_error, prepare_upload
from shared.actions.outcomes import ActionError, ActionResult, permanent, transient
from shared.actions.spec import ActionHost, ActionSpec, StepRun
from shared.credential_fields import CredentialData, Host, Line, MultiLine, Port, _secret
from shared.enums import ActionType, CredentialType

if TYPE_CHECKING:
    import asyncssh

# --- credentials ------------------------------------------------------------------------------------


_FINGERPRINT = re.compile(r"^SHA256:[A-Za-z0-9+/]{43}=?$")


def _host_key(value: str) -> str:
    if value.startswith("SHA256:"):
        if not _FINGERPRINT.match(value):
            raise ValueError("a SHA256 fingerprint looks like SHA256: followed by 43 base64 characters")
        return value
    import asyncssh  # lazy: only SFTP credentials need it

    try:
        asyncssh.import_public_key(value)
    except (asyncssh.KeyImportError, ValueError):
        raise ValueError(
            'must be an OpenSSH public key line ("ssh-ed25519 AAAA...") or a fingerprint ("SHA256:...")'
        ) from None
    return value


# Decrypting an OpenSSH key costs about 10 ms of CPU per bcrypt round, and the key file chooses the
# count, so an absurd count would stall whoever validates it. ssh-keygen uses 16 by default.
MAX_OPENSSH_KDF_ROUNDS = 256
_OPENSSH_BEGIN = "-----BEGIN OPENSSH PRIVATE KEY-----"
_OPENSSH_END = "-----END OPENSSH PRIVATE KEY-----"


def _openssh_kdf_rounds(key: str) -> int:
    """The bcrypt rounds of an encrypted OpenSSH-format key; 0 for anything else."""
    if _OPENSSH_BEGIN not in key or _OPENSSH_END not in key:
        return 0
    body = key.split(_OPENSSH_BEGIN, 1)[1].split(_OPENSSH_END, 1)[0]
    try:
        blob = base64.b64decode("".join(body.split()), validate=True)
        magic = b"openssh-key-v1\x00"
        offset = len(magic) if blob.startswith(magic) else -1
        if offset < 0:
            return 0
        fields = []
        for _ in range(3):  # cipher name, kdf name, kdf options
            (length,) = struct.unpack_from(">I", blob, offset)
            fields.append(blob[offset + 4 : offset + 4 + length])
            offset += 4 + length
        if fields[1] != b"bcrypt":
            return 0
        (salt_length,) = struct.unpack_from(">I", fields[2], 0)
        (rounds,) = struct.unpack_from(">I", fields[2], 4 + salt_length)
        return int(rounds)
    except (ValueError, struct.error):
        return 0  # malformed: the key import reports it


class SftpCredential(CredentialData):
    """SFTP server (type 3). ``password`` or ``privateKey`` (or both) must be set."""

    host: Host
    port: Port = 22
    username: Line
    password: Line | None = _secret()
    private_key: MultiLine | None = _secret()
    private_key_passphrase: Line | None = _secret()
    host_key: Annotated[Line, AfterValidator(_host_key)] | None = None

    def cross_field_errors(self) -> list[tuple[str, str]]:
        if not self.password and not self.private_key:
            return [("password", "password or privateKey is required")]
        if self.private_key_passphrase and not self.private_key:
            return [("privateKeyPassphrase", "is set but privateKey is not")]
        if self.private_key:
            import asyncssh

            rounds = _openssh_kdf_rounds(self.private_key)
            if rounds > MAX_OPENSSH_KDF_ROUNDS:
                return [
                    (
                        "privateKey",
                        f"is encrypted with {rounds} bcrypt rounds; at most {MAX_OPENSSH_KDF_ROUNDS} are "
                        "accepted (re-encrypt it with ssh-keygen -p -a 16)",
                    )
                ]
            try:
                asyncssh.import_private_key(self.private_key, self.private_key_passphrase)
            except asyncssh.KeyEncryptionError:
                return [("privateKeyPassphrase", "does not decrypt privateKey")]
            except (asyncssh.KeyImportError, ValueError) as exc:
                if "bcrypt" in str(exc):
                    return [
                        (
                            "privateKey",
                            "is an encrypted OpenSSH key, which needs the bcrypt package installed",
                        )
                    ]
                if "passphrase" in str(exc).lower():
                    return [("privateKeyPassphrase", "is required: privateKey is encrypted")]
                return [("privateKey", "is not a PEM or OpenSSH private key")]
        return []


# --- perform ----------------------------------------------------------------------------------------

WHAT = "SFTP credential"


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
            return _describe_key(self.key)
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
    import asyncssh

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


def _verifying_client(check: _HostKeyCheck) -> asyncssh.SSHClient:
    """A client that accepts the server's host key when it matches the pin (any key when there is
    none), recording every key it was shown."""
    import asyncssh

    class VerifyingClient(asyncssh.SSHClient):
        def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
            check.seen.append(key)
            return check.pin is None or check.pin.matches(key)

    return VerifyingClient()


def _describe_key(key: asyncssh.SSHKey) -> str:
    return f"{key.get_fingerprint('sha256')} ({key.get_algorithm()})"


async def _load_client_key(credential: SftpCredential) -> asyncssh.SSHKey | None:
    import asyncssh

    if not credential.private_key:
        return None
    passphrase = credential.private_key_passphrase or None
    try:
        # bcrypt-protected OpenSSH keys take a CPU-bound second to decrypt: keep the loop free.
        return await asyncio.to_thread(
            asyncssh.import_private_key, credential.private_key.strip() + "\n", passphrase
        )
    except asyncssh.KeyEncryptionError:
        raise permanent(f"{WHAT}: the privateKeyPassphrase does not decrypt the private key") from None
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise permanent(f"{WHAT}: the privateKey could not be read ({exc})") from None


async def upload_sftp(
    host: ActionHost, step: StepRun, config: FileTransferConfig, credential: SftpCredential | None
) -> ActionResult:
    import asyncssh

    if credential is None:
        raise permanent("SFTP upload needs an SFTP credential")
    server, port, username = credential.host, credential.port, credential.username
    password = credential.password or None  # not stripped: spaces can be part of a password
    client_key = await _load_client_key(credential)
    if password is None and client_key is None:
        raise permanent(f"{WHAT} needs a password or a privateKey")
    check = _HostKeyCheck(parse_host_key_pin(credential.host_key))
    upload = prepare_upload(config, step.content, scheme="sftp", host=server, port=port, default_port=22)
    url, target = upload.url, upload.target
    timeout = host.settings.upload_timeout_s

    sock = await host.connect_socket(
        server, port, timeout=min(CONNECT_TIMEOUT_S, timeout), what=f"SFTP server {server}"
    )
    pinned_keys = [check.pin.key] if check.pin is not None and check.pin.key is not None else []
    stage = "connecting"
    server_key: asyncssh.SSHKey | None = None
    try:
        async with asyncio.timeout(timeout):
            async with asyncssh.connect(
                server,
                port,
                sock=sock,
                client_factory=lambda: _verifying_client(check),
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
                    async with sftp.open(target.path, "wb" if upload.overwrite else "xb") as remote:
                        await remote.write(upload.data)
    except BaseException as exc:
        error = _classify(
            asyncssh,
            exc,
            stage=stage,
            host=server,
            username=username,
            url=url,
            check=check,
            overwrite=upload.overwrite,
        )
        if error is None:
            raise
        raise error from None
    finally:
        sock.close()

    message = f"SFTP upload: {url} ({byte_count(len(upload.data))})"
    if check.pin is None:
        shown = _describe_key(server_key) if server_key is not None else "an unknown key"
        fingerprint, _, algorithm = shown.partition(" ")
        message += f"; host key not pinned — server presented {fingerprint} {algorithm}".rstrip()
    return ActionResult(message)


def _classify(
    asyncssh: Any,
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
            line = seen.export_public_key("openssh").decode().strip()
            return permanent(
                f"SFTP host key mismatch for {host}: the server presented {line} ({_describe_key(seen)}) "
                f"but the credential pins {check.pin.describe()}; nothing was uploaded"
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
    return network_error("SFTP", exc, stage=stage, url=url)


SPECS: list[ActionSpec[Any, Any]] = [
    ActionSpec(
        ActionType.UploadFileSftp,
        FileTransferConfig,
        frozenset({CredentialType.Sftp}),
        SftpCredential,
        upload_sftp,
    )
]
