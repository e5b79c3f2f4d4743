"""Reading values from an action's config or credential mapping, for performers not yet given a typed config."""

from __future__ import annotations

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
