"""The action provider modules live in shared/ so the API and the executor use the same models; they
must not pull the executor or its SDKs into the API process."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SDKS = (
    "aioboto3",
    "aiobotocore",
    "botocore",
    "aiohttp",
    "asyncssh",
    "azure",
    "aioftp",
    "aiosmtplib",
    "services.executor",
)


def test_shared_never_imports_services() -> None:
    offenders = []
    for path in sorted((ROOT / "shared").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            offenders += [
                f"{path.relative_to(ROOT)}: {name}" for name in names if name.startswith("services")
            ]
    assert offenders == []


def test_the_api_process_loads_no_action_sdk_and_nothing_of_the_executor() -> None:
    code = (
        "import sys, services.api.app, shared.actions.registry\n"
        f"print(sorted({{m for m in sys.modules if m.startswith({SDKS!r})}}))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
