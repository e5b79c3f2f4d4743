"""UploadFileFtp and UploadFileSftp: their shared config model and accepted credentials (performed by
the executor's FTP and SFTP modules)."""

from __future__ import annotations

import base64
import re
import struct
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BeforeValidator

from shared.actions.config_fields import Flag, as_text, filename, path
from shared.actions.spec import ActionConfig, ActionSpec
from shared.credential_fields import (
    CredentialData,
    Host,
    Line,
    MultiLine,
    Port,
    _lower,
    _secret,
)
from shared.enums import ActionType, CredentialType

# --- credentials ------------------------------------------------------------------------------------


class FtpCredential(CredentialData):
    """FTP server (type 2)."""

    host: Host
    port: Port = 21
    username: Line
    password: Line = _secret(required=True)
    passive: bool = True
    tls: Annotated[Literal["none", "explicit"], BeforeValidator(_lower)] = "none"


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


# --- config -----------------------------------------------------------------------------------------


def utc_filename(now: datetime) -> str:
    return now.strftime("workflow_%Y%m%d%H%M%S.txt")


FileName = Annotated[str, as_text(filename)]


class FileTransferConfig(ActionConfig):
    stamped: ClassVar[Mapping[str, Callable[[datetime], str]]] = {"filename": utc_filename}

    remote_path: Annotated[str, as_text(path)] = "/"
    filename: FileName | None = None
    overwrite: Flag = True


SPECS: list[ActionSpec[Any, Any]] = [
    ActionSpec(ActionType.UploadFileFtp, FileTransferConfig, frozenset({CredentialType.Ftp})),
    ActionSpec(ActionType.UploadFileSftp, FileTransferConfig, frozenset({CredentialType.Sftp})),
]
