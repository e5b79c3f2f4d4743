"""Reading values from an action's config or credential mapping, for performers not yet given a typed config."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from shared.actions.outcomes import permanent


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


def flag_value(source: Mapping[str, Any] | None, key: str, *, what: str, default: bool) -> bool:
    """A boolean given as JSON true/false or as rendered text ("true", "no", "1"...)."""
    raw = source.get(key) if source is not None else None
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return default
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int | float) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str):
        text = raw.strip().lower()
        if text in ("true", "yes", "1", "on"):
            return True
        if text in ("false", "no", "0", "off"):
            return False
    raise permanent(f"{what} has an invalid '{key}': expected true or false, got {str(raw)[:40]!r}")


def secret_value(
    source: Mapping[str, Any] | None, key: str, *, what: str, required: bool = False
) -> str | None:
    """A secret exactly as stored (passwords may begin or end with spaces); empty counts as missing."""
    raw = source.get(key) if source is not None else None
    if raw is None or raw == "":
        if required:
            raise permanent(f"{what} is missing '{key}'")
        return None
    if not isinstance(raw, str):
        raise permanent(f"{what} has an invalid '{key}': expected text")
    return raw
