"""UploadFileDropbox: upload the rendered content as a file to Dropbox (HTTP API v2).

* The credential's long-lived ``refreshToken`` is exchanged for a short-lived access token
  (``POST {api}/oauth2/token``, HTTP Basic ``appKey:appSecret``) on every upload.
* ``POST {content}/2/files/upload`` sends the bytes; the ``Dropbox-API-Arg`` header carries
  ``{"path", "mode", "autorename": false}`` as ASCII-only JSON, as Dropbox requires.
* ``writeMode`` "add" (the default) never replaces a file: an existing one fails the step naming
  it (409 ``path/conflict``). "overwrite" replaces it.
* Requests go through the egress guard's HTTP client (HTTPS only, checked addresses).
"""

from __future__ import annotations

import json
from typing import Any

from services.executor.actions.base import ActionContext, ActionDeps, ActionError, ActionResult, permanent
from services.executor.actions.config_readers import required_text, secret_value, text_value
from services.executor.actions.filenames import byte_count, encode_content, join_remote_path
from services.executor.actions.http_requests import http_request
from shared.actions.replies import HttpReply, body_snippet, json_object, redact_error, status_error

WHAT = "Dropbox credential"
_SECRET_KEYS = ("refreshToken", "appSecret")
_WRITE_MODES = ("add", "overwrite")


def _json(reply: HttpReply) -> dict[str, Any]:
    return json_object(reply.text)


def _error_text(reply: HttpReply) -> str:
    body = _json(reply)
    for key in ("error_summary", "error_description", "error"):
        if isinstance(body.get(key), str) and body[key]:
            return str(body[key])
    return body_snippet(reply.text, 300)


async def _access_token(credential: Any, deps: ActionDeps) -> str:
    refresh_token = secret_value(credential, "refreshToken", what=WHAT, required=True) or ""
    app_key = required_text(credential, "appKey", what=WHAT)
    app_secret = secret_value(credential, "appSecret", what=WHAT, required=True) or ""
    reply = await http_request(
        deps.egress,
        "POST",
        deps.settings.dropbox_api_base_url.rstrip("/") + "/oauth2/token",
        what="Dropbox token endpoint",
        timeout=deps.settings.http_timeout_s,
        follow_redirects=False,
        data={"grant_type": "refresh_token", "refresh_token": refresh_token.strip()},
        auth=(app_key, app_secret),
    )
    if reply.status in (400, 401, 403):
        raise permanent(f"Dropbox authentication failed: {_error_text(reply)}", result=f"HTTP {reply.status}")
    if reply.status != 200:
        raise status_error(reply.status, what="Dropbox token endpoint", detail=_error_text(reply))
    token = _json(reply).get("access_token")
    if not isinstance(token, str) or not token:
        raise permanent("Dropbox token endpoint answered without an access_token")
    return token


async def upload_dropbox(ctx: ActionContext, deps: ActionDeps) -> ActionResult:
    credential = ctx.credential
    if not credential:
        raise permanent("Dropbox upload needs a Dropbox credential")
    target = join_remote_path(
        text_value(ctx.config, "targetPath", what="Action config", default="/"),
        text_value(ctx.config, "filename", what="Action config"),
    )
    mode = (text_value(ctx.config, "writeMode", what="Action config", default="add") or "add").lower()
    if mode not in _WRITE_MODES:
        raise permanent(f'Action config has an invalid \'writeMode\' {mode!r} (use "add" or "overwrite")')
    data = encode_content(ctx.content)
    # ensure_ascii: HTTP header values must be ASCII; Dropbox decodes the \\u escapes.
    api_arg = json.dumps({"path": target.path, "mode": mode, "autorename": False}, ensure_ascii=True)

    try:
        token = await _access_token(credential, deps)
        reply = await http_request(
            deps.egress,
            "POST",
            deps.settings.dropbox_content_base_url.rstrip("/") + "/2/files/upload",
            what="Dropbox upload",
            timeout=deps.settings.upload_timeout_s,
            follow_redirects=False,
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/octet-stream",
                "Dropbox-API-Arg": api_arg,
            },
            content=data,
        )
        _check(reply, target.path, mode, deps.settings.max_retry_after_s)
    except ActionError as exc:
        raise redact_error(
            exc, [str(credential.get(k) or "") for k in _SECRET_KEYS if credential.get(k)]
        ) from None
    body = _json(reply)
    shown = body.get("path_display") or target.path
    rev = body.get("rev") or "?"
    return ActionResult(f"Dropbox upload: {shown} (rev: {rev}, {byte_count(len(data))})")


def _check(reply: HttpReply, path: str, mode: str, cap: float) -> None:
    if reply.status == 200:
        return
    summary = _error_text(reply)
    if reply.status == 409:
        if "conflict" in summary:
            raise permanent(
                f"Dropbox upload refused: {path} already exists and writeMode is {mode!r} ({summary})",
                result="HTTP 409",
            )
        raise permanent(f"Dropbox upload to {path} failed: {summary}", result="HTTP 409")
    if reply.status in (401, 403):
        raise permanent(f"Dropbox refused the access token ({summary})", result=f"HTTP {reply.status}")
    raise status_error(
        reply.status, what=f"Dropbox upload to {path}", detail=summary, retry_after=reply.retry_after()
    )
