"""ETag comparison for ``If-None-Match`` (the workflow list's 304)."""

from __future__ import annotations


def if_none_match_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 13.1.2: a list of tags or "*", compared weakly (a W/ prefix is ignored)."""
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        candidate = candidate.strip().removeprefix("W/")
        if candidate in ("*", etag):
            return True
    return False
