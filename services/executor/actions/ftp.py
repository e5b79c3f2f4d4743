"""UploadFileFtp: store the rendered content as a file on an FTP server (aioftp).

* The host is resolved and checked once by the egress guard; the control connection and **every
  data connection** go to that checked address. The address a server names in its PASV reply is
  ignored (only its port is used), which closes the classic FTP bounce / SSRF hole where a
  server steers the client's data connection to an internal host.
* ``tls: "explicit"`` upgrades the control connection with AUTH TLS before logging in, then
  protects data connections (PBSZ 0 / PROT P, reusing the TLS session as many servers require);
  certificates are verified against the credential's host name with ``client_ssl_context()``.
* Only passive mode is supported: in active mode the server would have to connect back into the
  executor, which no container network allows. ``passive: false`` fails with a clear message.
* ``overwrite: false`` checks for the file first (MLST, else LIST) and fails naming it when it
  exists. FTP has no atomic "create only if absent", so a file appearing between the check and
  the upload is still replaced; the window is a single round trip.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import aioftp
from aioftp.common import SSLSessionBoundContext

from services.executor.actions.base import (
    ActionContext,
    ActionDeps,
    ActionError,
    ActionResult,
    permanent,
    transient,
)
from services.executor.actions.config_readers import (
    flag_value,
    port_value,
    required_text,
    secret_value,
    text_value,
)
from services.executor.actions.http_requests import blocked_error
from services.executor.egress import EgressBlocked
from shared.actions.file_names import RemotePath, byte_count, encode_content, join_remote_path
from shared.actions.replies import find_cause
from shared.tls import client_ssl_context

WHAT = "FTP credential"
CONNECT_TIMEOUT_S = 30.0


class _PinnedAddressClient(aioftp.Client):
    """An aioftp client whose every connection goes to one pre-checked IP address.

    ``connect(host, ...)`` keeps the host *name* for TLS (SNI and certificate check), while the TCP
    connection, control and data alike, is made to ``address``.
    """

    def __init__(self, address: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._address = address

    async def _open_connection(
        self, host: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        # Overrides aioftp's private hook: ``host`` may be an address from a PASV reply and is ignored.
        context: ssl.SSLContext | None = None
        if self._stream is not None:
            ssl_object = self._stream.writer.transport.get_extra_info("ssl_object")
            if ssl_object is not None:
                context = SSLSessionBoundContext(
                    ssl.PROTOCOL_TLS_CLIENT, context=ssl_object.context, session=ssl_object.session
                )
        return await asyncio.wait_for(
            asyncio.open_connection(
                self._address, port, ssl=context, server_hostname=self.server_host if context else None
            ),
            self.connection_timeout,
        )


def _tls_mode(credential: Any) -> bool:
    mode = (text_value(credential, "tls", what=WHAT, default="none") or "none").lower()
    if mode not in ("none", "explicit"):
        raise permanent(f'{WHAT} has an invalid \'tls\': {mode!r} (use "none" or "explicit")')
    return mode == "explicit"


def _url(host: str, port: int, target: RemotePath) -> str:
    authority = f"[{host}]" if ":" in host else host
    if port != 21:
        authority += f":{port}"
    return f"ftp://{authority}{target.path}"


async def upload_ftp(ctx: ActionContext, deps: ActionDeps) -> ActionResult:
    credential = ctx.credential
    if not credential:
        raise permanent("FTP upload needs an FTP credential")
    host = required_text(credential, "host", what=WHAT)
    port = port_value(credential, "port", what=WHAT, default=21)
    username = required_text(credential, "username", what=WHAT)
    password = secret_value(credential, "password", what=WHAT, required=True)
    assert password is not None
    if not flag_value(credential, "passive", what=WHAT, default=True):
        raise permanent(
            "Active-mode FTP (passive: false) is not supported: the server would have to connect back "
            "into the executor. Enable passive mode on the credential."
        )
    explicit_tls = _tls_mode(credential)
    target = join_remote_path(
        text_value(ctx.config, "remotePath", what="Action config", default="/"),
        text_value(ctx.config, "filename", what="Action config"),
    )
    overwrite = flag_value(ctx.config, "overwrite", what="Action config", default=True)
    data = encode_content(ctx.content)
    url = _url(host, port, target)

    try:
        address, connect_port = await deps.egress.resolve(host, port)
    except EgressBlocked as exc:
        raise blocked_error(exc, f"FTP server {host}") from None

    timeout = deps.settings.upload_timeout_s
    client = _PinnedAddressClient(
        address,
        connection_timeout=min(CONNECT_TIMEOUT_S, timeout),
        socket_timeout=timeout,
        path_timeout=timeout,
    )
    stage = "connecting"
    try:
        async with asyncio.timeout(timeout):
            await client.connect(host, connect_port)
            if explicit_tls:
                stage = "starting TLS (AUTH TLS)"
                await client.upgrade_to_tls(client_ssl_context())
            stage = "logging in"
            await client.login(username, password)
            if target.directory != "/":
                stage = f"creating folder {target.directory}"
                await client.make_directory(target.directory)
            if not overwrite:
                stage = f"checking whether {target.path} exists"
                if await client.exists(target.path):
                    raise permanent(f"FTP upload refused: {url} already exists and overwrite is false")
            stage = f"uploading {target.path}"
            async with client.upload_stream(target.path) as stream:
                await stream.write(data)
            stage = "closing the session"
            await client.quit()
    except ActionError:
        raise
    except BaseException as exc:
        error = _classify(exc, stage=stage, host=host, username=username, url=url)
        if error is None:
            raise
        raise error from None
    finally:
        client.close()
    tls_note = ", explicit TLS" if explicit_tls else ""
    return ActionResult(f"FTP upload: {url} ({byte_count(len(data))}{tls_note})")


def _classify(exc: BaseException, *, stage: str, host: str, username: str, url: str) -> ActionError | None:
    """Authentication, refusals (5xx) and certificate problems are permanent; the network and 4xx transient."""
    if isinstance(exc, aioftp.StatusCodeError):
        code = str(exc.received_codes[-1]) if exc.received_codes else "?"
        detail = " ".join(str(line) for line in exc.info).strip()[:300]
        if stage == "logging in" and code in ("530", "331", "332"):
            return permanent(f"FTP login to {host} failed for user {username!r} ({code} {detail})")
        if stage.startswith("starting TLS"):
            return permanent(
                f"FTP server {host} does not support explicit TLS (AUTH TLS answered {code} {detail})"
            )
        message = f"FTP {stage} failed for {url}: {code} {detail}".rstrip()
        return transient(message) if code.startswith("4") else permanent(message)
    if find_cause(exc, ssl.SSLCertVerificationError) is not None:
        return permanent(f"FTP server {host}: the TLS certificate could not be verified ({exc})")
    blocked = find_cause(exc, EgressBlocked)
    if blocked is not None:
        return blocked_error(blocked, f"FTP server {host}")
    if isinstance(exc, TimeoutError):
        return transient(f"FTP {stage} timed out ({url})")
    if isinstance(exc, OSError | ConnectionError | EOFError | asyncio.IncompleteReadError):
        return transient(f"FTP {stage} failed for {url}: {type(exc).__name__}: {exc}")
    return None
