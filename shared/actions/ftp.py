"""UploadFileFtp: store the rendered content as a file on an FTP server (aioftp): credential and ``perform``.

* Every connection, control and **data** alike, is made by ``host.connect_socket`` (the egress
  guard). Data connections go to the address the control connection reached: the address a server
  names in its PASV reply is ignored (only its port is used), which closes the classic FTP bounce /
  SSRF hole where a server steers the client's data connection to an internal host.
* ``tls: "explicit"`` upgrades the control connection with AUTH TLS before logging in, then
  protects data connections (PBSZ 0 / PROT P, reusing the TLS session as many servers require);
  certificates are verified against the credential's host name with ``client_ssl_context()``.
* Only passive mode is supported: in active mode the server would have to connect back into the
  executor, which no container network allows. ``passive: false`` fails with a clear message.
* ``overwrite: false`` checks for the file first (MLST, else LIST) and fails naming it when it
  exists. FTP has no atomic "create only if absent", so a file appearing between the check and
  the upload is still replaced; the window is a single round trip.

aioftp is imported when a file is uploaded, never by the API.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BeforeValidator

from shared.actions.file_names import byte_count
from shared.actions.file_transfer import CONNECT_TIMEOUT_S, FileTransferConfig, network_error, prepare_upload
from shared.actions.outcomes import ActionError, ActionResult, permanent, transient
from shared.actions.replies import find_cause
from shared.actions.spec import ActionHost, ActionSpec, StepRun
from shared.credential_fields import CredentialData, Host, Line, Port, _lower, _secret
from shared.enums import ActionType, CredentialType
from shared.tls import client_ssl_context

if TYPE_CHECKING:
    import aioftp

# --- credentials ------------------------------------------------------------------------------------


class FtpCredential(CredentialData):
    """FTP server (type 2)."""

    host: Host
    port: Port = 21
    username: Line
    password: Line = _secret(required=True)
    passive: bool = True
    tls: Annotated[Literal["none", "explicit"], BeforeValidator(_lower)] = "none"


# --- perform ----------------------------------------------------------------------------------------

WHAT = "FTP credential"


def _guarded_client(host: ActionHost, what: str, *, connect_timeout: float, **options: Any) -> aioftp.Client:
    """An aioftp client whose every TCP connection comes from ``host.connect_socket``.

    The control connection goes to a checked address of the server's name; each data connection to
    that same address (the PASV reply's address is ignored). ``connect(name, ...)`` keeps the name
    for TLS (SNI and the certificate check).

    A protected data connection starts its TLS handshake only once the transfer command (STOR,
    LIST) is sent: vsftpd, like many servers, accepts the data connection when it receives that
    command, so a handshake made first (as aioftp does) waits for a server that waits for the command.
    """
    import aioftp
    from aioftp.client import DataConnectionThrottleStreamIO
    from aioftp.common import SSLSessionBoundContext, async_enterable

    class GuardedClient(aioftp.Client):
        address: str | None = None

        async def _open_connection(
            self, server: str, port: int
        ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            # Overrides aioftp's private hook: ``server`` may be an address from a PASV reply. Plain
            # TCP: the control connection is upgraded by AUTH TLS, data connections in get_stream.
            sock = await host.connect_socket(
                self.address or self.server_host, port, timeout=connect_timeout, what=what
            )
            if self.address is None:
                self.address = str(sock.getpeername()[0])
            try:
                return await asyncio.wait_for(asyncio.open_connection(sock=sock), connect_timeout)
            except BaseException:
                sock.close()
                raise

        def _data_tls(self) -> ssl.SSLContext | None:
            """The control connection's TLS session, for a data connection to resume (None: plain)."""
            ssl_object = self.stream.writer.transport.get_extra_info("ssl_object")
            if ssl_object is None:
                return None
            return SSLSessionBoundContext(
                ssl.PROTOCOL_TLS_CLIENT, context=ssl_object.context, session=ssl_object.session
            )

        @async_enterable
        async def get_stream(
            self,
            command: str | None = None,
            expected_codes: str | tuple[str, ...] = (),
            wait_codes: str | tuple[str, ...] = (),
            censor_after: int | None = None,
            conn_type: str = "I",
            offset: int = 0,
        ) -> DataConnectionThrottleStreamIO:
            context = self._data_tls()
            reader, writer = await self.get_passive_connection(conn_type)  # type: ignore[arg-type]
            try:
                if offset:
                    await self.command("REST " + str(offset), "350")
                await self.command(command, censor_after=censor_after)
                handshake = None
                if context is not None:
                    # Concurrently with reading the reply: some servers answer 150 before the
                    # handshake (vsftpd), others once it is done.
                    handshake = asyncio.ensure_future(
                        writer.start_tls(context, server_hostname=self.server_host)
                    )
                try:
                    await self.command(None, expected_codes, wait_codes)
                    if handshake is not None:
                        await asyncio.wait_for(handshake, connect_timeout)
                finally:
                    if handshake is not None and not handshake.done():
                        handshake.cancel()
            except BaseException:
                writer.close()
                raise
            return DataConnectionThrottleStreamIO(
                self, reader, writer, throttles={"_": self.throttle}, timeout=self.socket_timeout
            )

    return GuardedClient(connection_timeout=connect_timeout, **options)


def _explicit_tls(credential: FtpCredential) -> bool:
    mode = (credential.tls or "none").lower()
    if mode not in ("none", "explicit"):
        raise permanent(f'{WHAT} has an invalid \'tls\': {mode!r} (use "none" or "explicit")')
    return mode == "explicit"


async def upload_ftp(
    host: ActionHost, step: StepRun, config: FileTransferConfig, credential: FtpCredential | None
) -> ActionResult:
    import aioftp

    if credential is None:
        raise permanent("FTP upload needs an FTP credential")
    if not credential.password:
        raise permanent(f"{WHAT} is missing 'password'")
    if credential.passive is False:
        raise permanent(
            "Active-mode FTP (passive: false) is not supported: the server would have to connect back "
            "into the executor. Enable passive mode on the credential."
        )
    explicit_tls = _explicit_tls(credential)
    server, username = credential.host, credential.username
    upload = prepare_upload(
        config, step.content, scheme="ftp", host=server, port=credential.port, default_port=21
    )
    url, target = upload.url, upload.target

    timeout = host.settings.upload_timeout_s
    client = _guarded_client(
        host,
        f"FTP server {server}",
        connect_timeout=min(CONNECT_TIMEOUT_S, timeout),
        socket_timeout=timeout,
        path_timeout=timeout,
    )
    stage = "connecting"
    try:
        async with asyncio.timeout(timeout):
            await client.connect(server, credential.port)
            if explicit_tls:
                stage = "starting TLS (AUTH TLS)"
                await client.upgrade_to_tls(client_ssl_context())
            stage = "logging in"
            await client.login(username, credential.password)
            if target.directory != "/":
                stage = f"creating folder {target.directory}"
                await client.make_directory(target.directory)
            if not upload.overwrite:
                stage = f"checking whether {target.path} exists"
                if await client.exists(target.path):
                    raise permanent(f"FTP upload refused: {url} already exists and overwrite is false")
            stage = f"uploading {target.path}"
            async with client.upload_stream(target.path) as stream:
                await stream.write(upload.data)
            stage = "closing the session"
            await client.quit()
    except BaseException as exc:
        error = _classify(aioftp, exc, stage=stage, host=server, username=username, url=url)
        if error is None:
            raise
        raise error from None
    finally:
        client.close()
    tls_note = ", explicit TLS" if explicit_tls else ""
    return ActionResult(f"FTP upload: {url} ({byte_count(len(upload.data))}{tls_note})")


def _classify(
    aioftp: Any, exc: BaseException, *, stage: str, host: str, username: str, url: str
) -> ActionError | None:
    """Authentication, refusals (5xx) and certificate problems are permanent; the network and 4xx transient."""
    action_error = find_cause(exc, ActionError)  # ours, or the egress guard's refusal of a connection
    if isinstance(action_error, ActionError):
        return action_error
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
    return network_error("FTP", exc, stage=stage, url=url)


SPECS: list[ActionSpec[Any, Any]] = [
    ActionSpec(
        ActionType.UploadFileFtp,
        FileTransferConfig,
        frozenset({CredentialType.Ftp}),
        FtpCredential,
        upload_ftp,
    )
]
