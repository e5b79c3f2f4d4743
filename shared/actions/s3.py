"""UploadFileS3: put the rendered content as an object in an S3 bucket (aioboto3): credential, config
model, rules and ``perform``.

* Bucket, region and keys come from the credential; ``endpointUrl`` points at an S3-compatible
  store (MinIO, Ceph, a regional edge). Its host is resolved and checked by the host's egress
  policy before the client is built, so a refused endpoint fails before any request.
* Every connection the client makes, to AWS or to the custom endpoint, is pinned to a checked
  address: aiobotocore's aiohttp connector is the host's guarded one (``ActionHost.aiohttp_connector``),
  which asks the egress policy for every host, IP literals included, instead of DNS, so there is no
  second, unchecked lookup. Redirects are not followed and proxies are never used (not even
  ``HTTP(S)_PROXY``). TLS is verified against the host name with ``SSL_CERT_FILE`` when it is set
  (the operator's trust store), else certifi.
* ``endpointUrl`` may be ``http://`` for on-premises stores; requests are still SigV4-signed, so
  the secret key never travels, but the content does in clear text: that is the user's choice.
* Authentication and bucket errors are permanent; throttling, 5xx and network failures transient.
* aioboto3 and botocore are imported when an upload runs, never by the API.
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import ssl
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar
from urllib.parse import urlsplit

from shared.actions.config_fields import as_text, is_template, media_type, object_key, one_of, pattern
from shared.actions.file_names import byte_count, encode_content, safe_object_key
from shared.actions.outcomes import ActionError, ActionResult, permanent, required, stripped, transient
from shared.actions.replies import find_cause
from shared.actions.spec import ActionConfig, ActionHost, ActionSpec, StepRun
from shared.credential_fields import (
    CredentialData,
    EndpointUrl,
    Line,
    Token,
    _secret,
    matching,
)
from shared.enums import ActionType, CredentialType

if TYPE_CHECKING:
    import aiohttp

# --- credentials ------------------------------------------------------------------------------------


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


# --- config -----------------------------------------------------------------------------------------


def utc_object_key(now: datetime) -> str:
    return now.strftime("workflow/%Y/%m/%d/%H%M%S.txt")


ObjectKey = Annotated[str, as_text(object_key)]


class UploadS3Config(ActionConfig):
    stamped: ClassVar[Mapping[str, Callable[[datetime], str]]] = {"s3Key": utc_object_key}

    s3_key: ObjectKey | None = None
    content_type: Annotated[str, as_text(media_type)] = "text/plain"
    server_side_encryption: Annotated[str, as_text(one_of("AES256", "aws:kms"))] | None = None
    kms_key_id: (
        Annotated[str, as_text(pattern(r"^\S{1,2048}$", "must be a KMS key id, ARN or alias"))] | None
    ) = None

    @classmethod
    def rules(cls, config: Mapping[str, Any], *, has_credential: bool | None) -> list[tuple[str, str]]:
        if "kmsKeyId" in config:
            sse = config.get("serverSideEncryption")
            if sse is None or (sse != "aws:kms" and not is_template(sse)):
                return [("kmsKeyId", 'needs serverSideEncryption "aws:kms"')]
        return []


# --- perform ----------------------------------------------------------------------------------------


WHAT = "AWS S3 credential"
_PERMANENT_CODES = frozenset(
    {
        "AccessDenied",
        "AllAccessDisabled",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "NoSuchBucket",
        "InvalidBucketName",
        "InvalidToken",
        "ExpiredToken",
        "TokenRefreshRequired",
        "AuthorizationHeaderMalformed",
        "PermanentRedirect",
        "InvalidArgument",
        "InvalidRequest",
        "KMS.NotFoundException",
        "KMS.DisabledException",
        "AccountProblem",
        "EntityTooLarge",
        "InvalidObjectState",
    }
)
_TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "ServiceUnavailable",
    }
)


def _endpoint(credential: AwsS3Credential) -> tuple[str | None, str | None, int]:
    """The custom endpoint URL (or None) with its host and port; only http(s) URLs with a host."""
    url = stripped(credential.endpoint_url)
    if url is None:
        return None, None, 0
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise permanent(f"{WHAT} has an invalid 'endpointUrl' {url[:80]!r}: expected http(s)://host[:port]")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise permanent(f"{WHAT} has an invalid 'endpointUrl' port: {url[:80]!r}") from None
    return url, parts.hostname, port


class _NoRedirectSession:
    """The one call aiobotocore makes on its aiohttp session, with redirects turned off."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    def request(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["allow_redirects"] = False
        return self._session.request(*args, **kwargs)


@functools.cache
def _guarded_session_class() -> Callable[..., Any]:
    """aiobotocore's aiohttp session, made safe for user-chosen endpoints (built on first use, so the
    SDK is imported only when an upload runs).

    * Every connection, IP literals included, goes through the host's guarded connector.
    * Redirects are not followed: botocore gets the 3xx as an error response.
    * A context that checks the certificate's host name: aiobotocore starts from urllib3's context,
      which leaves ``check_hostname`` off because urllib3 matches names itself; aiohttp does not,
      so any certificate from a trusted CA would pass.
    """
    from aiobotocore.httpsession import AIOHTTPSession
    from botocore.httpsession import get_cert_path

    class GuardedSession(AIOHTTPSession):  # type: ignore[misc]  # aiobotocore is untyped
        def __init__(self, *args: Any, host: ActionHost, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._host = host

        def _create_connector(self, proxy_url: str | None) -> aiohttp.TCPConnector:
            if proxy_url:  # proxies={} on the config: never reached
                raise RuntimeError("S3 uploads do not use proxies")
            context: ssl.SSLContext | bool = False
            if self._verify:  # as aiobotocore does: the default context plus botocore's bundle
                context = self._get_ssl_context()
                bundle = get_cert_path(self._verify)
                if bundle:
                    context.load_verify_locations(bundle)
            return self._host.aiohttp_connector(
                limit=self._max_pool_connections, ssl=context, **self._connector_args
            )

        async def _get_session(self, proxy_url: str | None) -> _NoRedirectSession:
            return _NoRedirectSession(await super()._get_session(proxy_url))

        def _get_ssl_context(self) -> ssl.SSLContext:
            # A fresh context each time: botocore loads its CA bundle into it.
            context = ssl.create_default_context(cafile=os.environ.get("SSL_CERT_FILE") or None)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            return context

    return GuardedSession


def _drop_region_redirects(client: Any) -> None:
    """A custom store has no regions to be redirected between, and a hostile one answering 301 to
    every request sends botocore's region redirector into a loop of HEAD requests."""
    from botocore.utils import S3RegionRedirectorv2

    emitter = client.meta.events
    for handler in list(emitter._emitter._handlers.prefix_search("needs-retry.s3")):
        if isinstance(getattr(handler, "__self__", None), S3RegionRedirectorv2):
            emitter.unregister("needs-retry.s3", handler)


def _verify() -> str | bool:
    # botocore loads certifi unless given a bundle; SSL_CERT_FILE is the operator's trust store.
    return os.environ.get("SSL_CERT_FILE") or True


async def upload_s3(
    host: ActionHost, step: StepRun, config: UploadS3Config, credential: AwsS3Credential | None
) -> ActionResult:
    import aioboto3
    from aiobotocore.config import AioConfig

    if credential is None:
        raise permanent("S3 upload needs an AWS S3 credential")
    access_key = required(credential.access_key_id, "accessKeyId", what=WHAT)
    secret_key = required(credential.secret_access_key, "secretAccessKey", what=WHAT, strip=False)
    session_token = credential.session_token or None
    region = stripped(credential.region) or "us-east-1"
    bucket = required(credential.bucket_name, "bucketName", what=WHAT)
    endpoint_url, endpoint_host, endpoint_port = _endpoint(credential)

    key = safe_object_key(stripped(config.s3_key), what="S3 key")
    content_type = stripped(config.content_type) or "text/plain"
    extra: dict[str, Any] = {}
    # The config model allows only AES256 or aws:kms, and kmsKeyId only with aws:kms (checked at save
    # and again once rendered), so the values go to S3 as they are.
    if config.server_side_encryption is not None:
        extra["ServerSideEncryption"] = config.server_side_encryption
    if config.kms_key_id is not None:
        extra["SSEKMSKeyId"] = config.kms_key_id
    data = encode_content(step.content)
    location = f"s3://{bucket}/{key}"

    if endpoint_host is not None:
        await host.check_endpoint(endpoint_host, endpoint_port, what=f"S3 endpoint {endpoint_host}")

    timeout = host.settings.upload_timeout_s
    sdk_config = AioConfig(
        connect_timeout=min(30.0, timeout),
        read_timeout=timeout,
        retries={"total_max_attempts": 2, "mode": "standard"},
        # Custom stores rarely have wildcard DNS/certificates for virtual-hosted buckets.
        s3={"addressing_style": "path"} if endpoint_url else None,
        proxies={},  # not None: botocore would read HTTP(S)_PROXY, an address the guard never sees
        http_session_cls=functools.partial(_guarded_session_class(), host=host),
    )
    session = aioboto3.Session(
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        aws_session_token=session_token,
        region_name=region,
    )
    try:
        async with asyncio.timeout(timeout):
            async with session.client(
                "s3", endpoint_url=endpoint_url, config=sdk_config, verify=_verify()
            ) as s3:
                if endpoint_url:
                    _drop_region_redirects(s3)
                await s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type, **extra)
    except BaseException as exc:
        error = _classify(host, exc, location=location, secrets=[secret_key, session_token or ""])
        if error is None:
            raise
        raise error from None
    return ActionResult(f"S3 upload: {location} ({byte_count(len(data))})")


def _classify(
    host: ActionHost, exc: BaseException, *, location: str, secrets: list[str]
) -> ActionError | None:
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        ParamValidationError,
        ReadTimeoutError,
        SSLError,
    )

    known = exc if isinstance(exc, ActionError) else host.egress_refusal(exc, "S3 endpoint")
    if known is not None:
        return known
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "?"))
        detail = str(error.get("Message", "") or "")[:300]
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        message = f"S3 upload to {location} failed: {code}" + (f" ({detail})" if detail else "")
        for secret in secrets:
            if secret:
                message = message.replace(secret, "••••••")
        if code in _TRANSIENT_CODES or status in (408, 429) or status >= 500:
            return transient(message, result=f"HTTP {status}" if status else None)
        if code in _PERMANENT_CODES or 400 <= status < 500:
            return permanent(message, result=f"HTTP {status}" if status else None)
        return transient(message)
    if isinstance(exc, NoCredentialsError | ParamValidationError):
        return permanent(f"S3 upload to {location} is misconfigured: {exc}")
    if find_cause(exc, ssl.SSLCertVerificationError) is not None or isinstance(exc, SSLError):
        return permanent(
            f"S3 upload to {location}: the endpoint's TLS certificate could not be verified ({exc})"
        )
    if isinstance(exc, ConnectTimeoutError | ReadTimeoutError | TimeoutError):
        return transient(f"S3 upload to {location} timed out")
    if isinstance(exc, EndpointConnectionError | ConnectionClosedError):
        return transient(f"S3 upload to {location} failed: could not connect ({exc})")
    if isinstance(exc, BotoCoreError | OSError):
        return transient(f"S3 upload to {location} failed: {type(exc).__name__}: {exc}")
    return None


SPECS: list[ActionSpec[Any, Any]] = [
    ActionSpec(
        ActionType.UploadFileS3, UploadS3Config, frozenset({CredentialType.AwsS3}), AwsS3Credential, upload_s3
    )
]
