"""SendEmail: one multipart (text + sanitised HTML) message over SMTP: credential, config model and ``perform``."""

from __future__ import annotations

import html
import re
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from html.parser import HTMLParser
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, model_validator

from shared.actions.config_fields import OneLineText, as_text, email, emails
from shared.actions.outcomes import ActionError, ActionResult, permanent, transient
from shared.actions.recipients import left_out_note, split_recipients
from shared.actions.replies import find_cause, redact_error
from shared.actions.spec import ActionConfig, ActionHost, ActionSpec, StepRun
from shared.credential_fields import (
    CredentialData,
    Email,
    Host,
    Line,
    Port,
    _lower,
    _secret,
)
from shared.enums import ActionType, CredentialType, Plan
from shared.tls import client_ssl_context

# --- credentials ------------------------------------------------------------------------------------


class SmtpCredential(CredentialData):
    """SMTP server (type 0)."""

    legacy_fields: ClassVar[frozenset[str]] = frozenset({"useSsl"})

    host: Host
    port: Port = 587
    username: Line | None = None
    password: Line | None = _secret()
    security: Annotated[Literal["starttls", "tls", "none"], BeforeValidator(_lower)] = "starttls"
    from_address: Email
    from_name: Line | None = None

    @model_validator(mode="before")
    @classmethod
    def _legacy_use_ssl(cls, data: Any) -> Any:
        if not isinstance(data, Mapping) or "useSsl" not in data:
            return data
        data = dict(data)
        use_ssl = data.pop("useSsl")
        if data.get("security") is None and use_ssl is not None:
            if not isinstance(use_ssl, bool):
                raise ValueError("useSsl must be true or false")
            # Port 465 only speaks implicit TLS; elsewhere "SSL" in the old UI meant STARTTLS.
            implicit = str(data.get("port")) == "465"
            data["security"] = ("tls" if implicit else "starttls") if use_ssl else "none"
        return data

    @classmethod
    def from_stored(cls, data: Mapping[str, Any]) -> SmtpCredential:
        stored = dict(data)
        use_ssl = stored.pop("useSsl", None)
        if not stored.get("security"):
            # Rows saved before ``security`` carry only useSsl, which meant STARTTLS (false: none).
            stored["security"] = "none" if use_ssl is False or str(use_ssl).lower() == "false" else "starttls"
        if not stored.get("port"):
            stored["port"] = 465 if stored["security"] == "tls" else 587
        return super().from_stored(stored)

    def cross_field_errors(self) -> list[tuple[str, str]]:
        if self.password and not self.username:
            return [("username", "is required when a password is set")]
        if self.username and not self.password:
            return [("password", "is required when a username is set")]
        return []


# --- config -----------------------------------------------------------------------------------------


class SendEmailConfig(ActionConfig):
    to: Annotated[str, as_text(emails)]
    cc: Annotated[str, as_text(emails)] | None = None
    subject: OneLineText
    reply_to: Annotated[str, as_text(email)] | None = None


# --- perform ----------------------------------------------------------------------------------------

EMAIL_CAPS = {Plan.Free: 1, Plan.Paid: 10}
SECURITY_MODES = ("starttls", "tls", "none")

_CREDENTIAL = "SMTP credential"
_CONFIG = "Email action config"
# Same detection as the original: content with common block tags is treated as HTML.
_HTML_HINT = re.compile(r"<(p|div|br|h[1-6]|ul|ol|table|html|body)\b", re.IGNORECASE)
_ADDRESS = re.compile(r"^[^@\s<>,;:\"()\[\]\\]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")

# nh3's defaults already drop script/style/iframe/object/embed and every form control; these
# narrow them further: no data: or javascript: URLs, and inline styles limited to layout and text.
_URL_SCHEMES = {"http", "https", "mailto", "tel", "cid"}
_STYLE_PROPERTIES = {
    "color",
    "background-color",
    "font-family",
    "font-size",
    "font-style",
    "font-weight",
    "text-align",
    "text-decoration",
    "line-height",
    "white-space",
    "vertical-align",
    "width",
    "max-width",
    "height",
    "margin",
    "margin-top",
    "margin-bottom",
    "margin-left",
    "margin-right",
    "padding",
    "padding-top",
    "padding-bottom",
    "padding-left",
    "padding-right",
    "border",
    "border-collapse",
    "border-color",
    "border-style",
    "border-width",
    "display",
}
# nh3 checks style property names only and keeps their values verbatim: `width: expression(...)`
# (old IE), `url(...)`, CSS escapes and comments would survive. A value may hold words, numbers,
# units, colours, quotes, commas and the colour functions with numeric arguments; anything else
# (another function, "\", "/*", "@", "<", ";" smuggled in) drops the declaration.
_SAFE_STYLE_VALUE = re.compile(
    r"(?:[a-z0-9#%.+\- ,'\"]|(?:rgba?|hsla?)\([0-9 .,%/]*\))*",
    re.ASCII,
)
# Added to nh3's ALLOWED_ATTRIBUTES (nh3 is imported when an email is sent, not by the API).
_EXTRA_ATTRIBUTES = {"*": {"style", "align", "title", "dir", "lang"}}
_DROPPED_WITH_CONTENT = {"script", "style", "textarea", "select", "button", "template", "noscript"}
_BLOCK_TAGS = frozenset(
    "p div h1 h2 h3 h4 h5 h6 ul ol li table tr blockquote pre hr section article header footer".split()
)


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """The Smtp credential, read by its canonical keys."""

    host: str
    port: int
    security: str
    username: str | None
    password: str | None
    from_address: str
    from_name: str | None


@dataclass(frozen=True, slots=True)
class Recipients:
    """Who receives the message after the plan's cap, and who was left out."""

    to: list[str]
    cc: list[str]
    left_out: list[str]
    cap: int
    no_cc: bool

    @property
    def all(self) -> list[str]:
        return self.to + self.cc


async def send_email(
    host: ActionHost, step: StepRun, config: SendEmailConfig, credential: SmtpCredential | None
) -> ActionResult:
    smtp = read_smtp_credential(credential)
    recipients = cap_recipients(split_recipients(config.to), split_recipients(config.cc), step.plan)
    message = build_message(step, config, smtp, recipients)

    count = len(recipients.all)
    await host.quota.reserve(count)
    try:
        refused = await _deliver(smtp, message, recipients.all, host)
    except ActionError as exc:
        await host.quota.release(count)
        raise redact_error(exc, [smtp.password] if smtp.password else []) from None
    except BaseException:
        await host.quota.release(count)
        raise
    if refused:
        await host.quota.release(len(refused))
    delivered = [r for r in recipients.all if r not in refused]
    text = f"Email sent to {', '.join(delivered)}"
    if refused:
        text += " (refused by the server: " + ", ".join(f"{r}: {refused[r]}" for r in refused) + ")"
    text += left_out_note(recipients.left_out, step.plan, recipients.cap, no_cc=recipients.no_cc)
    return ActionResult(text)


def read_smtp_credential(credential: SmtpCredential | None) -> SmtpSettings:
    if credential is None:
        raise permanent("No SMTP credential is attached to this step")
    security = credential.security
    from_name = (credential.from_name or "").strip()
    return SmtpSettings(
        host=credential.host,
        port=credential.port,
        security=security,
        username=credential.username or None,
        # Not stripped: leading or trailing spaces can be part of a password.
        password=credential.password or None,
        from_address=credential.from_address,
        from_name=" ".join(from_name.split()) if from_name else None,
    )


def cap_recipients(to: Sequence[str], cc: Sequence[str], plan: Plan) -> Recipients:
    """Apply the plan's recipient cap, To first; the free plan never sends CC."""
    invalid = [a for a in [*to, *cc] if not _ADDRESS.match(a)]
    if invalid:
        raise permanent(f"Not email addresses: {', '.join(a[:80] for a in invalid)}")
    if not to:
        raise permanent("Email action config 'to' has no recipient")
    cap = EMAIL_CAPS.get(plan, EMAIL_CAPS[Plan.Free])
    to_seen = {a.lower() for a in to}
    cc = [a for a in cc if a.lower() not in to_seen]
    if plan is Plan.Free:
        kept_to, kept_cc = list(to[:cap]), list[str]()
        return Recipients(kept_to, kept_cc, [*to[cap:], *cc], cap, no_cc=True)
    kept_to = list(to[:cap])
    kept_cc = list(cc[: cap - len(kept_to)])
    left_out = [*to[cap:], *cc[len(kept_cc) :]]
    return Recipients(kept_to, kept_cc, left_out, cap, no_cc=False)


def build_message(
    step: StepRun, config: SendEmailConfig, smtp: SmtpSettings, recipients: Recipients
) -> EmailMessage:
    subject = " ".join(config.subject.split())
    reply_to = (config.reply_to or "").strip() or None
    if reply_to and not _ADDRESS.match(reply_to):
        raise permanent(f"Email action config 'replyTo' is not an email address: {reply_to[:80]}")
    html_body, text_body = render_bodies(step.content)

    message = EmailMessage()
    message["From"] = formataddr((smtp.from_name or "", smtp.from_address))
    message["To"] = ", ".join(recipients.to)
    if recipients.cc:
        message["Cc"] = ", ".join(recipients.cc)
    if reply_to:
        message["Reply-To"] = reply_to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    # Stable across retries so receiving systems can drop a duplicate delivery.
    domain = smtp.from_address.rsplit("@", 1)[1].lower()
    message["Message-ID"] = f"<{step.idempotency_key}@{domain}>"
    message["X-Workflow-Run"] = str(step.run_id)
    message.set_content(text_body)
    message.add_alternative(html_body, subtype="html")
    return message


def render_bodies(content: str) -> tuple[str, str]:
    """(html, text): HTML content is sanitised and also converted to text; plain text is escaped into HTML."""
    if _HTML_HINT.search(content):
        safe = sanitize_html(content)
        return safe, html_to_text(safe)
    escaped = html.escape(content).replace("\r\n", "\n").replace("\r", "\n").replace("\n", "<br>\n")
    wrapped = f'<div style="white-space: pre-wrap; font-family: sans-serif;">{escaped}</div>'
    return wrapped, content


def sanitize_html(content: str) -> str:
    import nh3  # the API process does not need it

    return nh3.clean(
        content,
        attributes={
            **{tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()},
            **_EXTRA_ATTRIBUTES,
        },
        url_schemes=_URL_SCHEMES,
        filter_style_properties=_STYLE_PROPERTIES,
        link_rel="noopener noreferrer",
        clean_content_tags=_DROPPED_WITH_CONTENT,
        attribute_filter=_safe_style,
    )


def _safe_style(_tag: str, attribute: str, value: str) -> str | None:
    """Keep only the declarations of a style attribute whose values pass _SAFE_STYLE_VALUE."""
    if attribute != "style":
        return value
    kept = []
    for declaration in value.split(";"):
        name, colon, rest = declaration.partition(":")
        if colon and _SAFE_STYLE_VALUE.fullmatch(rest.strip().lower()):
            kept.append(f"{name.strip()}:{rest.strip()}")
    return ";".join(kept) or None


class _TextExtractor(HTMLParser):
    """Sanitised HTML to readable text: block elements and <br> become line breaks, links keep their URL."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in ("td", "th"):
            self.parts.append("\t")
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")
        if tag == "a":
            self._href = dict(attrs).get("href")

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")
        elif tag == "a" and self._href:
            self.parts.append(f" ({self._href})")
            self._href = None

    def handle_data(self, data: str) -> None:
        self.parts.append(re.sub(r"\s+", " ", data))


def html_to_text(markup: str) -> str:
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    lines = [re.sub(r" {2,}", " ", line).strip() for line in "".join(parser.parts).splitlines()]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


async def _deliver(
    smtp: SmtpSettings, message: EmailMessage, recipients: list[str], host: ActionHost
) -> dict[str, str]:
    """Send through the egress-checked socket; returns the recipients the server refused (some accepted)."""
    import aiosmtplib  # the API process loads no SMTP client

    timeout = host.settings.smtp_timeout_s
    where = f"SMTP server {smtp.host}:{smtp.port}"
    sock = await host.connect_socket(smtp.host, smtp.port, timeout=timeout, what=where)

    client = aiosmtplib.SMTP(
        hostname=smtp.host,
        sock=sock,
        use_tls=smtp.security == "tls",
        start_tls=smtp.security == "starttls",
        tls_context=client_ssl_context() if smtp.security != "none" else None,
        timeout=timeout,
        local_hostname=smtp.from_address.rsplit("@", 1)[1],
    )
    try:
        await client.connect()
        if smtp.username and smtp.password:
            await client.login(smtp.username, smtp.password)
        errors, _ = await client.send_message(message, sender=smtp.from_address, recipients=recipients)
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        raise _smtp_error(exc, where, smtp) from None
    finally:
        if client.is_connected:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                client.close()
        sock.close()
    return {address: f"{response.code} {response.message}" for address, response in errors.items()}


def _smtp_error(exc: BaseException, where: str, smtp: SmtpSettings) -> ActionError:
    """SMTP 5xx, authentication and TLS verification failures are permanent; 4xx and network trouble transient."""
    import aiosmtplib

    if find_cause(exc, ssl.SSLCertVerificationError) is not None:
        return permanent(f"{where}: TLS certificate could not be verified for host {smtp.host}")
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return permanent(f"{where} rejected the login for user {smtp.username}: {exc.code} {exc.message}")
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        detail = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
        if any(400 <= code < 500 for code in codes):
            return transient(f"{where} temporarily refused every recipient: {detail}")
        return permanent(f"{where} refused every recipient: {detail}")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        text = f"{where} answered {exc.code} {exc.message}"
        return transient(text) if 400 <= exc.code < 500 else permanent(text)
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return transient(f"{where} timed out: {exc}")
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected | aiosmtplib.SMTPConnectError | OSError):
        return transient(f"{where}: connection failed: {exc}")
    # Remaining SMTPExceptions are capability mismatches (no STARTTLS, no AUTH) that a retry cannot fix.
    return permanent(f"{where}: {exc}")


SPECS: list[ActionSpec[Any, Any]] = [
    ActionSpec(
        ActionType.SendEmail, SendEmailConfig, frozenset({CredentialType.Smtp}), SmtpCredential, send_email
    )
]
