"""Helpers shared by the messaging and HTTP actions.

Reading config and credential values defensively, recipient caps, result text, Retry-After parsing,
and one HTTP request helper that maps transport failures to permanent or transient ``ActionError``s.
"""

from __future__ import annotations

import json
import math
import ssl
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from services.executor.actions.base import ActionError, permanent, transient
from shared.egress import EgressBlocked, EgressGuard, HostUnresolvable
from shared.enums import Plan

SNIPPET_CHARS = 4000
MASK = "••••••"
# Enough for a 4000-character snippet of any UTF-8 text, without buffering arbitrarily large bodies.
MAX_BODY_BYTES = 64 * 1024
MAX_REDIRECTS = 5
_TRANSIENT_STATUSES = frozenset({408, 425, 429})


# --- reading config / credential values ---------------------------------------------------------


def text_value(
    source: Mapping[str, Any] | None,
    key: str,
    *,
    what: str,
    required: bool = False,
    default: str | None = None,
) -> str | None:
    """A string value, stripped; numbers are accepted as text. ``what`` names the source in errors."""
    raw = source.get(key) if source is not None else None
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if required:
            raise permanent(f"{what} is missing '{key}'")
        return default
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise permanent(f"{what} has an invalid '{key}': expected text")
    return str(raw).strip()


def required_text(source: Mapping[str, Any] | None, key: str, *, what: str) -> str:
    value = text_value(source, key, what=what, required=True)
    assert value is not None  # required=True raises instead of returning None
    return value


def number_value(
    source: Mapping[str, Any] | None,
    key: str,
    *,
    what: str,
    default: float,
    minimum: float | None = None,
    maximum: float | None = None,
) -> float:
    """A number given as a JSON number or numeric text (templates render to text), clamped to the bounds."""
    raw = source.get(key) if source is not None else None
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        value = default
    elif isinstance(raw, bool):
        raise permanent(f"{what} has an invalid '{key}': expected a number")
    else:
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise permanent(
                f"{what} has an invalid '{key}': expected a number, got {str(raw)[:40]!r}"
            ) from None
        if not math.isfinite(value):
            raise permanent(f"{what} has an invalid '{key}': expected a finite number")
    if minimum is not None:
        value = max(minimum, value)
    if maximum is not None:
        value = min(maximum, value)
    return value


def port_value(source: Mapping[str, Any] | None, key: str, *, what: str, default: int) -> int:
    value = number_value(source, key, what=what, default=default)
    if value <= 0:
        return default
    if value != int(value) or value > 65535:
        raise permanent(f"{what} has an invalid '{key}': {value:g} is not a TCP port")
    return int(value)


def headers_value(source: Mapping[str, Any] | None, key: str, *, what: str) -> dict[str, str]:
    """A ``{name: value}`` object of HTTP headers; CR/LF are refused so a template cannot inject headers."""
    raw = source.get(key) if source is not None else None
    if raw is None or raw == "":
        return {}
    if not isinstance(raw, Mapping):
        raise permanent(f"{what} has an invalid '{key}': expected an object of header names to values")
    headers: dict[str, str] = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not name.strip() or any(c in name for c in "\r\n:"):
            raise permanent(f"{what} has an invalid header name {str(name)[:40]!r}")
        if value is None:
            continue
        text = value if isinstance(value, str) else str(value)
        if "\r" in text or "\n" in text:
            raise permanent(f"{what} header {name.strip()!r} contains a line break")
        headers[name.strip()] = text
    return headers


# --- recipients and plan caps -------------------------------------------------------------------


def split_recipients(raw: str | None) -> list[str]:
    """Comma- or semicolon-separated recipients, trimmed, blanks and duplicates dropped (order kept)."""
    if not raw:
        return []
    seen: set[str] = set()
    result: list[str] = []
    for part in raw.replace(";", ",").split(","):
        item = part.strip()
        if item and item.lower() not in seen:
            seen.add(item.lower())
            result.append(item)
    return result


def left_out_note(left_out: Sequence[str], plan: Plan, cap: int, *, no_cc: bool = False) -> str:
    """`` (c@z left out: free plan allows 1 recipient)`` or an empty string when nobody was left out."""
    if not left_out:
        return ""
    allowance = f"{cap} recipient{'s' if cap != 1 else ''}"
    if no_cc:
        allowance += " and no CC"
    return f" ({', '.join(left_out)} left out: {plan.value.lower()} plan allows {allowance})"


# --- result and error text ----------------------------------------------------------------------


def body_snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    return text if len(text) <= limit else text[:limit]


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every secret value that a peer or library echoed back (URLs, tokens) with a mask."""
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def redact_error(exc: ActionError, secrets: Iterable[str]) -> ActionError:
    secrets = list(secrets)
    if not secrets:
        return exc
    return ActionError(
        redact(exc.message, secrets),
        permanent=exc.permanent,
        retry_after=exc.retry_after,
        result=redact(exc.result, secrets) if exc.result is not None else None,
    )


def secret_values(credential: Mapping[str, Any] | None, keys: Iterable[str]) -> list[str]:
    if not credential:
        return []
    return [
        str(credential[k]) for k in keys if isinstance(credential.get(k), str | int) and credential.get(k)
    ]


def parse_retry_after(
    value: str | None, *, cap: float | None = None, now: datetime | None = None
) -> float | None:
    """Seconds to wait from a Retry-After value: delta-seconds or an HTTP date; None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    seconds: float
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    seconds = max(0.0, seconds)
    return min(seconds, cap) if cap is not None else seconds


# --- failures -----------------------------------------------------------------------------------


def find_cause(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    """The first exception of ``kind`` in the __cause__/__context__ chain (libraries wrap what they catch)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def blocked_error(exc: BaseException, what: str) -> ActionError:
    if isinstance(exc, HostUnresolvable):
        return transient(f"{what} could not be reached: {exc}")
    return permanent(f"{what} blocked by the egress policy: {exc}")


def status_error(
    status: int,
    *,
    what: str,
    detail: str = "",
    retry_after: float | None = None,
    result: str | None = None,
) -> ActionError:
    """Classify a non-2xx HTTP status: 408/425/429/5xx are worth retrying, everything else is not."""
    message = f"{what} returned HTTP {status}" + (f": {detail}" if detail else "")
    if status in _TRANSIENT_STATUSES or status >= 500:
        return transient(message, retry_after=retry_after, result=result or f"HTTP {status}")
    if 300 <= status < 400:
        message = f"{what} answered with a redirect (HTTP {status}) that was not followed" + (
            f": {detail}" if detail else ""
        )
    return permanent(message, result=result or f"HTTP {status}")


# --- one HTTP request through the egress guard ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class HttpReply:
    """A response with its body read up to ``MAX_BODY_BYTES``."""

    status: int
    headers: httpx.Headers
    text: str

    def retry_after(self, cap: float | None = None) -> float | None:
        return parse_retry_after(self.headers.get("retry-after"), cap=cap)


async def http_request(
    egress: EgressGuard,
    method: str,
    url: str | httpx.URL,
    *,
    what: str,
    timeout: float,
    follow_redirects: bool,
    headers: Mapping[str, str] | None = None,
    content: str | bytes | None = None,
    data: Mapping[str, str] | None = None,
    json: Any = None,
    auth: httpx.Auth | tuple[str, str] | None = None,
    private_headers: Iterable[str] = (),
) -> HttpReply:
    """Send one request; egress refusals and TLS verification failures are permanent, timeouts and
    connection failures transient. ``what`` names the peer in messages ("Slack webhook").

    Redirects (when followed, at most MAX_REDIRECTS) that leave the request's origin drop the
    ``private_headers`` (credential and user-set headers): httpx itself strips only Authorization.
    """
    private = {name.lower() for name in private_headers} | {"authorization", "cookie"}
    try:
        async with egress.http_client(timeout=timeout, require_https=True, follow_redirects=False) as client:
            request = client.build_request(
                method, url, headers=headers, content=content, data=data, json=json
            )
            for hop in range(MAX_REDIRECTS + 1):
                response = await client.send(
                    request, auth=auth if auth is not None else httpx.USE_CLIENT_DEFAULT, stream=True
                )
                following = response.next_request if follow_redirects else None
                if following is None:
                    break
                await response.aclose()
                if hop == MAX_REDIRECTS:
                    raise httpx.TooManyRedirects("Exceeded maximum allowed redirects", request=request)
                if _origin(following.url) != _origin(request.url):
                    for name in private:
                        following.headers.pop(name, None)
                    auth = None  # an auth flow would add its header again at the new origin
                request = following
            try:
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) >= MAX_BODY_BYTES:
                        break
            finally:
                await response.aclose()
            text = bytes(body[:MAX_BODY_BYTES]).decode(response.encoding or "utf-8", errors="replace")
            return HttpReply(status=response.status_code, headers=response.headers, text=text)
    except EgressBlocked as exc:
        raise blocked_error(exc, what) from None
    except httpx.TimeoutException:
        raise transient(f"Request timed out after {timeout:g} s ({what})") from None
    except httpx.TooManyRedirects:
        raise permanent(f"{what}: too many redirects") from None
    except (httpx.HTTPError, OSError) as exc:
        blocked = find_cause(exc, EgressBlocked)
        if blocked is not None:
            raise blocked_error(blocked, what) from None
        if find_cause(exc, ssl.SSLCertVerificationError) is not None:
            raise permanent(f"{what}: the server's TLS certificate could not be verified") from None
        if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
            raise permanent(f"{what}: invalid URL ({exc})") from None
        raise transient(f"{what}: connection failed ({type(exc).__name__}: {exc})") from None


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return (url.scheme, url.host, url.port)


def json_object(text: str) -> dict[str, Any]:
    """A reply body parsed as a JSON object, or {} when it is not one (error bodies vary by provider)."""
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
