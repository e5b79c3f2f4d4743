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
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any, ClassVar

from shared.actions.config_fields import as_text, dropbox_path, one_of
from shared.actions.file_names import byte_count, encode_content, join_remote_path
from shared.actions.file_transfer import FileName, utc_filename
from shared.actions.outcomes import ActionError, ActionResult, permanent, required
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
    Token,
    _secret,
)
from shared.enums import ActionType, CredentialType

# --- credentials ------------------------------------------------------------------------------------


class DropboxCredential(CredentialData):
    """Dropbox app with an offline refresh token (type 13)."""

    refresh_token: Token = _secret(required=True)
    app_key: Token
    app_secret: Token = _secret(required=True)


# --- config -----------------------------------------------------------------------------------------


class UploadDropboxConfig(ActionConfig):
    stamped: ClassVar[Mapping[str, Callable[[datetime], str]]] = {"filename": utc_filename}

    target_path: Annotated[str, as_text(dropbox_path)] = "/"
    filename: FileName | None = None
    write_mode: Annotated[str, as_text(one_of("add", "overwrite"))] = "add"


# --- perform ----------------------------------------------------------------------------------------


WHAT = "Dropbox credential"


def _json(reply: HttpReply) -> dict[str, Any]:
    return json_object(reply.text)


def _error_text(reply: HttpReply) -> str:
    body = _json(reply)
    for key in ("error_summary", "error_description", "error"):
        if isinstance(body.get(key), str) and body[key]:
            return str(body[key])
    return body_snippet(reply.text, 300)


async def _access_token(credential: DropboxCredential, host: ActionHost) -> str:
    refresh_token = required(credential.refresh_token, "refreshToken", what=WHAT, strip=False)
    app_key = required(credential.app_key, "appKey", what=WHAT)
    app_secret = required(credential.app_secret, "appSecret", what=WHAT, strip=False)
    reply = await host.http_request(
        "POST",
        host.settings.dropbox_api_base_url.rstrip("/") + "/oauth2/token",
        what="Dropbox token endpoint",
        timeout=host.settings.http_timeout_s,
        follow_redirects=False,
        data={"grant_type": "refresh_token", "refresh_token": refresh_token.strip()},
        auth=(app_key, app_secret),
    )
    return oauth_access_token(reply, provider="Dropbox", detail=_error_text(reply))


async def upload_dropbox(
    host: ActionHost, step: StepRun, config: UploadDropboxConfig, credential: DropboxCredential | None
) -> ActionResult:
    if credential is None:
        raise permanent("Dropbox upload needs a Dropbox credential")
    target = join_remote_path(config.target_path or "/", config.filename or None)
    mode = config.write_mode  # "add" or "overwrite": the config model checks and lower-cases it
    data = encode_content(step.content)
    # ensure_ascii: HTTP header values must be ASCII; Dropbox decodes the \\u escapes.
    api_arg = json.dumps({"path": target.path, "mode": mode, "autorename": False}, ensure_ascii=True)

    try:
        token = await _access_token(credential, host)
        reply = await host.http_request(
            "POST",
            host.settings.dropbox_content_base_url.rstrip("/") + "/2/files/upload",
            what="Dropbox upload",
            timeout=host.settings.upload_timeout_s,
            follow_redirects=False,
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/octet-stream",
                "Dropbox-API-Arg": api_arg,
            },
            content=data,
        )
        _check(reply, target.path, mode, host.settings.max_retry_after_s)
    except ActionError as exc:
        raise redact_error(exc, [s for s in (credential.refresh_token, credential.app_secret) if s]) from None
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


SPECS: list[ActionSpec[Any, Any]] = [
    ActionSpec(
        ActionType.UploadFileDropbox,
        UploadDropboxConfig,
        frozenset({CredentialType.Dropbox}),
        DropboxCredential,
        upload_dropbox,
    )
]
