"""Recipient lists and the plan's recipient caps (email, SMS)."""

from __future__ import annotations

from collections.abc import Sequence

from shared.enums import Plan


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
