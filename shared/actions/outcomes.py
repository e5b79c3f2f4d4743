"""What performing an action ends in: an ``ActionResult`` or an ``ActionError`` (permanent or transient)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ActionResult:
    message: str  # what the run log's ActionResult shows a person, e.g. "HTTP 201: {...}"


class ActionError(Exception):
    """A step that did not succeed.

    ``permanent`` errors (validation, most 4xx, authentication, missing credential, SMTP 5xx)
    fail the run without retrying; transient ones are retried with backoff. ``retry_after``
    is a server's hint (Retry-After) in seconds, honoured within a bound by the engine.
    """

    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        retry_after: float | None = None,
        result: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after
        self.result = result  # optional ActionResult text, e.g. "HTTP 503"


def permanent(message: str, *, result: str | None = None) -> ActionError:
    return ActionError(message, permanent=True, result=result)


def transient(message: str, *, retry_after: float | None = None, result: str | None = None) -> ActionError:
    return ActionError(message, permanent=False, retry_after=retry_after, result=result)


def stripped(value: str | None) -> str | None:
    """A stored text value without surrounding blanks; empty counts as missing (None)."""
    return (value.strip() or None) if value is not None else None


def required(value: str | None, key: str, *, what: str, strip: bool = True) -> str:
    """A value the credential or config must have, or a permanent error naming ``key`` in ``what``.
    Secrets are used exactly as stored (``strip=False``): passwords may begin or end with spaces."""
    text = stripped(value) if strip else value
    if not text:
        raise permanent(f"{what} is missing '{key}'")
    return text
