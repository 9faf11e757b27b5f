"""The CLI installed from a wheel, used as people do: on fresh machines (a fresh HOME each),
on clones of a project, without git, next to plain Copier, and upgraded from the first
release."""

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

from scaffold_cli import _releases

from .conftest import (
    BIN,
    check_project,
    git,
    install,
    make_venv,
    offline_env,
    run_build,
    tree_state,
)

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
    # An untagged build after the first release: <next>.devN+gHASH, sorting after 0.1.0.
    assert ".dev" in version
    assert "+g" in version
    recorded = yaml.safe_load((project / ".copier-answers.yml").read_text("utf-8"))
    assert recorded["_src_path"] == "~/.local/share/flask-stream-scaffold/template"
    # Built from a clone without tags, the wheel's history still has the release tags.
    assert recorded["_commit"].startswith("v0.1.0-")
    # One name for the version: the project's, as check-update shows it, is the wheel's.
    checked = user.run("check-update", cwd=project)
    assert checked.returncode == 0, checked
    assert f"Project template version: {version}\nAvailable: {version}\n" in checked.stdout


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
        # An untagged build after a release: Copier would take the release tag, a downgrade,
        # so the documented way names the installed build (docs/cli.md).
        [str(BIN / "copier"), "update", "--trust", "--defaults", "--vcs-ref", "HEAD"],
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


FIRST_RELEASE = ("0.1.0", "a931090")
"""The first release and the commit its wheel was built from, as CHANGELOG.md records them."""


def made_by_the_first_release(source_clone: Path, tmp_path: Path) -> tuple[User, Path, str]:
    """A project made and grown by the first release's wheel, with a hand edit committed;
    the user, the project and the edit."""
    version, commit = FIRST_RELEASE
    # The first release's tree, tagged as scripts/release --tags tags it, and its wheel.
    old = tmp_path / "release"
    git(tmp_path, "clone", "--quiet", "--no-tags", "--shared", str(source_clone), str(old))
    git(old, "checkout", "--quiet", "--detach", commit)
    git(old, "tag", f"v{version}")
    old_wheel = run_build(old, tmp_path / "old-wheel")
    assert f"-{version}-" in old_wheel.name
    venv = make_venv(tmp_path / "venv")
    install(venv, old_wheel)

    work = tmp_path / "work"
    work.mkdir()
    user = User(venv, tmp_path / "home")
    assert user.run("new", "shop", "-y", cwd=work).returncode == 0
    project = work / "shop"
    added = user.run("add-endpoint", "logs", "--format", "text", cwd=project)
    assert added.returncode == 0, added
    recorded = yaml.safe_load((project / ".copier-answers.yml").read_text("utf-8"))
    assert (recorded["_commit"], recorded["nginx"]) == (f"v{version}", True)
    readme = project / "README.md"
    edit = "Our own paragraph, written by hand."
    title, _, rest = readme.read_text("utf-8").partition("\n")
    readme.write_text(f"{title}\n\n{edit}\n{rest}", "utf-8")
    git(project, "commit", "--quiet", "-am", "A paragraph of our own")
    return user, project, edit


@pytest.mark.slow
def test_a_project_of_the_first_release_upgrades_to_this_build(
    source_clone: Path, current_wheel: Path, tmp_path: Path
) -> None:
    """A project made and grown by the 0.1.0 wheel, with a hand edit, is updated by this
    build's wheel installed over it (pip install -U): it says what the update brings,
    migrates the answers, keeps the edit, and the project passes its own tests, ruff and
    mypy."""
    version = FIRST_RELEASE[0]
    sections = _releases.parse((source_clone / "CHANGELOG.md").read_text("utf-8"))
    assert (sections[-1].title, sections[-1].commit) == FIRST_RELEASE
    user, project, edit = made_by_the_first_release(source_clone, tmp_path)
    venv, readme = user.venv, project / "README.md"

    install(venv, current_wheel)
    new_version = user.run("--version", cwd=project).stdout.split()[-1]
    checked = user.run("check-update", cwd=project)
    assert checked.returncode == 1, checked
    assert f"Project template version: {version}\nAvailable: {new_version}\n" in checked.stdout
    released = [s for s in sections if s.released and s.title != version]
    assert f"{len(released)} release{'' if len(released) == 1 else 's'} behind" in checked.stdout
    migration = "*Migration*: `nginx: true` becomes `proxy: nginx`"
    assert migration in checked.stdout

    updated = user.run("update", cwd=project)
    assert updated.returncode == 0, updated
    assert f"Updated template {version} -> {new_version}." in updated.stdout
    assert f"What changed since {version}, from the template's CHANGELOG.md:" in updated.stdout
    assert updated.stdout.rstrip().endswith("Committed.")
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text("utf-8"))
    assert answers["proxy"] == "nginx"
    assert "nginx" not in answers
    assert [e["source"] for e in answers["endpoints"]] == ["ticks", "ticks"]
    assert edit in readme.read_text("utf-8")
    # The per-endpoint test files became the one endpoint table.
    assert not (project / "tests" / "test_events.py").exists()
    assert (project / "tests" / "test_endpoints.py").is_file()
    assert git(project, "status", "--porcelain") == ""
    check_project(project)
