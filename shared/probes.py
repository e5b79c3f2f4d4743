"""Stage timestamps for the bench's latency breakdown (``bench/latency.py``); off unless asked for.

With ``WF_STAGE_LOG`` naming a file, each process appends one line per stamp, ``<stage> <key> <µs since
the epoch>``, where the key is an event id or a run id. The bench joins them with the database's
``queued_on``/``started_on``, the run messages' Kafka timestamps and the sink's arrival times. Unset
(production), ``stamp`` is a test of one module global.
"""

from __future__ import annotations

import os
import time
from typing import TextIO

_PATH = os.environ.get("WF_STAGE_LOG", "")
# Line-buffered: one write(2) per stamp, appended atomically beside the other processes' lines.
_FILE: TextIO | None = open(_PATH, "a", buffering=1, encoding="utf-8") if _PATH else None
ENABLED = _FILE is not None


def stamp(stage: str, key: object) -> None:
    if _FILE is not None:
        _FILE.write(f"{stage} {key} {time.time_ns() // 1000}\n")


def stamp_many(stage: str, keys: list[object]) -> None:
    if _FILE is not None:
        now = time.time_ns() // 1000
        _FILE.write("".join(f"{stage} {key} {now}\n" for key in keys))
