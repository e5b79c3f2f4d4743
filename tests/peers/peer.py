"""What the in-process protocol peers share: ``async with`` around their start and stop, and
credential data built from their defaults and a test's overrides."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Peer:
    """A server a test starts and stops, or uses as ``async with Peer(...) as peer``."""

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


def credential_data(defaults: dict[str, object], overrides: dict[str, object]) -> dict[str, object]:
    """A peer's credential data with a test's overrides; an override of None leaves the key out."""
    data = {**defaults, **overrides}
    return {key: value for key, value in data.items() if value is not None}
