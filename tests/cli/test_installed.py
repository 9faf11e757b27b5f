"""The CLI installed from a wheel, used as people do: on fresh machines (a fresh HOME each),
on clones of a project, without git, and next to plain Copier."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from .conftest import BIN, git, offline_env, tree_state

pytestmark = pytest.mark.slow


class User:
    """One user of the installed CLI: their own HOME (a machine where it never ran)."""

    def __init__(self, venv: Path, home: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.home = home
        self.env = offline_env(venv, home)
        self.venv = venv

    def run(self, *args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.venv / "bin" / "stream-scaffold"), *map(str, args)],
            cwd=cwd,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )


def one_error_line(proc: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert proc.returncode == 1, proc
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, proc
    assert "Traceback" not in proc.stderr, proc
    for fragment in fragments:
        assert fragment in errors[0], (fragment, proc)


@pytest.fixture(scope="module")
def made(installed_cli: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[User, Path]:
    """A project made by the installed CLI on the first machine."""
    work = tmp_path_factory.mktemp("first-machine")
    user = User(installed_cli, work / "home")
    proc = user.run("new", "proj", "-y", cwd=work)
    assert proc.returncode == 0, proc
    return user, work / "proj"


def clone(project: Path, where: Path) -> Path:
    subprocess.run(
        ["git", "clone", "--quiet", str(project), str(where)], check=True, capture_output=True
    )
    return where


def test_every_wheel_version_is_distinct_and_recorded(made: tuple[User, Path]) -> None:
    user, project = made
    version = user.run("--version", cwd=project).stdout.split()[-1]
    assert ".dev1+g" in version  # an untagged build: 0.1.0.devN+gHASH, not a fixed 0.1.0
    recorded = yaml.safe_load((project / ".copier-answers.yml").read_text("utf-8"))
    assert recorded["_src_path"] == "~/.local/share/flask-stream-scaffold/template"


def test_a_clone_on_fresh_machines_can_grow(made: tuple[User, Path], tmp_path: Path) -> None:
    first, project = made
    copy = clone(project, tmp_path / "clone")
    # Each command on a machine where the CLI never ran before.
    added = User(first.venv, tmp_path / "home-b").run("add-endpoint", "ticks", cwd=copy)
    assert added.returncode == 0, added
    removed = User(first.venv, tmp_path / "home-c").run("remove-endpoint", "ticks", cwd=copy)
    assert removed.returncode == 0, removed
    checked = User(first.venv, tmp_path / "home-d").run("check-update", cwd=copy / "src")
    assert checked.returncode == 0, checked
    assert "Up to date." in checked.stdout


def test_an_unwritable_home_is_a_one_line_error(made: tuple[User, Path], tmp_path: Path) -> None:
    first, project = made
    copy = clone(project, tmp_path / "clone")
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where HOME's parent should be\n")
    user = User.__new__(User)
    user.venv, user.home = first.venv, blocker / "home"
    user.env = {**first.env, "HOME": str(user.home)}
    before = tree_state(copy)
    one_error_line(user.run("add-endpoint", "ticks", cwd=copy), "template repository", "writable")
    assert tree_state(copy) == before
    one_error_line(user.run("new", "fresh", "-y", cwd=tmp_path), "writable")
    assert not (tmp_path / "fresh").exists()


def test_plain_copier_update_works_on_a_wheel_made_project(
    made: tuple[User, Path], tmp_path: Path
) -> None:
    first, project = made
    copy = clone(project, tmp_path / "clone")
    before = tree_state(copy)
    proc = subprocess.run(
        [str(BIN / "copier"), "update", "--trust", "--defaults"],
        cwd=copy,
        env=first.env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc
    assert tree_state(copy) == before  # the same version: nothing to change


def test_new_without_git_installed(made: tuple[User, Path], tmp_path: Path) -> None:
    first, _ = made
    user = User(first.venv, tmp_path / "home")
    # Only the venv on PATH: no git anywhere.
    python_dir = tmp_path / "python-only"
    python_dir.mkdir()
    (python_dir / "python3").symlink_to(sys.executable)
    user.env["PATH"] = f"{first.venv / 'bin'}{os.pathsep}{python_dir}"
    assert shutil.which("git", path=user.env["PATH"]) is None
    proc = user.run("new", "plain", "-y", "--no-git", cwd=tmp_path)
    assert proc.returncode == 0, proc
    assert "git is not installed" in proc.stderr
    assert (tmp_path / "plain" / ".copier-answers.yml").is_file()
    assert not (tmp_path / "plain" / ".git").exists()
    one_error_line(user.run("new", "gitted", "-y", cwd=tmp_path), "git", "--no-git")
    assert not (tmp_path / "gitted").exists()


def test_a_real_ctrl_c_leaves_the_project_whole(made: tuple[User, Path], tmp_path: Path) -> None:
    """SIGINT to the running add-endpoint: whenever it lands, the project is either as it was
    or has the whole change in one commit."""
    first, project = made
    copy = clone(project, tmp_path / "clone")
    before = tree_state(copy)
    process = subprocess.Popen(
        [str(first.venv / "bin" / "stream-scaffold"), "add-endpoint", "ticks"],
        cwd=copy,
        env=first.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Wait until Copier is at work in the project (its scratch copies or the merge), then
    # press Ctrl-C.
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        if (copy / "src" / "proj" / "endpoints" / "ticks.py").exists():
            break
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert "Traceback" not in stderr
    if process.returncode == 130:
        assert tree_state(copy) == before
    else:
        assert process.returncode == 0, stderr
        assert git(copy, "status", "--porcelain") == ""
        assert "ticks" in git(copy, "log", "-1", "--format=%s")
