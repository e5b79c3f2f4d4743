"""UploadFileBox: upload the rendered content as a file into a Box folder (Box REST API): credential,
config model and ``perform``.

* Authentication: a JWT server app (``clientId``, ``clientSecret``, ``enterpriseId``,
  ``publicKeyId``, ``privateKey``, ``privateKeyPassword``) exchanges an RS256 assertion for an
  enterprise service-account token; or a ``developerToken`` is used as it is (development only).
* Upload: ``POST {upload}/api/2.0/files/content`` as multipart (``attributes`` JSON, then ``file``).
  When the name is taken (409 ``item_name_in_use``) and ``overwrite`` is true (the default), a new
  version of that file is uploaded to ``/api/2.0/files/{id}/content``; with ``overwrite: false``
  the step fails naming the file.
* Every request goes through the host's HTTP client (egress policy, HTTPS only, checked addresses).
* PyJWT and cryptography are imported when an upload runs.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import BeforeValidator

from shared.actions.config_fields import Flag, as_text, pattern
from shared.actions.file_names import byte_count, encode_content, safe_single_name
from shared.actions.file_transfer import FileName, utc_filename
from shared.actions.outcomes import ActionError, ActionResult, permanent, required, stripped
from shared.actions.replies import (
    HttpReply,
    body_snippet,
    json_object,
    oauth_access_token,
    redact_error,
    status_error,
)
from shared.actions.spec import ActionConfig, ActionHost, ActionSpec, StepRun
from shared.credential_fields import (
    CredentialData,
    Line,
    MultiLine,
    Token,
    _secret,
    matching,
    snake_name,
)
from shared.enums import ActionType, CredentialType

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

# --- credentials ------------------------------------------------------------------------------------


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
            used = [
                name for name in (*self.jwt_fields, "privateKeyPassword") if getattr(self, snake_name(name))
            ]
            if used:
                return [("developerToken", f"must be used alone, without {', '.join(used)}")]
            return []
        missing = [
            (name, "is required (or give developerToken alone)")
            for name in self.jwt_fields
            if not getattr(self, snake_name(name))
        ]
        if missing:
            return missing
        problem = _pem_key_problem(self.private_key or "", self.private_key_password)
        return [problem] if problem else []


# --- config -----------------------------------------------------------------------------------------


class UploadBoxConfig(ActionConfig):
    stamped: ClassVar[Mapping[str, Callable[[datetime], str]]] = {"filename": utc_filename}

    folder_id: Annotated[
        str, as_text(pattern(r"^\d{1,32}$", "must be a numeric Box folder id"), accepts_number=True)
    ] = "0"
    filename: FileName | None = None
    # A taken name gets a new version of that file (true) or fails the step naming it (false).
    overwrite: Flag = True


# --- perform ----------------------------------------------------------------------------------------


WHAT = "Box credential"
JWT_LIFETIME_S = 45  # Box accepts at most 60 s


def _private_key(credential: BoxCredential) -> RSAPrivateKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

    pem = required(credential.private_key, "privateKey", what=WHAT, strip=False)
    password = credential.private_key_password
    try:
        # Box's JSON config stores the PEM with literal "\n" sequences when pasted from the file.
        key = serialization.load_pem_private_key(
            pem.replace("\\n", "\n").strip().encode(), password=password.encode() if password else None
        )
    except (ValueError, TypeError) as exc:
        raise permanent(
            f"{WHAT}: the privateKey could not be read (wrong privateKeyPassword?): {exc}"
        ) from None
    if not isinstance(key, RSAPrivateKey):
        raise permanent(f"{WHAT}: the privateKey must be an RSA key (Box signs with RS256)")
    return key


def jwt_assertion(credential: BoxCredential, token_url: str, *, now: float | None = None) -> str:
    """The RS256 client assertion for Box's JWT grant, for the enterprise's service account."""
    import jwt

    issued = int(now if now is not None else time.time())
    claims = {
        "iss": required(credential.client_id, "clientId", what=WHAT),
        "sub": required(credential.enterprise_id, "enterpriseId", what=WHAT),
        "box_sub_type": "enterprise",
        "aud": token_url,
        "jti": uuid.uuid4().hex + uuid.uuid4().hex,
        "exp": issued + JWT_LIFETIME_S,
        "iat": issued,
    }
    headers = {"kid": required(credential.public_key_id, "publicKeyId", what=WHAT)}
    return jwt.encode(claims, _private_key(credential), algorithm="RS256", headers=headers)


async def _access_token(credential: BoxCredential, host: ActionHost) -> str:
    if credential.developer_token:
        return credential.developer_token.strip()
    token_url = host.settings.box_api_base_url.rstrip("/") + "/oauth2/token"
    form = {
        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "assertion": jwt_assertion(credential, token_url),
        "client_id": required(credential.client_id, "clientId", what=WHAT),
        "client_secret": required(credential.client_secret, "clientSecret", what=WHAT, strip=False),
    }
    reply = await host.http_request(
        "POST",
        token_url,
        what="Box token endpoint",
        timeout=host.settings.http_timeout_s,
        follow_redirects=False,
        data=form,
    )
    return oauth_access_token(reply, provider="Box", detail=_error_text(reply))


def _json(reply: HttpReply) -> dict[str, Any]:
    return json_object(reply.text)


def _error_text(reply: HttpReply) -> str:
    body = _json(reply)
    parts = [str(body[k]) for k in ("code", "error", "message", "error_description") if body.get(k)]
    return "; ".join(parts) if parts else body_snippet(reply.text, 300)


def _multipart(attributes: Mapping[str, Any], name: str, data: bytes) -> tuple[bytes, dict[str, str]]:
    import httpx

    # Box reads the parts in order: attributes must precede the file.
    request = httpx.Request(
        "POST",
        "https://upload.invalid/",
        data={"attributes": json.dumps(attributes)},
        files={"file": (name, data, "application/octet-stream")},
    )
    return request.read(), {"Content-Type": request.headers["Content-Type"]}


async def _post_file(
    host: ActionHost, url: str, token: str, attributes: Mapping[str, Any], name: str, data: bytes
) -> HttpReply:
    body, headers = _multipart(attributes, name, data)
    return await host.http_request(
        "POST",
        url,
        what="Box upload",
        timeout=host.settings.upload_timeout_s,
        follow_redirects=False,
        headers=headers | {"Authorization": f"Bearer {token}"},
        content=body,
    )


def _uploaded_id(reply: HttpReply) -> str:
    entries = _json(reply).get("entries")
    if isinstance(entries, list) and entries and isinstance(entries[0], dict) and entries[0].get("id"):
        return str(entries[0]["id"])
    return "?"


def _conflict_id(reply: HttpReply) -> str | None:
    conflicts = (_json(reply).get("context_info") or {}).get("conflicts")
    if isinstance(conflicts, list):
        conflicts = conflicts[0] if conflicts else None
    if isinstance(conflicts, dict) and conflicts.get("type", "file") == "file" and conflicts.get("id"):
        return str(conflicts["id"])
    return None


def _check(reply: HttpReply, where: str, cap: float) -> None:
    if reply.status in (200, 201):
        return
    if reply.status == 401:
        raise permanent(f"Box refused the access token ({_error_text(reply)})", result="HTTP 401")
    if reply.status == 404:
        raise permanent(
            f"Box upload to {where} failed: folder or file not found ({_error_text(reply)})",
            result="HTTP 404",
        )
    raise status_error(
        reply.status,
        what=f"Box upload to {where}",
        detail=_error_text(reply),
        retry_after=reply.retry_after(cap),
    )


async def upload_box(
    host: ActionHost, step: StepRun, config: UploadBoxConfig, credential: BoxCredential | None
) -> ActionResult:
    if credential is None:
        raise permanent("Box upload needs a Box credential")
    folder_id = config.folder_id  # numeric: the config model checks it at save and once rendered
    name = safe_single_name(stripped(config.filename))
    data = encode_content(step.content)
    where = f"{folder_id}/{name}"
    upload_base = host.settings.box_upload_base_url.rstrip("/")
    secrets = (credential.client_secret, credential.private_key, credential.private_key_password)

    try:
        token = await _access_token(credential, host)
        reply = await _post_file(
            host,
            f"{upload_base}/api/2.0/files/content",
            token,
            {"name": name, "parent": {"id": folder_id}},
            name,
            data,
        )
        if reply.status == 409:
            existing = _conflict_id(reply)
            if existing is None:
                raise permanent(f"Box upload to {where} failed: the name is taken ({_error_text(reply)})")
            if not config.overwrite:
                raise permanent(
                    f"Box upload refused: {where} already exists (file id {existing}) and overwrite is false"
                )
            reply = await _post_file(
                host, f"{upload_base}/api/2.0/files/{existing}/content", token, {"name": name}, name, data
            )
        _check(reply, where, host.settings.max_retry_after_s)
    except ActionError as exc:
        raise redact_error(exc, [s for s in (*secrets, credential.developer_token) if s]) from None
    return ActionResult(f"Box upload: {where} (file id {_uploaded_id(reply)}, {byte_count(len(data))})")


SPECS: list[ActionSpec[Any, Any]] = [
    ActionSpec(
        ActionType.UploadFileBox, UploadBoxConfig, frozenset({CredentialType.Box}), BoxCredential, upload_box
    )
]
