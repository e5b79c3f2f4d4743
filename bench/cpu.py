"""CPU time of the bench's processes (``/proc/<pid>/stat``): what each one spent during a phase.

A figure's CPU per event or per run is the difference of two snapshots divided by the count; on a
machine shared with other work it moves far less than the wall-clock rates do.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()  # the fields after "pid (comm)", from state on


def cpu_s(pid: int, *, children: bool = False) -> float:
    """User + system time of ``pid``; with ``children``, also of its live children and the reaped ones
    (PostgreSQL's backends are children of the postmaster)."""
    fields = _stat(pid)
    if fields is None:
        return 0.0
    # After "pid (comm)": [0] state, [1] ppid, ..., [11] utime, [12] stime, [13] cutime, [14] cstime.
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                child = _stat(int(entry.name))
                if child is not None and child[1] == str(pid):
                    ticks += int(child[11]) + int(child[12])
    return ticks / _TICK


# A JVM's just-in-time compiler threads ("C1 CompilerThread0", "C2 CompilerThread1", ...).
_JIT_THREAD = ("C1 CompilerThre", "C2 CompilerThre")


def jit_cpu_s(pid: int) -> float:
    """User + system time of the JIT compiler threads of the JVM ``pid``: a start-up cost (a freshly
    started broker compiles its hot paths for its first minutes), not a cost per message."""
    ticks = 0
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            if not (task / "comm").read_text().startswith(_JIT_THREAD):
                continue
            raw = (task / "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / _TICK


class CpuMeter:
    """CPU seconds per named process between ``start()`` and ``stop()``; for each name in ``jvms``
    also ``<name>_jit``, the part its JIT compiler threads spent (included in ``<name>``)."""

    def __init__(self, pids: Mapping[str, tuple[int, bool]], jvms: tuple[str, ...] = ("kafka",)) -> None:
        self.pids = dict(pids)  # name -> (pid, count its children too)
        self.jvms = [name for name in jvms if name in self.pids]
        self._start: dict[str, float] = {}
        self.spent: dict[str, float] = {}

    def snapshot(self) -> dict[str, float]:
        spent = {name: cpu_s(pid, children=kids) for name, (pid, kids) in self.pids.items()}
        for name in self.jvms:
            spent[f"{name}_jit"] = jit_cpu_s(self.pids[name][0])
        return spent

    def start(self) -> None:
        self._start = self.snapshot()

    def stop(self) -> dict[str, float]:
        now = self.snapshot()
        self.spent = {name: now[name] - self._start.get(name, 0.0) for name in now}
        return self.spent

    def per_item_ms(self, items: int) -> dict[str, float]:
        return {name: round(1000 * spent / items, 3) for name, spent in self.spent.items()} if items else {}
