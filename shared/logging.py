"""Structured JSON logs (structlog). Bind ids once: ``log.bind(run_id=..., workflow_id=...)``.

A last processor drops values of keys that look like secrets, as a safety net: code must never pass
secrets to a logger in the first place.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

SECRET_KEY_PARTS = (
    "password",
    "secret",
    "token",
    "apikey",
    "api_key",
    "authorization",
    "privatekey",
    "private_key",
    "connectionstring",
    "accountkey",
    "sastoken",
    "webhookurl",
)


def _drop_secrets(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if any(part in key.lower().replace("-", "") for part in SECRET_KEY_PARTS):
            event[key] = "[redacted]"
    return event


def configure_logging(
    level: str = "INFO",
    *,
    json: bool = True,
    service: str = "",
    stream: TextIO | None = None,
    cache: bool = True,
) -> None:
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _drop_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stderr),
        cache_logger_on_first_use=cache,
    )
    if service:
        structlog.contextvars.bind_contextvars(service=service)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")


def get_logger(name: str = "") -> Any:
    return structlog.get_logger(name)
