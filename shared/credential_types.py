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

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from shared.actions.azure_blob import AzureBlobStorageCredential
from shared.actions.box import BoxCredential
from shared.actions.dropbox import DropboxCredential
from shared.actions.email import SmtpCredential
from shared.actions.ftp import FtpCredential
from shared.actions.http_call import HttpApiKeyCredential, HttpBasicCredential, HttpBearerCredential
from shared.actions.s3 import AwsS3Credential
from shared.actions.sftp import SftpCredential
from shared.actions.sms import TwilioCredential
from shared.actions.webhooks import DiscordCredential, MicrosoftTeamsCredential, SlackCredential
from shared.credential_fields import (
    FIELD_PREFIX,
    FORBIDDEN_HEADERS,
    MASK,
    MAX_ORIGINS,
    CredentialData,
    CredentialValidationError,
    url_origin,
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
