"""SendEmail: one multipart (text + sanitised HTML) message over SMTP with aiosmtplib."""

from __future__ import annotations

import html
import re
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from html.parser import HTMLParser
from typing import Any

import aiosmtplib
import nh3

from services.executor.actions.base import (
    ActionContext,
    ActionDeps,
    ActionError,
    ActionResult,
    permanent,
    transient,
)
from services.executor.actions.config_readers import port_value, required_text, text_value
from services.executor.actions.http_requests import blocked_error, find_cause
from services.executor.egress import EgressBlocked
from shared.actions.recipients import left_out_note, split_recipients
from shared.actions.replies import redact_error
from shared.enums import Plan
from shared.tls import client_ssl_context

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
_ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    **{tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()},
    "*": {"style", "align", "title", "dir", "lang"},
}
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


async def send_email(ctx: ActionContext, deps: ActionDeps) -> ActionResult:
    smtp = read_smtp_credential(ctx.credential)
    recipients = cap_recipients(
        split_recipients(required_text(ctx.config, "to", what=_CONFIG)),
        split_recipients(text_value(ctx.config, "cc", what=_CONFIG)),
        ctx.plan,
    )
    message = build_message(ctx, smtp, recipients)

    count = len(recipients.all)
    await deps.quota.reserve(count)
    try:
        refused = await _deliver(smtp, message, recipients.all, deps)
    except ActionError as exc:
        await deps.quota.release(count)
        raise redact_error(exc, [smtp.password] if smtp.password else []) from None
    except BaseException:
        await deps.quota.release(count)
        raise
    if refused:
        await deps.quota.release(len(refused))
    delivered = [r for r in recipients.all if r not in refused]
    text = f"Email sent to {', '.join(delivered)}"
    if refused:
        text += " (refused by the server: " + ", ".join(f"{r}: {refused[r]}" for r in refused) + ")"
    text += left_out_note(recipients.left_out, ctx.plan, recipients.cap, no_cc=recipients.no_cc)
    return ActionResult(text)


def read_smtp_credential(data: Mapping[str, Any] | None) -> SmtpSettings:
    if not data:
        raise permanent("No SMTP credential is attached to this step")
    security = (text_value(data, "security", what=_CREDENTIAL) or "").lower()
    if not security:
        # Legacy credentials carried only useSsl, which meant STARTTLS.
        legacy = data.get("useSsl")
        security = "none" if legacy is False or str(legacy).lower() == "false" else "starttls"
    if security not in SECURITY_MODES:
        raise permanent(f"SMTP credential 'security' must be one of {', '.join(SECURITY_MODES)}")
    username = text_value(data, "username", what=_CREDENTIAL)
    raw_password = data.get("password")
    # Not stripped: leading or trailing spaces can be part of a password.
    password = raw_password if isinstance(raw_password, str) and raw_password else None
    if username and not password:
        raise permanent("SMTP credential has a 'username' but no 'password'")
    from_address = required_text(data, "fromAddress", what=_CREDENTIAL)
    if not _ADDRESS.match(from_address):
        raise permanent(f"SMTP credential 'fromAddress' is not an email address: {from_address[:80]}")
    from_name = text_value(data, "fromName", what=_CREDENTIAL)
    return SmtpSettings(
        host=required_text(data, "host", what=_CREDENTIAL),
        port=port_value(data, "port", what=_CREDENTIAL, default=465 if security == "tls" else 587),
        security=security,
        username=username,
        password=password,
        from_address=from_address,
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


def build_message(ctx: ActionContext, smtp: SmtpSettings, recipients: Recipients) -> EmailMessage:
    subject = " ".join(required_text(ctx.config, "subject", what=_CONFIG).split())
    reply_to = text_value(ctx.config, "replyTo", what=_CONFIG)
    if reply_to and not _ADDRESS.match(reply_to):
        raise permanent(f"Email action config 'replyTo' is not an email address: {reply_to[:80]}")
    html_body, text_body = render_bodies(ctx.content)

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
    message["Message-ID"] = f"<{ctx.idempotency_key}@{domain}>"
    message["X-Workflow-Run"] = str(ctx.run_id)
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
    return nh3.clean(
        content,
        attributes=_ALLOWED_ATTRIBUTES,
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
    smtp: SmtpSettings, message: EmailMessage, recipients: list[str], deps: ActionDeps
) -> dict[str, str]:
    """Send through the egress-checked socket; returns the recipients the server refused (some accepted)."""
    timeout = deps.settings.smtp_timeout_s
    where = f"SMTP server {smtp.host}:{smtp.port}"
    try:
        sock = await deps.egress.connect_socket(smtp.host, smtp.port, timeout=timeout)
    except EgressBlocked as exc:
        raise blocked_error(exc, where) from None
    except (OSError, TimeoutError) as exc:
        raise transient(f"Could not connect to {where}: {exc or type(exc).__name__}") from None

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
