"""Encryption of credential secrets at rest.

Tokens look like ``wf1.<key_id>.<base64url(nonce | ciphertext | tag)>``:

* AES-256-GCM with a random 96-bit nonce;
* the key is derived per department from the master key with HKDF-SHA256, and the department id is
  also part of the associated data, so a token copied to another department does not decrypt;
* the caller's ``aad`` (e.g. ``credential_aad(credential_id)``) binds the token to one record, so a
  token copied to another row does not decrypt either;
* ``key_id`` fingerprints the master key, so after a rotation old tokens are still decrypted with the
  previous key (``Keyring(current, previous=[old])``) and can be re-encrypted lazily.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

TOKEN_VERSION = "wf1"
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
# Bump the version in the HKDF info if the derivation ever changes; old tokens then need the old derivation.
_HKDF_SALT = b"workflows/credential-encryption"
_DERIVED_KEY_CACHE_SIZE = 4096


class DecryptionError(ValueError):
    """A token could not be decrypted: malformed, unknown key id, or authentication failed.

    The message never contains key material or plaintext.
    """


def generate_master_key() -> str:
    """A new master key: base64 text of 32 random bytes, suitable for ``WF_MASTER_KEY``."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode("ascii")


def credential_aad(credential_id: int) -> str:
    """The associated data that binds an encrypted credential to its row."""
    return f"credential:{credential_id}"


class MasterKey:
    """The root key for credential encryption (``WF_MASTER_KEY``).

    Built from base64 text (standard or URL-safe alphabet) or from raw bytes; either must hold
    exactly 32 bytes. The key bytes never appear in ``repr``/``str``.
    """

    __slots__ = ("_key", "_key_id")

    def __init__(self, value: str | bytes) -> None:
        raw = value if isinstance(value, bytes) else _decode_master_key_text(value)
        if len(raw) != KEY_BYTES:
            raise ValueError(f"master key must be exactly {KEY_BYTES} bytes, got {len(raw)}")
        self._key = raw
        self._key_id = hmac.new(raw, b"key-id", hashlib.sha256).digest()[:8].hex()

    @classmethod
    def from_base64(cls, text: str) -> MasterKey:
        return cls(_decode_master_key_text(text))

    @property
    def key_id(self) -> str:
        """A short, stable, non-secret fingerprint of the key (16 hex characters)."""
        return self._key_id

    def derive(self, department_id: int) -> bytes:
        """The department's data key (32 bytes). Uncached; ``Keyring`` caches it."""
        info = f"workflows/credential-data-key/v1/department:{department_id}".encode()
        return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=_HKDF_SALT, info=info).derive(self._key)

    def __repr__(self) -> str:
        return f"MasterKey(key_id={self._key_id!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MasterKey) and hmac.compare_digest(self._key, other._key)

    def __hash__(self) -> int:
        return hash(self._key_id)

    def __reduce__(self) -> Any:
        # Pickling would write the key to wherever the pickle goes (caches, task queues).
        raise TypeError("MasterKey cannot be pickled")


def _decode_master_key_text(text: str) -> bytes:
    cleaned = "".join(text.split()).replace("-", "+").replace("_", "/")
    if not cleaned:
        raise ValueError("master key is empty; expected base64 of 32 random bytes")
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        raw = base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("master key is not valid base64; expected base64 of 32 random bytes") from None
    if len(raw) != KEY_BYTES:
        raise ValueError(f"master key must decode to exactly {KEY_BYTES} bytes, got {len(raw)}")
    return raw


class Keyring:
    """The current master key plus previous ones still accepted for decryption.

    New tokens are always written with ``current``; a token names its key by key id, so decryption
    picks the right key after a rotation.
    """

    def __init__(self, current: MasterKey, previous: Iterable[MasterKey] = ()) -> None:
        self._current = current
        self._keys: dict[str, MasterKey] = {}
        for key in (current, *previous):
            self._keys.setdefault(key.key_id, key)
        # Per instance, so dropping the keyring drops its derived keys too.
        self._aead = lru_cache(maxsize=_DERIVED_KEY_CACHE_SIZE)(self._make_aead)

    @classmethod
    def from_base64(cls, current: str, previous: str | Iterable[str] = ()) -> Keyring:
        """From settings text; ``previous`` may be one comma-separated string."""
        if isinstance(previous, str):
            previous = [part for part in previous.split(",") if part.strip()]
        return cls(MasterKey(current), [MasterKey(text) for text in previous])

    @property
    def current(self) -> MasterKey:
        return self._current

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def __repr__(self) -> str:
        return f"Keyring(current={self._current.key_id!r}, keys={sorted(self._keys)!r})"

    def _make_aead(self, key_id: str, department_id: int) -> AESGCM:
        return AESGCM(self._keys[key_id].derive(department_id))

    def encrypt(self, department_id: int, plaintext: bytes, *, aad: str) -> str:
        key_id = self._current.key_id
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead(key_id, _department(department_id)).encrypt(
            nonce, plaintext, _associated_data(department_id, aad)
        )
        body = base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode("ascii")
        return f"{TOKEN_VERSION}.{key_id}.{body}"

    def decrypt(self, department_id: int, token: str, *, aad: str) -> bytes:
        key_id, blob = _parse_token(token)
        if key_id not in self._keys:
            raise DecryptionError(
                f"ciphertext was written with master key {key_id}, which is not configured "
                "(add it to the previous keys to read it)"
            )
        nonce, sealed = blob[:NONCE_BYTES], blob[NONCE_BYTES:]
        try:
            return self._aead(key_id, _department(department_id)).decrypt(
                nonce, sealed, _associated_data(department_id, aad)
            )
        except InvalidTag:
            raise DecryptionError(
                "ciphertext failed authentication: it was altered, or belongs to another department or record"
            ) from None

    def needs_rotation(self, token: str) -> bool:
        """True when ``token`` was written with a key other than the current one (DecryptionError if malformed)."""
        key_id, _ = _parse_token(token)
        return key_id != self._current.key_id

    def reencrypt(self, department_id: int, token: str, *, aad: str) -> str:
        """Decrypt with whichever key wrote ``token`` and encrypt again with the current key."""
        return self.encrypt(department_id, self.decrypt(department_id, token, aad=aad), aad=aad)

    def encrypt_json(self, department_id: int, data: Mapping[str, Any], *, aad: str) -> str:
        plaintext = json.dumps(dict(data), separators=(",", ":"), ensure_ascii=False).encode()
        return self.encrypt(department_id, plaintext, aad=aad)

    def decrypt_json(self, department_id: int, token: str, *, aad: str) -> dict[str, Any]:
        plaintext = self.decrypt(department_id, token, aad=aad)
        try:
            data = json.loads(plaintext)
        except ValueError:
            raise DecryptionError("decrypted data is not JSON") from None
        if not isinstance(data, dict):
            raise DecryptionError("decrypted data is not a JSON object")
        return data


def _department(department_id: int) -> int:
    if isinstance(department_id, bool) or not isinstance(department_id, int):
        raise TypeError("department_id must be an int")
    return department_id


def _associated_data(department_id: int, aad: str) -> bytes:
    return f"{TOKEN_VERSION}|department:{department_id}|{aad}".encode()


def _parse_token(token: str) -> tuple[str, bytes]:
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 3 or parts[0] != TOKEN_VERSION or not parts[1]:
        raise DecryptionError(f"not a {TOKEN_VERSION} ciphertext")
    body = parts[2]
    try:
        blob = base64.b64decode(body + "=" * (-len(body) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise DecryptionError("ciphertext is not valid base64url") from None
    if len(blob) < NONCE_BYTES + TAG_BYTES:
        raise DecryptionError("ciphertext is truncated")
    return parts[1], blob
