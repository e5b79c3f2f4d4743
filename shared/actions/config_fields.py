"""Field types of ActionConfig models: each checks a static value and returns it normalised.

A field type is an ``Annotated`` pydantic type whose "before" validator does all the work, so the
messages are the ones a person reads in a 400 ("must be a whole number"), not pydantic's. The same
types check a value when the step is saved (unless it is a template) and again after rendering.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Annotated, Any

import httpx
from email_validator import EmailNotValidError, validate_email
from pydantic import BeforeValidator, ValidationInfo

from shared.credential_fields import FORBIDDEN_HEADERS

# Every templated value is rendered out of the step's one budget. The schema keys of an action are
# few and fixed; headers are the one open-ended map, so capping them caps a config's templates
# (the review found 373 templated headers accepted).
MAX_HEADERS = 50

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_MEDIA_TYPE = re.compile(r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+(\s*;.*)?$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def is_template(value: str) -> bool:
    """True when the value holds Liquid markup and so can only be checked after rendering."""
    return "{{" in value or "{%" in value


def split_addresses(value: str) -> list[str]:
    """Recipients of a comma- (or semicolon-) separated list, blanks dropped."""
    return [part.strip() for part in re.split(r"[,;]", value) if part.strip()]


def rendered(info: ValidationInfo) -> bool:
    """Whether the value being checked comes from a rendered config (executor) or a saved one (API)."""
    return bool(isinstance(info.context, Mapping) and info.context.get("rendered"))


# --- value checks: take a static string, return it normalised or raise ValueError -------------------


def single_line(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must be a single line without control characters")
    return value


def one_line_text(value: str) -> str:
    # A rendered template often ends with a newline; in a header-like field it becomes a space.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return re.sub(r"\s*[\r\n]+\s*", " ", value).strip()


def emails(value: str) -> str:
    addresses = split_addresses(value)
    if not addresses:
        raise ValueError("has no email address")
    normalised = []
    for address in addresses:
        try:
            normalised.append(validate_email(address, check_deliverability=False).normalized)
        except EmailNotValidError as exc:
            raise ValueError(f"'{address}' is not a valid email address ({exc})") from None
    return ", ".join(normalised)


def email(value: str) -> str:
    result = emails(value)
    if "," in result:
        raise ValueError("must be a single email address")
    return result


def phone_numbers(value: str) -> str:
    numbers = [re.sub(r"[\s().-]", "", part) for part in split_addresses(value)]
    if not numbers:
        raise ValueError("has no phone number")
    for number in numbers:
        if not _E164.match(number):
            raise ValueError(f"'{number}' is not an E.164 phone number like +15551234567")
    return ",".join(numbers)


def https_url(value: str) -> str:
    if _CONTROL.search(value) or " " in value:
        raise ValueError("must not contain spaces or control characters")
    try:
        parts = urllib.parse.urlsplit(value)
        parts.port  # noqa: B018 - raises on a malformed port
        httpx.URL(value).host  # noqa: B018 - the executor's parser; IDNA refuses "xn--localhost-"
    except (ValueError, httpx.InvalidURL):
        raise ValueError("is not a valid url") from None
    if parts.scheme.lower() != "https":
        raise ValueError("must use https (plain http and other schemes are refused)")
    if not parts.hostname:
        raise ValueError("must name a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not contain a user name or password (use a credential)")
    return value


def media_type(value: str) -> str:
    single_line(value)
    if not _MEDIA_TYPE.match(value):
        raise ValueError("must be a media type like application/json")
    return value


def path(value: str) -> str:
    if "\x00" in value or "\r" in value or "\n" in value:
        raise ValueError("must not contain NUL or line breaks")
    return value


def filename(value: str) -> str:
    path(value)
    if "/" in value or "\\" in value:
        raise ValueError("must be a file name without '/' or '\\' (put folders in the path)")
    if value in {".", ".."} or len(value) > 255:
        raise ValueError("is not a usable file name")
    return value


def object_key(value: str) -> str:
    path(value)
    if len(value.encode()) > 1024:
        raise ValueError("must be at most 1024 bytes")
    return value


def dropbox_path(value: str) -> str:
    path(value)
    if not value.startswith("/"):
        raise ValueError("must start with '/'")
    return value


def one_of(*choices: str) -> Callable[[str], str]:
    by_lower = {choice.lower(): choice for choice in choices}

    def check(value: str) -> str:
        try:
            return by_lower[value.strip().lower()]
        except KeyError:
            raise ValueError(f"must be one of: {', '.join(choices)}") from None

    return check


def pattern(regex: str, message: str) -> Callable[[str], str]:
    compiled = re.compile(regex)

    def check(value: str) -> str:
        if not compiled.match(value):
            raise ValueError(message)
        return value

    return check


# --- field types ------------------------------------------------------------------------------------


def as_text(check: Callable[[str], str] | None = None, *, accepts_number: bool = False) -> BeforeValidator:
    """For ``Annotated[str, ...]``: stripped, then checked; with ``accepts_number`` a JSON number is text."""

    def convert(value: Any) -> str:
        if accepts_number and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise ValueError("must be a string")
        value = value.strip()
        return check(value) if check is not None else value

    return BeforeValidator(convert)


def whole_number(minimum: int, maximum: int) -> BeforeValidator:
    """For ``Annotated[int, ...]``: numeric text (what a template renders to) and whole floats count."""

    def convert(value: Any) -> int:
        if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
            value = int(value)
        elif isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("must be a whole number")
        if value < minimum or value > maximum:
            raise ValueError(f"must be between {minimum} and {maximum}")
        return value

    return BeforeValidator(convert)


_TRUE = frozenset({"true", "yes", "1", "on"})
_FALSE = frozenset({"false", "no", "0", "off"})


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError("must be true or false")


Flag = Annotated[bool, BeforeValidator(_flag)]


def _headers(value: Any, info: ValidationInfo) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ValueError("must be an object of header names to string values")
    if len(value) > MAX_HEADERS:
        raise ValueError(f"must have at most {MAX_HEADERS} headers")
    seen: set[str] = set()
    headers: dict[str, str] = {}
    for name, header_value in value.items():
        if not isinstance(name, str) or not _HEADER_NAME.match(name):
            raise ValueError(f"'{name}' is not a valid header name")
        if name.lower() in FORBIDDEN_HEADERS:
            raise ValueError(f"'{name}' cannot be set (the HTTP client sets it)")
        if name.lower() in seen:
            raise ValueError(f"'{name}' is given more than once")
        seen.add(name.lower())
        if isinstance(header_value, bool) or not isinstance(header_value, str | int | float):
            raise ValueError(f"value of '{name}' must be a string")
        header_text = str(header_value)
        if rendered(info) or not is_template(header_text):
            header_text = header_text.strip()
            if _CONTROL.search(header_text):
                raise ValueError(f"value of '{name}' must be a single line without control characters")
        elif "\x00" in header_text:
            raise ValueError(f"value of '{name}' must not contain NUL characters")
        headers[name] = header_text
    return headers


Headers = Annotated[dict[str, str], BeforeValidator(_headers)]
"""HTTP headers set by the step; a templated value is checked once rendered."""

OneLineText = Annotated[str, as_text(one_line_text)]
