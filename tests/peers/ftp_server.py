"""A real FTP server on loopback (aioftp), optionally with explicit TLS (AUTH TLS / PROT P).

aioftp's server only speaks implicit TLS, so ``FtpPeer`` adds the two pieces explicit FTPS needs:
an ``AUTH TLS`` command that upgrades the control connection in place, and passive data
listeners that speak TLS once the client sent ``PROT P``. With ``require_tls`` the server
refuses USER before AUTH TLS, as hardened servers (vsftpd ``force_local_logins_ssl``) do.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path, PurePosixPath

import aioftp
from aioftp.common import Connection

from tests.peers.peer import Peer, credential_data


class _ExplicitTlsServer(aioftp.Server):
    def __init__(
        self,
        users: list[aioftp.User],
        *,
        tls_context: ssl.SSLContext | None,
        require_tls: bool,
        **kwargs: object,
    ) -> None:
        super().__init__(users, **kwargs)  # type: ignore[arg-type]
        self.tls_context = tls_context
        self.require_tls = require_tls
        self.commands_mapping["auth"] = self.auth
        self.commands_mapping["pbsz"] = self.pbsz
        self.commands_mapping["prot"] = self.prot
        self.commands_mapping["user"] = self._user_after_tls

    async def auth(self, connection: Connection, rest: str | PurePosixPath) -> bool:
        if self.tls_context is None or str(rest).upper() not in ("TLS", "SSL"):
            connection.response("504", "AUTH not supported")
            return True
        # The 234 must reach the client in plain text before the handshake starts.
        await self.write_response(connection.command_connection, "234", "AUTH TLS successful")
        writer: asyncio.StreamWriter = connection.command_connection.writer
        await writer.start_tls(self.tls_context)
        connection.tls = True
        return True

    # PBSZ and PROT come right after AUTH TLS, before USER (RFC 4217); aioftp wants a login first.
    async def pbsz(self, connection: Connection, rest: str | PurePosixPath) -> bool:
        connection.response("200", "PBSZ=0")
        return True

    async def prot(self, connection: Connection, rest: str | PurePosixPath) -> bool:
        if not connection.future.tls.done():
            connection.response("503", "PROT needs AUTH TLS first")
        elif rest == "P":
            connection.protected = True
            connection.response("200", "data connections protected")
        else:
            connection.response("536", "only PROT P is supported")
        return True

    async def _user_after_tls(self, connection: Connection, rest: str) -> bool:
        if self.require_tls and not connection.future.tls.done():
            connection.response("530", "AUTH TLS required before login")
            return True
        return await self.user(connection, rest)

    async def _start_passive_server(
        self,
        connection: Connection,
        handler_callback: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
    ) -> asyncio.Server:
        protected = connection.future.protected.done()
        return await asyncio.start_server(
            handler_callback,
            connection.server_host,
            0,
            ssl=self.tls_context if protected else None,
        )


class FtpPeer(Peer):
    """An FTP server on 127.0.0.1 with one user whose root is ``root``.

    ``pasv_address`` makes PASV replies name another address (a hostile or NAT-confused server);
    ``epsv=False`` turns EPSV off so clients must use PASV.
    """

    def __init__(
        self,
        root: Path,
        *,
        username: str = "uploader",
        password: str = "s3cret pass",
        tls_context: ssl.SSLContext | None = None,
        require_tls: bool = False,
        pasv_address: str | None = None,
        epsv: bool = True,
    ) -> None:
        self.root = root
        self.username = username
        self.password = password
        user = aioftp.User(username, password, home_path="/", base_path=root)
        self._server = _ExplicitTlsServer(
            [user],
            tls_context=tls_context,
            require_tls=require_tls,
            ipv4_pasv_forced_response_address=pasv_address,
            socket_timeout=10,
            idle_timeout=10,
        )
        if not epsv:
            del self._server.commands_mapping["epsv"]
        self.port = 0

    async def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        await self._server.start("127.0.0.1", 0)
        self.port = self._server.server_port

    async def stop(self) -> None:
        await self._server.close()

    def credential(self, **overrides: object) -> dict[str, object]:
        """Canonical Ftp credential data pointing at this server (host "localhost")."""
        defaults: dict[str, object] = {"host": "localhost", "port": self.port, "passive": True, "tls": "none"}
        return credential_data({**defaults, "username": self.username, "password": self.password}, overrides)
