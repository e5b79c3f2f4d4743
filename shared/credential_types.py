"""The canonical data schema of every credential type, shared by the API and the executor.

Keys are camelCase. Input keys are matched case-insensitively (the original accepted any casing)
and normalised; unknown keys are rejected. Blank strings count as absent. Secret fields are listed
in ``SECRET_FIELDS``: the API stores them encrypted and shows them as ``MASK``.

Update rule (``merge_update``): a secret that the update omits or sends as ``MASK`` keeps its stored
value; a secret sent as ``null`` or ``""`` is removed, which succeeds only where the schema lets it
be absent; any other value replaces it. Non-secret fields are taken from the update as sent (PUT
semantics), so sending back what GET returned, with some fields changed, is the way to update. One
exception: an HTTP credential's ``allowedOrigins`` left out of an update keeps its stored value (the
API may have pinned it when a step first used the credential); ``null`` clears it.
"""

from __future__ import annotations

import base64
import re
import struct
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BeforeValidator, ValidationError, model_validator

from shared.actions.webhooks import DiscordCredential, MicrosoftTeamsCredential, SlackCredential
from shared.credential_fields import (
    FIELD_PREFIX,
    FORBIDDEN_HEADERS,
    MASK,
    MAX_ORIGINS,
    CredentialData,
    CredentialValidationError,
    Email,
    EndpointUrl,
    HeaderName,
    Host,
    Line,
    MultiLine,
    Origins,
    Port,
    Token,
    _lower,
    _secret,
    matching,
    url_origin,
    validate_endpoint_url,
)
from shared.enums import CredentialType

__all__ = [
    "FORBIDDEN_HEADERS",
    "MASK",
    "MAX_ORIGINS",
    "ORIGIN_BOUND",
    "SECRET_FIELDS",
    "CredentialValidationError",
    "credential_fields",
    "masked",
    "merge_update",
    "split_secrets",
    "url_origin",
    "validate_credential_data",
]


class SmtpCredential(CredentialData):
    """SMTP server (type 0)."""

    legacy_fields: ClassVar[frozenset[str]] = frozenset({"useSsl"})

    host: Host
    port: Port = 587
    username: Line | None = None
    password: Line | None = _secret()
    security: Annotated[Literal["starttls", "tls", "none"], BeforeValidator(_lower)] = "starttls"
    from_address: Email
    from_name: Line | None = None

    @model_validator(mode="before")
    @classmethod
    def _legacy_use_ssl(cls, data: Any) -> Any:
        if not isinstance(data, Mapping) or "useSsl" not in data:
            return data
        data = dict(data)
        use_ssl = data.pop("useSsl")
        if data.get("security") is None and use_ssl is not None:
            if not isinstance(use_ssl, bool):
                raise ValueError("useSsl must be true or false")
            # Port 465 only speaks implicit TLS; elsewhere "SSL" in the old UI meant STARTTLS.
            implicit = str(data.get("port")) == "465"
            data["security"] = ("tls" if implicit else "starttls") if use_ssl else "none"
        return data

    def cross_field_errors(self) -> list[tuple[str, str]]:
        if self.password and not self.username:
            return [("username", "is required when a password is set")]
        if self.username and not self.password:
            return [("password", "is required when a username is set")]
        return []


_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")


def _twilio_sender(value: str) -> str:
    compact = re.sub(r"[\s().-]", "", value)
    if _E164.match(compact):
        return compact
    if _ALPHANUMERIC_SENDER.match(value):
        return value
    raise ValueError("must be an E.164 phone number like +15551234567 or an alphanumeric sender ID")


class TwilioCredential(CredentialData):
    """Twilio SMS (type 1). ``fromNumber`` or ``messagingServiceSid`` (or both) must be set."""

    account_sid: Annotated[Token, matching(r"^AC[0-9A-Za-z]+$", "must be a Twilio Account SID (AC...)")]
    auth_token: Token = _secret(required=True)
    from_number: Annotated[Line, AfterValidator(_twilio_sender)] | None = None
    messaging_service_sid: (
        Annotated[Token, matching(r"^MG[0-9A-Za-z]+$", "must be a Messaging Service SID (MG...)")] | None
    ) = None

    def cross_field_errors(self) -> list[tuple[str, str]]:
        if not self.from_number and not self.messaging_service_sid:
            return [("fromNumber", "is required unless messagingServiceSid is set")]
        return []


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


_BUCKET = re.compile(r"^(?!\d+\.\d+\.\d+\.\d+$)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class AwsS3Credential(CredentialData):
    """Amazon S3 or an S3-compatible store (type 4)."""

    access_key_id: Token
    secret_access_key: Line = _secret(required=True)
    session_token: Line | None = _secret()
    region: Annotated[Token, matching(r"^[a-z0-9-]{2,64}$", "must be a region name like us-east-1")] = (
        "us-east-1"
    )
    bucket_name: Annotated[
        str,
        matching(
            _BUCKET.pattern,
            "must be a bucket name: 3-63 lower-case letters, digits, dots and hyphens, starting and ending "
            "with a letter or digit",
        ),
    ]
    endpoint_url: EndpointUrl | None = None


def _strip_bearer(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower().startswith("bearer "):
        return value.strip()[7:]
    return value


class HttpBearerCredential(CredentialData):
    """``Authorization: Bearer <token>`` for HTTP calls (type 5)."""

    token: Annotated[Token, BeforeValidator(_strip_bearer)] = _secret(required=True)
    allowed_origins: Origins | None = None


def _no_colon(value: str) -> str:
    if ":" in value:
        raise ValueError("must not contain ':' (HTTP Basic separates user name and password with it)")
    return value


class HttpBasicCredential(CredentialData):
    """HTTP Basic authentication for HTTP calls (type 6)."""

    username: Annotated[Line, AfterValidator(_no_colon)]
    password: Line = _secret(required=True)
    allowed_origins: Origins | None = None


def _allowed_header(value: str) -> str:
    if value.lower() in FORBIDDEN_HEADERS:
        raise ValueError(f"cannot be {value} (set by the HTTP client)")
    return value


class HttpApiKeyCredential(CredentialData):
    """An API key sent in a header of the caller's choice for HTTP calls (type 7)."""

    header_name: Annotated[HeaderName, AfterValidator(_allowed_header)] = "X-Api-Key"
    api_key: Line = _secret(required=True)
    allowed_origins: Origins | None = None


def _connection_string(value: str) -> str:
    pairs: dict[str, str] = {}
    for part in value.split(";"):
        if not part.strip():
            continue
        key, sep, val = part.partition("=")
        if not sep or not key.strip():
            raise ValueError("must be Key=Value pairs separated by ';'")
        pairs[key.strip().lower()] = val.strip()
    if pairs.get("usedevelopmentstorage", "").lower() == "true":
        return value
    if "blobendpoint" in pairs:
        validate_endpoint_url(pairs["blobendpoint"])
    elif pairs.get("defaultendpointsprotocol", "https").lower() != "https":
        raise ValueError("must use DefaultEndpointsProtocol=https")
    has_account = "accountname" in pairs and "accountkey" in pairs
    if not (has_account or "sharedaccesssignature" in pairs):
        raise ValueError("must contain AccountName and AccountKey, or SharedAccessSignature")
    return value


def _sas_token(value: str) -> str:
    token = value.lstrip("?")
    if "sig=" not in token:
        raise ValueError("is not a SAS token (no sig= parameter)")
    return token


_CONTAINER = re.compile(r"^(\$root|\$web|(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9])$")


class AzureBlobStorageCredential(CredentialData):
    """Azure Blob Storage (type 11): a connection string, or an account name with a key or SAS token."""

    connection_string: Annotated[Line, AfterValidator(_connection_string)] | None = _secret()
    account_name: (
        Annotated[str, matching(r"^[a-z0-9]{3,24}$", "must be 3-24 lower-case letters and digits")] | None
    ) = None
    account_key: Token | None = _secret()
    sas_token: Annotated[Token, AfterValidator(_sas_token)] | None = _secret()
    account_url: EndpointUrl | None = None
    container_name: Annotated[
        str,
        matching(
            _CONTAINER.pattern,
            "must be a container name: 3-63 lower-case letters, digits and single hyphens, starting and "
            "ending with a letter or digit",
        ),
    ]

    def cross_field_errors(self) -> list[tuple[str, str]]:
        if self.connection_string:
            for name in ("accountName", "accountKey", "sasToken", "accountUrl"):
                if getattr(self, _snake(name)):
                    return [(name, "must not be set together with connectionString")]
            return []
        if not self.account_name:
            return [
                (
                    "connectionString",
                    "connectionString, or accountName with accountKey or sasToken, is required",
                )
            ]
        if self.account_key and self.sas_token:
            return [("sasToken", "set accountKey or sasToken, not both")]
        if not self.account_key and not self.sas_token:
            return [("accountKey", "accountKey or sasToken is required with accountName")]
        return []


def _pem_key_problem(key: str, password: str | None) -> tuple[str, str] | None:
    """None when the PEM key loads, else (field, problem)."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        load_pem_private_key(key.encode(), password.encode() if password else None)
    except TypeError:
        if password:
            return ("privateKeyPassword", "must be empty: privateKey is not encrypted")
        return ("privateKeyPassword", "is required: privateKey is encrypted")
    except ValueError:
        return ("privateKey", "is not a PEM private key, or privateKeyPassword does not decrypt it")
    return None


class BoxCredential(CredentialData):
    """Box (type 12): a JWT app (clientId, clientSecret, enterpriseId, publicKeyId, privateKey), or developerToken alone."""

    jwt_fields: ClassVar[tuple[str, ...]] = (
        "clientId",
        "clientSecret",
        "enterpriseId",
        "publicKeyId",
        "privateKey",
    )

    client_id: Token | None = None
    client_secret: Token | None = _secret()
    enterprise_id: (
        Annotated[
            str,
            BeforeValidator(lambda v: str(v) if isinstance(v, int) and not isinstance(v, bool) else v),
            matching(r"^\d{1,32}$", "must be the numeric Box enterprise ID"),
        ]
        | None
    ) = None
    public_key_id: Token | None = None
    private_key: MultiLine | None = _secret()
    private_key_password: Line | None = _secret()
    developer_token: Token | None = _secret()

    def cross_field_errors(self) -> list[tuple[str, str]]:
        if self.developer_token:
            used = [name for name in (*self.jwt_fields, "privateKeyPassword") if getattr(self, _snake(name))]
            if used:
                return [("developerToken", f"must be used alone, without {', '.join(used)}")]
            return []
        missing = [
            (name, "is required (or give developerToken alone)")
            for name in self.jwt_fields
            if not getattr(self, _snake(name))
        ]
        if missing:
            return missing
        problem = _pem_key_problem(self.private_key or "", self.private_key_password)
        return [problem] if problem else []


class DropboxCredential(CredentialData):
    """Dropbox app with an offline refresh token (type 13)."""

    refresh_token: Token = _secret(required=True)
    app_key: Token
    app_secret: Token = _secret(required=True)


CREDENTIAL_MODELS: dict[CredentialType, type[CredentialData]] = {
    CredentialType.Smtp: SmtpCredential,
    CredentialType.Twilio: TwilioCredential,
    CredentialType.Ftp: FtpCredential,
    CredentialType.Sftp: SftpCredential,
    CredentialType.AwsS3: AwsS3Credential,
    CredentialType.HttpBearer: HttpBearerCredential,
    CredentialType.HttpBasic: HttpBasicCredential,
    CredentialType.HttpApiKey: HttpApiKeyCredential,
    CredentialType.MicrosoftTeams: MicrosoftTeamsCredential,
    CredentialType.Slack: SlackCredential,
    CredentialType.Discord: DiscordCredential,
    CredentialType.AzureBlobStorage: AzureBlobStorageCredential,
    CredentialType.Box: BoxCredential,
    CredentialType.Dropbox: DropboxCredential,
}


def _snake(camel: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", camel).lower()


def _field_names(model: type[CredentialData]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def _is_secret(extra: object) -> bool:
    return isinstance(extra, dict) and extra.get("writeOnly") is True


# Fields that decide where a credential's secrets go. Changing one requires sending the secrets again:
# otherwise whoever can edit the credential could send the stored secret to a server of their choice.
DESTINATION_FIELDS: dict[CredentialType, tuple[str, ...]] = {
    CredentialType.Smtp: ("host", "port", "security"),
    CredentialType.Ftp: ("host", "port", "tls"),
    CredentialType.Sftp: ("host", "port", "hostKey"),
    CredentialType.AwsS3: ("endpointUrl",),
    CredentialType.AzureBlobStorage: ("accountName", "accountUrl"),
    CredentialType.HttpBearer: ("allowedOrigins",),
    CredentialType.HttpBasic: ("allowedOrigins",),
    CredentialType.HttpApiKey: ("allowedOrigins",),
}
# HTTP credentials are sent only to the origins listed on them (allowedOrigins).
ORIGIN_BOUND = frozenset(ctype for ctype, fields in DESTINATION_FIELDS.items() if "allowedOrigins" in fields)

SECRET_FIELDS: dict[CredentialType, frozenset[str]] = {
    ctype: frozenset(
        info.alias or name for name, info in model.model_fields.items() if _is_secret(info.json_schema_extra)
    )
    for ctype, model in CREDENTIAL_MODELS.items()
}


# --- public operations ------------------------------------------------------------------------------


def credential_fields(ctype: CredentialType) -> list[str]:
    """The canonical field names of a type, in schema order."""
    return _field_names(CREDENTIAL_MODELS[CredentialType(ctype)])


def _canonical_keys(
    model: type[CredentialData], data: Mapping[str, Any], errors: list[tuple[str, str]]
) -> dict[str, Any]:
    allowed = [*_field_names(model), *sorted(model.legacy_fields)]
    by_lower = {name.lower(): name for name in allowed}
    result: dict[str, Any] = {}
    for key, value in data.items():
        canonical = by_lower.get(str(key).lower())
        if canonical is None:
            errors.append(
                (f"{FIELD_PREFIX}.{key}", f"unknown field; allowed: {', '.join(_field_names(model))}")
            )
        elif canonical in result:
            errors.append((f"{FIELD_PREFIX}.{canonical}", "given more than once (keys are case-insensitive)"))
        else:
            result[canonical] = value
    return result


def _pydantic_errors(exc: ValidationError) -> list[tuple[str, str]]:
    fields = []
    for error in exc.errors(include_url=False, include_input=False):
        path = ".".join(str(part) for part in (FIELD_PREFIX, *error["loc"]))
        if error["type"] == "missing":
            message = "is required"
        else:
            message = error["msg"].removeprefix("Value error, ").replace("Input should be", "must be")
        fields.append((path, message))
    return fields


def _validated(ctype: CredentialType, data: Mapping[str, Any]) -> CredentialData:
    model = CREDENTIAL_MODELS[ctype]
    errors: list[tuple[str, str]] = []
    canonical = _canonical_keys(model, data, errors)
    try:
        instance = model.model_validate(canonical)
    except ValidationError as exc:
        raise CredentialValidationError(errors + _pydantic_errors(exc)) from None
    if errors:
        raise CredentialValidationError(errors)
    cross = instance.cross_field_errors()
    if cross:
        raise CredentialValidationError([(f"{FIELD_PREFIX}.{name}", message) for name, message in cross])
    return instance


def _credential_type(ctype: CredentialType | int) -> CredentialType:
    try:
        return CredentialType(ctype)
    except ValueError:
        raise CredentialValidationError([("CredentialType", f"unknown credential type {ctype!r}")]) from None


def validate_credential_data(ctype: CredentialType, data: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``data`` against the type's schema; return the canonical dict (defaults filled, None dropped).

    Raises ``CredentialValidationError`` listing every problem found; messages never echo values.
    """
    ctype = _credential_type(ctype)
    if not isinstance(data, Mapping):
        raise CredentialValidationError([(FIELD_PREFIX, "must be a JSON object")])
    return _validated(ctype, data).model_dump(by_alias=True, exclude_none=True)


def split_secrets(ctype: CredentialType, data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split canonical data into (public, secret) parts; secret fields are those in ``SECRET_FIELDS``."""
    secret_names = SECRET_FIELDS[CredentialType(ctype)]
    public = {k: v for k, v in data.items() if k not in secret_names}
    secret = {k: v for k, v in data.items() if k in secret_names}
    return public, secret


def masked(ctype: CredentialType, public: Mapping[str, Any], secret_keys: Iterable[str]) -> dict[str, Any]:
    """What an API response shows: public fields in clear, every set secret field as ``MASK``.

    A secret field that slipped into ``public`` is masked too, so a response never carries a secret.
    """
    ctype = CredentialType(ctype)
    secret_names = SECRET_FIELDS[ctype]
    present = set(secret_keys) & secret_names
    shown: dict[str, Any] = {}
    for name in _field_names(CREDENTIAL_MODELS[ctype]):
        if name in secret_names:
            if name in present or public.get(name) is not None:
                shown[name] = MASK
        elif name in public and public[name] is not None:
            shown[name] = public[name]
    return shown


def merge_update(
    ctype: CredentialType, existing: Mapping[str, Any], update: Mapping[str, Any]
) -> dict[str, Any]:
    """Apply a credential update (see the module docstring for the rules) and validate the result.

    ``existing`` is the stored canonical data with secrets decrypted; returns the new canonical data.
    """
    ctype = _credential_type(ctype)
    if not isinstance(update, Mapping):
        raise CredentialValidationError([(FIELD_PREFIX, "must be a JSON object")])
    model = CREDENTIAL_MODELS[ctype]
    secret_names = SECRET_FIELDS[ctype]
    errors: list[tuple[str, str]] = []
    incoming = _canonical_keys(model, update, errors)
    if errors:
        raise CredentialValidationError(errors)
    if ctype in ORIGIN_BOUND and "allowedOrigins" not in incoming and existing.get("allowedOrigins"):
        # Origins are often pinned by the API (first step saved), so a client that never sent them
        # keeps them by omitting the key; only an explicit null or new list changes them.
        incoming["allowedOrigins"] = existing["allowedOrigins"]
    merged = {k: v for k, v in incoming.items() if k not in secret_names}
    kept: list[str] = []
    for name in secret_names:
        if name not in incoming or incoming[name] == MASK:
            if existing.get(name) is not None:
                merged[name] = existing[name]
                kept.append(name)
        elif incoming[name] is not None:
            merged[name] = incoming[name]
        # None (or "", which validation treats as absent) clears the secret.
    result = _validated(ctype, merged).model_dump(by_alias=True, exclude_none=True)
    moved = [
        name
        for name in DESTINATION_FIELDS.get(ctype, ())
        if _stored(ctype, existing).get(name) != result.get(name)
    ]
    if moved and kept:
        reason = f"must be sent again: {', '.join(moved)} changed, and a stored secret never follows a new destination"
        raise CredentialValidationError([(f"{FIELD_PREFIX}.{name}", reason) for name in sorted(kept)])
    return result


def _stored(ctype: CredentialType, existing: Mapping[str, Any]) -> Mapping[str, Any]:
    """The stored data in today's canonical form (defaults filled), so only real changes count as moves."""
    try:
        return _validated(ctype, existing).model_dump(by_alias=True, exclude_none=True)
    except CredentialValidationError:  # stored under an older schema (an HTTP credential without origins)
        return existing
