"""Errors raised by the template sandbox; messages name a position or a limit, never a context value."""

from __future__ import annotations


class TemplateError(Exception):
    """A template could not be parsed or rendered; the message is meant for the person who wrote it."""

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


class TemplateSyntaxError(TemplateError):
    """The template does not parse: the message starts with "line L, column C: "."""


class TemplateLimitError(TemplateError):
    """The template broke a sandbox limit while rendering (or, for nesting depth and size, when parsed)."""
