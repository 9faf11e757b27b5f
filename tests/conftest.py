"""Fixtures shared by the whole suite: the repository root and a rendered-project factory."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
# ruff, mypy and copier are installed beside the interpreter that runs the suite.
TOOLS = Path(sys.executable).parent


def render(template: Path, destination: Path, data: Mapping[str, Any], **options: Any) -> Path:
    """Render *template* (a `template_snapshot`) into *destination* with Copier's API.

    *options* go to ``run_copy`` as well (e.g. ``exclude``, or ``vcs_ref=None`` for a template
    that is a plain folder).
    """
    from copier import run_copy

    run_copy(
        str(template),
        destination,
        **{
            "data": dict(data),
            "defaults": True,
            "unsafe": True,
            "quiet": True,
            "vcs_ref": "HEAD",
            **options,
        },
    )
    return destination


def git(cwd: Path, *args: str) -> str:
    """Run git in *cwd* with a fixed identity (CI machines have none); return its stdout."""
    return subprocess.run(
        ["git", "-c", "user.name=Test User", "-c", "user.email=test@example.invalid", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def snapshot_template(destination: Path) -> Path:
    """Copy the template as it is on disk (and the migration script it runs) to *destination*."""
    destination.mkdir(parents=True)
    shutil.copy2(ROOT / "copier.yml", destination / "copier.yml")
    shutil.copytree(ROOT / "template", destination / "template")
    shutil.copytree(
        ROOT / "migrations",
        destination / "migrations",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return destination


def commit_and_tag(repo: Path, tag: str, message: str) -> None:
    """Commit everything in *repo* (initialising it if needed) and tag the commit."""
    if not (repo / ".git").exists():
        git(repo, "init", "--quiet", "--initial-branch=main")
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "--allow-empty", "-m", message)
    git(repo, "tag", tag)


def clone_working_tree(destination: Path) -> Path:
    """A clone of this repository, without its tags, whose ``HEAD`` is the working tree as it
    is on disk: the checked-out commit, plus one commit of what is changed or untracked."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    clone = ["clone", "--quiet", "--no-tags", "--shared", str(ROOT), str(destination)]
    git(destination.parent, *clone)
    git(destination, "checkout", "--quiet", "--detach", git(ROOT, "rev-parse", "HEAD").strip())
    changed = git(ROOT, "ls-files", "-z", "--modified", "--others", "--exclude-standard")
    for name in filter(None, changed.split("\0")):
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / name).is_symlink() or (ROOT / name).is_file():
            target.unlink(missing_ok=True)
            shutil.copy2(ROOT / name, target, follow_symlinks=False)
    for name in filter(None, git(ROOT, "ls-files", "-z", "--deleted").split("\0")):
        (destination / name).unlink(missing_ok=True)
    git(destination, "add", "--all")
    if git(destination, "status", "--porcelain"):
        git(destination, "commit", "--quiet", "-m", "The working tree")
    return destination


@pytest.fixture(scope="session")
def template_snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git repository of the template as it is on disk, committed and tagged ``v0.1.0``.

    The suite renders from it rather than from this checkout: Copier renders a dirty checkout
    through a throwaway commit (two renders then record different ``_commit`` values), and
    git commands in a checkout that is being worked on can race for its index lock.
    """
    repo = snapshot_template(tmp_path_factory.mktemp("template") / "repo")
    commit_and_tag(repo, "v0.1.0", "Template snapshot")
    return repo
