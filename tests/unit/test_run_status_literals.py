"""Run statuses are written as ``RunStatus`` values (shared/runs/sql.py in SQL text), never as digits:
a digit next to ``status`` in a SQL string, or a run status compared with a digit in Python, fails here.

Migrations are left out on purpose: each records the schema as it was at its revision (their partial
index predicates are history, and must not change when the code's names do)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("services", "shared", "bench", "wf")

# In SQL text: status = 1, r.status <> 3, status IN (0, 5), status NOT IN (2, 3, 4) ...
SQL_DIGIT = re.compile(
    r"\bstatus\s*(?:=|<>|!=|>=|<=|<|>)\s*\d|\bstatus\s+(?:NOT\s+)?IN\s*\([^)]*\d",
    re.IGNORECASE,
)


def _python_files() -> list[Path]:
    return sorted(p for top in SCANNED for p in (ROOT / top).rglob("*.py") if ".venv" not in p.parts)


def _strings(tree: ast.AST) -> list[tuple[int, str]]:
    """Every string literal, an f-string's literal parts joined (so ``f"status = {X}"`` reads as
    ``status = {}``, with no digit), and each implicitly concatenated string as one."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            parts = [v.value if isinstance(v, ast.Constant) else "{}" for v in node.values]
            found.append((node.lineno, "".join(str(p) for p in parts)))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.append((node.lineno, node.value))
    return found


def _is_run_module(source: str) -> bool:
    """Modules that handle runs; elsewhere a ``status`` compared with a number is an HTTP status."""
    return "RunStatus" in source or "workflow_runs" in source or "shared.runs" in source


def _named_status(node: ast.expr) -> bool:
    return (isinstance(node, ast.Name) and node.id == "status") or (
        isinstance(node, ast.Attribute) and node.attr == "status"
    )


def _python_digit_comparisons(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(_named_status(o) for o in operands) and any(
                isinstance(o, ast.Constant) and type(o.value) is int for o in operands
            ):
                lines.append(node.lineno)
    return lines


def status_digits(source: str, name: str = "<source>") -> list[str]:
    """Where the source writes a run status as a digit: ``file:line: text``."""
    tree = ast.parse(source, name)
    found = [
        f"{name}:{line}: {text.strip()[:120]!r}" for line, text in _strings(tree) if SQL_DIGIT.search(text)
    ]
    if _is_run_module(source):
        found += [f"{name}:{line}: comparison with a digit" for line in _python_digit_comparisons(tree)]
    return found


@pytest.mark.parametrize(
    "source",
    [
        'Q = "UPDATE workflow_runs SET status = 1 WHERE workflow_run_id = :id"',
        'Q = """SELECT 1 FROM workflow_runs r\n WHERE r.status IN (0, 5)"""',
        'Q = "SELECT count(*) FILTER (WHERE status<>3) FROM workflow_runs"',
        'Q = ("SELECT 1 FROM workflow_runs " "WHERE status NOT IN (2, 3, 4)")',
        'Q = f"SELECT 1 FROM workflow_runs WHERE status = 2 AND workflow_id = {W}"',
        "from shared.enums import RunStatus\nok = row.status == 5",
        "from shared.enums import RunStatus\nok = 3 != status",
    ],
)
def test_the_scan_finds_a_status_digit(source: str) -> None:
    assert status_digits(source)


@pytest.mark.parametrize(
    "source",
    [
        'Q = f"UPDATE workflow_runs SET status = {RUNNING} WHERE status IN {WAITING}"',
        "from shared.enums import RunStatus\nok = row.status == RunStatus.Retrying",
        "ok = reply.status == 200  # an HTTP status, in a module that handles no runs",
        'Q = "SELECT count(*) FROM workflow_runs WHERE attempt_number = 1"',
    ],
)
def test_the_scan_leaves_status_names_alone(source: str) -> None:
    assert not status_digits(source)


def test_no_run_status_is_written_as_a_digit() -> None:
    files = _python_files()
    assert len(files) > 50  # the scan really walks the tree
    found = [hit for path in files for hit in status_digits(path.read_text(), str(path.relative_to(ROOT)))]
    assert not found, "write run statuses with RunStatus / shared.runs.sql:\n" + "\n".join(found)
