"""UploadFileAzureBlob: store the rendered content as a block blob (azure-storage-blob, aio):
credential, config model and ``perform``.

* Authentication, first match wins: ``connectionString``; ``accountName`` + ``accountKey``;
  ``accountName`` + ``sasToken``. ``accountUrl`` replaces the public endpoint
  ``https://<account>.blob.core.windows.net`` (Azurite, sovereign clouds, private endpoints).
* The endpoint host is resolved and checked by the host's egress policy before any request, and the
  SDK's aiohttp session connects through the host's guarded connector too (IP literals included), so
  it reaches only checked addresses. Redirects are not followed and environment proxies are ignored.
  TLS verification honours ``SSL_CERT_FILE``.
* The container is created when missing; an existing blob is overwritten.
* The result names the blob URL without its query string, so a SAS token never reaches the log.
* The Azure SDK and aiohttp are imported when an upload runs, never by the API.
"""

from __future__ import annotations

import asyncio
import os
import re
import ssl
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

from pydantic import AfterValidator

from shared.actions.config_fields import as_text, media_type
from shared.actions.file_names import byte_count, encode_content, safe_object_key
from shared.actions.outcomes import ActionError, ActionResult, permanent, required, stripped, transient
from shared.actions.replies import find_cause, redact_error
from shared.actions.s3 import ObjectKey, utc_object_key
from shared.actions.spec import ActionConfig, ActionHost, ActionSpec, StepRun
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

if TYPE_CHECKING:
    from azure.core.exceptions import HttpResponseError
    from azure.core.pipeline.transport import AioHttpTransport
    from azure.storage.blob.aio import BlobServiceClient

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


# --- perform ----------------------------------------------------------------------------------------


WHAT = "Azure Blob Storage credential"


def _service_client(
    credential: AzureBlobStorageCredential, transport: AioHttpTransport, timeout: float
) -> BlobServiceClient:
    from azure.storage.blob.aio import BlobServiceClient

    options: dict[str, Any] = {
        "transport": transport,
        "retry_total": 0,  # the engine retries with backoff; the SDK waits 15 s before its first retry
        "permit_redirects": False,  # Blob storage never redirects; a redirect could point anywhere
        "proxies": {},
    }
    connection_string = credential.connection_string
    if connection_string:
        try:
            return BlobServiceClient.from_connection_string(connection_string.strip(), **options)
        except ValueError as exc:
            raise permanent(f"{WHAT} has an invalid 'connectionString': {exc}") from None
    account_name = stripped(credential.account_name)
    if not account_name:
        raise permanent(f"{WHAT} needs a connectionString, or an accountName with an accountKey or sasToken")
    account_url = stripped(credential.account_url) or f"https://{account_name}.blob.core.windows.net"
    parts = urlsplit(account_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise permanent(
            f"{WHAT} has an invalid 'accountUrl' {account_url[:80]!r}: expected http(s)://host/..."
        )
    secret: Any
    if credential.account_key:
        secret = {"account_name": account_name, "account_key": credential.account_key.strip()}
    elif credential.sas_token:
        secret = credential.sas_token.strip().lstrip("?")
    else:
        raise permanent(f"{WHAT} needs an accountKey or a sasToken with accountName {account_name!r}")
    return BlobServiceClient(account_url, credential=secret, **options)


def _public_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


async def upload_azure_blob(
    host: ActionHost,
    step: StepRun,
    config: UploadAzureBlobConfig,
    credential: AzureBlobStorageCredential | None,
) -> ActionResult:
    import aiohttp
    from azure.core.exceptions import ResourceExistsError
    from azure.core.pipeline.transport import AioHttpTransport
    from azure.storage.blob import ContentSettings

    if credential is None:
        raise permanent("Azure Blob upload needs an Azure Blob Storage credential")
    container = required(credential.container_name, "containerName", what=WHAT)
    blob_name = safe_object_key(stripped(config.blob_name), what="Blob name")
    content_type = stripped(config.content_type) or "text/plain"
    data = encode_content(step.content)
    secrets = [credential.connection_string, credential.account_key, credential.sas_token]
    timeout = host.settings.upload_timeout_s

    # trust_env=False: HTTP(S)_PROXY would send the request to an address the guard never checked.
    session = aiohttp.ClientSession(connector=host.aiohttp_connector(), trust_env=False)
    transport = AioHttpTransport(
        session=session,
        session_owner=False,
        connection_timeout=min(30.0, timeout),
        read_timeout=timeout,
        # The transport owns TLS settings; a bundle path makes it build a hostname-checking context.
        connection_verify=os.environ.get("SSL_CERT_FILE") or True,
        use_env_settings=False,
    )
    blob_url = f"{container}/{blob_name}"
    try:
        service = _service_client(credential, transport, timeout)
        endpoint = urlsplit(service.url)
        endpoint_host = endpoint.hostname or ""
        await host.check_endpoint(
            endpoint_host,
            endpoint.port or (443 if endpoint.scheme == "https" else 80),
            what=f"Azure Blob endpoint {endpoint_host}",
        )
        async with asyncio.timeout(timeout):
            async with service:
                container_client = service.get_container_client(container)
                try:
                    await container_client.create_container()
                except ResourceExistsError:
                    pass
                blob = container_client.get_blob_client(blob_name)
                blob_url = _public_url(blob.url)
                await blob.upload_blob(
                    data, overwrite=True, content_settings=ContentSettings(content_type=content_type)
                )
    except BaseException as exc:
        error = _classify(host, exc, blob_url=blob_url)
        if error is None:
            raise
        raise redact_error(error, [s for s in secrets if s]) from None
    finally:
        await session.close()
    return ActionResult(f"Azure Blob upload: {blob_url} ({byte_count(len(data))})")


def _classify(host: ActionHost, exc: BaseException, *, blob_url: str) -> ActionError | None:
    import aiohttp
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )

    known = exc if isinstance(exc, ActionError) else host.egress_refusal(exc, "Azure Blob endpoint")
    if known is not None:
        return known
    if find_cause(exc, ssl.SSLCertVerificationError) is not None:
        return permanent(
            f"Azure Blob upload to {blob_url}: the endpoint's TLS certificate could not be verified"
        )
    if isinstance(exc, ClientAuthenticationError):
        return permanent(
            f"Azure Blob upload to {blob_url} was refused: authentication failed ({_reason(exc)})"
        )
    if isinstance(exc, HttpResponseError):
        status = exc.status_code or 0
        message = f"Azure Blob upload to {blob_url} failed: HTTP {status} {_reason(exc)}".rstrip()
        result = f"HTTP {status}" if status else None
        if status in (408, 429) or status >= 500 or status == 0:
            return transient(message, result=result)
        return permanent(message, result=result)
    if isinstance(
        exc, ServiceRequestError | ServiceResponseError | TimeoutError | OSError | aiohttp.ClientError
    ):
        return transient(
            f"Azure Blob upload to {blob_url} failed: could not reach the endpoint ({type(exc).__name__})"
        )
    return None


def _reason(exc: HttpResponseError) -> str:
    code = getattr(exc, "error_code", None)
    reason = exc.reason or ""
    return f"{code}: {reason}" if code else reason


SPECS: list[ActionSpec[Any, Any]] = [
    ActionSpec(
        ActionType.UploadFileAzureBlob,
        UploadAzureBlobConfig,
        frozenset({CredentialType.AzureBlobStorage}),
        AzureBlobStorageCredential,
        upload_azure_blob,
    )
]
