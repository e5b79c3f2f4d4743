"""The credential keyring built from settings (WF_MASTER_KEY, WF_MASTER_KEY_PREVIOUS)."""

from __future__ import annotations

from shared.config import Settings
from shared.crypto import Keyring


def keyring_from(settings: Settings) -> Keyring:
    if settings.master_key is None:
        raise RuntimeError("WF_MASTER_KEY is not configured")
    previous = (
        settings.master_key_previous.get_secret_value().split(",") if settings.master_key_previous else []
    )
    return Keyring.from_base64(
        settings.master_key.get_secret_value(), [p.strip() for p in previous if p.strip()]
    )
