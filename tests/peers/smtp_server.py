"""An SMTP server on loopback (aiosmtpd) that records every accepted message.

It runs in the test's own event loop: plain SMTP, STARTTLS or implicit TLS with a certificate from
the LocalCA, optional AUTH (PLAIN/LOGIN) against one username/password, and failure modes that
answer RCPT with a permanent 550 or DATA with a temporary 451.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from types import TracebackType
from typing import Any, Literal

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.peers.tls import LocalCA

Security = Literal["none", "starttls", "tls"]


@dataclass
class ReceivedMail:
    """One message as the server accepted it."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: EmailMessage
    over_tls: bool
    login: str | None

    def part(self, content_type: str) -> str:
        """The decoded body of the first part of ``content_type`` ("text/plain", "text/html")."""
        for part in self.message.walk():
            if part.get_content_type() == content_type and not part.is_multipart():
                return str(part.get_content()).replace("\r\n", "\n")
        raise KeyError(content_type)


@dataclass
class SmtpPeer:
    """SMTP server on 127.0.0.1 (random port); ``messages`` holds what it accepted, ``sessions`` counts connections."""

    ca: LocalCA | None = None
    security: Security = "none"
    hostnames: Sequence[str] = ("mail.example.org", "localhost", "127.0.0.1")
    username: str | None = None
    password: str | None = None
    reject_recipients: set[str] | Literal["all"] = field(default_factory=set)
    temporary_failure: bool = False
    port: int = 0
    messages: list[ReceivedMail] = field(default_factory=list)
    sessions: int = 0
    _server: asyncio.base_events.Server | None = field(default=None, repr=False)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        tls_context = None
        if self.security != "none":
            if self.ca is None:
                raise ValueError("a LocalCA is needed for TLS")
            tls_context = self.ca.server_context(*self.hostnames)
        handler = _Handler(self)
        auth_kwargs: dict[str, Any] = {}
        if self.username is not None:
            auth_kwargs = {
                "auth_required": True,
                # aiosmtpd only counts STARTTLS as encryption; an implicit-TLS socket is encrypted too.
                "auth_require_tls": self.security == "starttls",
                "authenticator": self._authenticate,
            }

        def factory() -> SMTP:
            self.sessions += 1
            with warnings.catch_warnings():
                # AUTH over implicit TLS is encrypted, though aiosmtpd warns that it does not require TLS.
                warnings.simplefilter("ignore", UserWarning)
                return _smtp()

        def _smtp() -> SMTP:
            return SMTP(
                handler,
                hostname="mail.test",
                loop=loop,
                tls_context=tls_context if self.security == "starttls" else None,
                require_starttls=self.security == "starttls",
                timeout=30,
                **auth_kwargs,
            )

        self._server = await loop.create_server(
            factory, "127.0.0.1", 0, ssl=tls_context if self.security == "tls" else None
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def __aenter__(self) -> SmtpPeer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def recipients(self) -> list[str]:
        """Every envelope recipient of every accepted message."""
        return [rcpt for mail in self.messages for rcpt in mail.rcpt_tos]

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            user, password = auth_data.login.decode(), auth_data.password.decode()
            if user == self.username and password == self.password:
                return AuthResult(success=True, auth_data=user)
        return AuthResult(success=False, handled=False)


class _Handler:
    def __init__(self, peer: SmtpPeer) -> None:
        self.peer = peer

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        rejected = self.peer.reject_recipients
        if rejected == "all" or address in rejected:
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.peer.temporary_failure:
            return "451 4.3.0 Try again later"
        raw = envelope.original_content or b""
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        transport = server.transport
        over_tls = session.ssl is not None or (
            transport is not None and transport.get_extra_info("sslcontext") is not None
        )
        self.peer.messages.append(
            ReceivedMail(
                mail_from=envelope.mail_from or "",
                rcpt_tos=list(envelope.rcpt_tos),
                raw=raw,
                message=parsed,
                over_tls=over_tls,
                login=session.auth_data if isinstance(session.auth_data, str) else None,
            )
        )
        return "250 Message accepted"
