"""UploadFileBox: upload the rendered content as a file into a Box folder (Box REST API).

* Authentication: a JWT server app (``clientId``, ``clientSecret``, ``enterpriseId``,
  ``publicKeyId``, ``privateKey``, ``privateKeyPassword``) exchanges an RS256 assertion for an
  enterprise service-account token; or a ``developerToken`` is used as it is (development only).
* Upload: ``POST {upload}/api/2.0/files/content`` as multipart (``attributes`` JSON, then ``file``).
  When the name is taken (409 ``item_name_in_use``) and ``overwrite`` is true (the default), a new
  version of that file is uploaded to ``/api/2.0/files/{id}/content``; with ``overwrite: false``
  the step fails naming the file.
* Every request goes through the egress guard's HTTP client (HTTPS only, checked addresses).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Mapping
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from services.executor.actions.base import ActionContext, ActionDeps, ActionError, ActionResult, permanent
from services.executor.actions.config_readers import flag_value, required_text, secret_value, text_value
from services.executor.actions.http_requests import http_request
from shared.actions.file_names import byte_count, encode_content, safe_single_name
from shared.actions.replies import HttpReply, body_snippet, json_object, redact_error, status_error

WHAT = "Box credential"
_SECRET_KEYS = ("clientSecret", "privateKey", "privateKeyPassword", "developerToken")
JWT_LIFETIME_S = 45  # Box accepts at most 60 s


def _private_key(credential: Mapping[str, Any]) -> RSAPrivateKey:
    pem = secret_value(credential, "privateKey", what=WHAT, required=True) or ""
    password = secret_value(credential, "privateKeyPassword", what=WHAT)
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


def jwt_assertion(credential: Mapping[str, Any], token_url: str, *, now: float | None = None) -> str:
    """The RS256 client assertion for Box's JWT grant, for the enterprise's service account."""
    issued = int(now if now is not None else time.time())
    claims = {
        "iss": required_text(credential, "clientId", what=WHAT),
        "sub": required_text(credential, "enterpriseId", what=WHAT),
        "box_sub_type": "enterprise",
        "aud": token_url,
        "jti": uuid.uuid4().hex + uuid.uuid4().hex,
        "exp": issued + JWT_LIFETIME_S,
        "iat": issued,
    }
    headers = {"kid": required_text(credential, "publicKeyId", what=WHAT)}
    return jwt.encode(claims, _private_key(credential), algorithm="RS256", headers=headers)


async def _access_token(credential: Mapping[str, Any], deps: ActionDeps) -> str:
    developer_token = secret_value(credential, "developerToken", what=WHAT)
    if developer_token:
        return developer_token.strip()
    token_url = deps.settings.box_api_base_url.rstrip("/") + "/oauth2/token"
    form = {
        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "assertion": jwt_assertion(credential, token_url),
        "client_id": required_text(credential, "clientId", what=WHAT),
        "client_secret": secret_value(credential, "clientSecret", what=WHAT, required=True) or "",
    }
    reply = await http_request(
        deps.egress,
        "POST",
        token_url,
        what="Box token endpoint",
        timeout=deps.settings.http_timeout_s,
        follow_redirects=False,
        data=form,
    )
    if reply.status in (400, 401, 403):
        raise permanent(f"Box authentication failed: {_error_text(reply)}", result=f"HTTP {reply.status}")
    if reply.status != 200:
        raise status_error(reply.status, what="Box token endpoint", detail=_error_text(reply))
    token = _json(reply).get("access_token")
    if not isinstance(token, str) or not token:
        raise permanent("Box token endpoint answered without an access_token")
    return token


def _json(reply: HttpReply) -> dict[str, Any]:
    return json_object(reply.text)


def _error_text(reply: HttpReply) -> str:
    body = _json(reply)
    parts = [str(body[k]) for k in ("code", "error", "message", "error_description") if body.get(k)]
    return "; ".join(parts) if parts else body_snippet(reply.text, 300)


def _multipart(attributes: Mapping[str, Any], name: str, data: bytes) -> tuple[bytes, dict[str, str]]:
    # Box reads the parts in order: attributes must precede the file.
    request = httpx.Request(
        "POST",
        "https://upload.invalid/",
        data={"attributes": json.dumps(attributes)},
        files={"file": (name, data, "application/octet-stream")},
    )
    return request.read(), {"Content-Type": request.headers["Content-Type"]}


async def _post_file(
    deps: ActionDeps, url: str, token: str, attributes: Mapping[str, Any], name: str, data: bytes
) -> HttpReply:
    body, headers = _multipart(attributes, name, data)
    return await http_request(
        deps.egress,
        "POST",
        url,
        what="Box upload",
        timeout=deps.settings.upload_timeout_s,
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


async def upload_box(ctx: ActionContext, deps: ActionDeps) -> ActionResult:
    credential = ctx.credential
    if not credential:
        raise permanent("Box upload needs a Box credential")
    folder_id = text_value(ctx.config, "folderId", what="Action config", default="0") or "0"
    if not re.fullmatch(r"\d{1,20}", folder_id):
        raise permanent(
            f"Action config has an invalid 'folderId' {folder_id[:40]!r}: expected a numeric Box folder id"
        )
    name = safe_single_name(text_value(ctx.config, "filename", what="Action config"))
    overwrite = flag_value(ctx.config, "overwrite", what="Action config", default=True)
    data = encode_content(ctx.content)
    where = f"{folder_id}/{name}"
    upload_base = deps.settings.box_upload_base_url.rstrip("/")

    try:
        token = await _access_token(credential, deps)
        reply = await _post_file(
            deps,
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
            if not overwrite:
                raise permanent(
                    f"Box upload refused: {where} already exists (file id {existing}) and overwrite is false"
                )
            reply = await _post_file(
                deps, f"{upload_base}/api/2.0/files/{existing}/content", token, {"name": name}, name, data
            )
        _check(reply, where, deps.settings.max_retry_after_s)
    except ActionError as exc:
        raise redact_error(
            exc, [str(credential.get(k) or "") for k in _SECRET_KEYS if credential.get(k)]
        ) from None
    return ActionResult(f"Box upload: {where} (file id {_uploaded_id(reply)}, {byte_count(len(data))})")
