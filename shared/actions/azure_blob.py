"""UploadFileAzureBlob: config model and accepted credential (performed by the executor's Azure module)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator

from shared.actions.config_fields import as_text, media_type
from shared.actions.s3 import ObjectKey, utc_object_key
from shared.actions.spec import ActionConfig, ActionSpec
from shared.credential_fields import (
    CredentialData,
    EndpointUrl,
    Line,
    Token,
    _secret,
    matching,
    snake_name,
    validate_endpoint_url,
)
from shared.enums import ActionType, CredentialType

# --- credentials ------------------------------------------------------------------------------------


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
                if getattr(self, snake_name(name)):
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


# --- config -----------------------------------------------------------------------------------------


class UploadAzureBlobConfig(ActionConfig):
    stamped: ClassVar[Mapping[str, Callable[[datetime], str]]] = {"blobName": utc_object_key}

    blob_name: ObjectKey | None = None
    content_type: Annotated[str, as_text(media_type)] = "text/plain"


SPECS: list[ActionSpec[Any, Any]] = [
    ActionSpec(
        ActionType.UploadFileAzureBlob, UploadAzureBlobConfig, frozenset({CredentialType.AzureBlobStorage})
    )
]
