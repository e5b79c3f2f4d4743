"""Services as real OS processes (for crash tests): the same command line the image and `make up` use."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from shared.config import Settings
from wf.procs import free_port

REPO = Path(__file__).resolve().parents[2]


def settings_env(settings: Settings) -> dict[str, str]:
    """This process's environment minus WF_*, then the settings (JSON logs, for the tests to read)."""
    plain = {k: v for k, v in os.environ.items() if not k.startswith("WF_")}
    return {**plain, **settings.as_environment(), "WF_LOG_JSON": "true"}


class ServiceProcess:
    def __init__(self, name: str, settings: Settings, log_dir: Path, *, preamble: str | None = None) -> None:
        self.name = name
        # Python run in the child before the service (e.g. to take a codec library away from it).
        self.preamble = preamble
        self.settings = settings
        self.log_path = log_dir / f"{name}-{time.monotonic_ns()}.log"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        env = settings_env(self.settings)
        env[f"WF_{self.name.upper()}_PORT"] = str(self.port)
        if self.name == "api":
            env["WF_API_PORT"] = str(self.port)
            env["WF_API_METRICS_PORT"] = str(free_port())  # not the default a `make up` may hold
        log = self.log_path.open("ab")
        command = [sys.executable, "-m", f"services.{self.name}"]
        if self.preamble is not None:
            run = f"import runpy; runpy.run_module('services.{self.name}', run_name='__main__')"
            command = [sys.executable, "-c", f"{self.preamble}\n{run}"]
        self.proc = subprocess.Popen(
            command,
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")
