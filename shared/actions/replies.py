"""Reading a peer's reply: HTTP status classification, Retry-After, body snippets and secret redaction."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from shared.actions.outcomes import ActionError, permanent, transient

SNIPPET_CHARS = 4000
MASK = "••••••"
_TRANSIENT_STATUSES = frozenset({408, 425, 429})


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


@dataclass(frozen=True, slots=True)
class HttpReply:
    """A response with its body read up to ``MAX_BODY_BYTES``."""

    status: int
    headers: httpx.Headers
    text: str

    def retry_after(self, cap: float | None = None) -> float | None:
        return parse_retry_after(self.headers.get("retry-after"), cap=cap)


def json_object(text: str) -> dict[str, Any]:
    """A reply body parsed as a JSON object, or {} when it is not one (error bodies vary by provider)."""
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def oauth_access_token(reply: HttpReply, *, provider: str, detail: str) -> str:
    """The ``access_token`` of an OAuth token endpoint's reply. A refused grant (400, 401, 403) is
    permanent; another status is classified by ``status_error``; a 200 without a token is permanent.
    ``detail`` is the provider's error text for the reply."""
    if reply.status in (400, 401, 403):
        raise permanent(f"{provider} authentication failed: {detail}", result=f"HTTP {reply.status}")
    if reply.status != 200:
        raise status_error(reply.status, what=f"{provider} token endpoint", detail=detail)
    token = json_object(reply.text).get("access_token")
    if not isinstance(token, str) or not token:
        raise permanent(f"{provider} token endpoint answered without an access_token")
    return token


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
