"""``.pre-commit-hooks.yaml``: stream-scaffold check as a pre-commit hook."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pre_commit.clientlib import load_manifest

from tests.conftest import ROOT, git

from .test_rules import CORPUS

MANIFEST = ROOT / ".pre-commit-hooks.yaml"


def hook() -> dict[str, object]:
    """The hook, read and validated by pre-commit's own manifest reader."""
    (found,) = load_manifest(str(MANIFEST))
    return dict(found)


@pytest.mark.parametrize(
    ("name", "read"),
    [
        ("app/views.py", True),
        ("deploy/nginx.conf", True),
        ("docker/nginx/conf.d/default.conf.template", True),
        ("Procfile", True),
        ("deploy/Dockerfile.prod", True),
        ("deploy/Caddyfile", True),
        ("compose.yaml", True),
        ("deploy/web.service", True),
        ("entrypoint.sh", True),
        ("README.md", False),
        ("static/app.js", False),
    ],
)
def test_the_hook_runs_when_a_file_the_check_reads_changes(name: str, read: bool) -> None:
    files = hook()["files"]
    assert isinstance(files, str)
    assert (re.search(files, name) is not None) is read


def test_the_hook_checks_the_whole_project_with_the_installed_command() -> None:
    found = hook()
    assert found["id"] == "stream-scaffold-check"
    assert found["pass_filenames"] is False  # the nginx rules need the routes from the code
    entry = str(found["entry"]).split()
    assert entry == ["stream-scaffold", "check"]
    script = Path(sys.executable).parent / entry[0]
    done = subprocess.run(
        [str(script), *entry[1:]],
        cwd=CORPUS / "FS110" / "bad",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1  # pre-commit fails the commit
    assert "FS110" in done.stdout


@pytest.mark.slow
def test_pre_commit_installs_and_runs_the_hook_from_this_repository(tmp_path: Path) -> None:
    """pre-commit itself: it builds the hook's environment from this repository (from PyPI
    for the dependencies) and runs it on a project with a mistake."""
    project = tmp_path / "project"
    project.mkdir()
    git(project, "init", "-q")
    shutil.copy(CORPUS / "FS102" / "bad" / "app.py", project / "app.py")
    git(project, "add", "app.py")
    command = [
        str(Path(sys.executable).parent / "pre-commit"),
        "try-repo",
        str(ROOT),
        "stream-scaffold-check",
        "--all-files",
    ]
    environment = {"PRE_COMMIT_HOME": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    failed = subprocess.run(
        command,
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        env={**environment, "HOME": str(Path.home())},  # pip's cache
        check=False,
    )
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "FS102 [*] stream_with_context wraps the generator function" in failed.stdout
